"""The durable results store: SQLite in WAL mode, ``synchronous=FULL``.

Every finished job is written in one transaction (result row, samples, job status), so a
coordinator killed with SIGKILL loses nothing it had reported; readers (the dashboard)
see consistent data while a sweep writes.

Durability, chosen: ``synchronous=FULL`` fsyncs the write-ahead log at every commit, so a job
the sweep has stored survives a power loss or kernel crash too; a power loss costs at most the
jobs that were still running (they run again on ``--resume``) and never corrupts the store.
(``NORMAL`` would also never corrupt it, but could lose the last few committed jobs.) The price
is one fsync per stored job or repeat: a job of 1000 samples is stored in 0.6 ms instead of
0.2 ms with ``NORMAL`` (a bare commit 0.30 ms instead of 0.02 ms; 2-core VM, virtio disk),
where a job takes seconds.

Opening: a sweep opens the store to write (``Store(path)``: created or migrated, WAL switched
on); ``report``, ``gate`` and ``runs list`` open it read-only (``readonly=True``): never migrated,
its journal mode never changed, a file that is not a results store refused before anything is
written to it (``schema.check_store``). The gate still adds its verdicts, and nothing else.

A sweep that fails to write (disk full, locked past the busy timeout, I/O error) gets a
``StoreWriteError``: what was committed stays, and the run resumes from there.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import RunBusyError, StoreError, StoreWriteError
from harness.hashing import canonical_json
from devices.agent.metrics import IN_DETAILS
from harness.records import METRICS, TEXT_METRICS, VARIANT_COLUMNS, Job, JobResult, JobSettings, Repeat, point_label
from harness.store.schema import READABLE_FROM, check_store, migrate
from harness.store.writer import HEARTBEAT_S, STALE_AFTER_S, Writer

log = logging.getLogger("edge_harness.store")

# Statuses of a run whose sweep ended with every job stored (``Store.finish_run``). A run
# 'running' is being written or was killed; 'interrupted' was stopped with Ctrl-C.
FINISHED = ("ok", "failed-jobs")

# SQLite's primary result codes for a failure of the file or its lock, not of the SQL: BUSY,
# LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB (and PERM).
_ENVIRONMENT_CODES = frozenset({3, 5, 6, 7, 8, 10, 11, 13, 14, 15, 26})


def environmental(e: sqlite3.Error) -> bool:
    """Whether ``e`` is the disk's, the lock's or the file's fault (a sweep stops resumable), not
    the harness's (bad SQL, a broken constraint: a bug)."""
    code = getattr(e, "sqlite_errorcode", None)
    if code is None:  # raised before SQLite gave a code (e.g. while connecting)
        return isinstance(e, sqlite3.OperationalError)
    return code & 0xFF in _ENVIRONMENT_CODES


def _described(e: sqlite3.Error) -> str:
    name = getattr(e, "sqlite_errorname", None)
    return f"{e} ({name})" if name else str(e)

# Variant columns a result row carries, as (variants column, result column): renamed where
# a result column has the name already.
_RENAMED = {"sha256": "artifact_sha256", "precision": "weights_precision"}
_VARIANT_IN_RESULTS = tuple((c, _RENAMED.get(c, c)) for c in VARIANT_COLUMNS if c not in ("model", "chain"))
_VARIANT_SELECT = ", ".join(f"v.{column} AS {alias}" for column, alias in _VARIANT_IN_RESULTS)
# The host-side quality figures of a variant (``harness.variants.quality``), scored together.
_QUALITY_COLUMNS = ("host_accuracy", "agreement", "cosine", "snr_db", "max_abs_err", "fidelity_inputs")
# Metrics kept in the details JSON (task metrics: ``Metric.details``), read back as columns.
_DETAILS_SELECT = ", ".join(f"json_extract(res.details_json, '{m.details}') AS {m.column}" for m in IN_DETAILS)
RESULT_COLUMNS = (
    "run", "tag", "model", "variant", "device", "runtime", "power_mode", "point", "status", "error", *METRICS,
    *(m.column for m in IN_DETAILS), "variant_id",
    *(alias for _, alias in _VARIANT_IN_RESULTS), "attempts", "started", "finished", "job_id",
)  # fmt: skip


def new_run_id(now: float | None = None) -> str:
    """Sortable by time, unique without coordination: ``20261123-043512-9f3a``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


def _pack(samples: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(samples, dtype="<i8").tobytes(), 1)


def _unpack(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype="<i8")


class Store:
    """One SQLite database of runs, jobs, results and per-iteration samples."""

    busy_timeout_s = 30.0  # how long a statement waits for another process's lock before failing

    def __init__(self, path: Path, *, readonly: bool = False):
        """``readonly``: read the store as it is (see the module's docstring); else create or migrate it."""
        self.path = Path(path)
        self.readonly = readonly
        self._side: sqlite3.Connection | None = None  # a read-only store's connection for the gate's verdicts
        try:
            if readonly:
                self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                             timeout=self.busy_timeout_s, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open results store {self.path}: {e}") from None
        try:
            self.found_version = check_store(self._conn, str(self.path), empty_ok=not readonly)
            if readonly:
                if self.found_version < READABLE_FROM:
                    raise StoreError(
                        f"{self.path}: results store has schema v{self.found_version}, older than this harness reads "
                        f"without upgrading it (v{READABLE_FROM}); upgrade it in place with 'harness store migrate "
                        f"--store {self.path}' (a sweep into it does too), then run this again")
                return
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=FULL")
            migrate(self._conn, str(self.path))
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.Error as e:
            self._conn.close()
            raise StoreError(f"cannot open results store {self.path}: {_described(e)}") from None

    def close(self) -> None:
        self._conn.close()
        if self._side is not None:
            self._side.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, side: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction under the write lock. Any failure rolls it back whole (where
        SQLite has not already); a failure of the file or its lock is a ``StoreWriteError``.
        ``side``: allowed on a read-only store too (the gate's verdicts), on a connection of its
        own that neither migrates nor changes the journal mode."""
        if self.readonly and not side:
            raise StoreError(f"{self.path} is open read-only")
        conn = self._side_connection() if self.readonly else self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:  # SQLITE_FULL, IOERR or BUSY may have rolled it back already
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error) and environmental(e):
                raise StoreWriteError(f"cannot write results store {self.path}: {_described(e)}") from None
            raise

    def _side_connection(self) -> sqlite3.Connection:
        if self._side is None:
            try:
                self._side = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
                self._side.execute("PRAGMA foreign_keys=ON")
                self._side.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as e:
                raise StoreWriteError(f"cannot write results store {self.path}: {_described(e)}") from None
        return self._side

    # -- writing ---------------------------------------------------------------------

    def create_run(self, *, suite: str, config: dict[str, Any], tag: str | None = None,
                   suite_path: str | None = None, host: str | None = None,
                   project_version: str | None = None, git_commit: str | None = None) -> str:
        """A new run, 'running', with this process recorded as its writer (``harness.store.writer``)."""
        with self._tx() as c:  # the write lock is held: an id checked free here stays free
            run_id = new_run_id()
            while c.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone():  # same second, same 4 hex digits
                run_id = new_run_id()
            now = time.time()
            c.execute(
                "INSERT INTO runs (id, tag, suite, suite_path, config_json, started, project_version, git_commit, host)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, tag, suite, suite_path, canonical_json(config), now, project_version, git_commit, host),
            )
            self._claim(c, run_id, Writer.this_process(now))
        return run_id

    @staticmethod
    def _claim(c: sqlite3.Connection, run_id: str, w: Writer) -> None:
        c.execute("UPDATE runs SET writer_host=?, writer_pid=?, writer_token=?, writer_since=?, heartbeat=? WHERE id=?",
                  (w.host, w.pid, w.token, w.since, w.heartbeat, run_id))

    def writer(self, run_id: str) -> Writer | None:
        """The process recorded as writing the run (None: a run from before schema v7)."""
        row = self._conn.execute(
            "SELECT writer_host, writer_pid, writer_token, writer_since, heartbeat FROM runs WHERE id=?", (run_id,)
        ).fetchone()
        if row is None or row[1] is None:
            return None
        return Writer(row[0] or "?", int(row[1]), row[2], row[3] or 0.0, row[4])

    def add_jobs(self, run_id: str, jobs: Iterable[Job]) -> dict[str, int]:
        """Register jobs (idempotent by key, for resume); returns key -> job id."""
        with self._tx() as c:
            for job in jobs:
                mode = job.settings.power_mode
                c.execute(
                    "INSERT OR IGNORE INTO jobs (run_id, key, model, variant, device, runtime, settings_json, power_mode)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (run_id, job.key, job.model, job.variant, job.device, job.runtime, canonical_json(job.settings.identity()),
                     mode and mode.name),
                )
        rows = self._conn.execute("SELECT key, id FROM jobs WHERE run_id=?", (run_id,)).fetchall()
        return dict(rows)

    def job_started(self, job_id: int, board: str, first: bool = True) -> None:
        """A job's window starts on ``board``; ``first=False``: a later repeat of a job already started."""
        with self._tx() as c:
            if first:
                c.execute("UPDATE jobs SET status='running', started=?, attempts=attempts+1, board=? WHERE id=?",
                          (time.time(), board, job_id))
            else:
                c.execute("UPDATE jobs SET status='running' WHERE id=?", (job_id,))

    def record(self, job_id: int, result: JobResult) -> None:
        """Store a finished job: result, samples and status in one transaction."""
        metrics = {k: result.metrics.get(k) for k in METRICS}
        variant_id = result.variant.get("variant_id")
        cols = [*metrics, "variant_id", "facts_json", "details_json"]
        values = [*metrics.values(), variant_id, canonical_json(result.facts), canonical_json(result.details)]
        with self._tx() as c:
            c.execute("DELETE FROM results WHERE job_id=?", (job_id,))
            for rep in result.repeats:
                self._put_repeat(c, job_id, rep)
            if variant_id is not None:
                self._put_variant(c, variant_id, result.variant)
            if result.status == "ok" or variant_id is not None:
                c.execute(
                    f"INSERT INTO results (job_id, {', '.join(cols)}) VALUES (?{', ?' * len(cols)})",
                    (job_id, *values),
                )
            if not result.repeats and result.samples_ns is not None and len(result.samples_ns):
                c.execute("DELETE FROM samples WHERE job_id=?", (job_id,))
                c.execute(
                    "INSERT INTO samples (job_id, repeat, n, data) VALUES (?, 0, ?, ?)",
                    (job_id, len(result.samples_ns), _pack(result.samples_ns)),
                )
            c.execute(
                "UPDATE jobs SET status=?, error=?, finished=?, attempts=max(attempts, ?) WHERE id=?",
                (result.status, result.error, time.time(), result.attempts, job_id),
            )

    def record_repeat(self, job_id: int, rep: Repeat) -> None:
        """Keep one finished repeat as it lands: a sweep killed before the job's last repeat
        resumes after it instead of measuring it again."""
        with self._tx() as c:
            self._put_repeat(c, job_id, rep)

    @staticmethod
    def _put_repeat(c: sqlite3.Connection, job_id: int, rep: Repeat) -> None:
        c.execute(
            "INSERT OR REPLACE INTO repeats (job_id, repeat, board, started, finished, summary_json) VALUES (?,?,?,?,?,?)",
            (job_id, rep.index, rep.board, rep.started, rep.finished, canonical_json(rep.summary)),
        )
        if rep.samples_ns is not None and len(rep.samples_ns):
            c.execute(
                "INSERT OR REPLACE INTO samples (job_id, repeat, n, data) VALUES (?, ?, ?, ?)",
                (job_id, rep.index, len(rep.samples_ns), _pack(rep.samples_ns)),
            )

    def stored_repeats(self, job_id: int) -> list[Repeat]:
        """The repeats of a job kept so far, with their samples, in repeat order."""
        rows = self._conn.execute(
            "SELECT r.repeat, r.board, r.started, r.finished, r.summary_json, s.data FROM repeats r"
            " LEFT JOIN samples s ON s.job_id = r.job_id AND s.repeat = r.repeat WHERE r.job_id=? ORDER BY r.repeat",
            (job_id,),
        ).fetchall()
        return [Repeat(r[0], r[1], json.loads(r[4]), None if r[5] is None else _unpack(r[5]), r[2], r[3]) for r in rows]

    @staticmethod
    def _put_variant(c: sqlite3.Connection, variant_id: str, v: dict[str, Any]) -> None:
        """Variants are content-addressed: the first record of an id is the record. One
        exception: a row stored before fidelity was scored (schema v4 and older) takes its
        quality figures, all together, from the first record that has them."""
        fidelity = v.get("fidelity")
        c.execute(
            f"INSERT INTO variants (id, {', '.join(VARIANT_COLUMNS)}, tool_versions_json, fidelity_json, notes_json)"
            f" VALUES (?{', ?' * len(VARIANT_COLUMNS)}, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            f" {', '.join(f'{k} = excluded.{k}' for k in _QUALITY_COLUMNS)}, fidelity_json = excluded.fidelity_json"
            " WHERE variants.fidelity_json IS NULL AND excluded.fidelity_json IS NOT NULL",
            (variant_id, *(v.get(k) for k in VARIANT_COLUMNS), canonical_json(v.get("tool_versions", {})),
             None if fidelity is None else canonical_json(fidelity), canonical_json(v.get("notes") or {})),
        )

    def variants(self) -> pd.DataFrame:
        """Every variant ever measured: what it is, what it cost to build, and its fidelity
        against its reference (``fidelity``: the per-output figures, None before schema v5)."""
        df = pd.read_sql_query("SELECT * FROM variants ORDER BY model, chain", self._conn)
        df["tool_versions"] = df.pop("tool_versions_json").map(json.loads)
        df["fidelity"] = df.pop("fidelity_json").map(lambda text: None if text is None else json.loads(text))
        df["notes"] = df.pop("notes_json").map(lambda text: {} if text is None else json.loads(text))
        return df

    def reopen_run(self, run_id: str, *, force: bool = False) -> None:
        """Resume: this process becomes the run's writer, and jobs a killed coordinator left
        'running' are pending again. Refused (``RunBusyError``) while the run is 'running' and
        its recorded writer is alive, unless ``force``; checked and taken under the write lock,
        so of two resumes at once one wins and the other is refused."""
        with self._tx() as c:
            status = c.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
            w = self.writer(run_id)
            if status and status[0] == "running" and w is not None and not force and w.is_alive() \
                    and not w.is_this_process():
                raise RunBusyError(
                    f"run {run_id} is being written by {w.describe()}; wait for it to end or stop it, or if that "
                    f"process is gone (another host's writer counts as alive until its heartbeat is "
                    f"{STALE_AFTER_S / 60:g} minutes old) take the run over with --force")
            self._claim(c, run_id, Writer.this_process(time.time()))
            c.execute("UPDATE runs SET finished=NULL, status='running' WHERE id=?", (run_id,))
            c.execute("UPDATE jobs SET status='pending' WHERE run_id=? AND status='running'", (run_id,))

    def beat(self, run_id: str, conn: sqlite3.Connection | None = None) -> bool:
        """Refresh the run's heartbeat if this process is still its writer (False: another took it over)."""
        me = Writer.this_process()
        conn = conn or self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            n = conn.execute("UPDATE runs SET heartbeat=? WHERE id=? AND writer_host=? AND writer_pid=?"
                             " AND writer_token IS ?", (time.time(), run_id, me.host, me.pid, me.token)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return n == 1

    @contextmanager
    def keeping_alive(self, run_id: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
        """While the block runs, a thread refreshes the run's heartbeat every ``every_s`` seconds on a
        connection of its own (the sweep's thread may be busy building for minutes). A failed beat
        is logged and tried again at the next one; it never stops the sweep."""
        stop = threading.Event()

        def loop() -> None:
            conn = None
            warned = False
            while not stop.wait(every_s):
                try:
                    conn = conn or sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
                    conn.execute("PRAGMA synchronous=FULL")
                    if not self.beat(run_id, conn) and not warned:
                        warned = True
                        log.warning("run %s has another writer now (taken over with --force?)", run_id)
                except sqlite3.Error as e:
                    log.warning("could not refresh run %s's heartbeat in %s: %s", run_id, self.path, e)
            if conn is not None:
                conn.close()

        thread = threading.Thread(target=loop, name=f"heartbeat-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    def interrupt_run(self, run_id: str, down: dict[str, str] | None = None) -> None:
        """A sweep stopped with Ctrl-C: the run is 'interrupted' (unfinished: the gate refuses it,
        ``--resume`` finishes it) and jobs it had started are pending again."""
        with self._tx() as c:
            c.execute("UPDATE runs SET finished=?, status='interrupted', down_json=? WHERE id=?",
                      (time.time(), canonical_json(down or {}), run_id))
            c.execute("UPDATE jobs SET status='pending' WHERE run_id=? AND status='running'", (run_id,))

    def finish_run(self, run_id: str, status: str, down: dict[str, str] | None = None) -> None:
        """Close a run; ``down`` names the boards that ended it down, with the reason."""
        with self._tx() as c:
            c.execute("UPDATE runs SET finished=?, status=?, down_json=? WHERE id=?",
                      (time.time(), status, canonical_json(down or {}), run_id))

    def record_verdicts(self, candidate: str, baselines: list[str], rows: list[dict[str, Any]]) -> str:
        """Keep one gate's verdicts (``rows``: config, metric, verdict and numbers); returns its id.
        The one write a read-only store takes: a transaction of its own, nothing migrated."""
        gate_id, now = new_run_id(), time.time()
        cols = ("model", "variant", "device", "runtime", "metric", "verdict", "threshold", "ratio", "ci_lo", "ci_hi",
                "p", "q", "note")
        if self._has_column("verdicts", "point"):  # a read-only store older than v9 keeps verdicts without it
            cols += ("point",)
        with self._tx(side=True) as c:
            c.executemany(
                f"INSERT INTO verdicts (gate_id, created, candidate, baselines_json, {', '.join(cols)})"
                f" VALUES (?, ?, ?, ?{', ?' * len(cols)})",
                [(gate_id, now, candidate, canonical_json(baselines), *(r.get(k) for k in cols)) for r in rows],
            )
        return gate_id

    def prune(self, keep: int, tag: str | None = None) -> list[str]:
        """Delete all but the newest ``keep`` runs of each tag (or of ``tag`` only), with their jobs,
        results, samples and verdicts. Runs still going are never deleted, nor counted."""
        if keep < 0:
            raise StoreError("--keep must be 0 or more")
        with self._tx() as c:  # chosen under the write lock: a sweep resuming a run meanwhile keeps it
            rows = c.execute(
                "SELECT id, coalesce(tag, '') FROM runs WHERE status != 'running' AND (? IS NULL OR tag = ?)"
                " ORDER BY started DESC", (tag, tag)).fetchall()  # fmt: skip
            seen: dict[str, int] = {}
            doomed = []
            for run_id, run_tag in rows:
                seen[run_tag] = seen.get(run_tag, 0) + 1
                if seen[run_tag] > keep:
                    doomed.append(run_id)
            c.executemany("DELETE FROM runs WHERE id=?", [(r,) for r in doomed])
        return doomed

    # -- reading ---------------------------------------------------------------------

    def resolve_run(self, ref: str | None = None, tag: str | None = None) -> str:
        """A run id from ``None``/``latest`` (newest, optionally of a tag), an id or a unique prefix."""
        if ref in (None, "latest"):
            row = self._conn.execute(
                "SELECT id FROM runs WHERE (? IS NULL OR tag=?) ORDER BY started DESC LIMIT 1", (tag, tag)
            ).fetchone()
            if row is None:
                where = f" with tag {tag!r}" if tag else ""
                raise StoreError(f"no runs{where} in {self.path}; run 'harness sweep SUITE' first")
            return row[0]
        rows = self._conn.execute("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\'", (_like_prefix(ref),)).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if not rows:
            raise StoreError(f"no run {ref!r} in {self.path}; 'harness runs list' shows the runs")
        raise StoreError(f"run {ref!r} is ambiguous ({len(rows)} runs match); give more of the id")

    def run_info(self, run_id: str) -> dict[str, Any]:
        cur = self._conn.execute("SELECT * FROM runs WHERE id=?", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        info = dict(zip([d[0] for d in cur.description], row, strict=True))
        info["config"] = json.loads(info.pop("config_json"))
        info["down"] = json.loads(info.pop("down_json") or "{}")
        return info

    def runs(self, tag: str | None = None) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT r.id AS run, r.tag, r.suite, r.status, r.started, r.finished, r.host, r.project_version,"
            " r.git_commit, count(j.id) AS jobs, sum(j.status='ok') AS ok, sum(j.status='failed') AS failed"
            " FROM runs r LEFT JOIN jobs j ON j.run_id = r.id WHERE (? IS NULL OR r.tag=?)"
            " GROUP BY r.id ORDER BY r.started",
            self._conn, params=(tag, tag),
        )

    def jobs(self, run_id: str) -> list[tuple[int, Job, str]]:
        """Every job of a run as (id, job, status)."""
        rows = self._conn.execute(
            "SELECT id, model, variant, device, runtime, settings_json, status FROM jobs WHERE run_id=? ORDER BY id",
            (run_id,),
        ).fetchall()
        return [(r[0], Job(r[1], r[2], r[3], r[4], JobSettings.from_identity(json.loads(r[5]))), r[6]) for r in rows]

    def results(self, run: str | None = None, tag: str | None = None) -> pd.DataFrame:
        """One row per job (run, model, variant, device, runtime) with its metrics."""
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(results)")}  # an older store read as is: NULL
        metric_cols = ", ".join(f"res.{c}" if c in have else f"NULL AS {c}" for c in (*METRICS, "variant_id"))
        mode = "j.power_mode" if self._has_column("jobs", "power_mode") else "NULL AS power_mode"  # a v7 store read as is
        df = pd.read_sql_query(
            f"SELECT r.id AS run, r.tag, j.model, j.variant, j.device, j.runtime, {mode}, j.board, j.status, j.error,"
            f" j.settings_json, {metric_cols},"
            f" {_DETAILS_SELECT}, {_VARIANT_SELECT}, j.attempts, j.started, j.finished, j.id AS job_id"
            " FROM jobs j JOIN runs r ON r.id = j.run_id LEFT JOIN results res ON res.job_id = j.id"
            " LEFT JOIN variants v ON v.id = res.variant_id"
            " WHERE (? IS NULL OR r.id = ?) AND (? IS NULL OR r.tag = ?) ORDER BY r.started, j.id",
            self._conn, params=(run, run, tag, tag),
        )
        numeric = [c for c in (*METRICS, "size_bytes", "params", "macs", "sparsity", "opset", "build_s", "host_accuracy",
                               "agreement", "cosine", "snr_db", "max_abs_err") if c not in (*TEXT_METRICS, "throttled")]
        numeric += [m.column for m in IN_DETAILS if m.kind not in ("text", "flag")]
        df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce").astype("float64")
        df["throttled"] = df["throttled"].astype("boolean")
        df["kept_up"] = df["kept_up"].astype("boolean")
        points = {text: point_label(json.loads(text)) for text in df["settings_json"].unique()}  # one parse per setting
        df.insert(df.columns.get_loc("board"), "point", df.pop("settings_json").map(points))
        return df

    def _has_column(self, table: str, column: str) -> bool:
        return any(row[1] == column for row in self._conn.execute(f"PRAGMA table_info({table})"))

    def verdicts(self, run: str | None = None, tag: str | None = None) -> pd.DataFrame:
        """The latest gate's verdicts of each candidate run (of ``run``, of a ``tag``'s runs, or all)."""
        df = pd.read_sql_query(
            "WITH latest AS (SELECT candidate, max(created) AS created FROM verdicts GROUP BY candidate)"
            " SELECT v.*, r.tag FROM verdicts v JOIN latest l ON l.candidate = v.candidate AND l.created = v.created"
            " JOIN runs r ON r.id = v.candidate"
            " WHERE (? IS NULL OR v.candidate = ?) AND (? IS NULL OR r.tag = ?) ORDER BY r.started, v.id",
            self._conn, params=(run, run, tag, tag),
        )
        raw = df.pop("baselines_json")
        decoded = {text: json.loads(text) for text in raw.unique()}  # one list per gate, not per row
        df["baselines"] = raw.map(decoded)
        return df

    def facts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Per board, the facts its agent reported last in this run."""
        rows = self._conn.execute(
            "SELECT coalesce(j.board, j.device), res.facts_json FROM jobs j JOIN results res ON res.job_id = j.id"
            " WHERE j.run_id=? AND res.facts_json IS NOT NULL ORDER BY j.finished",
            (run_id,),
        ).fetchall()
        return {board: json.loads(facts) for board, facts in rows if facts not in (None, "{}")}

    def repeats(self, run: str | None = None, tag: str | None = None) -> pd.DataFrame:
        """One row per stored repeat: the job's identity, board, times and the repeat's summary keys."""
        rows = self._conn.execute(
            "SELECT j.run_id, j.model, j.variant, j.device, j.runtime, j.id, p.repeat, p.board, p.started,"
            " p.finished, p.summary_json FROM repeats p JOIN jobs j ON j.id = p.job_id JOIN runs r ON r.id = j.run_id"
            " WHERE (? IS NULL OR r.id = ?) AND (? IS NULL OR r.tag = ?) ORDER BY r.started, j.id, p.repeat",
            (run, run, tag, tag),
        ).fetchall()
        cols = ["run", "model", "variant", "device", "runtime", "job_id", "repeat", "board", "started", "finished"]
        return pd.DataFrame([{**dict(zip(cols, r[:10], strict=True)), **json.loads(r[10])} for r in rows],
                            columns=None if rows else cols)

    def samples(self, run: str | None = None, job_id: int | None = None) -> pd.DataFrame:
        """Per-iteration latencies, long form: run, model, variant, device, runtime, repeat, latency_ms."""
        rows = self._conn.execute(
            "SELECT j.run_id, j.model, j.variant, j.device, j.runtime, j.id, s.repeat, s.data"
            " FROM samples s JOIN jobs j ON j.id = s.job_id"
            " WHERE (? IS NULL OR j.run_id = ?) AND (? IS NULL OR j.id = ?) ORDER BY j.id, s.repeat",
            (run, run, job_id, job_id),
        ).fetchall()
        frames = [
            pd.DataFrame({"run": r[0], "model": r[1], "variant": r[2], "device": r[3], "runtime": r[4],
                          "job_id": r[5], "repeat": r[6], "latency_ms": _unpack(r[7]) / 1e6})
            for r in rows
        ]  # fmt: skip
        cols = ["run", "model", "variant", "device", "runtime", "job_id", "repeat", "latency_ms"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _like_prefix(ref: str) -> str:
    return ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
