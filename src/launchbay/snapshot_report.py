"""``launchbay snapshot --dry-run``: every file and why, sizes by folder, and the budget verdict.

It exits non-zero exactly when a real submit of the same folder would be refused, so a
script (or CI) can check a project before sending it anywhere.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from .snapshot import explain, scan
from .snapshot_budget import Budget, budget_message, human_bytes, plan, plural

EXIT_OVER_BUDGET = 1


def budget_report(root: Path, budget: Budget, entry: str = "", store: Path | None = None) -> dict[str, Any]:
    """The dry run's data: ``explain`` plus the budget, whether it is exceeded, and what to leave out.

    ``store`` is left out as a real snapshot leaves it out (when it lives inside the project)."""
    scan_ = scan(root, explain=True, skip=(store,) if store else ())
    report = explain(root, scan_)
    files = scan_.files
    over = budget.exceeded_by(files)
    _, chosen = plan(files, budget, entry) if over else ([], [])
    report["budget"] = {
        "max_bytes": budget.max_bytes,
        "max_files": budget.max_files,
        "over": over,
        "leave_out": [{"path": o.path, "line": o.line, "bytes": o.bytes, "files": o.files} for o in chosen],
        "message": budget_message(Path(report["root"]), files, budget, entry) if over else None,
    }
    return report


def skipped_line(skipped: list[tuple[str, str]], shown: int = 5) -> str:
    """What a submit says, on one line, of the files its snapshot left out unasked (unreadable files,
    symlink loops, links out of the project): the first ``shown`` of them and why."""
    named = "; ".join(f"{path} ({why.split(': skipped')[0]})" for path, why in skipped[:shown])
    more = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (
        f"{plural(len(skipped), 'file')} not in the snapshot, so not in the run: {named}{more} "
        "(`launchbay snapshot --dry-run` lists every file and why)"
    )


def print_dry_run(root: Path, as_json: bool, store: str | None = None, out: TextIO = sys.stdout) -> int:
    """Print the dry run of ``root`` (the current folder is treated as where the run starts)."""
    from .config import find_store_dir, load_config

    root = root.resolve()
    budget = Budget.from_config(load_config(root).snapshot)
    cwd = Path.cwd().resolve()
    entry = os.path.relpath(cwd, root) + "/" if cwd != root and cwd.is_relative_to(root) else ""
    report = budget_report(root, budget, entry, find_store_dir(store))
    verdict = report["budget"]
    if as_json:
        json.dump(report, out, indent=2)
        out.write("\n")
        return EXIT_OVER_BUDGET if verdict["over"] else 0
    leave_out = {o["path"]: o["line"] for o in verdict["leave_out"]}
    for f in report["included"]:
        mark = f"   <- over budget: leave out with {leave_out[f['path']]}" if f["path"] in leave_out else ""
        out.write(f"+ {f['path']}  ({human_bytes(f['size'])}; {f['rule']}){mark}\n")
    for f in report["excluded"]:
        out.write(f"- {f['path']}  ({f['rule']})\n")
    for f in report["unreadable"]:
        out.write(f"! {f['path']}  (skipped: {f['reason']})\n")
    out.write("\nSizes by folder:\n")
    for f in report["folders"]:
        line = f"  {f['folder']:40} {human_bytes(f['bytes']):>10} {f['files']:>6} files"
        if f["folder"] in leave_out:
            line += f"   <- over budget: leave out with {leave_out[f['folder']]}"
        out.write(line + "\n")
    size = f"{plural(report['files'], 'file')}, {human_bytes(report['bytes'])}"
    if not verdict["over"]:
        out.write(f"\n{size} would be snapshotted: within the budget of {budget.describe()}.\n")
        return 0
    out.write(
        f"\n{size} would be snapshotted: OVER the budget of {budget.describe()}; a submit would be refused.\n"
        f"{verdict['message']}\n"
    )
    return EXIT_OVER_BUDGET
