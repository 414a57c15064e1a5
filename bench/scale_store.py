"""Build (once) and cache the 100,000-run store the scale benchmarks read (issue: scale).

Each run has 5 params, 3 tags and 10 metric series of 1,000 points (noisy decaying curves,
monotone steps, regular timestamps): 10^9 points in all. Runs are made with
``RunStore.create_run`` (folder, ``run.json`` and index rows, as every launch does) and
their series written by ``RunStore.batch`` (the store's write API) in transactions of 200 runs,
so the store has the layout and the encoding a real one has.

The store is cached under ``/tmp/launchbay-bench-scale/`` keyed by ``FORMAT`` below (bump it
when this builder changes what it writes), so a re-run only opens it; a store written by an
older schema is brought up to date by the store's numbered migrations when it is first opened,
as a user's store is. ``python bench/scale_store.py`` builds it and prints its path.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from itertools import repeat
from pathlib import Path
from typing import Any

FORMAT = 1
CACHE = Path("/tmp/launchbay-bench-scale")
EXPERIMENTS = 20
LRS = (0.1, 0.03, 0.01, 0.003, 0.001)
METRICS = ("loss", "val_loss", "acc", "val_acc", "lr", "grad_norm", "throughput", "f1", "precision", "recall")
BATCH = 200  # runs whose series go into one write transaction


def store_path(runs: int, points: int) -> Path:
    return CACHE / f"f{FORMAT}-{runs}x{len(METRICS)}x{points}" / ".launchbay"


def run_params(i: int) -> dict[str, Any]:
    return {
        "lr": LRS[i % 5],
        "batch_size": (32, 64, 128, 256)[i % 4],
        "optimizer": ("adam", "sgd", "adamw")[i % 3],
        "layers": 2 + i % 11,
        "seed": i,
    }


def run_tags(i: int) -> dict[str, str]:
    return {"team": "abc"[i % 3], "dataset": f"data-v{i % 7}", "stage": ("dev", "prod")[i % 2]}


def _curves(rng: Any, i: int, points: int) -> list[Any]:
    """Ten realistic curves for run ``i`` (the last loss spreads over 0..1 so filters select a share)."""
    import numpy as np

    t = np.arange(points, dtype=np.float64)
    floor = (i * 7919 % 1000) / 1000.0
    decay = floor + (2.0 - floor) * np.exp(-t / (points / 5))
    out = []
    for k in range(len(METRICS)):
        noise = rng.normal(0.0, 0.02, points)
        out.append(decay * (1 + 0.1 * k) + noise if k % 2 == 0 else 1.0 - decay / 2.0 + noise)
    return out


def _write_series(run: Any, name: str, values: Any, steps: list[int], stamps: list[float]) -> None:
    run.append_points(name, list(zip(repeat(None), values.tolist(), steps, stamps)))


def build(runs: int, points: int, path: Path) -> None:
    import numpy as np

    from launchbay.models import RunSpec, RunStatus
    from launchbay.store import open_store

    tmp = path.parent.with_name(path.parent.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / ".launchbay").mkdir(parents=True)
    (tmp / ".launchbay" / "index.sqlite").touch()
    store = open_store(tmp / ".launchbay")
    rng = np.random.default_rng(18)
    steps = list(range(points))
    started = time.time()
    for first in range(0, runs, BATCH):
        made = []
        for i in range(first, min(runs, first + BATCH)):
            spec = RunSpec(
                script="train.py",
                experiment=f"exp-{i % EXPERIMENTS:02d}",
                name=f"trial-{i}",
                params=run_params(i),
                tags=run_tags(i),
            )
            made.append((i, store.create_run(spec, target_type="local", snapshot_id=None, properties={})))
        with store.batch() as batch:
            for i, record in made:
                t0 = record.created
                stamps = (t0 + 0.5 * np.arange(points)).tolist()
                run = batch.run(record.pk)
                for name, values in zip(METRICS, _curves(rng, i, points)):
                    _write_series(run, name, values, steps, stamps)
                run.transition(RunStatus.COMPLETED, started=t0, ended=t0 + points / 2)
        done = first + len(made)
        rate = done / (time.time() - started)
        print(
            f"\r  {done:,}/{runs:,} runs, {rate:,.0f} runs/s, ~{(runs - done) / rate:,.0f} s left   ",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    shutil.rmtree(path.parent, ignore_errors=True)
    tmp.rename(path.parent)


def ensure(runs: int = 100_000, points: int = 1_000) -> Path:
    """The cached store's path, building it first when missing (an interrupted build restarts)."""
    path = store_path(runs, points)
    if not (path / "index.sqlite").exists():
        print(f"... building {runs:,} runs x {len(METRICS)} series x {points:,} points at {path}", file=sys.stderr)
        t = time.time()
        build(runs, points, path)
        print(f"    built in {time.time() - t:,.0f} s", file=sys.stderr)
    from launchbay.store import open_store

    open_store(path).close()  # migrations (if the schema moved on since the build) run here, untimed
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=1_000)
    args = parser.parse_args()
    print(ensure(args.runs, args.points))


if __name__ == "__main__":
    main()
