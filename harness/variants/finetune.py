"""The training loop shared by the torch-stage recipes (pruning fine-tunes, distillation).

Data rule: a source with labelled train data (``train_path`` with ``x`` and ``y``: the
digits split, an ImageFolder tree) trains on it with cross-entropy, plus a soft-target term
from a teacher when one is given. Train inputs without labels (``train: {images: DIR}``)
train by matching a teacher's outputs (the original model's, for pruning) on them. A source
without train data trains that way on seeded synthetic inputs of the input shape, standard
normal like the BatchNorm calibration of the random nets, and only with the source's leave
(``SourceModel.synthetic_data``: the suite's ``synthetic_data: true``, or a random-weight
built-in; ``build.check_chain`` refuses otherwise). There, an "epoch" is a fixed
``SYNTHETIC_STEPS_PER_EPOCH`` steps of ``SYNTHETIC_BATCH`` inputs, so a 224 px build stays
well under a minute on 2 cores; it keeps a compressed model close to its original, it does
not make an accurate model, and the variant is marked ``synthetic``.

Everything is seeded (initialisation, shuffling, synthetic inputs, dropout) inside a
forked RNG, so equal options give equal weights and the caller's RNG is untouched.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness.errors import VariantBuildError

if TYPE_CHECKING:
    from harness.variants.base import Recipe
    from harness.zoo.source import SourceModel

BATCH = 64
WEIGHT_DECAY = 1e-4
SYNTHETIC_BATCH = 4
SYNTHETIC_STEPS_PER_EPOCH = 8
# Matching a random 224 px net's logits with Adam diverges at 1e-2 (relative MSE 0.7 ->
# 1600 on MobileNetV2 after 8 steps) and converges at 1e-3 (0.7 -> 0.2 after 24 steps).
SYNTHETIC_LR = 1e-3
# Training runs on one intra-op thread: the result then does not depend on the host's
# core count (threaded conv backward splits its reductions by thread), and it is faster
# next to anything else running, such as a benchmark. Measured on 2 cores with another
# process busy: digits-cnn 0.13 s per epoch on 1 thread vs 0.54 s on 2; 8 MobileNetV2
# steps 3.7 s vs 6.1-12.6 s. On 2 idle cores 2 threads gain little (about 3 s for the latter).
TRAIN_THREADS = 1


def train_data(source: "SourceModel") -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(x, y)`` of the source's train split (``y`` None when it has no class labels: one label
    per input), or None when it has none."""
    if source.train_path is None or not Path(source.train_path).is_file():
        return None
    try:
        with np.load(source.train_path, allow_pickle=False) as f:
            x = f["x"].astype(np.float32)
            y = f["y"] if "y" in f.files else None
    except (OSError, ValueError, KeyError) as exc:
        raise VariantBuildError(f"cannot read train data {source.train_path}: {type(exc).__name__}: {exc}") from exc
    if len(x) == 0:
        raise VariantBuildError(f"train data {source.train_path} has no inputs")
    if y is not None and (y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer)):
        y = None  # not one class label per input (a mask, a box list): learn from the inputs alone
    return x, None if y is None else y.astype(np.int64)


TrainData = tuple[np.ndarray, np.ndarray | None] | None  # what ``train_data`` read: the recipe reads it once


def synthetic_note(recipe: "Recipe", found: TrainData) -> None:
    """Mark ``recipe``'s variant when it trains without train data (on seeded synthetic inputs)."""
    if found is None:
        recipe.note_synthetic("trained on seeded synthetic inputs (no train data; synthetic_data allowed)")


@contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Fork the global RNG and seed it; train on ``TRAIN_THREADS`` threads meanwhile."""
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(TRAIN_THREADS)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.set_num_threads(before)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: KL(teacher || student) at ``temperature``, times T^2."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, 1), F.log_softmax(teacher_logits / t, 1),
                    reduction="batchmean", log_target=True) * t * t


def fit(
    student: nn.Module,
    source: "SourceModel",
    found: TrainData,
    *,
    epochs: int,
    lr: float | None,
    labelled_lr: float,
    seed: int,
    teacher: nn.Module | None = None,
    alpha: float = 0.0,
    temperature: float = 1.0,
    synthetic_loss: Literal["mse", "kl"] = "mse",
) -> nn.Module:
    """Train ``student`` in place (Adam, cosine schedule) and return it in eval mode, on
    ``found`` (``train_data(source)``, read once by the recipe: a schedule of several fits
    reads the file once).

    ``lr`` None picks ``labelled_lr`` (the recipe's default) on labelled data and
    ``SYNTHETIC_LR`` on synthetic inputs.

    Labelled data: loss = (1 - alpha) * CE + alpha * ``kd_loss`` (alpha used only with a
    teacher). No labelled data: loss = MSE of logits (``synthetic_loss="mse"``) or
    ``kd_loss`` ("kl") against ``teacher`` on synthetic inputs; a teacher is required.
    """
    data = None if found is None or found[1] is None else (found[0], found[1])
    if data is None and teacher is None:
        raise VariantBuildError(f"{source.name} has no labelled train data and there is no teacher to match")
    if epochs <= 0:
        return student.eval()
    if found is None and not source.synthetic_data:
        raise VariantBuildError(no_train_data(source))
    if teacher is not None:
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    shape = tuple(source.input_shape)
    with seeded(seed) as gen:
        if data is not None:
            batches = _labelled_batches(data, epochs, gen, teacher if alpha > 0 else None)
            steps = epochs * math.ceil(len(data[1]) / BATCH)
        elif found is not None:
            batches = _input_batches(found[0], epochs, gen)
            steps = epochs * math.ceil(len(found[0]) / BATCH)
        else:
            batches = _synthetic_batches(shape, epochs, gen)
            steps = epochs * SYNTHETIC_STEPS_PER_EPOCH
        params = [p for p in student.parameters() if p.requires_grad]
        if lr is None:
            lr = labelled_lr if found is not None else SYNTHETIC_LR
        opt = torch.optim.Adam(params, lr=lr, weight_decay=WEIGHT_DECAY if found is not None else 0.0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        student.train()
        for x, y, soft in batches:
            out = student(x)
            if y is not None:
                loss = F.cross_entropy(out, y)
                if soft is not None:
                    loss = (1 - alpha) * loss + alpha * kd_loss(out, soft, temperature)
            else:
                with torch.no_grad():
                    soft = teacher(x)  # type: ignore[misc]
                loss = F.mse_loss(out, soft) if synthetic_loss == "mse" else kd_loss(out, soft, temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if not torch.isfinite(loss):
                raise VariantBuildError(f"training diverged (loss {loss.item()}); try a lower lr")
    return student.eval()


def _labelled_batches(data: tuple[np.ndarray, np.ndarray], epochs: int, gen: torch.Generator,
                      teacher: nn.Module | None):
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    soft = None
    if teacher is not None:  # the teacher is fixed and there is no augmentation: its logits once
        with torch.no_grad():
            soft = torch.cat([teacher(x[i : i + 512]) for i in range(0, len(y), 512)])
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), BATCH):
            idx = order[i : i + BATCH]
            yield x[idx], y[idx], None if soft is None else soft[idx]


def _input_batches(x: np.ndarray, epochs: int, gen: torch.Generator):
    """Real inputs without labels, shuffled per epoch (the teacher's outputs are the targets)."""
    xs = torch.from_numpy(x)
    for _ in range(epochs):
        order = torch.randperm(len(xs), generator=gen)
        for i in range(0, len(xs), BATCH):
            yield xs[order[i : i + BATCH]], None, None


def no_train_data(source: "SourceModel") -> str:
    """Why a training recipe refuses ``source``: it has no train data and no leave to use synthetic inputs."""
    return (f"{source.name} has no train data: give the model 'train:' (an npz, {{imagefolder: DIR}} or "
            "{images: DIR}) or a 'dataset:' with a train split, or 'synthetic_data: true' to train on seeded "
            "synthetic inputs (the variant is then marked synthetic)")


def _synthetic_batches(shape: tuple[int, ...], epochs: int, gen: torch.Generator):
    for _ in range(epochs * SYNTHETIC_STEPS_PER_EPOCH):
        yield torch.randn((SYNTHETIC_BATCH, *shape[1:]), generator=gen), None, None
