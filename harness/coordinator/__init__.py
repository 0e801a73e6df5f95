"""The Ray coordinator: builds variants, drives one actor per device, stores every result.

Nothing is imported here: every device actor imports this package to reach its runner,
and sixteen actors starting at once must not each load the store and pandas.
The sweep's entry points live in ``harness.coordinator.sweep``.
"""
