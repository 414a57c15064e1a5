"""A sweep that goes on from earlier ones: v1's ``resume_from`` (warm start) and ``resume_child_runs``.

A first sweep is cut off by its time limit while its trials are part way; a second one, written the v1
way, resumes those trials (same params, their ``outputs/`` handed over as ``--resume-from``, as v1 did)
and learns from the first sweep's results with a Bayesian sampler; its best run is compared with the
first sweep's trials. What cannot be resumed is refused in one line before anything is recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import launchbay
from conftest import write
from launchbay.errors import ConfigError
from launchbay.sweeps import get_sweep, sweep
from launchbay.sweeps.space import choice

OPT_IN = "import launchbay.compat.azureml; launchbay.compat.azureml.install()\n"

TRAIN = """
    import argparse, json, os, time
    from azureml.core import Run

    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--resume-from", default=None)
    a = p.parse_args()
    run = Run.get_context()
    start = 0
    if a.resume_from:
        start = json.load(open(os.path.join(a.resume_from, "ckpt.json")))["epoch"] + 1
    print("START", start, flush=True)
    os.makedirs("outputs", exist_ok=True)
    for epoch in range(start, 6):
        run.log("accuracy", 1 - abs(a.lr - 0.05) - 0.01 * (5 - epoch))
        with open("outputs/ckpt.json.tmp", "w") as fh:
            json.dump({"epoch": epoch}, fh)
        os.replace("outputs/ckpt.json.tmp", "outputs/ckpt.json")
        if not a.resume_from and os.environ.get("SLOW_FIRST") == "1":
            time.sleep(1.5)  # the first sweep's time limit cuts it part way
"""

CONTROL = """
    import json, os, sys
    from azureml.core import Experiment, ScriptRunConfig, Workspace
    from azureml.core.runconfig import RunConfiguration
    from azureml.train.hyperdrive import (
        BayesianParameterSampling, GridParameterSampling, HyperDriveConfig, HyperDriveRun, PrimaryMetricGoal,
        choice,
    )

    ws = Workspace.from_config()
    experiment = Experiment(ws, "v1-resume")
    src = ScriptRunConfig(source_directory=".", script="train.py", compute_target="local")
    if sys.argv[1] == "first":
        os.environ["SLOW_FIRST"] = "1"
        config = HyperDriveConfig(
            run_config=src, hyperparameter_sampling=GridParameterSampling({"--lr": choice(0.01, 0.05)}),
            primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
            max_total_runs=2, max_concurrent_runs=2, max_duration_minutes=0.08,
        )
    else:
        first = HyperDriveRun(experiment, sys.argv[2])
        config = HyperDriveConfig(
            run_config=src,
            hyperparameter_sampling=BayesianParameterSampling({"--lr": choice(0.01, 0.03, 0.05, 0.07)}),
            primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
            max_total_runs=3, max_concurrent_runs=2,
            resume_from=first, resume_child_runs=first.get_children(),
        )
    run = experiment.submit(config)
    run.wait_for_completion()
    best, best_own = run.get_best_run_by_primary_metric(), run.get_best_run_by_primary_metric(False, True, False)
    print("RESULT " + json.dumps({
        "id": run.id,
        "status": run.get_status(),
        "best": best and best.id,
        "best_own": best_own and best_own.id,
    }))
"""


def control(project: Path, *argv: str) -> dict:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if k != "SLOW_FIRST"}
    proc = subprocess.run(
        [sys.executable, "control.py", *argv], cwd=project, capture_output=True, text=True, timeout=240, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_v1_sweep_resumes_the_trials_an_earlier_one_left_part_way_and_learns_from_it(project: Path) -> None:
    write(project, "train.py", TRAIN)
    write(project, "control.py", OPT_IN + textwrap.dedent(CONTROL))
    first = control(project, "first")
    cut = {c.run_id: c for c in get_sweep(first["id"]).children()}
    assert len(cut) == 2 and all(c.status.value == "Canceled" for c in cut.values())  # its time limit
    saved = {rid: json.loads(launchbay.get_run(rid).file_path("outputs/ckpt.json").read_text())["epoch"] for rid in cut}
    assert all(epoch < 5 for epoch in saved.values())  # part way

    second = control(project, "second", first["id"])
    assert second["status"] == "Completed"
    handle = get_sweep(second["id"])
    children = {c.run_id: c for c in handle.children()}
    resumed = {c.tags["launchbay.resume_of"]: c for c in children.values() if "launchbay.resume_of" in c.tags}
    assert set(resumed) == set(cut)  # every cut-off trial went on
    for old_id, child in resumed.items():
        assert child.spec["params"] == cut[old_id].spec["params"]  # with its own params
        log = launchbay.get_run(child.run_id).get_log()
        assert f"START {saved[old_id] + 1}" in log  # from where it stopped, not from the start
        assert len(launchbay.get_run(child.run_id).get_metric_series("accuracy")) == 5 - saved[old_id]
    assert len(children) == 3  # the resumed trials count towards max_total_runs
    warm = handle.config()["warm_start"]
    assert {w["run_id"] for w in warm} == set(cut)  # what the bayesian sampler learned from
    assert second["best_own"] in children
    assert second["best"] in set(children) | set(cut)


def test_what_cannot_be_resumed_is_refused_before_anything_is_recorded(project: Path) -> None:
    write(project, "train.py", "print('plain run')\n")
    plain = launchbay.submit("train.py", source_dir=project)
    assert plain.wait(timeout=60) == "Completed"
    before = len(launchbay.runs())
    with pytest.raises(ConfigError, match=f"{plain.run_id} is not a sweep; warm_start"):
        sweep("train.py", {"lr": choice(1, 2)}, primary_metric="loss", warm_start=[plain.run_id])
    with pytest.raises(ConfigError, match=f"launchbay resume {plain.run_id}"):
        sweep("train.py", {"lr": choice(1, 2)}, primary_metric="loss", resume_children=[plain.run_id])
    with pytest.raises(ConfigError, match="max_total_runs is 1"):
        sweep("train.py", {"lr": choice(1, 2)}, primary_metric="loss", max_total_runs=1, resume_children=["a", "b"])
    assert len(launchbay.runs()) == before
