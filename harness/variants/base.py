"""The ``Recipe`` contract: one compression step, described well enough to hash and plan.

A chain runs its torch-stage recipes (module -> module: pruning, distillation), exports
to ONNX once, then runs its onnx-stage recipes (path -> path: quantization); or, instead of
the ONNX steps, one tflite-stage recipe (the torch module or a user's .tflite -> a .tflite). Class
attributes say what a recipe makes and who can run it, so the planner needs no build.
Each recipe's settings are a strict pydantic ``Options`` model: suites name presets
(``prune-l1-30``) or define their own (``{kind: int8-static, calibration: entropy}``), and
the options, not the name, go into the variant id. No torch/onnx imports here: config
validation imports the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel

Stage = Literal["torch", "onnx", "tflite"]
# The variant note of a build that learnt from seeded synthetic inputs instead of real data.
SYNTHETIC_NOTE = "synthetic_data"


class RecipeOptions(BaseModel):
    """Base of every recipe's options: unknown keys and wrong types are config errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipe(ABC):
    """One step of a variant chain.

    ``name`` is the recipe kind (one per class); ``label`` is what the suite called it.
    ``precision`` is the weight precision after this step (None keeps the previous one);
    ``runtimes`` the runtimes that can consume the output (None = any). ``params()`` and
    ``tool_versions()`` go into the variant_id, so a change in either rebuilds.
    """

    name: ClassVar[str]
    stage: ClassVar[Stage]
    precision: ClassVar[str | None] = None
    runtimes: ClassVar[frozenset[str] | None] = None
    Options: ClassVar[type[RecipeOptions]] = RecipeOptions
    # What ``apply`` returns for the onnx stage: an ONNX file, or another runtime's format
    # (a recipe making one must be the chain's last step).
    artifact_format: ClassVar[str] = "onnx"
    # Bump when the recipe's procedure changes in a way its options do not show (bins,
    # sample caps, ...): it is part of the variant id, so old cached builds are not reused.
    revision: ClassVar[int] = 1
    # Modules an optional extra installs, checked when a suite is loaded so a missing one is a
    # config error naming the extra, not an ImportError mid-sweep.
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    # The oldest ONNX opset an onnx-stage recipe works at (None: any): the builder first
    # converts an older input graph with the ONNX version converter (recorded in the
    # variant's notes), or refuses the step with the converter's reason.
    min_opset: ClassVar[int | None] = None
    # False: the step needs a float32 input and refuses one already quantized or in float16
    # (``precision.py``); True only for the recipes that measure a model as it is.
    any_precision: ClassVar[bool] = False

    def __init__(self, options: Mapping[str, Any] | RecipeOptions | None = None, label: str | None = None):
        self.options = options if isinstance(options, self.Options) else self.Options.model_validate(dict(options or {}))
        self.label = label or self.name
        # What ``apply`` did that the chain does not say; the builder copies it into the variant's notes.
        self.notes: dict[str, str] = {}

    def params(self) -> dict[str, Any]:
        return self.options.model_dump(mode="json")

    def tool_versions(self) -> dict[str, str]:
        return {}

    def trains(self) -> bool:
        """Whether ``apply`` trains weights (fine-tuning, distillation): it then needs train
        data, or the source's leave to use seeded synthetic inputs."""
        return False

    def note_synthetic(self, what: str) -> None:
        """Mark the variant as built from seeded synthetic inputs; ``what`` says how they were used."""
        self.notes[SYNTHETIC_NOTE] = f"{self.label}: {what}"

    def opset_needed(self) -> int | None:
        """``min_opset``, or more where an option needs it."""
        return self.min_opset

    @classmethod
    def missing(cls) -> str | None:
        """What to install when a module in ``requires`` is not importable here, else None."""
        absent = [m for m in cls.requires if find_spec(m) is None]
        if not absent:
            return None
        return (f"{cls.name} needs the optional extra '{cls.extra}': pip install 'edge-harness[{cls.extra}]' "
                f"(missing: {', '.join(absent)})")

    @abstractmethod
    def apply(self, inp: Any, workdir: Path, source: "SourceModel") -> Any:
        """torch stage: ``nn.Module`` -> ``nn.Module``; onnx stage: ``Path`` -> ``Path``;
        tflite stage: ``nn.Module`` (or the user's ``.tflite`` ``Path``) -> ``Path``.

        ``workdir`` is an empty directory of this step's own; raise ``VariantBuildError``
        (or anything: the builder wraps it) when the step cannot be done.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r}, {self.params()})"


class Preset:
    """A registry entry: a recipe class and the options its name stands for."""

    def __init__(self, cls: type[Recipe], **options: Any):
        cls.Options.model_validate(options)  # a broken preset fails at import, not mid-sweep
        self.cls = cls
        self.options = options

    def make(self, label: str, overrides: Mapping[str, Any] | None = None) -> Recipe:
        return self.cls({**self.options, **(overrides or {})}, label=label)
