"""A builder for SourceModel.builder in the export-failure test (a module with no weights)."""

from torch import nn


class Mismatch(nn.Module):
    def forward(self, x):
        return x.reshape(1, 7)  # 1*3*8*8 elements do not reshape to 7: export fails


def mismatch() -> nn.Module:
    return Mismatch()
