"""The TensorRT runtime's parts that need no GPU, plus its two thin TensorRT bindings.

Pure (stdlib, tested on any machine): the engine cache key, the cache directory and its
files (written atomically, so a killed job never leaves half an engine).

TensorRT-specific, driven through the ``trt`` module passed in (only ``probe`` imports
TensorRT, lazily): ``make_logger`` (TensorRT's log to the agent's stderr log),
``build_engine`` (builder config from the options, timing cache, calibrator, build) and
``bind_outputs`` (a device buffer per output).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from . import cuda_mem
from ..digest import sha256_file
from ..errors import ArtifactIncompatible

log = logging.getLogger("edge_harness.agent.tensorrt")

KEY_SCHEMA = 1  # bump when the engine-building code changes what an engine holds
DEFAULT_ENGINE_CACHE = "~/.cache/edge-harness/trt-engines"  # under the inventory's default workdir


def _unavailable(version: Optional[str], reason: str) -> Dict[str, Any]:
    return {"name": "tensorrt", "version": version, "available": False, "devices": [], "reason": reason}


def probe(min_version: Tuple[int, ...]) -> Dict[str, Any]:
    """The TensorRT runtime's probe: the library's version and the CUDA devices, or why not."""
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or a broken install failing on its own imports
        return _unavailable(None, "tensorrt not importable: %s" % exc)
    version = str(getattr(trt, "__version__", "unknown"))
    if parse_version(version) < min_version:
        return _unavailable(version, "TensorRT %s is older than 8.5 (no name-based tensor API)" % version)
    try:
        backend = cuda_mem.load_backend(0)
        try:
            names = backend.device_names()
        finally:
            backend.close()
    except Exception as exc:
        return _unavailable(version, "tensorrt %s found but no CUDA device is usable: %s" % (version, exc))
    if not names:
        return _unavailable(version, "tensorrt %s found but no CUDA device" % version)
    return {"name": "tensorrt", "version": version, "available": True, "devices": names}


def check_options(options: Dict[str, Any], precisions: Sequence[str]) -> None:
    """The runtime's option values; ValueError naming the key."""
    if options["precision"] not in precisions:
        raise ValueError("runtime_options.precision must be one of %s, got %r"
                         % (", ".join(precisions), options["precision"]))
    ws = options["workspace_mb"]
    if ws is not None and (isinstance(ws, bool) or not isinstance(ws, int) or ws <= 0):
        raise ValueError("runtime_options.workspace_mb must be a positive integer (MiB) or null, got %r" % (ws,))
    if not isinstance(options["timing_cache"], bool):
        raise ValueError("runtime_options.timing_cache must be true or false, got %r" % (options["timing_cache"],))
    for key in ("engine_cache", "calibration"):
        value = options[key]
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError("runtime_options.%s must be a path or null, got %r" % (key, value))
    for key, low in (("calibration_samples", 1), ("device", 0)):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError("runtime_options.%s must be an integer >= %d, got %r" % (key, low, value))


def parse_version(text: str) -> Tuple[int, ...]:
    """Leading integer parts of a version string: "10.3.0.26" -> (10, 3, 0, 26), "8.6.1.post1" -> (8, 6, 1)."""
    parts: List[int] = []
    for piece in str(text).split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def engine_cache_key(onnx_sha256: str, trt_version: str, device: str, precision: str,
                     settings: Dict[str, Any]) -> str:
    """32 hex digits naming one engine: same inputs, same name; any change, a new one.

    ``settings`` holds only the options that change the built engine (workspace, profile
    shape, calibration data hash); cache locations and the timing cache do not belong here.
    """
    return _digest({"schema": KEY_SCHEMA, "onnx": onnx_sha256, "tensorrt": trt_version,
                    "device": device, "precision": precision, "settings": settings})[:32]


def calibration_cache_key(onnx_sha256: str, trt_version: str, calibration_sha256: str,
                          samples: int, input_shape: Sequence[int]) -> str:
    """Name of a calibration table: it depends on network, data and TensorRT, not on the GPU."""
    return _digest({"schema": KEY_SCHEMA, "onnx": onnx_sha256, "tensorrt": trt_version,
                    "calibration": calibration_sha256, "samples": samples,
                    "shape": [int(d) for d in input_shape]})[:32]


def int8_mode(precision: str, qdq: bool, calibration: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """("qdq" | "calibrated" | None, sha256 of the calibration set); ArtifactIncompatible when
    int8 has neither Q/DQ nodes nor a calibration set on the board."""
    if precision != "int8":
        return None, None
    if qdq:
        return "qdq", None  # explicit quantization: the ONNX carries its scales, no calibrator
    if calibration is None:
        raise ArtifactIncompatible("precision int8 needs runtime_options.calibration (an npz with x) "
                                   "or an ONNX with Q/DQ nodes")
    if not os.path.isfile(calibration):
        raise ArtifactIncompatible("calibration set not found on the board: %s" % calibration)
    return "calibrated", sha256_file(calibration)


def prepare_cache_dir(option: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(absolute directory, None) when the cache is usable; (None, reason) when it is not.

    ``~`` expands to the agent user's home; missing directories are created. An unusable
    directory disables caching for the job (the engine is still built), it is not an error.
    """
    if option is None:
        return None, "engine cache disabled (runtime_options.engine_cache is null)"
    path = os.path.abspath(os.path.expanduser(option))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        return None, "engine cache directory %s cannot be created: %s" % (path, exc)
    if not os.access(path, os.W_OK | os.X_OK):
        return None, "engine cache directory %s is not writable" % path
    return path, None


class CacheFiles(NamedTuple):
    engine: str  # the serialized engine
    meta: str  # JSON: what the engine was built from, for people reading the cache
    timing: str  # TensorRT timing cache, shared by every engine of this TensorRT + GPU


def cache_files(cache_dir: str, key: str, trt_version: str, device: str) -> CacheFiles:
    timing = _digest({"tensorrt": trt_version, "device": device})[:16]
    return CacheFiles(engine=os.path.join(cache_dir, key + ".engine"),
                      meta=os.path.join(cache_dir, key + ".json"),
                      timing=os.path.join(cache_dir, "timing-%s.cache" % timing))


def calibration_file(cache_dir: str, key: str) -> str:
    return os.path.join(cache_dir, "calib-%s.cache" % key)


def atomic_write(path: str, data: bytes) -> None:
    """Write to a temporary name in the same directory, then rename over ``path``."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_or_none(path: Optional[str]) -> Optional[bytes]:
    """The file's bytes; None when there is no path, no file, or an empty file."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data or None


def make_logger(trt: Any, log: Any) -> Any:
    """A ``trt.ILogger`` writing to ``log`` (stderr); keeps the build's error messages so a
    failed build can say why."""

    class AgentLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: List[str] = []

        def log(self, severity: Any, msg: str) -> None:
            level = int(severity)  # INTERNAL_ERROR 0, ERROR 1, WARNING 2, INFO 3, VERBOSE 4
            if level <= 1:
                self.errors.append(str(msg))
                log.error("TensorRT: %s", msg)
            elif level == 2:
                log.warning("TensorRT: %s", msg)
            elif level == 3:
                log.debug("TensorRT: %s", msg)

    return AgentLogger()


def store_engine(files: CacheFiles, blob: bytes, meta: Dict[str, Any]) -> Optional[str]:
    """Write the engine and its description beside it; a reason string when that failed."""
    try:
        atomic_write(files.engine, blob)
        atomic_write(files.meta, json.dumps(meta, indent=1, sort_keys=True).encode("utf-8"))
    except OSError as exc:
        log.warning("could not cache the engine at %s: %s", files.engine, exc)
        return "engine not cached: %s" % exc
    return None


def build_engine(trt: Any, builder: Any, network: Any, logger: Any, precision: str, workspace_mb: Optional[int],
                 profile_inputs: Optional[Sequence[Tuple[str, Tuple[int, ...]]]], timing_path: Optional[str],
                 calibrator: Any = None) -> bytes:
    """The serialized engine (TensorRT 8.5+ / 10 builder API).

    ``profile_inputs`` ((input name, shape) for every input) adds one optimization profile
    with min = opt = max = each shape (also the calibration profile). ``timing_path`` is loaded before and saved
    after the build. ArtifactIncompatible with TensorRT's last errors when the build fails.
    """
    config = builder.create_builder_config()
    if workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8: fp16 is the fallback for layers without int8 kernels
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    profile = None
    if profile_inputs is not None:
        profile = builder.create_optimization_profile()
        for name, shape in profile_inputs:
            profile.set_shape(name, shape, shape, shape)
        config.add_optimization_profile(profile)
    if timing_path is not None:
        try:
            cache = config.create_timing_cache(read_or_none(timing_path) or b"")
        except Exception as exc:  # a damaged file: start an empty cache
            log.warning("timing cache %s unreadable (%s); starting a new one", timing_path, exc)
            cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)  # ignore_mismatch=False: another GPU's cache is refused
    if calibrator is not None:
        config.int8_calibrator = calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
    del logger.errors[:]
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ArtifactIncompatible("TensorRT could not build an engine: %s"
                                   % ("; ".join(logger.errors[-3:]) or "no error logged"))
    if timing_path is not None:
        try:
            atomic_write(timing_path, bytes(config.get_timing_cache().serialize()))
        except OSError as exc:
            log.warning("could not save the timing cache %s: %s", timing_path, exc)
    return bytes(blob)


def bind_outputs(trt: Any, engine: Any, ctx: Any, cuda: Any, order: Sequence[str]) -> List[Tuple[str, int, Any]]:
    """A device buffer (``cuda.malloc``) and a host array for every output of ``engine``, bound to
    ``ctx``: ``(name, pointer, host array)`` in the ONNX's output ``order``."""
    import numpy as np

    outs = []
    for i in range(engine.num_io_tensors):
        out = engine.get_tensor_name(i)
        if engine.get_tensor_mode(out) != trt.TensorIOMode.OUTPUT:
            continue
        shape = tuple(int(d) for d in ctx.get_tensor_shape(out))
        if any(d < 0 for d in shape):
            raise ArtifactIncompatible("output %r has a data-dependent shape %s" % (out, list(shape)))
        host = np.empty(shape, dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(out))))
        ptr = cuda.malloc(host.nbytes)
        ctx.set_tensor_address(out, ptr)
        outs.append((out, ptr, host))
    rank = {n: i for i, n in enumerate(order)}
    return sorted(outs, key=lambda o: rank.get(o[0], len(rank)))  # the ONNX's first output first
