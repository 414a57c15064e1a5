"""The team store (PostgreSQL index) beside the embedded store (SQLite), same machine, same run.

    bash scripts/services/start.sh postgres && source /tmp/launchbay-services/env.sh
    .venv/bin/python bench/bench_team_store.py [--runs 100000] [--ingest-runs 16] [--points 100000]

Figures: ingest points/s with N runs ingested by N processes at once; `launchbay runs --limit 50`
as a whole process over a store of --runs runs; a filter by a param and a metric (a page of 50);
reading a 1M-point series; index bytes per point. PostgreSQL is the services' throwaway cluster
(Debian's 15, default settings, fsync on); each store is a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import marshal
import os
import secrets
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psycopg

from launchbay.models import RunSpec
from launchbay.store import RunStore, Store
from launchbay.store.postgres import PostgresStore

PY = sys.executable
PG = os.environ.get("LAUNCHBAY_TEST_PG", "")
INGEST_WORKER = """
import sys
from launchbay.store import open_store
from launchbay.ingest import ingest_run
with open_store(sys.argv[1]) as store:
    ingest_run(store, store.get_run(sys.argv[2]))
"""


def median_s(call: Callable[[], object], times: int = 7) -> float:
    found = []
    for _ in range(times):
        t = time.perf_counter()
        call()
        found.append(time.perf_counter() - t)
    return statistics.median(found)


def bench_ingest(store: Store, runs: int, points: int) -> float:
    now = time.time()
    ids = []
    for _ in range(runs):
        record = store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
        journal = record.run_dir / "journal"
        journal.mkdir(parents=True, exist_ok=True)
        with open(journal / "p1.bin", "wb") as fh:
            for start in range(0, points, 50_000):
                data = marshal.dumps(("m", [("loss", i * 0.5, i, now) for i in range(start, start + 50_000)]))
                fh.write(struct.pack("<I", len(data)) + data)
        ids.append(record.run_id)
    t = time.perf_counter()
    procs = [subprocess.Popen([PY, "-c", INGEST_WORKER, store.uri, run_id]) for run_id in ids]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t
    assert codes == [0] * runs, codes
    counts = [len(store.read_series(store.get_run(i), "loss")) for i in ids]
    assert counts == [points] * runs, counts
    return runs * points / wall


def fill_runs(store: PostgresStore | RunStore, count: int) -> None:
    """``count`` finished runs with a param and a metric each, written in bulk (as a year of a team's runs)."""
    now = time.time() - count
    with store.transaction() as db:
        db.execute("INSERT INTO experiments(name, created) VALUES (?, ?)", ("e", 0.0))
        exp = db.execute("SELECT id FROM experiments WHERE name='e'").fetchone()[0]
        base = 1_000_000
        for first in range(0, count, 10_000):
            part = range(first, min(first + 10_000, count))
            db.executemany(
                "INSERT INTO runs(pk, run_id, experiment_id, status, target, created, updated, spec, properties,"
                " target_state, created_by) VALUES (?, ?, ?, 'Completed', 'local', ?, ?, '{}', '{}', '{}', 'bench')",
                [(base + i, f"e_{i:07d}", exp, now + i, now + i) for i in part],
            )
            db.executemany(
                "INSERT INTO params(run_pk, key, value) VALUES (?, 'lr', ?)",
                [(base + i, db.dialect.param_value([0.1, 0.01, 0.001][i % 3])) for i in part],
            )
            db.executemany(
                "INSERT INTO series(run_pk, name, count, last, last_step) VALUES (?, 'loss', 1, ?, 0)",
                [(base + i, (i % 100) / 100) for i in part],
            )
    if isinstance(store, PostgresStore):
        store.db.execute("ANALYZE")


def bench_listing(store: PostgresStore | RunStore, count: int) -> dict[str, float]:
    fill_runs(store, count)
    env = {**os.environ, "LAUNCHBAY_STORE": store.uri}

    def cli() -> None:
        subprocess.run([PY, "-m", "launchbay", "runs", "--limit", "50"], env=env, check=True, capture_output=True)

    page = store.list_runs(param=("lr", 0.1), metric_below=("loss", 0.2), limit=50)
    assert len(page) == 50 and all(r.params["lr"] == 0.1 for r in page)
    return {
        "cli_runs_limit_50_s": median_s(cli, 5),
        "filter_param_metric_page_s": median_s(
            lambda: store.list_runs(param=("lr", 0.1), metric_below=("loss", 0.2), limit=50)
        ),
        "list_50_in_process_s": median_s(lambda: store.list_runs(limit=50)),
    }


def bench_series(store: Store, points: int) -> dict[str, float]:
    record = store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
    now = time.time()
    for start in range(0, points, 100_000):
        with store.write(record.pk) as run:
            run.append_points("loss", [("loss", i * 0.001, i, now + i) for i in range(start, start + 100_000)])
    record = store.get_run(record.run_id)
    assert len(store.read_series(record, "loss")) == points
    return {"read_series_s": median_s(lambda: store.read_series(record, "loss"), 5)}


MLFLOW_PY = Path(__file__).parent / ".venv-mlflow" / "bin" / "python"


def bench_mlflow_ingest(url: str, runs: int, points: int) -> float | None:
    """MLflow's ``log_batch`` from ``runs`` processes at once into the same PostgreSQL (its own schema);
    None when the MLflow venv (bench/mlflow_side/setup.sh) is not there."""
    if not MLFLOW_PY.is_file():
        print("MLflow venv missing: bash bench/mlflow_side/setup.sh")
        return None
    uri = url.replace("postgresql://", "postgresql+psycopg://", 1)
    script = Path(__file__).parent / "mlflow_side" / "mlflow_pg_ingest.py"
    done = subprocess.run(
        [str(MLFLOW_PY), str(script), "--uri", uri, "--runs", str(runs), "--points", str(points)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"MLflow's side failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        return None
    import json

    return float(json.loads(done.stdout.strip().splitlines()[-1])["points_per_s"])


def pg_bytes_per_point(url: str, schema: str, points: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        size = conn.execute(
            "SELECT pg_total_relation_size(%s) + pg_total_relation_size(%s)", (f"{schema}.chunks", f"{schema}.series")
        ).fetchone()[0]
    return float(size) / points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--ingest-runs", type=int, default=16)
    parser.add_argument("--points", type=int, default=100_000, help="points per ingested run")
    parser.add_argument("--series", type=int, default=1_000_000, help="points of the series read back")
    parser.add_argument("--mlflow-points", type=int, default=20_000, help="points per run for MLflow's log_batch")
    args = parser.parse_args()
    if not PG:
        sys.exit("LAUNCHBAY_TEST_PG is not set: bash scripts/services/start.sh postgres; source its env.sh")
    os.environ.setdefault("PGPASSFILE", os.environ.get("LAUNCHBAY_TEST_PGPASSFILE", ""))
    work = Path(tempfile.mkdtemp(prefix="lb-team-bench-"))
    schemas: list[str] = []

    def pg_store(tag: str) -> tuple[PostgresStore, str]:
        schema = f"bench_{tag}_{secrets.token_hex(4)}"
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        schemas.append(schema)
        url = f"{PG}?options={quote(f'-csearch_path={schema}')}"
        return PostgresStore(url, cache_dir=work / schema), schema

    results: dict[str, dict[str, float]] = {"sqlite": {}, "postgres": {}}
    mlflow_rate: float | None = None
    try:
        with RunStore(work / "sqlite-ingest") as s:
            results["sqlite"]["ingest_points_per_s"] = bench_ingest(s, args.ingest_runs, args.points)
        pg, _ = pg_store("ingest")
        with pg:
            results["postgres"]["ingest_points_per_s"] = bench_ingest(pg, args.ingest_runs, args.points)
        mlflow_schema = f"bench_mlflow_{secrets.token_hex(4)}"  # a bare schema: MLflow makes its own tables
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {mlflow_schema}")
        schemas.append(mlflow_schema)
        mlflow_rate = bench_mlflow_ingest(
            f"{PG}?options={quote(f'-csearch_path={mlflow_schema}')}", args.ingest_runs, args.mlflow_points
        )
        with RunStore(work / "sqlite-list") as s:
            results["sqlite"].update(bench_listing(s, args.runs))
        pg, _ = pg_store("list")
        with pg:
            results["postgres"].update(bench_listing(pg, args.runs))
        with RunStore(work / "sqlite-series") as s:
            results["sqlite"].update(bench_series(s, args.series))
            results["sqlite"]["bytes_per_point"] = s.index_bytes() / args.series
        pg, schema = pg_store("series")
        with pg:
            results["postgres"].update(bench_series(pg, args.series))
        results["postgres"]["bytes_per_point"] = pg_bytes_per_point(PG, schema, args.series)
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'figure':44} {'sqlite':>14} {'postgresql':>14}")
    for key in results["sqlite"]:
        a, b = results["sqlite"][key], results["postgres"][key]
        if key.endswith("per_s"):
            print(f"{key:44} {a:12,.0f}/s {b:12,.0f}/s")
        elif key.endswith("_s"):
            print(f"{key:44} {a * 1000:11.1f} ms {b * 1000:11.1f} ms")
        else:
            print(f"{key:44} {a:14.1f} {b:14.1f}")
    if mlflow_rate is not None:
        print(f"{'mlflow log_batch points/s, same PostgreSQL':44} {'':>14} {mlflow_rate:12,.0f}/s")
        print(f"{'launchbay team ingest / mlflow log_batch':44} {'':>14} "
              f"{results['postgres']['ingest_points_per_s'] / mlflow_rate:13.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
