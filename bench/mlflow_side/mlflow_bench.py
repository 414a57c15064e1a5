"""MLflow side of the launchbay-vs-MLflow benchmark.

Run with the interpreter of the venv made by ``setup.sh``. Everything goes to a
fresh temp dir with an SQLite tracking backend, so numbers are comparable with
launchbay's local-first store. Progress goes to stderr; stdout carries exactly
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# MLflow's hard limit of metrics per log_batch call (utils/validation.py).
BATCH = 1000
METRIC = "loss"
# Without this, MLflow's async queue writes every point as its own batch from a
# 10-thread pool (slower than sync on SQLite); with it, queued points are merged
# into batches of up to 1000. It is an int number of seconds; 1 is the minimum.
BUFFER_ENV = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"


def log(msg: str) -> None:
    """Progress on stderr so stdout stays pure JSON."""
    print(f"[mlflow_bench] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """CLI sizes; --quick shrinks everything for a smoke test."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--points",
        type=int,
        default=1_000_000,
        help="points for log_batch and history read",
    )
    p.add_argument(
        "--log-metric-calls",
        type=int,
        default=2000,
        help="calls for the log_metric loops",
    )
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke test")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (path printed on stderr)")
    a = p.parse_args(argv)
    if a.quick:
        a.points = min(a.points, 10_000)
        a.log_metric_calls = min(a.log_metric_calls, 200)
    return a


def measure_import(repeats: int = 3) -> float:
    """Best-of-N `import mlflow` in a fresh interpreter, minus a bare start."""

    def best(code: str) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        return min(times)

    return best("import mlflow") - best("pass")


def store_bytes(db: Path) -> int:
    """DB file plus any WAL/journal side files SQLite keeps next to it."""
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-journal")) if p.exists())


def bench_log_metric(mlflow, n: int, synchronous: bool, buffer_s: str | None = None) -> float:
    """Points/s of the plain fluent per-point call, flush included for async."""
    if buffer_s is None:
        os.environ.pop(BUFFER_ENV, None)
    else:
        os.environ[BUFFER_ENV] = buffer_s  # read by the queue thread on every pass
    with mlflow.start_run(run_name=f"log_metric_{'sync' if synchronous else 'async'}"):
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric(METRIC, float(i) * 0.5, step=i, synchronous=synchronous)
        if not synchronous:
            mlflow.flush_async_logging()
        dt = time.perf_counter() - t0
        run_id = mlflow.active_run().info.run_id
    got = len(mlflow.MlflowClient().get_metric_history(run_id, METRIC))
    if got != n:
        raise RuntimeError(f"log_metric(synchronous={synchronous}) stored {got} of {n} points")
    return n / dt


def bench_log_batch(mlflow, points: int, db: Path) -> tuple[str, float, float]:
    """Points/s of log_batch in max-size chunks, and db growth per point."""
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name="log_batch") as run:
        run_id = run.info.run_id
    before = store_bytes(db)
    ts0 = int(time.time() * 1000)
    done = 0
    t0 = time.perf_counter()
    next_report = t0 + 10
    while done < points:
        k = min(BATCH, points - done)
        metrics = [Metric(METRIC, float(s) * 0.5, ts0 + s, s) for s in range(done, done + k)]
        client.log_batch(run_id, metrics=metrics, synchronous=True)
        done += k
        if time.perf_counter() > next_report:
            el = time.perf_counter() - t0
            log(f"log_batch {done:,}/{points:,} points, {done / el:,.0f} pts/s")
            next_report += 10
    dt = time.perf_counter() - t0
    client.set_terminated(run_id)
    return run_id, points / dt, (store_bytes(db) - before) / points


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, emit one JSON object on the real stdout."""
    args = parse_args(argv)
    # MLflow or alembic may print to stdout; keep fd 1 for our JSON only.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    notes: dict[str, str] = {}
    res: dict[str, object] = {
        "import_s": None,
        "log_metric_per_s": None,
        "log_metric_async_per_s": None,
        "log_metric_async_unbuffered_per_s": None,
        "log_batch_per_s": None,
        "bytes_per_point": None,
        "history_read_s": None,
        "points": args.points,
    }

    log("timing `import mlflow` in subprocesses")
    res["import_s"] = round(measure_import(), 4)

    tmp = Path(tempfile.mkdtemp(prefix="mlflow_bench_"))
    db = tmp / "mlflow.db"
    os.chdir(tmp)  # default artifact root (./mlartifacts) lands in the temp dir too
    try:
        import mlflow

        res["mlflow_version"] = mlflow.__version__
        mlflow.set_tracking_uri(f"sqlite:///{db}")
        log(f"tracking uri sqlite:///{db} (creating schema)")
        mlflow.set_experiment("bench")  # schema migrations happen here, untimed

        # Warm-up so the first timed call doesn't pay for lazy imports/connections.
        with mlflow.start_run(run_name="warmup"):
            mlflow.log_metric("warm", 0.0, step=0)

        n = args.log_metric_calls
        log(f"log_metric x{n} (synchronous)")
        res["log_metric_per_s"] = round(bench_log_metric(mlflow, n, synchronous=True), 1)
        log(f"  -> {res['log_metric_per_s']} pts/s")

        if hasattr(mlflow, "flush_async_logging"):
            log(f"log_metric x{n} (synchronous=False, {BUFFER_ENV}=1, flush included)")
            rate = bench_log_metric(mlflow, n, synchronous=False, buffer_s="1")
            res["log_metric_async_per_s"] = round(rate, 1)
            log(f"  -> {rate:,.1f} pts/s")
            log(f"log_metric x{n} (synchronous=False, default unbuffered queue)")
            rate = bench_log_metric(mlflow, n, synchronous=False)
            res["log_metric_async_unbuffered_per_s"] = round(rate, 1)
            log(f"  -> {rate:,.1f} pts/s")
            notes["log_metric_async_per_s"] = (
                f"{BUFFER_ENV}=1 so the queue merges points into batches; "
                "log_metric_async_unbuffered_per_s is MLflow's default async queue"
            )
        else:
            notes["log_metric_async_per_s"] = "mlflow.flush_async_logging missing in this version"

        log(f"log_batch {args.points:,} points in chunks of {BATCH}")
        run_id, rate, bpp = bench_log_batch(mlflow, args.points, db)
        res["log_batch_per_s"] = round(rate, 1)
        res["bytes_per_point"] = round(bpp, 1)
        log(f"  -> {rate:,.0f} pts/s, {bpp:.1f} bytes/point")

        log("get_metric_history of the log_batch series")
        t0 = time.perf_counter()
        hist = mlflow.MlflowClient().get_metric_history(run_id, METRIC)
        res["history_read_s"] = round(time.perf_counter() - t0, 3)
        if len(hist) != args.points:
            notes["history_read_s"] = f"got {len(hist)} points, expected {args.points}"
        log(f"  -> {res['history_read_s']} s for {len(hist):,} points")

        notes["setup"] = (
            "sqlite backend in a fresh temp dir (MLflow default journal mode, no WAL); "
            "log_metric timed inside one run after a warm-up; log_batch synchronous, "
            f"{BATCH} metrics per call; import_s is best of 3 minus a bare interpreter"
        )
        res["python"] = sys.version.split()[0]
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    res["notes"] = notes
    os.write(out_fd, (json.dumps(res) + "\n").encode())
    os.close(out_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
