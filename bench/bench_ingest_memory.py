"""Peak memory of ingesting a journal backlog: ``python bench/bench_ingest_memory.py STORE MB [--legacy] [--table]``.

Writes MB megabytes of journal (the in-run writer's format: 4 processes' files of
40,000-point records, as a 0.2 s flush of a fast training loop makes) into one run of
a new store at STORE, then ingests it in a fresh interpreter and prints one JSON line:
backlog bytes, points, seconds, and the ingesting process's peak RSS before and after.
``--table`` prints two rows of the scale table instead (``bash bench/run_scale.sh``).
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import time
from pathlib import Path

POINTS_PER_RECORD = 40_000


def make_backlog(store_path: str, megabytes: float, files: int = 4, legacy: bool = False) -> tuple[str, int, int]:
    """A Running run whose journal holds ``megabytes`` of points; (run id, bytes, points).

    ``legacy`` writes the first journal format (``*.bin``), which launchbay before 0.2 reads."""
    from launchbay.models import RunSpec
    from launchbay.store import open_store
    from launchbay.tracking.journalfmt import encode

    store = open_store(store_path)
    record = store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
    store.update_run(record.pk, status="Running")
    journal = record.run_dir / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    target = int(megabytes * (1 << 20))
    suffix = ".bin" if legacy else ".jnl"
    handles = [open(journal / f"p{100 + k}-1{suffix}", "wb") for k in range(files)]
    written = points = step = 0
    now = time.time()
    while written < target:
        for k, fh in enumerate(handles):
            batch = [(f"m{k}", step * 0.001 + i, step + i, now + i * 1e-6) for i in range(POINTS_PER_RECORD)]
            payload = marshal.dumps(("m", batch))
            data = len(payload).to_bytes(4, "little") + payload if legacy else encode(payload)
            fh.write(data)
            written += len(data)
            points += len(batch)
        step += POINTS_PER_RECORD
    for fh in handles:
        fh.close()
    return record.run_id, written, points


INGEST = """
import json, sys, time
from launchbay.ingest import ingest_run
from launchbay.store import open_store

def peak_kb():  # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's across exec)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))

store = open_store(sys.argv[1])
record = store.get_run(sys.argv[2])
before = peak_kb()
start = time.perf_counter()
ingest_run(store, record)
seconds = time.perf_counter() - start
after = peak_kb()
count = sum(r[0] for r in store.db.execute("SELECT count FROM series WHERE run_pk=?", (record.pk,)))
print(json.dumps({"rss_before_mb": before / 1024, "peak_rss_mb": after / 1024, "seconds": seconds, "stored": count}))
"""


def measure(store_path: str, megabytes: float, legacy: bool = False) -> dict[str, float]:
    """Ingest in a fresh interpreter; INGEST_PYTHONPATH picks another launchbay to compare."""
    run_id, size, points = make_backlog(store_path, megabytes, legacy=legacy)
    env = dict(os.environ)
    if os.environ.get("INGEST_PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["INGEST_PYTHONPATH"]
    out = subprocess.run(
        [sys.executable, "-c", INGEST, store_path, run_id], capture_output=True, text=True, check=True, env=env
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result.update(backlog_mb=size / (1 << 20), points=points)
    return result


def table(result: dict[str, float]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from table import row

    peak, rate = result["peak_rss_mb"], result["points"] / result["seconds"]
    row(
        f"ingest peak RSS, {result['backlog_mb']:,.0f} MB journal backlog",
        "<= 256 MB",
        f"{peak:,.0f} MB",
        f"interpreter before {result['rss_before_mb']:,.0f} MB",
        peak / result["rss_before_mb"],
        peak <= 256,
    )
    row(
        f"  ingest rate ({result['points'] / 1e6:,.1f}M points)",
        ">= 1M points/s",
        f"{rate / 1e6:,.2f}M/s",
        "",
        None,
        rate >= 1e6,
    )


if __name__ == "__main__":
    found = measure(str(Path(sys.argv[1]).resolve()), float(sys.argv[2]), legacy="--legacy" in sys.argv)
    if "--table" in sys.argv:
        print(json.dumps(found), file=sys.stderr)
        table(found)
    else:
        print(json.dumps(found))
