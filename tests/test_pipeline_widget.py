"""The pipeline's DAG as the notebook widget draws it: a box per step coloured by its status (reused steps
lighter, dashed), an arrow per data edge; picking a step opens its run under the DAG."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from conftest import write
from launchbay import Step, pipeline
from launchbay.pipelines.dag import FILL, REUSED, dag_svg, layout
from launchbay.pipelines.definition import define


def fan_out(n: int) -> list[Step]:
    middle = [
        Step(f"part{i}", "part.py", inputs={"data": "prep.clean"}, outputs={"out": "outputs/o"}) for i in range(n)
    ]
    gather = Step("gather", "gather.py", inputs={f"p{i}": f"part{i}.out" for i in range(n)})
    return [Step("prep", "prep.py", outputs={"clean": "outputs/clean"}), *middle, gather]


def boxes(svg: str) -> dict[str, dict[str, str]]:
    found = {}
    for m in re.finditer(
        r'<g class="lb-dag-step" data-step="([^"]+)" data-run-id="([^"]*)" data-status="([^"]+)"', svg
    ):
        fill = re.search(r'fill="(#[0-9a-f]+)"', svg[m.end() :]).group(1)
        found[m.group(1)] = {"run_id": m.group(2), "status": m.group(3), "fill": fill}
    return found


def test_a_fan_out_of_48_steps_is_laid_out_in_columns_by_depth_without_overlaps() -> None:
    definition = define(fan_out(48), "fan")
    place, width, height = layout(definition)
    assert len(set(place.values())) == 50  # no two boxes in one place
    xs = sorted({x for x, _ in place.values()})
    assert place["prep"][0] == xs[0] and place["gather"][0] == xs[-1]  # prep first, gather last
    assert 4 <= len(xs) - 2 <= 5  # the 48 wrap into a few columns, not one 2,000-pixel tall one
    svg = dag_svg(definition, [])
    assert svg.count('class="lb-dag-edge"') == 96 and len(boxes(svg)) == 50
    assert all(b["status"] == "Waiting" and b["fill"] == FILL["Waiting"] for b in boxes(svg).values())


@pytest.mark.slow
def test_the_widget_colours_steps_by_status_and_opens_a_step_run_when_picked(project: Path) -> None:
    from launchbay.ipython.pipeline_widget import PipelineWidget

    write(project, "prep.py", "import os\nos.makedirs('outputs/clean')\nopen('outputs/clean/x','w').write('x')\n")
    write(project, "train.py", "raise SystemExit('no GPU here')\n")
    write(project, "eval.py", "print('never')\n")
    steps = [
        Step("prep", "prep.py", outputs={"clean": "outputs/clean"}),
        Step("train", "train.py", inputs={"data": "prep.clean"}, outputs={"model": "outputs/model"}),
        Step("eval", "eval.py", inputs={"model": "train.model"}),
    ]
    handle = pipeline(steps, experiment="w").submit()
    widget = PipelineWidget(handle)
    assert handle.wait(timeout=90) == "Failed"
    deadline = time.time() + 10
    while "Failed" not in widget._header.value and time.time() < deadline:
        time.sleep(0.1)
    shown = boxes(widget._dag.value)
    states = {s["name"]: s for s in handle.steps}
    assert {n: (b["status"], b["fill"]) for n, b in shown.items()} == {
        "prep": ("Completed", FILL["Completed"]),
        "train": ("Failed", FILL["Failed"]),
        "eval": ("NotStarted", FILL["NotStarted"]),
    }
    assert shown["prep"]["run_id"] == states["prep"]["run_id"] and shown["eval"]["run_id"] == ""
    assert widget._dag.value.count('class="lb-dag-edge"') == 2
    assert "1 of 3" not in widget._header.value and "3 of 3 steps done" in widget._header.value
    assert widget.redraw(handle.steps) is False  # nothing changed: nothing redrawn

    widget._pick.value = "train"  # what a click on the box does
    assert widget.selected == "train" and widget._picker.value == "train"
    (opened,) = widget._run_view.children
    assert opened.handle.run_id == states["train"]["run_id"]
    assert 'stroke="#0b3d91"' in widget._dag.value  # the picked box is outlined
    widget._picker.value = "eval"
    assert "has no run yet: not started: step train did not complete" in widget._run_view.children[0].value

    again = pipeline(steps, experiment="w").submit()
    assert again.wait(timeout=60) == "Failed"  # train fails again; prep is reused
    assert boxes(dag_svg(again.definition(), again.steps))["prep"]["fill"] == REUSED
    widget.close()
