"""``distill``: train a smaller student from the incoming module (the teacher).

Loss (Hinton et al. 2015): ``alpha`` x soft-target KL(teacher || student) at
``temperature`` T (times T^2, so its gradients keep their scale as T changes) plus
``(1 - alpha)`` x cross-entropy on the hard labels. Hard labels exist only when the source
has labelled train data (digits); otherwise the student learns from the teacher's outputs
alone on seeded synthetic inputs (alpha is effectively 1), which gives a student of the
right structure and cost for latency work, not an accurate one (the 224 px zoo nets have
random weights anyway). See ``harness.variants.finetune`` for the data rule.

``student="auto"`` picks the zoo's default student for the teacher's architecture:
``digits_cnn_student`` (DigitsCNN at half width, 0.30x the MACs), ``mobilenet_v2_student``
(width 0.5) or ``resnet18_student`` (half width), all in ``harness.zoo.nets``. Any other
teacher needs ``student="pkg.module:function"``, a factory returning an ``nn.Module`` with
the teacher's input and output shapes. The student starts from a seeded initialisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from harness.errors import VariantBuildError
from harness.variants.base import Recipe, RecipeOptions

if TYPE_CHECKING:
    from torch import nn

    from harness.zoo.source import SourceModel

LABELLED_EPOCHS = 40  # digits: 1258 images, ~10 s on one core
SYNTHETIC_EPOCHS = 4  # x 8 steps of 4 synthetic inputs (harness.variants.finetune)
LABELLED_LR = 3e-3


class DistillOptions(RecipeOptions):
    temperature: float = Field(4.0, gt=0, description="Softmax temperature T of the soft targets.")
    alpha: float = Field(0.7, ge=0, le=1, description="Weight of the soft-target loss; 1 - alpha of hard-label CE.")
    epochs: int | None = Field(
        None, ge=1, description=f"Training epochs; None: {LABELLED_EPOCHS} on labelled data, "
        f"{SYNTHETIC_EPOCHS} synthetic epochs otherwise.",
    )
    lr: float | None = Field(None, gt=0, description=f"Adam learning rate (cosine decay); None: {LABELLED_LR} on "
                             "labelled data (as the zoo's own training), 1e-3 on synthetic inputs.")
    student: str = Field(
        "auto", pattern=r"^(auto|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$",
        description="'auto' (the zoo's default student) or a 'pkg.module:function' factory.",
    )
    seed: int = Field(0, description="Seed of the student's initialisation, shuffling, synthetic inputs.")


class Distill(Recipe):
    name = "distill"
    Options = DistillOptions
    stage = "torch"
    runtimes = None

    def trains(self) -> bool:
        return True

    def apply(self, inp: "nn.Module", workdir: Path, source: "SourceModel") -> "nn.Module":
        import torch

        from harness.variants.finetune import fit, seeded, synthetic_note, train_data

        o = self.options
        teacher = inp.eval()
        with torch.no_grad():
            want = teacher(torch.zeros(tuple(source.input_shape))).shape
        with seeded(o.seed):
            student = self._student(teacher, want[-1])
        try:
            with torch.no_grad():
                got = student.eval()(torch.zeros(tuple(source.input_shape))).shape
        except Exception as exc:
            raise VariantBuildError(f"student {o.student!r} cannot take the input {tuple(source.input_shape)}: "
                                    f"{type(exc).__name__}: {exc}") from exc
        if got != want:
            raise VariantBuildError(f"student {o.student!r} outputs {tuple(got)}, the teacher {tuple(want)}")
        found = train_data(source)
        epochs = o.epochs or (LABELLED_EPOCHS if found is not None else SYNTHETIC_EPOCHS)
        synthetic_note(self, found)
        return fit(student, source, found, epochs=epochs, lr=o.lr, labelled_lr=LABELLED_LR, seed=o.seed, teacher=teacher,
                   alpha=o.alpha, temperature=o.temperature, synthetic_loss="kl")

    def _student(self, teacher: "nn.Module", num_classes: int) -> "nn.Module":
        from torch import nn

        from harness.zoo import nets
        from harness.zoo.registry import import_ref

        ref = self.options.student
        if ref != "auto":
            try:
                student = import_ref(ref)()
            except Exception as exc:
                raise VariantBuildError(f"student factory {ref!r} failed: {type(exc).__name__}: {exc}") from exc
            if not isinstance(student, nn.Module):
                raise VariantBuildError(f"student factory {ref!r} returned {type(student).__name__}, not an nn.Module")
            return student
        for arch, build in ((nets.DigitsCNN, nets.digits_cnn_student), (nets.MobileNetV2, nets.mobilenet_v2_student),
                            (nets.ResNet18, nets.resnet18_student)):
            if isinstance(teacher, arch):
                return build(num_classes)
        raise VariantBuildError(f"no default student for a {type(teacher).__name__} teacher; "
                                "name one with student='pkg.module:function'")
