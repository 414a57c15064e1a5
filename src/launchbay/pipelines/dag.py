"""A pipeline's DAG drawn as SVG: steps as boxes coloured by status, edges by data (the notebook widget and the
sidebar show this same drawing).

Steps are laid out in columns by depth (the longest chain of steps before them); a column with many steps
(a fan-out) wraps into several. Each box carries ``data-step`` and ``data-run-id`` so a front end can open
the step's run when it is clicked.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from ..models import STATUS_COLOURS
from .definition import Definition

#: the run statuses' colours (as the run widget's badges), and a pipeline step's own two states
FILL = {"Waiting": "#ffffff", "NotStarted": "#e9ecef", **STATUS_COLOURS}
REUSED = "#75b798"  # a reused step: Completed, lighter, dashed
LIGHT_TEXT = {"Waiting", "NotStarted"}
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 40, 60, 12, 10
ROWS = 12  # at most this many boxes in a column; more wrap into another column of the same depth


def edges(definition: Definition) -> list[dict[str, str]]:
    """Each data edge: from step, its output, to step, its input."""
    out = []
    for step in definition.steps:
        for input_name, (up, output) in definition.upstream(step["name"]).items():
            out.append({"from": up, "output": output, "to": step["name"], "input": input_name})
    return out


def depths(definition: Definition, links: Sequence[Mapping[str, str]]) -> dict[str, int]:
    """Each step's column: 0 without upstream steps, else one more than its deepest upstream step."""
    ups: dict[str, list[str]] = {n: [] for n in definition.names()}
    for e in links:
        ups[e["to"]].append(e["from"])
    found: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in found:
            found[name] = 0  # the definition has no cycle (checked); this only stops a damaged one looping
            found[name] = 1 + max((depth(u) for u in ups[name]), default=-1)
        return found[name]

    for name in definition.names():
        depth(name)
    return found


def layout(definition: Definition) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Each step's box position (x, y), and the drawing's width and height."""
    links = edges(definition)
    level = depths(definition, links)
    columns: dict[int, list[str]] = {}
    for name in definition.names():
        columns.setdefault(level[name], []).append(name)
    place: dict[str, tuple[int, int]] = {}
    x, tallest = PAD, 0
    for d in sorted(columns):
        names = columns[d]
        for start in range(0, len(names), ROWS):
            chunk = names[start : start + ROWS]
            for row, name in enumerate(chunk):
                place[name] = (x, PAD + row * (BOX_H + GAP_Y))
            tallest = max(tallest, len(chunk))
            x += BOX_W + (GAP_X if start + ROWS >= len(names) else GAP_Y)
    width = x - GAP_X + PAD if place else 2 * PAD
    height = 2 * PAD + tallest * (BOX_H + GAP_Y) - GAP_Y if place else 2 * PAD
    return place, width, height


def dag_svg(definition: Definition, states: Sequence[Mapping[str, Any]], selected: str | None = None) -> str:
    """The drawing: one box per step (its name, status or "reused", and target), one arrow per data edge."""
    by_name = {s["name"]: s for s in states}
    place, width, height = layout(definition)
    parts = [
        f'<svg class="lb-dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="lb-dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6"'
        ' orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>',
    ]
    for e in edges(definition):
        (x1, y1), (x2, y2) = place[e["from"]], place[e["to"]]
        a, b = (x1 + BOX_W, y1 + BOX_H // 2), (x2, y2 + BOX_H // 2)
        mid = (a[0] + b[0]) // 2
        label = html.escape(f"{e['from']}.{e['output']} → {e['to']} ({e['input']})")
        parts.append(
            f'<path class="lb-dag-edge" d="M{a[0]},{a[1]} C{mid},{a[1]} {mid},{b[1]} {b[0]},{b[1]}" fill="none"'
            f' stroke="#888" stroke-width="1.2" marker-end="url(#lb-dag-arrow)"><title>{label}</title></path>'
        )
    for step in definition.steps:
        name = step["name"]
        state = by_name.get(name) or {"status": "Waiting"}
        status = str(state.get("status") or "Waiting")
        reused = bool(state.get("reused_from"))
        fill = REUSED if reused else FILL.get(status, "#6c757d")
        ink = "#212529" if status in LIGHT_TEXT else "#ffffff"
        x, y = place[name]
        run = state.get("reused_from") or state.get("run_id") or ""
        shown = "reused" if reused else status
        tip = html.escape(f"{name}: {shown}" + (f" — {state['reason']}" if state.get("reason") else ""))
        border = ' stroke="#0b3d91" stroke-width="3"' if name == selected else ' stroke="#495057" stroke-width="1"'
        dash = ' stroke-dasharray="4 2"' if reused else ""
        target = html.escape(str(step.get("target") or ""))
        parts.append(
            f'<g class="lb-dag-step" data-step="{html.escape(name)}" data-run-id="{html.escape(run)}"'
            f' data-status="{html.escape(shown)}" style="cursor:{"pointer" if run else "default"}">'
            f"<title>{tip}</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}"{border}{dash}/>'
            f'<text x="{x + 8}" y="{y + 16}" fill="{ink}" font-weight="600">{html.escape(_cut(name, 20))}</text>'
            f'<text x="{x + 8}" y="{y + 31}" fill="{ink}" font-size="10">{html.escape(shown)}'
            f"{' · ' + target if target else ''}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
