"""``int8-mixed``: ``int8-static`` with chosen layers kept in float.

The first and the last layer are usually the most sensitive to quantization (the first
sees raw inputs, the last produces the logits) and hold few of the weights, so keeping
them in float costs little size for some accuracy. ``keep_float: first-last`` picks the
first Conv of the graph and the classifier: the last Gemm/MatMul, or the last Conv if
there is none. A tuple names nodes of the graph being quantized (names as in the fp32
ONNX file; ``quant_pre_process`` keeps them). They join ``nodes_to_exclude`` and are
recorded, as a JSON list, in the model's ``metadata_props`` ``edge_harness.kept_float``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import Field

from harness.errors import VariantBuildError
from harness.variants.int8_static import METADATA_KEPT_FLOAT, Int8Static, Int8StaticOptions, check_node_names

log = logging.getLogger(__name__)

__all__ = ["METADATA_KEPT_FLOAT", "Int8Mixed", "Int8MixedOptions", "first_last"]


class Int8MixedOptions(Int8StaticOptions):
    keep_float: Literal["first-last"] | Annotated[tuple[str, ...], Field(min_length=1)] = "first-last"


def first_last(model: Any) -> tuple[str, ...]:
    """The first Conv and the classifier (last Gemm/MatMul, else last Conv) of ``model``."""
    nodes = list(model.graph.node)  # ONNX keeps nodes in topological order
    convs = [n.name for n in nodes if n.op_type == "Conv"]
    dense = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]
    picked = ([convs[0]] if convs else []) + ([dense[-1]] if dense else convs[-1:])
    if not picked:
        raise VariantBuildError("keep_float: first-last found no Conv, Gemm or MatMul node; name the nodes instead")
    return tuple(dict.fromkeys(picked))


class Int8Mixed(Int8Static):
    name = "int8-mixed"
    Options = Int8MixedOptions

    def float_nodes(self, model: Any) -> tuple[str, ...]:
        keep = self.options.keep_float
        chosen = first_last(model) if keep == "first-last" else check_node_names(model, keep, "keep_float")
        log.info("%s: keeping in float: %s", self.label, ", ".join(chosen))
        return tuple(dict.fromkeys((*chosen, *super().float_nodes(model))))
