"""Store schema and its migrations, versioned with SQLite's ``user_version``.

Each entry of ``MIGRATIONS`` takes the database from version i to i+1; a database newer
than the last entry was written by a newer harness and is refused (asv versions its
results files the same way).
"""

from __future__ import annotations

import sqlite3

from harness.errors import SchemaVersionError, StoreError
from harness.records import METRICS, TEXT_METRICS


def _column(name: str) -> str:
    return f"{name} {'TEXT' if name in TEXT_METRICS else 'REAL'}"


# The metric columns of v1; later versions add theirs with ALTER TABLE (the lists are frozen).
_V1_METRICS = METRICS[: METRICS.index("precision") + 1]
_V4_METRICS = METRICS[len(_V1_METRICS): METRICS.index("unstable") + 1]
_V5_METRICS = ("degraded",)
_V9_METRICS = ("scenario", "batch", "inflight", "resolution")
_METRIC_COLUMNS = ",\n    ".join(_column(name) for name in _V1_METRICS)

V1 = f"""
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    tag TEXT,
    suite TEXT NOT NULL,
    suite_path TEXT,
    config_json TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL DEFAULT 'running',
    project_version TEXT,
    git_commit TEXT,
    host TEXT
);
CREATE INDEX runs_tag ON runs(tag, started);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    model TEXT NOT NULL,
    variant TEXT NOT NULL,
    device TEXT NOT NULL,
    runtime TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    UNIQUE (run_id, key)
);
CREATE TABLE variants (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    chain TEXT NOT NULL,
    sha256 TEXT,
    size_bytes INTEGER,
    params INTEGER,
    macs INTEGER,
    sparsity REAL,
    precision TEXT,
    opset INTEGER,
    build_s REAL,
    host_accuracy REAL,
    agreement REAL,
    cosine REAL,
    tool_versions_json TEXT
);
CREATE TABLE results (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    {_METRIC_COLUMNS},
    variant_id TEXT REFERENCES variants(id),
    facts_json TEXT,
    details_json TEXT
);
CREATE TABLE samples (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    repeat INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, repeat)
);
"""

# v2: pools. A job's ``device`` is its target (a board or a pool); ``board`` is the board
# that measured it. A run keeps the boards that ended it down, with the reason.
V2 = """
ALTER TABLE jobs ADD COLUMN board TEXT;
ALTER TABLE runs ADD COLUMN down_json TEXT;
"""

# v3: the gate's verdicts, kept so the dashboard can mark regressions in the history.
V3 = """
CREATE TABLE verdicts (
    id INTEGER PRIMARY KEY,
    gate_id TEXT NOT NULL,
    created REAL NOT NULL,
    candidate TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    baselines_json TEXT NOT NULL,
    model TEXT NOT NULL,
    variant TEXT NOT NULL,
    device TEXT NOT NULL,
    runtime TEXT NOT NULL,
    metric TEXT NOT NULL,
    verdict TEXT NOT NULL,
    threshold REAL,
    ratio REAL,
    ci_lo REAL,
    ci_hi REAL,
    p REAL,
    q REAL,
    note TEXT
);
CREATE INDEX verdicts_candidate ON verdicts(candidate, created);
"""

# v4: repeats (one row per timed window of a job, each in its own agent process; samples
# keep one row per repeat), cold start's engine build time, the noisy/unstable marks.
V4 = "\n".join(f"ALTER TABLE results ADD COLUMN {_column(name)};" for name in _V4_METRICS) + """
CREATE TABLE repeats (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    repeat INTEGER NOT NULL,
    board TEXT,
    started REAL,
    finished REAL,
    summary_json TEXT NOT NULL,
    PRIMARY KEY (job_id, repeat)
);
"""

# v5: fidelity. A variant's worst output against its reference (cosine is the worst output's
# from now on; older rows hold the first output's), which inputs were fed, the per-output
# figures; a result's ``degraded`` mark (the reason, NULL: none) under its suite's limits.
V5 = "\n".join(f"ALTER TABLE results ADD COLUMN {_column(name)};" for name in _V5_METRICS) + """
ALTER TABLE variants ADD COLUMN snr_db REAL;
ALTER TABLE variants ADD COLUMN max_abs_err REAL;
ALTER TABLE variants ADD COLUMN fidelity_inputs TEXT;
ALTER TABLE variants ADD COLUMN fidelity_json TEXT;
"""

# v6: what a build did that its chain does not say (``Variant.notes``: an opset conversion,
# calibration or training on seeded synthetic inputs), and the ``synthetic`` mark (its reason).
V6 = """
ALTER TABLE variants ADD COLUMN synthetic TEXT;
ALTER TABLE variants ADD COLUMN notes_json TEXT;
"""

# v7: who is writing a run (``harness.store.writer``): host, pid, the token that tells that pid's
# process from a later one given the same pid, when it took the run, and its heartbeat. A resume
# refuses a run whose writer is alive; runs stored before have none and resume as before.
V7 = """
ALTER TABLE runs ADD COLUMN writer_host TEXT;
ALTER TABLE runs ADD COLUMN writer_pid INTEGER;
ALTER TABLE runs ADD COLUMN writer_token TEXT;
ALTER TABLE runs ADD COLUMN writer_since REAL;
ALTER TABLE runs ADD COLUMN heartbeat REAL;
"""

# v8: power modes. The power mode a job is measured in (the suite's ``power_modes`` axis), by its
# name; its definition is in ``settings_json`` (part of the job's identity), what the board read
# back in the result's details. NULL: measured as the board was. Read-only opens of older stores
# read NULL for it (``Store.results``).
V8 = """
ALTER TABLE jobs ADD COLUMN power_mode TEXT;
"""

# v9: operating points (docs/measurement.md#scenarios-and-axes). A result's scenario, input batch,
# requests in flight and input resolution, as the board measured them; a verdict's operating point
# (``records.point_label``: "" for a default job). Read-only opens of older stores read NULL for them.
V9 = "\n".join(f"ALTER TABLE results ADD COLUMN {_column(name)};" for name in _V9_METRICS) + """
ALTER TABLE verdicts ADD COLUMN point TEXT;
"""

MIGRATIONS: tuple[str, ...] = (V1, V2, V3, V4, V5, V6, V7, V8, V9)
SCHEMA_VERSION = len(MIGRATIONS)
# The oldest schema a read-only open (report, gate, runs list) reads as it is, without migrating:
# the columns v7, v8 and v9 added a reader does without. An older store is refused with how to migrate it.
READABLE_FROM = 6


def check_store(conn: sqlite3.Connection, path: str, *, empty_ok: bool) -> int:
    """The schema version of the results store on ``conn``, reading only. Refused (``StoreError``):
    a file that is not SQLite, a SQLite database of something else (tables but no version, or a
    version but no ``runs`` and ``jobs``), a store newer than this harness; and an empty database
    unless ``empty_ok`` (a sweep creates the store in it)."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.OperationalError as e:  # locked, cannot open (a directory, no access): not the file's content
        raise StoreError(f"cannot read results store {path}: {e}") from None
    except sqlite3.DatabaseError as e:  # "file is not a database"
        raise StoreError(f"{path} is not a results store ({e}); pass another --store") from None
    if version == 0 and not tables:
        if empty_ok:
            return 0
        raise StoreError(f"{path} is an empty database, not a results store; run 'harness sweep SUITE' first "
                         "or pass another --store")
    if version == 0 or not {"runs", "jobs"} <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(f"{path} is a SQLite database but not a results store (tables: {shown or 'none'}; "
                         f"user_version {version}); pass another --store")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: results store has schema v{version}, this harness reads up to "
            f"v{SCHEMA_VERSION}; upgrade edge-harness to read it"
        )
    return version


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the database to ``SCHEMA_VERSION``, each step in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: results store has schema v{version}, this harness reads up to "
            f"v{SCHEMA_VERSION}; upgrade edge-harness to read it"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        # executescript commits first; BEGIN IMMEDIATE makes the step and the version bump one unit
        # under the write lock. Another process opening the same old store may have taken the step
        # between our read of the version and our lock: then the step fails (its columns exist) and
        # the version says it is done.
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[target - 1]}\nPRAGMA user_version = {target};\nCOMMIT;")
        except sqlite3.OperationalError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if conn.execute("PRAGMA user_version").fetchone()[0] < target:
                raise
