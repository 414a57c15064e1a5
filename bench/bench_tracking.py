"""The tracking path at the machine's limit, side by side with MLflow (issue: performance).

Run: ``bash bench/run.sh`` (sets up MLflow's own venv, then runs this). Prints one table:
each figure, its target, launchbay's value, MLflow's where it has one, and the ratio.
``--quick`` uses small sizes for a smoke run; ``--no-mlflow`` skips the MLflow side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


def fresh_env(store: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LAUNCHBAY_STORE"] = str(store)
    return env


def in_process(store: Path):  # type: ignore[no-untyped-def]
    os.environ["LAUNCHBAY_STORE"] = str(store)
    from launchbay.session import Session
    from launchbay.store import open_store

    return Session(open_store(store))


def bench_log_calls(work: Path, points: int) -> dict[str, float]:
    """run.log in a tight loop inside a submitted run; then time until every point is in the store."""
    import launchbay

    proj = work / "logcalls"
    proj.mkdir()
    (proj / "loop.py").write_text(
        textwrap.dedent(f"""
        import time
        from launchbay import Run
        run = Run.get_context()
        log = run.log
        t = time.perf_counter()
        for i in range({points}):
            log("loss", i * 0.5, i)
        dt = time.perf_counter() - t
        print("RATE", {points} / dt, flush=True)
        print("END", time.time(), flush=True)
    """)
    )
    os.environ["LAUNCHBAY_STORE"] = str(work / "store-logcalls")
    handle = launchbay.submit("loop.py", source_dir=proj)
    while True:
        record = handle.record()
        summaries = handle._session.store.metric_summaries(record)
        if summaries and summaries[0]["count"] == points:
            durable_at = time.time()
            break
        if record.status.is_terminal() and record.status.value != "Completed":
            raise RuntimeError(handle.get_log())
        time.sleep(0.01)
    log = handle.get_log()
    rate = float(log.split("RATE ")[1].split()[0])
    end = float(log.split("END ")[1].split()[0])
    handle.wait()
    db = work / "store-logcalls" / "index.sqlite"
    size = db.stat().st_size + (
        db.with_name("index.sqlite-wal").stat().st_size if db.with_name("index.sqlite-wal").exists() else 0
    )
    session = handle._session
    t = time.perf_counter()
    series = session.store.read_series(handle.record(), "loss")
    read_s = time.perf_counter() - t
    assert len(series) == points
    from launchbay.plots_data import downsample_minmax

    times = []
    for _ in range(5):
        t = time.perf_counter()
        downsample_minmax(series.steps, series.values, 2000)
        times.append(time.perf_counter() - t)
    return {
        "log_calls_per_s": rate,
        "durable_after_end_s": max(0.0, durable_at - end),
        "bytes_per_point": size / points,
        "read_series_s": read_s,
        "downsample_s": statistics.median(times),
    }


def bench_concurrent(work: Path, runs: int, points: int) -> dict[str, float]:
    """Many runs logging at once: total points per second until all are durable, none lost."""
    import launchbay

    proj = work / "concurrent"
    proj.mkdir()
    (proj / "many.py").write_text(
        textwrap.dedent(f"""
        from launchbay import Run
        run = Run.get_context()
        log = run.log
        for i in range({points}):
            log("loss", i * 0.5, i)
    """)
    )
    os.environ["LAUNCHBAY_STORE"] = str(work / "store-concurrent")
    start = time.time()
    handles = [launchbay.submit("many.py", source_dir=proj) for _ in range(runs)]
    for h in handles:
        h.wait(poll_s=0.05)
    wall = time.time() - start
    counts = [len(h.get_metric_series("loss")) for h in handles]
    assert counts == [points] * runs, counts
    return {"concurrent_points_per_s": runs * points / wall, "concurrent_wall_s": wall}


INGEST_WORKER = """
import sys, time
from launchbay.store import open_store
from launchbay.ingest import ingest_run
store = open_store(sys.argv[1])
record = store.get_run(sys.argv[2])
ingest_run(store, record)
"""


def bench_ingest(work: Path, runs: int, points: int) -> dict[str, float]:
    """The store side alone: journals of 16 runs ingested by 16 processes at once (no lock errors)."""
    import marshal
    import struct

    from launchbay.models import RunSpec

    session = in_process(work / "store-ingest")
    ids = []
    now = time.time()
    for _ in range(runs):
        record = session.store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
        journal = record.run_dir / "journal"
        journal.mkdir(parents=True, exist_ok=True)
        with open(journal / "p1.bin", "wb") as fh:
            for start in range(0, points, 50_000):
                data = marshal.dumps(("m", [("loss", i * 0.5, i, now) for i in range(start, start + 50_000)]))
                fh.write(struct.pack("<I", len(data)) + data)
        ids.append(record.run_id)
    t = time.perf_counter()
    procs = [subprocess.Popen([PY, "-c", INGEST_WORKER, str(session.store.root), run_id]) for run_id in ids]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t
    assert codes == [0] * runs, codes
    counts = [len(session.store.read_series(session.store.get_run(i), "loss")) for i in ids]
    assert counts == [points] * runs, counts
    return {"ingest_points_per_s": runs * points / wall}


def bench_import() -> dict[str, float]:
    def best(code: str) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([PY, "-c", code], check=True)
            times.append(time.perf_counter() - t)
        return min(times)

    bare = best("pass")
    ipy = best("import IPython")
    return {
        "import_s": best("import launchbay") - bare,
        "load_ext_s": best("import IPython; import launchbay, launchbay.ipython.magics") - ipy,
    }


def bench_submit_latency(work: Path, files: int) -> dict[str, float]:
    """Submit to the first line of user code, folder of N files already snapshotted, vs python script.py."""
    import launchbay

    proj = work / "latency"
    for i in range(files - 1):
        sub = proj / f"pkg{i % 20}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"mod{i}.py").write_text(f"X = {i}\n" * 20)
    (proj / "first.py").write_text("import time\nprint('FIRST', time.time(), flush=True)\n")
    os.environ["LAUNCHBAY_STORE"] = str(work / "store-latency")
    launchbay.submit("first.py", source_dir=proj).wait()  # snapshot once
    plain, ours = [], []
    for _ in range(7):
        t = time.time()
        out = subprocess.run([PY, "first.py"], cwd=proj, capture_output=True, text=True, check=True).stdout
        plain.append(float(out.split()[1]) - t)
        t = time.time()
        handle = launchbay.submit("first.py", source_dir=proj)
        handle.wait(poll_s=0.02)
        ours.append(float(handle.get_log().split()[1]) - t)
    return {"plain_first_line_s": statistics.median(plain), "submit_first_line_s": statistics.median(ours)}


def bench_resnapshot(work: Path, files: int) -> dict[str, float]:
    from launchbay.snapshot import take_snapshot

    proj = work / "snap"
    for i in range(files):
        sub = proj / f"d{i % 50}" / f"e{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.py").write_text(f"V = {i}\n")
    (proj / ".gitignore").write_text("*.pyc\nbuild/\n")
    session = in_process(work / "store-snap")
    take_snapshot(session.store, proj, max_bytes=10**9, max_files=10**6)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        take_snapshot(session.store, proj, max_bytes=10**9, max_files=10**6)
        times.append(time.perf_counter() - t)
    return {"resnapshot_s": statistics.median(times)}


def bench_list_runs(work: Path, count: int) -> dict[str, float]:
    from launchbay.models import RunSpec

    session = in_process(work / "store-list")
    store = session.store
    with store.transaction() as db:
        db.execute("INSERT INTO experiments(name, created) VALUES ('e', 0)")
        now = time.time()
        for i in range(count):
            pk = db.execute(
                "INSERT INTO runs(run_id, experiment_id, status, target, created, updated, spec, properties,"
                " target_state) VALUES (?, 1, 'Completed', 'local', ?, ?, '{}', '{}', '{}')",
                (f"e_{i:06d}", now + i, now + i),
            ).lastrowid
            db.execute("INSERT INTO params(run_pk, key, value) VALUES (?, 'lr', ?)", (pk, [0.1, 0.01, 0.001][i % 3]))
            db.execute("INSERT INTO series(run_pk, name, count, last) VALUES (?, 'loss', 1, ?)", (pk, (i % 100) / 100))
    del RunSpec
    times = []
    for _ in range(7):
        t = time.perf_counter()
        found = store.list_runs(param=("lr", 0.1), metric_below=("loss", 0.2), limit=None)
        times.append(time.perf_counter() - t)
    assert found and all(r.params["lr"] == 0.1 for r in found)
    return {"list_filter_s": statistics.median(times), "list_filter_found": len(found)}


def mlflow_side(points: int, calls: int) -> dict[str, float] | None:
    venv_py = Path(os.environ.get("MLFLOW_BENCH_VENV", HERE / ".venv-mlflow")) / "bin" / "python"
    if not venv_py.exists():
        print("(MLflow venv missing: run bench/mlflow_side/setup.sh)", file=sys.stderr)
        return None
    out = subprocess.run(
        [
            str(venv_py),
            str(HERE / "mlflow_side" / "mlflow_bench.py"),
            "--points",
            str(points),
            "--log-metric-calls",
            str(calls),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:,.1f} ms" if value < 10 else f"{value:,.1f} s"
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:,.1f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    points = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ours: dict[str, float] = {}
        for name, step in [
            ("log calls", lambda: bench_log_calls(work, points)),
            ("16 concurrent runs", lambda: bench_concurrent(work, 16, points // 10 if args.quick else 200_000)),
            ("16 concurrent ingesters", lambda: bench_ingest(work, 16, points // 10 if args.quick else 200_000)),
            ("import", bench_import),
            ("submit latency", lambda: bench_submit_latency(work, 1000)),
            ("re-snapshot", lambda: bench_resnapshot(work, 10_000)),
            ("list runs", lambda: bench_list_runs(work, 10_000)),
        ]:
            print(f"... {name}", file=sys.stderr, flush=True)
            ours.update(step())
    theirs = None if args.no_mlflow else mlflow_side(points, 300 if args.quick else 2000)
    theirs = theirs or {}
    rows = [
        (
            "run.log calls/s in a run",
            ">= 1,000,000/s",
            ours["log_calls_per_s"],
            theirs.get("log_metric_per_s"),
            "/s",
            True,
        ),
        ("  (MLflow async, buffered)", "", None, theirs.get("log_metric_async_per_s"), "/s", True),
        ("  (MLflow log_batch points/s)", "", None, theirs.get("log_batch_per_s"), "/s", True),
        ("durable after the run's end", "< 2 s", ours["durable_after_end_s"], None, "s", False),
        ("16 runs at once, end to end, points/s", ">= 500,000/s", ours["concurrent_points_per_s"], None, "/s", True),
        ("  store side alone: 16 ingesters at once", ">= 500,000/s", ours["ingest_points_per_s"], None, "/s", True),
        ("storage per point", "<= 32 B", ours["bytes_per_point"], theirs.get("bytes_per_point"), "B", False),
        ("read a 1M-point series", "< 100 ms", ours["read_series_s"], theirs.get("history_read_s"), "s", False),
        ("min/max downsample 1M -> 2000 buckets", "< 50 ms", ours["downsample_s"], None, "s", False),
        ("import launchbay (vs import mlflow)", "< 150 ms", ours["import_s"], theirs.get("import_s"), "s", False),
        ("%load_ext launchbay (IPython loaded)", "< 150 ms", ours["load_ext_s"], None, "s", False),
        ("python script.py: first line", "", ours["plain_first_line_s"], None, "s", False),
        ("local submit: first line (1,000 files)", "< plain + 150 ms", ours["submit_first_line_s"], None, "s", False),
        ("re-snapshot unchanged 10,000 files", "< 100 ms", ours["resnapshot_s"], None, "s", False),
        ("filter 10,000 runs by param + metric", "< 20 ms", ours["list_filter_s"], None, "s", False),
    ]
    print(f"\n{'figure':42} {'target':18} {'launchbay':>14} {'MLflow':>14} {'ratio':>10}")
    for label, target, mine, other, unit, higher_better in rows:
        ratio = ""
        if mine and other:
            r = mine / other if higher_better else other / mine
            ratio = f"{r:,.0f}x" if r >= 10 else f"{r:,.1f}x"
        print(f"{label:42} {target:18} {fmt(mine, unit):>14} {fmt(other, unit):>14} {ratio:>10}")
    overhead = ours["submit_first_line_s"] - ours["plain_first_line_s"]
    print(f"\nsubmit overhead over python script.py: {overhead * 1000:,.0f} ms (target < 150 ms)")
    print(json.dumps({"launchbay": ours, "mlflow": theirs}), file=sys.stderr)


if __name__ == "__main__":
    main()
