"""What differs between two runs: parameters and arguments, environment, metrics, code.

One implementation behind ``launchbay diff``, ``%launchbay diff`` and the sidebar's
compare view (``LaunchbayService.compare`` calls ``snapshot_diff`` from here).
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from .errors import LaunchbayError
from .store import RunRecord, Store

DIFF_MAX_FILE_BYTES = 200 * 1024
DIFF_MAX_TOTAL_CHARS = 2_000_000
_LOWER_IS_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "perplexity", "wer", "cer", "time", "latency")
_MISSING = object()


def snapshot_diff(store: Store, first: RunRecord, second: RunRecord) -> list[dict[str, Any]]:
    """File-by-file diff of two runs' snapshots (first → second): text files unified,
    binary or large files by size and SHA-256."""
    old, new = _manifest(store, first.snapshot_id), _manifest(store, second.snapshot_id)
    out: list[dict[str, Any]] = []
    budget = DIFF_MAX_TOTAL_CHARS
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path), new.get(path)
        if a is not None and b is not None and a["sha256"] == b["sha256"]:
            continue
        status = "added" if a is None else "removed" if b is None else "modified"
        entry: dict[str, Any] = {"path": path, "status": status, "unified": ""}
        texts = [_text(store, e) for e in (a, b)]
        if any(t is False for t in texts):
            entry["binary"] = True
            entry["note"] = f"binary or large file ({_describe(a)} → {_describe(b)})"
        elif budget <= 0:
            entry["note"] = "diff left out: the diff of these snapshots is too long to show"
        else:
            lines = difflib.unified_diff(
                str(texts[0] or "").splitlines(),
                str(texts[1] or "").splitlines(),
                fromfile=f"{first.run_id}/{path}" if a else "/dev/null",
                tofile=f"{second.run_id}/{path}" if b else "/dev/null",
                lineterm="",
            )
            entry["unified"] = "\n".join(lines) + "\n"
            budget -= len(entry["unified"])
        out.append(entry)
    return out


def _manifest(store: Store, snapshot_id: str | None) -> dict[str, dict[str, Any]]:
    if not snapshot_id:
        return {}
    try:
        manifest = store.snapshot_manifest(snapshot_id)
    except (OSError, ValueError) as exc:
        raise LaunchbayError(f"Snapshot {snapshot_id[:12]} cannot be read from the store ({exc}).") from exc
    return {f["path"]: f for f in manifest.get("files", [])}


def _text(store: Store, entry: dict[str, Any] | None) -> str | None | bool:
    """The file's text, None when absent, False when binary or too large to diff."""
    if entry is None:
        return None
    if entry.get("size", 0) > DIFF_MAX_FILE_BYTES:
        return False
    try:
        data = store.blobs.read_bytes(entry["sha256"])
    except (OSError, ValueError):
        return False
    if b"\x00" in data:
        return False
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return False


def _describe(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "absent"
    return f"{entry.get('size', 0)} bytes, sha256 {str(entry.get('sha256', ''))[:12]}"


def param_differences(records: list[RunRecord]) -> tuple[list[str], list[str]]:
    """Every parameter name of the runs, and those whose value is not the same in all of them."""
    keys = sorted({key for r in records for key in r.params})
    differing = [k for k in keys if len({repr(r.params.get(k, _MISSING)) for r in records}) > 1]
    return keys, differing


def side_by_side(first: RunRecord, second: RunRecord) -> list[dict[str, Any]]:
    """Rows ``{key, a, b, differs}`` for the run settings, then every parameter."""
    rows = []
    for key in ("script", "arguments", "target"):
        a, b = getattr(first, key), getattr(second, key)
        rows.append({"key": key, "a": a, "b": b, "differs": a != b})
    keys, differing = param_differences([first, second])
    for key in keys:
        a, b = first.params.get(key), second.params.get(key)
        rows.append({"key": f"param:{key}", "a": a, "b": b, "differs": key in differing})
    return rows


def environment_rows(first: RunRecord, second: RunRecord) -> list[dict[str, Any]]:
    """The environment each run ran in (name, hash, image, python), differing fields marked."""

    def facts(record: RunRecord) -> dict[str, Any]:
        state = record.target_state.get("environment")
        state = state if isinstance(state, dict) else {}
        return {
            "environment": record.spec.get("environment") or state.get("name"),
            "environment hash": state.get("hash"),
            "image": record.target_state.get("image") or state.get("image"),
            "target type": record.target_type,
        }

    a, b = facts(first), facts(second)
    return [{"key": k, "a": a[k], "b": b[k], "differs": a[k] != b[k]} for k in a]


def lower_is_better(name: str) -> bool:
    """Which way "best" goes for a metric: lower for losses and errors, else higher."""
    lowered = name.lower()
    return any(word in lowered for word in _LOWER_IS_BETTER)


def metric_rows(store: Store, first: RunRecord, second: RunRecord) -> list[dict[str, Any]]:
    """Final and best value of each scalar metric of either run."""
    summaries = [{s["name"]: s for s in store.metric_summaries(r)} for r in (first, second)]
    names = list(dict.fromkeys([*summaries[0], *summaries[1]]))
    rows = []
    for name in names:
        low = lower_is_better(name)
        row: dict[str, Any] = {"name": name, "best_is": "min" if low else "max"}
        for side, summary in zip(("a", "b"), summaries):
            s = summary.get(name)
            row[side] = None if s is None else {"final": _num(s["last"]), "best": _num(s["min" if low else "max"])}
        rows.append(row)
    return rows


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def diff_runs(store: Store, first: RunRecord, second: RunRecord) -> dict[str, Any]:
    """Everything ``launchbay diff A B --json`` prints."""
    return {
        "a": first.run_id,
        "b": second.run_id,
        "settings": side_by_side(first, second),
        "environment": environment_rows(first, second),
        "metrics": metric_rows(store, first, second),
        "files": snapshot_diff(store, first, second),
    }


def render_text(diff: dict[str, Any]) -> str:
    """The diff as the CLI prints it: '*' marks a difference."""
    lines = [f"a = {diff['a']}", f"b = {diff['b']}", ""]

    def table(title: str, rows: list[dict[str, Any]]) -> None:
        width = max([len(r["key"]) for r in rows] + [4])
        lines.append(title)
        for r in rows:
            mark = "*" if r["differs"] else " "
            lines.append(f" {mark} {r['key']:<{width}}  a: {_show(r['a'])}   b: {_show(r['b'])}")
        lines.append("")

    table("Settings and parameters:", diff["settings"])
    table("Environment:", diff["environment"])
    lines.append("Metrics (final / best):")
    labels = [f"{m['name']} (best = {m['best_is']})" for m in diff["metrics"]]
    width = max([len(label) for label in labels] + [4])
    for m, label in zip(diff["metrics"], labels):
        a, b = (_pair(m[s]) for s in ("a", "b"))
        mark = "*" if a != b else " "
        lines.append(f" {mark} {label:<{width}}  a: {a}   b: {b}")
    lines.append("")
    files = diff["files"]
    lines.append(f"Code: {len(files)} file(s) differ" + (":" if files else "."))
    for f in files:
        if f.get("note"):
            lines.append(f"{f['status']} {f['path']}: {f['note']}")
        else:
            lines.append(f["unified"].rstrip("\n"))
    return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(str(v) for v in value) or "(none)"
    return str(value)


def _pair(side: dict[str, Any] | None) -> str:
    if side is None:
        return "-"
    return f"{_fmt(side['final'])} / {_fmt(side['best'])}"


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}"
