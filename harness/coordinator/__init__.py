"""The Ray coordinator: builds variants, drives one actor per site (a thread per board), stores every result.

Nothing is imported here: every site actor imports this package to reach its runners, and
must not load the store and pandas.
The sweep's entry points live in ``harness.coordinator.sweep``.
"""
