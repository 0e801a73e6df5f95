"""The data every input of a model is fed on the board: the timed loop's, and the eval pass's.

**Timed loop.** Each input gets seeded synthetic data of its real shape and its own dtype
(``make_input``), bound to the runtime once: standard normal for floats; random 0..255
(int8: 0..127) for uint8/int8, the pixels of a quantized image; 0 or 1 for the other
integers and for booleans, valid as indices and flags (the host's
``harness.variants.feeds.synthetic_rows`` does the same). Input ``i`` of the spec's
``inputs`` is seeded ``measure.seed + i``, so the first input, and a one-input job, get
the data they always had.

**Eval pass** (accuracy, or a task) of a multi-input model: the eval set's ``x`` feeds the
first input, as for a one-input model. Every other input is fed from the npz's array named
after it when there is one (its batch ``k`` with ``x``'s batch ``k``, in the input's own batch
size; cast to the input's dtype, NCHW rows transposed for an NHWC input, as the host's
``feeds.data_rows`` does; it must hold a batch for every batch of ``x``), else the same
synthetic batch as in the timed loop for every eval batch.
"""

from __future__ import annotations

import zipfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .accuracy import npz_array_shape
from .errors import ArtifactIncompatible

__all__ = ["EvalFeeds", "check_eval_inputs", "make_feeds", "make_input"]


def make_input(shape: Tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Seeded input of the real shape: standard normal for floats, random 0..255 for uint8
    (0..127 int8), 0 or 1 for other integers and booleans."""
    rng = np.random.RandomState(seed)
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.floating):
        return np.ascontiguousarray(rng.standard_normal(shape).astype(dt))
    high = {"uint8": 256, "int8": 128}.get(dt.name, 2)
    return np.ascontiguousarray(rng.randint(0, high, size=shape).astype(dt))


def make_feeds(inputs: Sequence[Any], seed: int) -> Dict[str, np.ndarray]:
    """``{name: data}`` for every input (``spec.NamedInput``), in order; input ``i`` seeded ``seed + i``."""
    return {inp.name: make_input(tuple(inp.shape), inp.dtype, (seed + i) % 2**32) for i, inp in enumerate(inputs)}


def _npz_names(path: str) -> List[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArtifactIncompatible("cannot read eval set %s: %s" % (path, exc)) from None


def _fitted(sample: Tuple[int, ...], want: Tuple[int, ...]) -> Optional[bool]:
    """Whether rows of per-sample shape ``sample`` feed an input of per-sample ``want``: as they
    are (False), NCHW rows transposed to NHWC (True), or not at all (None)."""
    if tuple(sample) == tuple(want):
        return False
    if len(sample) == 3 and (sample[1], sample[2], sample[0]) == tuple(want):
        return True
    return None


def check_eval_inputs(path: str, inputs: Sequence[Any], max_samples: Optional[int]) -> None:
    """ArtifactIncompatible unless each array named after one of the other inputs can feed it
    every batch ``x`` fills (read from the headers only, before the timed window)."""
    rows = npz_array_shape(path, "x")[0]
    rows = rows if max_samples is None else min(rows, max_samples)
    batches = rows // int(inputs[0].shape[0])
    names = set(_npz_names(path))
    for inp in inputs[1:]:
        if inp.name not in names:
            continue
        shape = npz_array_shape(path, inp.name)
        if not shape or _fitted(shape[1:], tuple(inp.shape[1:])) is None:
            raise ArtifactIncompatible("eval set array %r has shape %s; input %r takes %s" % (
                inp.name, list(shape), inp.name, list(inp.shape)))
        need = batches * int(inp.shape[0])
        if shape[0] < need:
            raise ArtifactIncompatible("eval set array %r has %d rows; the %d batches of x need %d" % (
                inp.name, shape[0], batches, need))


class EvalFeeds:
    """The eval pass's calls for a multi-input model: the accuracy and task loops call them once
    per batch, in order (batch ``k`` holds rows ``k * batch ..``), with ``x``'s batch only; each
    call feeds the other inputs their batch ``k``."""

    def __init__(self, runtime: Any, inputs: Sequence[Any], path: str, seed: int):
        self.runtime = runtime
        self.first = inputs[0].name
        self.fixed = make_feeds(inputs, seed)  # the timed loop's data
        del self.fixed[self.first]
        self.rows = {}  # type: Dict[str, np.ndarray]
        self.sources = {self.first: "x"}  # type: Dict[str, str]
        names = set(_npz_names(path))
        with np.load(path, allow_pickle=False) as data:
            for inp in inputs[1:]:
                if inp.name not in names:
                    self.sources[inp.name] = "synthetic"
                    continue
                a = data[inp.name]
                if _fitted(a.shape[1:], tuple(inp.shape[1:])):
                    a = a.transpose(0, 2, 3, 1)
                self.rows[inp.name] = np.asarray(a, dtype=inp.dtype)
                self.sources[inp.name] = "eval"
        self.batch = {inp.name: int(inp.shape[0]) for inp in inputs}
        self.calls = 0

    def _feeds(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        k, self.calls = self.calls, self.calls + 1
        feeds = {self.first: x}
        for name, fixed in self.fixed.items():
            rows = self.rows.get(name)
            if rows is None:
                feeds[name] = fixed
            else:
                b = self.batch[name]
                feeds[name] = np.ascontiguousarray(rows[k * b:(k + 1) * b])
        return feeds

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        """Every output of one batch, in the model's order (``Runtime.run_all``)."""
        return [out for _, out in self.runtime.run_outputs(self._feeds(x))]

    def run(self, x: np.ndarray) -> np.ndarray:
        """The first output of one batch (``Runtime.run``)."""
        return self.run_all(x)[0]

