"""Numbered schema migrations; the store refuses a newer schema with a clear message.

The same list serves every SQL backend: written in SQLite's types, rendered for PostgreSQL by
pgdialect.py's rules. Append only: a migration, once released, is never edited or renumbered.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL);
    CREATE TABLE snapshots (
        id TEXT PRIMARY KEY, files INTEGER NOT NULL, bytes INTEGER NOT NULL,
        created REAL NOT NULL, source_dir TEXT);
    CREATE TABLE runs (
        pk INTEGER PRIMARY KEY, run_id TEXT UNIQUE NOT NULL,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id), name TEXT,
        status TEXT NOT NULL, target TEXT NOT NULL, target_type TEXT, script TEXT,
        arguments TEXT, snapshot_id TEXT, environment TEXT, created REAL NOT NULL,
        started REAL, ended REAL, updated REAL NOT NULL, exit_code INTEGER, error TEXT,
        heartbeat REAL, properties TEXT, spec TEXT, target_state TEXT, parent_run_id TEXT);
    CREATE INDEX runs_created ON runs(created DESC);
    CREATE INDEX runs_experiment ON runs(experiment_id, created DESC);
    CREATE INDEX runs_updated ON runs(updated);
    CREATE INDEX runs_status ON runs(status);
    CREATE TABLE tags (run_pk INTEGER NOT NULL, key TEXT NOT NULL, value TEXT,
        PRIMARY KEY (run_pk, key)) WITHOUT ROWID;
    CREATE TABLE params (run_pk INTEGER NOT NULL, key TEXT NOT NULL, value,
        PRIMARY KEY (run_pk, key)) WITHOUT ROWID;
    CREATE INDEX params_key_value ON params(key, value);
    CREATE TABLE series (
        id INTEGER PRIMARY KEY, run_pk INTEGER NOT NULL, name TEXT NOT NULL,
        count INTEGER NOT NULL DEFAULT 0, last_step INTEGER, last REAL, min REAL, max REAL,
        UNIQUE (run_pk, name));
    CREATE INDEX series_name_last ON series(name, last);
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, n INTEGER NOT NULL,
        first_step INTEGER NOT NULL, last_step INTEGER NOT NULL, steps BLOB, vals BLOB NOT NULL, ts BLOB NOT NULL);
    CREATE INDEX chunks_series ON chunks(series_id, last_step);
    CREATE TABLE records (
        id INTEGER PRIMARY KEY, run_pk INTEGER NOT NULL, kind TEXT NOT NULL,
        name TEXT NOT NULL, payload TEXT, ts REAL);
    CREATE INDEX records_run ON records(run_pk, kind, name);
    CREATE TABLE offsets (run_pk INTEGER NOT NULL, file TEXT NOT NULL, pos INTEGER NOT NULL,
        PRIMARY KEY (run_pk, file)) WITHOUT ROWID;
    """,
    # 2: the model registry (versions point at content-addressed blobs, not at run folders)
    """
    CREATE TABLE models (
        id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL,
        next_version INTEGER NOT NULL DEFAULT 1);
    CREATE TABLE model_versions (
        id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL REFERENCES models(id), version INTEGER NOT NULL,
        run_id TEXT, experiment TEXT, path TEXT NOT NULL, kind TEXT NOT NULL, manifest TEXT NOT NULL,
        files INTEGER NOT NULL, bytes INTEGER NOT NULL, tags TEXT, description TEXT, metrics TEXT,
        environment_hash TEXT, snapshot_id TEXT, created REAL NOT NULL, source TEXT UNIQUE,
        UNIQUE (model_id, version));
    CREATE INDEX model_versions_run ON model_versions(run_id);
    """,
    # 3: the series codec (store/codec.py). Chunks written before keep codec 0 (raw arrays in steps,
    # vals, ts) and stay readable as they are; a codec 1 chunk holds its packed points in vals; a
    # codec 2 chunk lies in the ended run's journal/sealed.series at file_at (file_size bytes).
    """
    ALTER TABLE chunks ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE chunks ADD COLUMN file_at INTEGER;
    ALTER TABLE chunks ADD COLUMN file_size INTEGER;
    """,
    # 4: indexes for 100,000-run stores: a page of runs (newest first, of one status, of one sweep) and
    # the run pks a filter by metric matches come from indexes alone, never from every run's row;
    # a run's metrics (probes of a filter, the headline metric of a listing) too
    """
    CREATE INDEX runs_newest ON runs(created DESC, pk DESC);
    CREATE INDEX runs_parent ON runs(parent_run_id, created DESC, pk DESC);
    CREATE INDEX series_name_last_run ON series(name, last, run_pk);
    CREATE INDEX series_run_name_last ON series(run_pk, name, last, last_step);
    DROP INDEX series_name_last;
    DROP INDEX runs_created;
    DROP INDEX runs_status;
    CREATE INDEX runs_status ON runs(status, created DESC, pk DESC);
    """,
    # 5: integer series (store/series.py). A series with ints=1 holds int64 values, its chunks their bit
    # patterns where a float64 series holds float64 bits; every series before is a float64 series.
    # rounded=1: some value is the nearest float64 to what was logged (a Decimal, an int past 2**53, ...).
    """
    ALTER TABLE series ADD COLUMN ints INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE series ADD COLUMN rounded INTEGER NOT NULL DEFAULT 0;
    """,
    # 6: data inputs (launchbay/data/). A dataset's versions are numbered per name; ``hash`` is the SHA-256 of
    # the version's manifest (also its blob), so the same content is one version of a dataset. ``run_inputs``
    # is a run's lineage: what it read (or, direction 'output', made), by content hash, whatever the source.
    # Plain SQL (no WITHOUT ROWID, no SQLite-only types) so another engine runs it as written.
    """
    CREATE TABLE datasets (
        id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT, created REAL NOT NULL,
        next_version INTEGER NOT NULL DEFAULT 1);
    CREATE TABLE dataset_versions (
        id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL REFERENCES datasets(id), version INTEGER NOT NULL,
        hash TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL, location TEXT, files INTEGER NOT NULL,
        bytes INTEGER NOT NULL, description TEXT, run_id TEXT, created REAL NOT NULL,
        UNIQUE (dataset_id, version), UNIQUE (dataset_id, hash));
    CREATE INDEX dataset_versions_hash ON dataset_versions(hash);
    CREATE TABLE run_inputs (
        run_pk INTEGER NOT NULL, name TEXT NOT NULL, direction TEXT NOT NULL, source TEXT NOT NULL,
        hash TEXT NOT NULL, kind TEXT NOT NULL, mode TEXT NOT NULL, files INTEGER NOT NULL, bytes INTEGER NOT NULL,
        bytes_sent INTEGER NOT NULL DEFAULT 0, location TEXT, dataset TEXT, dataset_version INTEGER,
        PRIMARY KEY (run_pk, direction, name));
    CREATE INDEX run_inputs_hash ON run_inputs(hash);
    """,
    # 7: who made a run (a team store's runs come from several people): the configured [user] name, else
    # the login name; runs made before have none. A listing of one person's runs comes from the index.
    """
    ALTER TABLE runs ADD COLUMN created_by TEXT;
    CREATE INDEX runs_created_by ON runs(created_by, created DESC, pk DESC);
    """,
    # 8: queues and schedules (launchbay/queueing.py, launchbay/scheduling.py). ``queue`` holds one row per run
    # of a target or experiment with max_concurrent_runs: 'waiting' (the run is Queued behind others),
    # 'claimed' (leaving the queue: ``claimer`` is starting it) or 'started'; a claimed or started row of an
    # unfinished run holds a slot. Every change to the queue first updates the one ``queue_lock`` row, so
    # claims are one at a time on every engine (a slot is never given twice). A schedule's fires are
    # recorded once per due time (UNIQUE): a fire is claimed before its command runs, never repeated. An
    # --on-change schedule has no due times: ``seen`` is the dataset version it last fired for (its fires'
    # ``due`` is that version's number).
    """
    CREATE TABLE queue (
        run_pk INTEGER PRIMARY KEY, target TEXT NOT NULL, experiment TEXT NOT NULL, target_limit INTEGER,
        experiment_limit INTEGER, priority INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL,
        submitted REAL NOT NULL, state TEXT NOT NULL, claimer TEXT, claimed REAL);
    CREATE INDEX queue_order ON queue(state, priority DESC, seq);
    CREATE TABLE queue_lock (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO queue_lock (id, n) VALUES (1, 0);
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY, rule TEXT NOT NULL, command TEXT NOT NULL, cwd TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0, catch_up INTEGER NOT NULL DEFAULT 1, next_fire REAL,
        created REAL NOT NULL, seen INTEGER);
    CREATE TABLE schedule_fires (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, due REAL NOT NULL, fired REAL NOT NULL,
        outcome TEXT NOT NULL, run_id TEXT, message TEXT, UNIQUE (name, due));
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
