"""The embedded store: an SQLite index (WAL) next to a blob folder and run folders.

Layout of ``.launchbay/``::

    index.sqlite          runs, experiments, tags, params, metric series, chunks
    blobs/ab/cdef...      content-addressed files (snapshot files and manifests)
    runs/<run_id>/        runner.json, journal/, files/ (outputs, logs, user_logs)

``RunStore`` is put together from one class per job, each in its own module:

    connection.py   the per-thread connection, write transactions, migrations, ``close()``
    runs.py         reading runs: get, list, filter, children, records, snapshots in use
    writes.py       the batch write primitive ``write`` and the guarded status ``transition``
    series.py       metric series: the chunk encoder and decoder
    model_rows.py   the model registry's rows
    files.py        a run's files and log

Nothing outside ``store/`` runs SQL: every query and write has a named method here.
"""

from __future__ import annotations

from .files import RunFiles, inside
from .model_rows import ModelRows
from .series import Series, SeriesStore
from .writes import RunWriter, RunWrites

__all__ = ["RunStore", "RunWriter", "Series", "inside"]


class RunStore(RunWrites, SeriesStore, ModelRows, RunFiles):
    """All reads and writes of run history go through here (CLI, API, server, ingest, sweeps, registry).

    Close it when done (``close()``, or use it as a context manager)."""
