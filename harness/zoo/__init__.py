"""Built-in models and data that need no download, and resolution of model references.

Cheap to import (no torch): config validation reads ``MODELS`` to check names.
"""

from harness.zoo.registry import MODELS, ZooEntry
from harness.zoo.resolve import resolve_model
from harness.zoo.source import SourceModel

__all__ = ["MODELS", "SourceModel", "ZooEntry", "resolve_model"]
