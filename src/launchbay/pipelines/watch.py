"""A pipeline in text: one line per step change until it ends (the CLI, v1's ``wait_for_completion`` and
the notebook where no widget renders all print these same lines)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

TERMINAL = ("Completed", "Failed", "Canceled")


def step_line(step: dict[str, Any]) -> str:
    """``train  Completed  RUN  why it ran`` (a reused step says ``reused`` and names the run it reused)."""
    what = "reused" if step.get("reused_from") else step["status"]
    run = step.get("reused_from") or step.get("run_id") or "-"
    return f"{step['name']:12} {what:10} {run}  {step.get('reason') or ''}".rstrip()


def follow_pipeline(
    handle: Any, out: TextIO | None = None, poll_s: float = 0.2, indent: str = "  ", timeout: float | None = None
) -> str:
    """Print a line each time a step changes (not while it waits) until the pipeline ends (or ``timeout``
    seconds passed); its status.

    Ctrl-C stops the watching, never the pipeline (KeyboardInterrupt goes on to the caller)."""
    out = out or sys.stdout
    seen: dict[str, tuple[Any, ...]] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = str(handle.status)
        for step in handle.steps:
            state = (step["status"], step.get("run_id"), step.get("reused_from"))
            if seen.get(step["name"]) != state and step["status"] != "Waiting":
                seen[step["name"]] = state
                out.write(indent + step_line(step) + "\n")
                out.flush()
        if status in TERMINAL or (deadline is not None and time.monotonic() > deadline):
            return status
        time.sleep(poll_s)
