"""The sweep's terminal progress: a rich bar on stderr plus one line per finished job.

The bar's text says what is being measured and, while it lasts, each board's note (a board
another coordinator holds: "board X: waiting, held by OWNER@HOST since ..."); a new note is
also printed once as a line, so logs without a live bar (CI) show the wait too.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.records import Job, JobResult


class SweepProgress:
    def __init__(self, total: int, quiet: bool = False):
        self.console = Console(stderr=True, quiet=quiet, soft_wrap=True)
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=True,
        )  # fmt: skip
        self._task = self._bar.add_task("starting", total=total)
        self._what = "starting"
        self._notes: dict[str, str] = {}

    def __enter__(self) -> SweepProgress:
        self._bar.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._bar.stop()

    def phase(self, text: str) -> None:
        self._describe(text)

    def started(self, job: Job, board: str, label: str | None = None) -> None:
        """``label``: the job's label with its repeat ("(repeat 2/5)"), when it has repeats."""
        where = "" if board == job.device else f" (board {board})"
        self._describe(f"measuring {label or job.label()}{where}")

    def notes(self, changes: dict[str, str | None]) -> None:
        """Boards' notes from the runners: a text sets the board's note, None clears it."""
        for board, note in changes.items():
            if note is None:
                self._notes.pop(board, None)
            elif self._notes.get(board) != note:
                self._notes[board] = note
                self.console.print(f"[yellow]board {escape(board)}:[/] {escape(note)}", highlight=False)
        self._describe(self._what)

    def _describe(self, what: str) -> None:
        self._what = what
        text = "; ".join([what, *(f"board {b}: {n}" for b, n in sorted(self._notes.items()))])
        self._bar.update(self._task, description=escape(text))

    def finished(self, job: Job, result: JobResult) -> None:
        m = result.metrics
        if result.status == "ok":
            acc = f" acc {m['accuracy'] * 100:.1f}%" if m.get("accuracy") is not None else ""
            cv = "n/a" if m.get("cv") is None else f"{m['cv']:.1%}"  # one sample has no spread
            line = f"[green]ok[/] {escape(job.label())}: p50 {m['p50_ms']:.3f} ms (cv {cv}){acc}"
        else:
            line = f"[red]failed[/] {escape(job.label())}: {escape(result.error or '')}"
        self.console.print(line, highlight=False)
        self._bar.advance(self._task)
