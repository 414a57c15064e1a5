"""``launchbay show RUN`` as text a person reads: one fact a line, no Python reprs, nothing empty."""

from __future__ import annotations

import json
import shlex
from typing import Any


def _value(value: Any) -> str:
    """Lists as words, mappings as JSON, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(shlex.quote(str(v)) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def _duration(seconds: float | None) -> str:
    from ..ipython.textwatch import elapsed_text

    return elapsed_text(seconds) if seconds is not None else ""


def show_text(details: dict[str, Any]) -> str:
    """The run's details, top facts first; sections only when they hold something."""
    lines: list[str] = []

    def fact(label: str, value: Any) -> None:
        text = _value(value)
        if text:
            lines.append(f"{label:12} {text}")

    fact("run", details.get("run_id"))
    fact("name", details.get("name"))
    status = details.get("status") or ""
    if details.get("queue_position"):
        from ..queueing import ordinal

        status += f", {ordinal(details['queue_position'])} for {details['queue']}"
    if details.get("exit_code") is not None:
        status += f" (exit code {details['exit_code']})"
    if details.get("status_detail"):  # what a full disk kept out of the run
        status += f" — {details['status_detail']}"
    fact("status", status)
    fact("experiment", details.get("experiment"))
    fact("target", details.get("target"))
    fact("created by", details.get("created_by"))
    script = str(details.get("script") or "")
    arguments = [str(a) for a in details.get("arguments") or []]
    if script.endswith(".launchbay/cell.py"):
        fact("code", "a %%submit cell" + (f" with arguments {_value(arguments)}" if arguments else ""))
    else:
        fact("command", " ".join(shlex.quote(p) for p in [script, *arguments]))
    fact("environment", details.get("environment"))
    if details.get("distributed"):
        from ..distributed import parse

        fact("distributed", parse(details["distributed"]).describe())  # type: ignore[union-attr]
    properties = dict(details.get("properties") or {})
    fact("project", properties.pop("launchbay.source_dir", None))
    fact("created", details.get("created"))
    fact("started", details.get("started"))
    fact("ended", details.get("ended"))
    fact("duration", _duration(details.get("duration_s")))
    error = details.get("error") or {}
    if error.get("message"):
        where = f"  (the full output: launchbay logs {details.get('run_id')})" if error.get("traceback") else ""
        fact("error", f"{error['message']}{where}")
    fact("parent run", details.get("parent_run_id"))
    fact("re-run of", details.get("rerun_of"))
    metric = details.get("primary_metric") or {}
    if metric.get("name"):
        fact("metric", f"{metric['name']} = {metric.get('value')}")
    for section, data in (("tags", details.get("tags")), ("params", details.get("params")), ("properties", properties)):
        if data:
            lines.append(f"{section}:")
            lines.extend(f"  {k}: {_value(v)}" for k, v in data.items())
    snapshot = details.get("snapshot") or {}
    if snapshot.get("id"):
        size = f", {snapshot['files']} files, {snapshot['bytes']:,} bytes" if snapshot.get("files") is not None else ""
        lines.append(f"{'snapshot':12} {snapshot['id'][:16]}{size}")
    for section in ("inputs", "outputs"):
        if details.get(section):
            lines.append(f"{section}:")
            lines.extend(_data_line(i) for i in details[section])
    for key, value in details.items():
        if key.startswith("rendered_"):
            lines.append(f"{key}:")
            lines.extend("  " + line for line in str(value).splitlines())
    return "\n".join(lines)


def _data_line(item: dict[str, Any]) -> str:
    """``  train: ./data/train (dataset mnist:2) version 3f2a..., 3 files, 1,024 bytes, mount, 0 bytes sent``"""
    named = f" (dataset {item['dataset']}:{item['dataset_version']})" if item.get("dataset") else ""
    sent = f", {item['bytes_sent']:,} bytes sent" if item.get("bytes_sent") else ""
    return (
        f"  {item['name']}: {item['source']}{named} version {str(item['version'])[:12]}, "
        f"{item['files']:,} files, {item['bytes']:,} bytes, {item['mode']}{sent}"
    )
