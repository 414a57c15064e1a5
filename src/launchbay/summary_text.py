"""A run in a few lines of text: what a terminal, nbconvert or plain Python shows instead of a widget."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .handle import RunHandle


def run_summary_text(handle: RunHandle, follow: str = "%launchbay show") -> str:
    """The run's status line, its metrics' last values, its end (or the command that follows it)."""
    record = handle.record()
    lines = [f"Run {record.run_id} · {record.experiment} · {record.target} · {record.status.value}"]
    if record.status_detail:  # what a full disk kept out of the run
        lines[0] += f" — {record.status_detail}"
    if record.properties.get("launchbay.rerun_of"):
        lines[0] += f" · re-run of {record.properties['launchbay.rerun_of']}"
    for s in handle.metric_summaries(record=record):
        lines.append(f"  {s['name']}: last {s['last']:.6g} (step {s['last_step']}, {s['count']} points)")
    if record.status.is_terminal():
        lines.append(f"  exit code {record.exit_code}")
        if record.error:
            lines.append(f"  error: {record.error.get('message')}")
    else:
        lines.append(f"  follow it with `{follow} {record.run_id}`")
    return "\n".join(lines)
