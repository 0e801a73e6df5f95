"""Weights of the built-in models: trained here (digits-cnn) or seeded random (224px nets).

Both are cached by content: the key names everything that determines the weights (the
architecture and its version, hyper-parameters, seed, data split, torch version), so a
second resolve loads instead of retraining, and any change retrains instead of reusing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from harness.variants.cache import ArtifactCache
    from harness.zoo.registry import ZooEntry

STATE_FILE = "state.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Adam with a cosine schedule: ~1250 images x 30 epochs trains in seconds on 2 cores."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4


def accuracy(module: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 512) -> float:
    """Top-1 accuracy of ``module`` (put in eval mode) on arrays ``x``, ``y``."""
    module.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            logits = module(torch.from_numpy(x[i : i + batch]))
            correct += int((logits.argmax(1).numpy() == y[i : i + batch]).sum())
    return correct / len(y)


def train(module: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, seed: int) -> nn.Module:
    """Deterministic minibatch training (seeded init and shuffling)."""
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = (len(yt) + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    module.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(yt), generator=gen)
        for i in range(0, len(yt), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            opt.zero_grad()
            loss_fn(module(xt[idx]), yt[idx]).backward()
            opt.step()
            sched.step()
    return module.eval()


def trained_weights(
    entry: "ZooEntry", cache: "ArtifactCache", data_dir: Path, data_meta: dict[str, Any], cfg: TrainConfig = TrainConfig()
) -> tuple[Path, dict[str, Any], bool]:
    """Train ``entry`` on the split in ``data_dir`` unless cached: ``(dir, meta, cached)``."""
    material = {
        "arch": entry.name,
        "arch_version": entry.version,
        "train": asdict(cfg),
        "seed": entry.seed,
        "data": data_meta["split_hash"],
        "torch": torch.__version__,
    }

    def build(out: Path) -> dict[str, Any]:
        train_set, test_set = np.load(data_dir / "train.npz"), np.load(data_dir / "test.npz")
        t0 = time.perf_counter()
        torch.manual_seed(entry.seed)
        module = train(entry.build(), train_set["x"], train_set["y"], cfg, entry.seed)
        train_s = time.perf_counter() - t0
        torch.save(module.state_dict(), out / STATE_FILE)
        return {
            "fp32_accuracy": accuracy(module, test_set["x"], test_set["y"]),
            "train_s": round(train_s, 3),
            "train_config": asdict(cfg),
            "torch": torch.__version__,
        }

    return cache.get_or_build("model", material, build)


BN_CALIBRATION = {"batches": 2, "batch_size": 4, "input": "standard normal"}


def calibrate_batchnorm(module: nn.Module, input_shape: tuple[int, ...], seed: int) -> nn.Module:
    """Set BatchNorm running statistics from a few random inputs.

    With freshly initialised statistics (mean 0, var 1) activations of a random deep net
    shrink layer by layer (MobileNetV2's logits come out near 1e-12); measured statistics
    keep them near unit scale, as in a trained net, so quantization ranges and argmax
    comparisons between runtimes are meaningful.
    """
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    module.train()
    with torch.no_grad():
        for _ in range(BN_CALIBRATION["batches"]):
            module(torch.randn((BN_CALIBRATION["batch_size"], *input_shape[1:]), generator=gen))
    for m in bns:
        m.momentum = 0.1
    return module.eval()


def random_weights(entry: "ZooEntry", cache: "ArtifactCache") -> tuple[Path, dict[str, Any], bool]:
    """Seeded random initialisation of ``entry``, saved once: ``(dir, meta, cached)``."""
    material = {"arch": entry.name, "arch_version": entry.version, "seed": entry.seed, "torch": torch.__version__,
                "init": "random", "bn_calibration": BN_CALIBRATION}

    def build(out: Path) -> dict[str, Any]:
        torch.manual_seed(entry.seed)
        module = calibrate_batchnorm(entry.build(), entry.input_shape, entry.seed)
        torch.save(module.state_dict(), out / STATE_FILE)
        return {"torch": torch.__version__, "fp32_accuracy": None, "bn_calibration": BN_CALIBRATION}

    return cache.get_or_build("model", material, build)


def save_module_weights(module: nn.Module, factory: str, cache: "ArtifactCache") -> tuple[Path, dict[str, Any], str]:
    """Store a factory model's weights as returned; key = sha256 of the tensors' bytes.

    Returns ``(dir, meta, content_hash)``: the hash identifies the weights, not the code path.
    """
    import hashlib

    state = module.state_dict()
    h = hashlib.sha256(factory.encode())
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = h.hexdigest()

    def build(out: Path) -> dict[str, Any]:
        torch.save(state, out / STATE_FILE)
        return {"factory": factory, "torch": torch.__version__}

    directory, meta, _ = cache.get_or_build("factory", {"factory": factory, "weights": digest}, build)
    return directory, meta, digest
