"""Notebook cells as pipeline steps (``%%submit --step NAME --pipeline P``), submitted together by
``%launchbay pipeline submit P``; the text front end prints one line per step change."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import CLI
from ipython_driver import run_cells

PREP = """%%submit --step prep --pipeline demo --output clean=outputs/clean
import pathlib
pathlib.Path("outputs/clean").mkdir(parents=True, exist_ok=True)
pathlib.Path("outputs/clean/rows.txt").write_text("1 2 3")
"""
TRAIN = """%%submit --step train --pipeline demo --input data=prep.clean --param lr=0.1 --output model=outputs/model
import os, pathlib, sys
rows = open(os.path.join(os.environ["LAUNCHBAY_INPUT_DATA"], "rows.txt")).read().split()
pathlib.Path("outputs/model").mkdir(parents=True, exist_ok=True)
pathlib.Path("outputs/model/m.txt").write_text(f"{len(rows)} rows, lr {lr}, argv {sys.argv[1:]}")
print("trained", lr)
"""


@pytest.mark.slow
def test_cells_kept_as_steps_run_as_one_pipeline_and_run_again_reuse_what_did_not_change(project: Path) -> None:
    out = run_cells(project, PREP, TRAIN, "%launchbay pipeline submit demo")
    assert "step 'prep' kept in pipeline 'demo' (steps: prep)" in out
    assert "step 'train' kept in pipeline 'demo' (steps: prep, train)" in out
    run_id = re.search(r"launchbay: pipeline (\S+) \(pipeline demo\)", out).group(1)
    assert f"launchbay: pipeline {run_id} Completed" in out, out
    assert re.search(r"prep\s+Completed\s+\S+\s+first run of this step", out)  # one line per step change
    shown = json.loads(CLI(project)("pipeline", "show", run_id, "--json", check=True).stdout)
    assert [(s["name"], s["status"]) for s in shown["steps"]] == [("prep", "Completed"), ("train", "Completed")]
    train = shown["steps"][1]["run_id"]
    log = CLI(project)("logs", train, check=True).stdout
    assert "trained 0.1" in log  # the parameter is a variable in the cell

    # a new kernel, the same cells: the pipeline reuses both; a new parameter value runs train only, saying why
    again = run_cells(project, PREP, TRAIN, "%launchbay pipeline submit demo --param lr=0.5")
    assert re.search(r"prep\s+reused\s+\S+", again)
    assert re.search(r"train\s+Completed\s+\S+\s+parameter lr 0.1 → 0.5", again), again  # ran, and why
    assert re.search(r"launchbay: pipeline \S+ Completed", again)


def test_a_step_cell_says_what_it_needs_in_one_line(project: Path) -> None:
    out = run_cells(
        project,
        "%%submit --step prep\nprint(1)\n",
        "%%submit --step prep --pipeline demo --push x\nprint(1)\n",
        "%launchbay pipeline submit nothing",
    )
    assert "A pipeline step needs both: %%submit --step NAME --pipeline PIPELINE." in out
    assert "leave out --push/--pull/--sweep/--command/--distributed" in out
    assert "No cells are kept for pipeline 'nothing'" in out
