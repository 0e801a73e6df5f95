"""The Ray coordinator: builds variants, drives one actor per device, stores every result."""

from harness.coordinator.sweep import SweepOptions, SweepOutcome, build_suite, run_sweep

__all__ = ["SweepOptions", "SweepOutcome", "build_suite", "run_sweep"]
