"""A sweep's progress as lines: each trial's start and end, and the best so far, as they happen.

``launchbay sweep`` prints them on stderr; the Azure ML layer's ``wait_for_completion(show_output=True)``
on stdout, where v1 printed.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def watch(handle: Any, quiet: bool = False, poll_s: float = 0.5, out: TextIO | None = None) -> str:
    """Print a line when a child starts, ends or is stopped, and when the best so far improves (on stderr,
    or ``out``)."""
    from .handle import readable, shown

    config = handle.config()
    metric, maximize = config["primary_metric"], config["goal"] == "maximize"
    total = handle.total_runs()
    started: set[str] = set()
    ended: set[str] = set()
    best: float | None = None
    say = (lambda _line: None) if quiet else (lambda line: print(line, file=out or sys.stderr, flush=True))
    while True:
        status = handle.status
        rows = handle.table()
        for row in sorted(rows, key=lambda r: r["index"]):
            params = " ".join(f"{k}={readable(v)}" for k, v in row["params"].items())
            if row["run_id"] not in started:
                started.add(row["run_id"])
                say(f"  {'started':13} {row['run_id']}  ({len(started)} of {total})  {params}")
            if row["run_id"] in ended or row["status"] not in ("Completed", "Failed", "Canceled"):
                continue
            ended.add(row["run_id"])
            value = row["metric"]
            what = shown(row)
            reason = f"  {row['early_termination']}" if row["early_termination"] else ""
            say(f"  {what.lower():13} {row['run_id']}  {metric}={readable(value)}{reason}")
            if row["status"] == "Completed" and value is not None and value == value:
                if best is None or (value > best if maximize else value < best):
                    best = value
                    say(f"  best so far: {metric}={readable(value)} ({row['run_id']}, {params})")
        if status in ("Completed", "Failed", "Canceled"):
            return str(status)
        time.sleep(poll_s)
