"""Board notes on their way from the site actors' boards to the driver's progress line.

A job waiting for a board another coordinator holds is seen only by its runner, in its site's
Ray actor (maybe on another node); the person watching the sweep looks at the driver's progress line.
Runners post to this tiny actor fire-and-forget (a note never holds up a job), and the driver
drains the changes once per turn of its loop.
"""

from __future__ import annotations


class Notices:
    """Latest note per board since the last drain; None means the board's note is cleared."""

    def __init__(self) -> None:
        self._changes: dict[str, str | None] = {}

    def post(self, board: str, note: str | None) -> None:
        self._changes[board] = note

    def drain(self) -> dict[str, str | None]:
        changes, self._changes = self._changes, {}
        return changes
