"""``prune-l1``: unstructured global magnitude pruning, then a short mask-keeping fine-tune.

The ``amount`` smallest-magnitude weights over all Conv and Linear weights together
(``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``) become zero. The
fine-tune runs while the pruning re-parametrisation is in place (weight = orig * mask),
so pruned weights get no gradient and stay zero; ``prune.remove`` then bakes the zeros
into plain weights. The exported graph keeps its shapes (same params and MACs); the
zeros show as ``sparsity`` in ``onnx_stats`` and pay off only on runtimes or codecs that
exploit sparsity.

Fine-tuning follows ``harness.variants.finetune``: cross-entropy on the source's labelled
train data (digits), otherwise matching the original (unpruned) model's logits (MSE) on
seeded synthetic inputs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from harness.variants.base import Recipe, RecipeOptions

if TYPE_CHECKING:
    from torch import nn

    from harness.zoo.source import SourceModel


# Measured on digits (3 epochs after pruning 50% / 70%): 1e-3 recovers 96.9% / 90.8%,
# 1e-2 recovers 97.5% / 96.7% of the fp32 model's 97.8%.
LABELLED_LR = 1e-2


class PruneL1Options(RecipeOptions):
    amount: float = Field(..., gt=0, lt=1, description="Fraction of all Conv/Linear weights set to zero.")
    finetune_epochs: int = Field(3, ge=0, description="Fine-tune epochs after pruning (0: none).")
    lr: float | None = Field(None, gt=0, description=f"Adam learning rate of the fine-tune (cosine decay); None: "
                             f"{LABELLED_LR} on labelled data, 1e-3 on synthetic inputs.")
    seed: int = Field(0, description="Seed of shuffling / synthetic inputs.")


class PruneL1(Recipe):
    name = "prune-l1"
    Options = PruneL1Options
    stage = "torch"
    runtimes = None

    def trains(self) -> bool:
        return self.options.finetune_epochs > 0

    def apply(self, inp: "nn.Module", workdir: Path, source: "SourceModel") -> "nn.Module":
        from torch import nn
        from torch.nn.utils import prune

        from harness.errors import VariantBuildError
        from harness.variants.finetune import fit, synthetic_note, train_data

        o = self.options
        targets = [(m, "weight") for m in inp.modules() if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Conv3d, nn.Linear))]
        if not targets:
            raise VariantBuildError("the model has no Conv or Linear layers to prune")
        found = train_data(source)
        original = copy.deepcopy(inp).eval() if found is None or found[1] is None else None
        if o.finetune_epochs:
            synthetic_note(self, found)
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=o.amount)
        fit(inp, source, found, epochs=o.finetune_epochs, lr=o.lr, labelled_lr=LABELLED_LR, seed=o.seed, teacher=original)
        for module, param in targets:
            prune.remove(module, param)
        return inp.eval()
