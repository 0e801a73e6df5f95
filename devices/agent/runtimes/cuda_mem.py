"""Device memory, copies and stream synchronization for the TensorRT runtime.

Two bindings, tried in this order: NVIDIA's ``cuda-python`` runtime API (``cuda.bindings.runtime``
from cuda-python 12.6 on, ``cuda.cudart`` before; what TensorRT's own samples use) and
``pycuda`` (common on JetPack 5 images). Both are imported lazily through ``importlib`` so
that a board without them still imports the agent; ``load_backend`` raises RuntimeError
naming what was tried. Pointers are plain ints, host arrays C-contiguous numpy arrays.

Copies are synchronous (``cudaMemcpy`` / ``memcpy_htod``): they are outside the timed call,
and they stay correct with pageable numpy memory in both bindings.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List

import numpy as np


def _import(name: str) -> Any:
    # importlib rather than an import statement: cuda-python and pycuda are optional extras
    # of this one runtime, imported only when TensorRT is used.
    return importlib.import_module(name)


class CudaBackend:
    """What the runtime needs from CUDA; one device, one stream per instance."""

    name = ""

    def device_names(self) -> List[str]:
        raise NotImplementedError

    def compute_capability(self) -> str:
        """``sm_XY`` of the device this backend opened."""
        raise NotImplementedError

    def malloc(self, nbytes: int) -> int:
        raise NotImplementedError

    def free(self, ptr: int) -> None:
        raise NotImplementedError

    def h2d(self, ptr: int, arr: np.ndarray) -> None:
        raise NotImplementedError

    def d2h(self, arr: np.ndarray, ptr: int) -> None:
        raise NotImplementedError

    def fetch(self, arr: np.ndarray, ptr: int) -> np.ndarray:
        """A copy of device memory ``ptr`` read through the host buffer ``arr``."""
        self.d2h(arr, ptr)
        return arr.copy()

    def stream_handle(self) -> int:
        """The stream (created on first call) as the int ``execute_async_v3`` takes."""
        raise NotImplementedError

    def sync(self) -> None:
        """Block until all work queued on the stream has finished."""
        raise NotImplementedError

    def close(self) -> None:
        """Free every allocation still held and the stream."""


class CudartBackend(CudaBackend):
    """cuda-python's runtime API: every call returns ``(err, *results)``."""

    name = "cuda-python"

    def __init__(self, device: int = 0):
        try:
            self._rt = _import("cuda.bindings.runtime")
        except ImportError:
            self._rt = _import("cuda.cudart")
        self._ok = self._rt.cudaError_t.cudaSuccess
        self._device = device
        self._stream: Any = None
        self._ptrs: List[int] = []
        self._call("cudaSetDevice", device)
        self._sync_fn = self._rt.cudaStreamSynchronize

    def _call(self, fn: str, *args: Any) -> Any:
        res = getattr(self._rt, fn)(*args)
        err = res[0]
        if err != self._ok:
            raise RuntimeError("CUDA %s failed: %s" % (fn, getattr(err, "name", err)))
        return res[1] if len(res) == 2 else None

    def device_names(self) -> List[str]:
        names = []
        for i in range(int(self._call("cudaGetDeviceCount"))):
            prop = self._call("cudaGetDeviceProperties", i)
            name = prop.name.decode("utf-8", "replace") if isinstance(prop.name, bytes) else str(prop.name)
            names.append(name.rstrip("\x00").strip())
        return names

    def compute_capability(self) -> str:
        prop = self._call("cudaGetDeviceProperties", self._device)
        return "sm_%d%d" % (prop.major, prop.minor)

    def malloc(self, nbytes: int) -> int:
        ptr = int(self._call("cudaMalloc", max(int(nbytes), 1)))
        self._ptrs.append(ptr)
        return ptr

    def free(self, ptr: int) -> None:
        if ptr in self._ptrs:
            self._ptrs.remove(ptr)
            self._call("cudaFree", ptr)

    def h2d(self, ptr: int, arr: np.ndarray) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpy", ptr, arr.ctypes.data, arr.nbytes, kind)

    def d2h(self, arr: np.ndarray, ptr: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpy", arr.ctypes.data, ptr, arr.nbytes, kind)

    def stream_handle(self) -> int:
        if self._stream is None:
            self._stream = self._call("cudaStreamCreate")
        return int(self._stream)

    def sync(self) -> None:
        err = self._sync_fn(self._stream)[0]
        if err != self._ok:
            raise RuntimeError("CUDA cudaStreamSynchronize failed: %s" % getattr(err, "name", err))

    def close(self) -> None:
        for ptr in list(self._ptrs):
            self.free(ptr)
        if self._stream is not None:
            self._call("cudaStreamDestroy", self._stream)
            self._stream = None


class PycudaBackend(CudaBackend):
    """pycuda's driver API on the device's primary context (the one TensorRT uses)."""

    name = "pycuda"

    def __init__(self, device: int = 0):
        self._drv = _import("pycuda.driver")
        self._drv.init()
        self._ctx = self._drv.Device(device).retain_primary_context()
        self._ctx.push()
        self._device = device
        self._stream: Any = None
        self._allocs: Dict[int, Any] = {}

    def device_names(self) -> List[str]:
        return [self._drv.Device(i).name() for i in range(self._drv.Device.count())]

    def compute_capability(self) -> str:
        major, minor = self._drv.Device(self._device).compute_capability()
        return "sm_%d%d" % (major, minor)

    def malloc(self, nbytes: int) -> int:
        alloc = self._drv.mem_alloc(max(int(nbytes), 1))
        self._allocs[int(alloc)] = alloc
        return int(alloc)

    def free(self, ptr: int) -> None:
        alloc = self._allocs.pop(ptr, None)
        if alloc is not None:
            alloc.free()

    def h2d(self, ptr: int, arr: np.ndarray) -> None:
        self._drv.memcpy_htod(ptr, arr)

    def d2h(self, arr: np.ndarray, ptr: int) -> None:
        self._drv.memcpy_dtoh(arr, ptr)

    def stream_handle(self) -> int:
        if self._stream is None:
            self._stream = self._drv.Stream()
        return int(self._stream.handle)

    def sync(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        for ptr in list(self._allocs):
            self.free(ptr)
        self._stream = None
        if self._ctx is not None:
            self._ctx.pop()
            self._ctx = None


def load_backend(device: int = 0) -> CudaBackend:
    """The first binding that imports and opens ``device``; RuntimeError with every reason."""
    reasons = []
    for cls in (CudartBackend, PycudaBackend):
        try:
            return cls(device)
        except Exception as exc:  # ImportError, or a CUDA error opening the device
            reasons.append("%s: %s: %s" % (cls.name, type(exc).__name__, exc))
    raise RuntimeError("no usable CUDA binding (%s)" % "; ".join(reasons))
