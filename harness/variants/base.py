"""The ``Recipe`` contract: one compression step, described well enough to hash and plan.

A chain runs its torch-stage recipes (module -> module: pruning, distillation), exports
to ONNX once, then runs its onnx-stage recipes (path -> path: quantization). Class
attributes say what a recipe makes and who can run it, so the planner needs no build.
Stdlib only: config validation imports the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel

Stage = Literal["torch", "onnx"]


class Recipe(ABC):
    """One step of a variant chain.

    ``precision`` is the weight precision after this step (None keeps the previous one);
    ``runtimes`` the runtimes that can consume the output (None = any). ``params()`` and
    ``tool_versions()`` go into the variant_id, so a change in either rebuilds.
    """

    name: ClassVar[str]
    stage: ClassVar[Stage]
    precision: ClassVar[str | None] = None
    runtimes: ClassVar[frozenset[str] | None] = None

    def params(self) -> dict[str, Any]:
        return {}

    def tool_versions(self) -> dict[str, str]:
        return {}

    @abstractmethod
    def apply(self, inp: Any, workdir: Path, source: "SourceModel") -> Any:
        """torch stage: ``nn.Module`` -> ``nn.Module``; onnx stage: ``Path`` -> ``Path``.

        ``workdir`` is an empty directory of this step's own; raise ``VariantBuildError``
        (or anything: the builder wraps it) when the step cannot be done.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params()})"
