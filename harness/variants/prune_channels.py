"""``prune-channels``: structured L1 filter pruning that removes channels (Li et al. 2017).

The exported graph gets smaller: fewer parameters and MACs in ``onnx_stats``, on every
runtime. A *channel group* is a set of channels that one Conv (the producer, groups=1)
writes and that reaches the next Conv or the classifier (the consumer) through nothing
that mixes or adds channels: BatchNorm, activations, pooling, dropout, and depthwise
convs (groups == channels), whose channel count follows the producer. For each group the
producer's output filters are ranked by L1 norm and the top ``1 - amount`` kept; the
producer, its BatchNorm, the depthwise convs (and theirs) and the consumer's input
channels are rebuilt with the kept indices.

Channels that feed a residual connection are never pruned: a MobileNetV2 inverted
residual with a skip and a ResNet BasicBlock are opaque to the outer chain, and only the
channels inside them are grouped (the expansion/hidden channels, the middle of a
BasicBlock). Elsewhere every group counts, so the stem's output (not its input) and the
last conv before the classifier (not the classifier's outputs) are pruned too.

The walk knows the zoo architectures (``DigitsCNN``, ``MobileNetV2``, ``ResNet18``, at any
width); their module order is their data flow. Any other model is refused: structure
alone does not say where its skips and reshapes are.

``schedule`` prunes iteratively: to each fraction of the original channels in turn, with
``finetune_epochs`` of fine-tuning after each step (labelled data: cross-entropy;
otherwise matching the original model's logits on synthetic inputs; see
``harness.variants.finetune``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from harness.errors import VariantBuildError
from harness.variants.base import Recipe, RecipeOptions

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.zoo.source import SourceModel

SUPPORTED = "DigitsCNN, MobileNetV2, ResNet18"
# Removing half the channels is closer to retraining than to fine-tuning: on digits, 3
# epochs at 1e-3 recover 70% accuracy, at 1e-2 95.8% (fp32: 97.8%).
LABELLED_LR = 1e-2


class PruneChannelsOptions(RecipeOptions):
    amount: float = Field(..., gt=0, lt=1, description="Fraction of each channel group's channels removed.")
    finetune_epochs: int = Field(3, ge=0, description="Fine-tune epochs after each pruning step (0: none).")
    lr: float | None = Field(None, gt=0, description=f"Adam learning rate of the fine-tunes (cosine decay); None: "
                             f"{LABELLED_LR} on labelled data, 1e-3 on synthetic inputs.")
    schedule: tuple[float, ...] | None = Field(
        None, description="Iterative pruning: fractions pruned in turn, increasing, ending at amount."
    )
    seed: int = Field(0, description="Seed of shuffling / synthetic inputs.")

    @model_validator(mode="after")
    def _schedule_ends_at_amount(self) -> "PruneChannelsOptions":
        s = self.schedule
        if s is None:
            return self
        if not s:
            raise ValueError("schedule must list at least one fraction (or be omitted)")
        if any(not 0 < f < 1 for f in s) or any(b <= a for a, b in zip(s, s[1:])):
            raise ValueError(f"schedule must increase strictly within (0, 1); got {list(s)}")
        if not math.isclose(s[-1], self.amount, abs_tol=1e-9):
            raise ValueError(f"schedule must end at amount ({self.amount}); it ends at {s[-1]}")
        return self


class PruneChannels(Recipe):
    name = "prune-channels"
    Options = PruneChannelsOptions
    stage = "torch"
    runtimes = None

    def trains(self) -> bool:
        return self.options.finetune_epochs > 0

    def apply(self, inp: "nn.Module", workdir: Path, source: "SourceModel") -> "nn.Module":
        from harness.variants.finetune import fit, synthetic_note, train_data

        o = self.options
        groups = channel_groups(inp)
        if not groups:
            raise VariantBuildError("found no channel group that can be pruned")
        original_width = [_get(inp, g.producer).out_channels for g in groups]
        found = train_data(source)
        original = copy.deepcopy(inp).eval() if found is None or found[1] is None else None
        if o.finetune_epochs:
            synthetic_note(self, found)
        for step, fraction in enumerate(o.schedule or (o.amount,)):
            for g, width in zip(groups, original_width):
                prune_group(inp, g, max(1, round(width * (1 - fraction))))
            fit(inp, source, found, epochs=o.finetune_epochs, lr=o.lr, labelled_lr=LABELLED_LR, seed=o.seed + step,
                teacher=original)
        return inp.eval()


# --- structure -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A conv (+ BatchNorm) or the classifier Linear, by qualified name in the root module."""

    conv: str
    bn: str | None = None
    linear: bool = False


PASS = "pass"  # channel-wise, shape-keeping (activations, pooling, dropout, flatten after global pool)
BARRIER = "barrier"  # a residual block: what enters it also feeds a skip


@dataclass(frozen=True)
class ChannelGroup:
    producer: str
    producer_bn: str | None
    followers: tuple[_Unit, ...] = field(default=())  # depthwise convs carrying the channels on
    consumer: _Unit = field(default_factory=lambda: _Unit(""))


def channel_groups(root: "nn.Module") -> list[ChannelGroup]:
    """The prunable channel groups of a zoo net, in forward order; refuses anything else."""
    from harness.zoo.nets import BasicBlock, DigitsCNN, InvertedResidual, MobileNetV2, ResNet18

    chains: list[list[Any]] = []
    if isinstance(root, DigitsCNN):
        chains.append([*_flat(root.features, "features"), PASS, _Unit("classifier", linear=True)])
    elif isinstance(root, MobileNetV2):
        main: list[Any] = []
        for name, child in root.features.named_children():
            prefix = f"features.{name}"
            if isinstance(child, InvertedResidual):
                inner = _flat(child.conv, f"{prefix}.conv")
                if child.use_res:
                    main.append(BARRIER)
                    chains.append(inner)
                else:
                    main += inner
            else:
                main += _flat(child, prefix)
        main += [PASS, *_flat(root.classifier, "classifier")]
        chains.append(main)
    elif isinstance(root, ResNet18):
        main = [*_flat(root.stem, "stem")]
        for name, child in root.layers.named_children():
            if not isinstance(child, BasicBlock):
                raise _unsupported(root, f"layers.{name} is a {type(child).__name__}")
            main.append(BARRIER)
            chains.append(_flat(child.body, f"layers.{name}.body"))
        main += [PASS, _Unit("fc", linear=True)]
        chains.append(main)
    else:
        raise _unsupported(root)
    return [g for chain in chains for g in _groups(root, chain)]


def _unsupported(root: "nn.Module", detail: str = "") -> VariantBuildError:
    what = type(root).__name__ + (f" ({detail})" if detail else "")
    return VariantBuildError(f"structured pruning supports the zoo architectures ({SUPPORTED}); cannot prune {what}")


def _flat(module: "nn.Module", prefix: str) -> list[Any]:
    """A Sequential as units in forward order: conv_bn blocks, Linears, pass-through ops."""
    from torch import nn

    passes = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d,
              nn.AdaptiveAvgPool2d, nn.Flatten)
    out: list[Any] = []
    for name, child in module.named_children():
        path = f"{prefix}.{name}"
        if isinstance(child, nn.Conv2d):
            out.append(_Unit(path))
        elif isinstance(child, nn.BatchNorm2d):
            if not out or not isinstance(out[-1], _Unit) or out[-1].bn is not None or out[-1].linear:
                raise VariantBuildError(f"structured pruning: BatchNorm {path} does not follow a conv")
            out[-1] = _Unit(out[-1].conv, path)
        elif isinstance(child, nn.Linear):
            out.append(_Unit(path, linear=True))
        elif isinstance(child, nn.Sequential):
            out += _flat(child, path)
        elif isinstance(child, passes):
            out.append(PASS)
        else:
            raise VariantBuildError(f"structured pruning: {path} is a {type(child).__name__}, which it does not handle")
    return out


def _groups(root: "nn.Module", chain: list[Any]) -> list[ChannelGroup]:
    groups = []
    for i, unit in enumerate(chain):
        if not isinstance(unit, _Unit) or unit.linear or _get(root, unit.conv).groups != 1:
            continue
        width = _get(root, unit.conv).out_channels
        followers: list[_Unit] = []
        j = i + 1
        while j < len(chain) and (chain[j] == PASS or _is_depthwise(root, chain[j], width)):
            if chain[j] != PASS:
                followers.append(chain[j])
            j += 1
        if j == len(chain) or not isinstance(chain[j], _Unit):
            continue  # the channels leave the chain (a skip, or the block's output)
        nxt = chain[j]
        mod = root.get_submodule(nxt.conv)
        fits = mod.in_features == width if nxt.linear else (mod.groups == 1 and mod.in_channels == width)
        if fits:
            groups.append(ChannelGroup(unit.conv, unit.bn, tuple(followers), nxt))
    return groups


def _get(root: "nn.Module", path: str) -> Any:
    return root.get_submodule(path)


def _is_depthwise(root: "nn.Module", unit: Any, width: int) -> bool:
    if not isinstance(unit, _Unit) or unit.linear:
        return False
    c = _get(root, unit.conv)
    return c.groups == c.in_channels == c.out_channels == width


# --- surgery ---------------------------------------------------------------------------


def prune_group(root: "nn.Module", group: ChannelGroup, keep_n: int) -> None:
    """Keep the ``keep_n`` producer filters of largest L1 norm, everywhere along the group."""
    producer = _get(root, group.producer)
    if keep_n >= producer.out_channels:
        return
    keep = keep_indices(producer, keep_n)
    _set(root, group.producer, _slice_conv(producer, out_idx=keep))
    if group.producer_bn:
        _set(root, group.producer_bn, _slice_bn(_get(root, group.producer_bn), keep))
    for f in group.followers:
        _set(root, f.conv, _slice_conv(_get(root, f.conv), out_idx=keep, depthwise=True))
        if f.bn:
            _set(root, f.bn, _slice_bn(_get(root, f.bn), keep))
    consumer = _get(root, group.consumer.conv)
    if group.consumer.linear:
        _set(root, group.consumer.conv, _slice_linear(consumer, keep))
    else:
        _set(root, group.consumer.conv, _slice_conv(consumer, in_idx=keep))


def keep_indices(conv: "nn.Module", keep_n: int) -> "torch.Tensor":
    """Indices (ascending) of the ``keep_n`` output filters of ``conv`` with the largest L1 norm."""
    import torch

    w = conv.weight.detach()
    scores = w.abs().sum(dim=tuple(range(1, w.dim())))
    return torch.sort(torch.topk(scores, keep_n).indices).values


def _set(root: "nn.Module", path: str, module: "nn.Module") -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def _slice_conv(conv: Any, out_idx: "torch.Tensor | None" = None, in_idx: "torch.Tensor | None" = None,
                depthwise: bool = False) -> "nn.Module":
    from torch import nn

    w = conv.weight.detach()
    b = conv.bias.detach() if conv.bias is not None else None
    if out_idx is not None:
        w = w[out_idx]
        b = b[out_idx] if b is not None else None
    if in_idx is not None:
        w = w[:, in_idx]
    groups = w.shape[0] if depthwise else conv.groups
    new = nn.Conv2d(w.shape[1] * groups, w.shape[0], conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    groups, bias=b is not None, padding_mode=conv.padding_mode)
    new.weight.data.copy_(w)
    if b is not None:
        new.bias.data.copy_(b)
    return new.train(conv.training)


def _slice_bn(bn: Any, idx: "torch.Tensor") -> "nn.Module":
    from torch import nn

    new = nn.BatchNorm2d(len(idx), bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight.data.copy_(bn.weight.detach()[idx])
        new.bias.data.copy_(bn.bias.detach()[idx])
    if bn.track_running_stats:
        new.running_mean.copy_(bn.running_mean[idx])
        new.running_var.copy_(bn.running_var[idx])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


def _slice_linear(linear: Any, in_idx: "torch.Tensor") -> "nn.Module":
    from torch import nn

    new = nn.Linear(len(in_idx), linear.out_features, bias=linear.bias is not None)
    new.weight.data.copy_(linear.weight.detach()[:, in_idx])
    if linear.bias is not None:
        new.bias.data.copy_(linear.bias.detach())
    return new.train(linear.training)
