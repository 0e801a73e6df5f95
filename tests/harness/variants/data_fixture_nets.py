"""A tiny RGB classifier for the calib:/train: tests (imported as 'data_fixture_nets:build')."""

from __future__ import annotations

import torch
from torch import nn


def build() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
