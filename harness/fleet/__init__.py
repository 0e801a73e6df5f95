"""The fleet as a whole: checking every device of an inventory before a sweep."""

from harness.fleet.check import DeviceCheck, check_inventory

__all__ = ["DeviceCheck", "check_inventory"]
