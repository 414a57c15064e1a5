"""MLflow's side of the 100,000-run benchmark (``bench/bench_scale.py``): ``search_runs``.

Run with the interpreter of the venv made by ``setup.sh``. The store (SQLite backend) holds
the same runs as launchbay's: 5 params, 3 tags and 10 metrics per run, in 20 experiments.
``--api-runs`` of them are written through MLflow's API (``create_run`` + one ``log_batch``);
the rest are copies of those rows with new run ids and values, written in SQL, because the
API's rate (printed as ``api_runs_per_s``) would take hours for 100,000 runs. Each metric
keeps its last value only (what ``search_runs`` filters on): the 10^9-point histories would
take days at MLflow's ``log_batch`` rate. The store is cached next to launchbay's.

Each search runs in a child process killed after ``--timeout`` seconds. Stdout: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shutil
import sqlite3
import sys
import time
import uuid
from pathlib import Path

FORMAT = 1
CACHE = Path("/tmp/launchbay-bench-scale")
EXPERIMENTS = 20
LRS = (0.1, 0.03, 0.01, 0.003, 0.001)
METRICS = ("loss", "val_loss", "acc", "val_acc", "lr", "grad_norm", "throughput", "f1", "precision", "recall")


def log(msg: str) -> None:
    print(f"[mlflow_scale] {msg}", file=sys.stderr, flush=True)


def run_values(i: int) -> tuple[dict[str, str], dict[str, str], dict[str, float]]:
    """Params, tags and last metric values of run ``i`` (as launchbay's store has them)."""
    params = {
        "lr": str(LRS[i % 5]),
        "batch_size": str((32, 64, 128, 256)[i % 4]),
        "optimizer": ("adam", "sgd", "adamw")[i % 3],
        "layers": str(2 + i % 11),
        "seed": str(i),
    }
    tags = {"team": "abc"[i % 3], "dataset": f"data-v{i % 7}", "stage": ("dev", "prod")[i % 2]}
    floor = (i * 7919 % 1000) / 1000.0
    decay = floor + (2.0 - floor) * math.exp(-5.0)
    metrics = {name: decay * (1 + 0.1 * k) if k % 2 == 0 else 1.0 - decay / 2.0 for k, name in enumerate(METRICS)}
    return params, tags, metrics


def build(path: Path, runs: int, api_runs: int) -> dict[str, float]:
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exps = [
        client.create_experiment(f"exp-{e:02d}", artifact_location=str(tmp / "artifacts")) for e in range(EXPERIMENTS)
    ]
    t = time.perf_counter()
    api_runs = min(api_runs, runs)
    for i in range(api_runs):
        params, tags, metrics = run_values(i)
        run = client.create_run(exps[i % EXPERIMENTS], run_name=f"trial-{i}", tags=tags)
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 999) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id)
    api_rate = api_runs / (time.perf_counter() - t)
    log(f"{api_runs} runs through the API at {api_rate:.0f} runs/s; copying rows for the rest")
    db = sqlite3.connect(tmp / "mlflow.db")
    template = db.execute("SELECT run_uuid FROM runs LIMIT 1").fetchone()[0]
    tables = [
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        if "run_uuid" in [c[1] for c in db.execute(f"PRAGMA table_info({name})")] and name != "runs"
    ]
    run_cols = [c[1] for c in db.execute("PRAGMA table_info(runs)")]
    run_row = dict(zip(run_cols, db.execute("SELECT * FROM runs WHERE run_uuid=?", (template,)).fetchone()))
    rows_of = {}
    for table in tables:
        cols = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
        rows_of[table] = (
            cols,
            [dict(zip(cols, r)) for r in db.execute(f"SELECT * FROM {table} WHERE run_uuid=?", (template,))],
        )
    for i in range(api_runs, runs):
        params, tags, metrics = run_values(i)
        rid = uuid.uuid4().hex
        values = {"params": params, "tags": tags, "metrics": metrics, "latest_metrics": metrics}
        row = dict(run_row, run_uuid=rid, name=f"trial-{i}", experiment_id=exps[i % EXPERIMENTS])
        row["start_time"] = row["start_time"] + i
        row["artifact_uri"] = str(tmp / "artifacts" / rid / "artifacts")
        db.execute(f"INSERT INTO runs({','.join(row)}) VALUES ({','.join('?' * len(row))})", list(row.values()))
        for table, (cols, rows) in rows_of.items():
            out = []
            for r in rows:
                r = dict(r, run_uuid=rid)
                if table == "tags" and r["key"] == "mlflow.runName":
                    r["value"] = f"trial-{i}"
                elif r.get("key") in values.get(table, {}):
                    r["value"] = values[table][r["key"]]
                out.append([r[c] for c in cols])
            db.executemany(f"INSERT INTO {table}({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", out)
        if i % 10_000 == 0:
            db.commit()
    db.commit()
    db.close()
    (tmp / "info.json").write_text(json.dumps({"api_runs_per_s": api_rate, "api_runs": api_runs, "runs": runs}))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return {"api_runs_per_s": api_rate}


def _search(uri: str, kind: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    times = []
    found = 0
    for _ in range(1 if kind == "filter_all" else 3):  # every match takes 10+ s: once is enough
        t = time.perf_counter()
        if kind == "page":
            found = len(client.search_runs(exps, max_results=50))
        elif kind == "filter_page":
            found = len(client.search_runs(exps, "params.lr = '0.1' and metrics.loss < 0.2", max_results=100))
        else:  # every match, page after page (as launchbay's list_runs(limit=None))
            found, token = 0, None
            while True:
                page = client.search_runs(
                    exps, "params.lr = '0.1' and metrics.loss < 0.2", max_results=50_000, page_token=token
                )
                found += len(page)
                token = page.token
                if not token:
                    break
        times.append(time.perf_counter() - t)
    queue.put((min(times), found))


def measure(uri: str, kind: str, timeout: float) -> tuple[float | None, int]:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    proc = multiprocessing.Process(target=_search, args=(uri, kind, queue))
    started = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        log(f"search_runs ({kind}) still running after {time.perf_counter() - started:.0f} s: stopped")
        return None, 0
    return queue.get() if not queue.empty() else (None, 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--api-runs", type=int, default=500)
    p.add_argument("--timeout", type=float, default=600, help="seconds each search may take")
    args = p.parse_args()
    path = CACHE / f"mlflow-f{FORMAT}-{args.runs}"
    if not (path / "info.json").exists():
        log(f"building {args.runs:,} runs at {path}")
        build(path, args.runs, args.api_runs)
    info = json.loads((path / "info.json").read_text())
    uri = f"sqlite:///{path / 'mlflow.db'}"
    out: dict[str, float | int | None] = {"runs": info["runs"], "api_runs_per_s": info["api_runs_per_s"]}
    for kind in ("page", "filter_page", "filter_all"):
        seconds, found = measure(uri, kind, args.timeout)
        out[f"search_{kind}_s"], out[f"search_{kind}_found"] = seconds, found
        log(f"search_runs {kind}: {seconds} s, {found} runs")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
