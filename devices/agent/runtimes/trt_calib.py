"""INT8 calibration data for the TensorRT runtime.

``CalibrationBatches`` is plain numpy (tested on any machine): it reads the first rows of an
npz's ``x`` (the eval sets' format) and cuts them into batches of the network's input shape.
``make_calibrator`` is the only TensorRT-specific part: an ``IInt8EntropyCalibrator2``
subclass, built from the ``trt`` module passed in, that copies each batch into one device
buffer and hands TensorRT its pointer.
"""

from __future__ import annotations

import zipfile
from typing import Any, List, Optional, Sequence

import numpy as np

from .trt_support import atomic_write, read_or_none


def read_npz_rows(path: str, name: str, max_rows: Optional[int]) -> np.ndarray:
    """The first ``max_rows`` rows of array ``name`` in an npz, reading only those rows
    (a large calibration set must not inflate the job's peak RSS). ValueError when unreadable."""
    try:
        with zipfile.ZipFile(path) as zf:
            with zf.open(name + ".npy") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                if fortran or dtype.hasobject or not shape:
                    raise ValueError("array %r must be a C-ordered numeric array with a batch axis" % name)
                rows = shape[0] if max_rows is None else min(shape[0], max_rows)
                count = rows * int(np.prod(shape[1:], dtype=np.int64))
                data = f.read(count * dtype.itemsize)
    except KeyError:
        raise ValueError("calibration set %s has no array %r" % (path, name)) from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError("cannot read calibration set %s: %s" % (path, exc)) from None
    return np.frombuffer(data, dtype=dtype, count=count).reshape((rows,) + tuple(shape[1:]))


class CalibrationBatches:
    """Batches of exactly the network's input shape, cast to its dtype, for calibration.

    Like accuracy, a tail that does not fill a batch is dropped (a static-batch engine
    cannot take it). ``next()`` returns the next batch or None when all were fed.
    """

    def __init__(self, x: np.ndarray, input_shape: Sequence[int], dtype: Any, max_samples: Optional[int] = None):
        shape = tuple(int(d) for d in input_shape)
        if x.ndim != len(shape) or tuple(x.shape[1:]) != shape[1:]:
            raise ValueError("calibration x has per-sample shape %s but the model input is %s (per-sample %s)"
                             % (list(x.shape[1:]), list(shape), list(shape[1:])))
        if max_samples is not None:
            x = x[:max_samples]
        self.batch_size = shape[0]
        self.n_batches = len(x) // self.batch_size
        if self.n_batches == 0:
            raise ValueError("calibration set has %d samples, fewer than one batch of %d" % (len(x), self.batch_size))
        self.dtype = np.dtype(dtype)
        self.batch_nbytes = int(np.prod(shape)) * self.dtype.itemsize
        self.fed = 0
        self._x = x[: self.n_batches * self.batch_size]

    @classmethod
    def from_npz(cls, path: str, input_shape: Sequence[int], dtype: Any,
                 max_samples: Optional[int] = None) -> "CalibrationBatches":
        return cls(read_npz_rows(path, "x", max_samples), input_shape, dtype, max_samples)

    def __len__(self) -> int:
        return self.n_batches

    def next(self) -> Optional[np.ndarray]:
        if self.fed >= self.n_batches:
            return None
        start = self.fed * self.batch_size
        self.fed += 1
        return np.ascontiguousarray(self._x[start:start + self.batch_size], dtype=self.dtype)

    def reset(self) -> None:
        self.fed = 0


def make_calibrator(trt: Any, batches: CalibrationBatches, cuda: Any, cache_path: Optional[str]) -> Any:
    """An ``IInt8EntropyCalibrator2`` (TensorRT's recommended one) over ``batches``.

    ``cuda`` is a ``cuda_mem.CudaBackend``; the one device buffer is freed by ``free()``.
    A calibration table at ``cache_path`` is used instead of calibrating, and written after.
    """
    base = trt.IInt8EntropyCalibrator2

    class EntropyCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)  # TensorRT's bindings need the explicit base constructor
            self.batches = batches
            self.cache_path = cache_path
            self.cache_used = False
            self._ptr: Optional[int] = cuda.malloc(batches.batch_nbytes)

        def get_batch_size(self) -> int:
            return batches.batch_size

        def get_batch(self, names: Any, *_: Any) -> Optional[List[int]]:
            arr = batches.next()
            if arr is None or self._ptr is None:
                return None  # no more data: calibration ends
            cuda.h2d(self._ptr, arr)
            return [self._ptr]

        def read_calibration_cache(self) -> Optional[bytes]:
            data = read_or_none(cache_path)
            self.cache_used = data is not None
            return data

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_path:
                atomic_write(cache_path, bytes(cache))

        def free(self) -> None:
            if self._ptr is not None:
                cuda.free(self._ptr)
                self._ptr = None

    return EntropyCalibrator()
