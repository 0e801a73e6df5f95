"""Factories for the FactoryModel tests (imported by 'zoo_fixture_factory:<func>')."""

from __future__ import annotations

import torch
from torch import nn


def build() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


def broken() -> nn.Module:
    raise RuntimeError("weights file missing")


def not_a_module() -> object:
    return {"weights": [1, 2, 3]}


def digits_splits() -> dict:
    """The digits splits as a user's dataset factory would return them."""
    from harness.zoo.digits import load_splits

    return load_splits()


def bad_splits() -> dict:
    return {"train": ([1, 2, 3], [0, 1])}
