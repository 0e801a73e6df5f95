"""Typed configuration: the inventory and suite files, validated with file:line errors."""

from harness.config.inventory import Device, Inventory, load_inventory
from harness.config.suite import MeasureSettings, ModelRef, Suite, load_suite, parse_chain

__all__ = ["Device", "Inventory", "MeasureSettings", "ModelRef", "Suite", "load_inventory", "load_suite", "parse_chain"]
