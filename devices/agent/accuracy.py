"""Top-1 accuracy on the board, with the very runtime instance that was timed.

Latency and accuracy share runtime, precision hint and threads (docs/measurement.md, trap 7):
OpenVINO's silent bf16 would otherwise give the latency of one setting and the accuracy
of another.
"""

from __future__ import annotations

import zipfile
from typing import Callable, Optional, Tuple

import numpy as np

from .errors import ArtifactIncompatible, MeasurementError


def npz_array_shape(path: str, name: str) -> Tuple[int, ...]:
    """Shape of array ``name`` in an .npz, read from its header without loading the data.

    Lets the agent reject a mismatching eval set before spending minutes on the timed run,
    and without the eval set inflating the peak RSS of the timed window.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            with zf.open(name + ".npy") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape = np.lib.format.read_array_header_1_0(f)[0]
                else:
                    shape = np.lib.format.read_array_header_2_0(f)[0]
    except KeyError:
        raise ArtifactIncompatible("eval set %s has no array %r (needs x and y)" % (path, name)) from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtifactIncompatible("cannot read eval set %s: %s" % (path, exc)) from None
    return tuple(int(d) for d in shape)


def check_eval_set(path: str, input_shape: Tuple[int, ...], task: Optional[str] = None) -> None:
    """ArtifactIncompatible unless x is N x input_shape[1:] and y has N labels; with a
    ``task`` kind: segmentation needs N masks (N, H, W), detection and custom no y here
    (the coordinator reads their ground truth)."""
    x_shape = npz_array_shape(path, "x")
    want = tuple(input_shape[1:])
    if x_shape[1:] != want:
        raise ArtifactIncompatible(
            "eval set x has per-sample shape %s but the model input is %s (per-sample %s)"
            % (list(x_shape[1:]), list(input_shape), list(want))
        )
    if task in ("detection", "custom"):
        return
    y_shape = npz_array_shape(path, "y")
    if task == "segmentation":
        if len(y_shape) != 3 or y_shape[0] != x_shape[0]:
            raise ArtifactIncompatible("eval set y (label masks) has shape %s; expected (%d, height, width)"
                                       % (list(y_shape), x_shape[0]))
        return
    if len(y_shape) != 1 or y_shape[0] != x_shape[0]:
        raise ArtifactIncompatible("eval set y has shape %s; expected (%d,)" % (list(y_shape), x_shape[0]))


def load_eval_set(path: str, dtype: str, max_samples: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """x (cast to the input dtype) and y (int64), cut to the first ``max_samples``."""
    with np.load(path, allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    if max_samples is not None:
        x, y = x[:max_samples], y[:max_samples]
    return np.ascontiguousarray(x, dtype=dtype), y.astype(np.int64)


def top1_accuracy(
    run: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
    check_deadline: Callable[[], None] = lambda: None,
) -> Tuple[Optional[float], int]:
    """(accuracy, samples evaluated): argmax over the last axis of the first output vs y.

    Batches have the model's batch size; a tail that does not fill one is dropped, because
    a static-batch model cannot take it. Accuracy is None when not one batch fits.
    """
    n_batches = len(x) // batch
    correct = 0
    for i in range(n_batches):
        check_deadline()
        sl = slice(i * batch, (i + 1) * batch)
        try:
            out = np.asarray(run(x[sl]))
        except Exception as exc:
            raise MeasurementError("inference failed in phase accuracy: %s" % exc) from None
        pred = np.argmax(out, axis=-1).reshape(-1)
        if pred.shape[0] != batch:
            raise ArtifactIncompatible(
                "first output has shape %s; cannot read it as class scores of %d samples"
                % (list(out.shape), batch)
            )
        correct += int(np.count_nonzero(pred == y[sl]))
    n = n_batches * batch
    return (correct / n if n else None), n
