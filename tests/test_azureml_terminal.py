"""A v1 control script run from a terminal (plain python) says what it is doing while it waits.

An environment build prints the lines ``launchbay submit`` prints; a HyperDrive sweep's
``wait_for_completion(show_output=True)`` prints each trial's start and end and the best so
far; ``RunDetails(run).show()`` prints the run's (or sweep's) text view where no widget renders.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import write

OPT_IN = "import launchbay.compat.azureml; launchbay.compat.azureml.install()\n"


def python(project: Path, script: str, timeout: float = 180) -> str:
    """What ``python control.py`` printed (stdout then stderr), as a user in a terminal sees it."""
    write(project, "control.py", OPT_IN + textwrap.dedent(script))
    env = {k: v for k, v in os.environ.items() if k != "LAUNCHBAY_WIDGETS"}
    proc = subprocess.run(
        [sys.executable, "control.py"], cwd=project, capture_output=True, text=True, timeout=timeout, env=env
    )
    assert proc.returncode == 0, f"control script failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_submitting_with_a_pip_environment_shows_the_build_as_it_happens(project: Path) -> None:
    write(project, "requirements.txt", "six\n")
    write(project, "train.py", "import six\nprint('six is', six.__name__)\n")
    shown = python(
        project,
        """
        from azureml.core import Environment, Experiment, ScriptRunConfig, Workspace

        env = Environment.from_pip_requirements(name="six-env", file_path="requirements.txt")
        config = ScriptRunConfig(source_directory=".", script="train.py", compute_target="local", environment=env)
        run = Experiment(Workspace.from_config(), "v1-env").submit(config)
        print("submitted", run.id, flush=True)
        run.wait_for_completion(show_output=True)
        """,
    )
    build = [line for line in shown.splitlines() if line.startswith("launchbay: environment ")]
    assert any(re.search(r"\[1/2\] creating the virtual environment", line) for line in build), shown
    assert any("[2/2] installing 1 package(s)" in line for line in build), shown
    assert re.search(r"launchbay: environment .*: ready in [\d.]+ s", shown), shown
    # the build is the run's (Preparing): submit returns at once, the run's output shows the build, then the script
    assert shown.index("submitted") < shown.index("ready in") < shown.index("six is six")


SWEEP_TRAIN = """
    import argparse
    from azureml.core import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float)
    args = parser.parse_args()
    for epoch in range(3):
        Run.get_context().log("accuracy", 1 - abs(args.learning_rate - 0.05) * (3 - epoch))
"""

SWEEP_CONTROL = """
    from azureml.core import Experiment, ScriptRunConfig, Workspace
    from azureml.train.hyperdrive import GridParameterSampling, HyperDriveConfig, PrimaryMetricGoal, choice
    from azureml.widgets import RunDetails

    src = ScriptRunConfig(source_directory=".", script="train.py", compute_target="local")
    hd_config = HyperDriveConfig(
        run_config=src,
        hyperparameter_sampling=GridParameterSampling({"--learning_rate": choice(0.05, 0.3)}),
        primary_metric_name="accuracy",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=2,
        max_concurrent_runs=1,
    )
    hd_run = Experiment(Workspace.from_config(), "v1-sweep").submit(hd_config)
    hd_run.wait_for_completion(show_output=True)
    print("SWEEP", hd_run.id, "BEST", hd_run.get_best_run_by_primary_metric().id)
    print("--- details of the sweep")
    RunDetails(hd_run).show()
    print("--- details of its best run")
    RunDetails(hd_run.get_best_run_by_primary_metric()).show()
"""


@pytest.mark.slow
def test_a_hyperdrive_sweep_prints_each_trial_and_the_best_so_far_while_it_waits(project: Path) -> None:
    write(project, "train.py", SWEEP_TRAIN)
    shown = python(project, SWEEP_CONTROL)
    _sweep, best_id = re.search(r"SWEEP (\S+) BEST (\S+)", shown).groups()  # type: ignore[union-attr]
    assert re.search(r"started +\S+ +\(1 of 2\) +learning_rate=0\.05", shown), shown
    assert re.search(r"started +\S+ +\(2 of 2\) +learning_rate=0\.3", shown), shown
    assert len(re.findall(r"completed +\S+ +accuracy=", shown)) == 2, shown
    assert f"best so far: accuracy=1 ({best_id}, learning_rate=0.05)" in shown
    assert shown.index("best so far") < shown.index("SWEEP")  # printed while waiting, not after


@pytest.mark.slow
def test_run_details_outside_a_notebook_prints_the_text_view_not_a_handle(project: Path) -> None:
    write(project, "train.py", SWEEP_TRAIN)
    shown = python(project, SWEEP_CONTROL.replace("show_output=True", "show_output=False"))
    _sweep, best_id = re.search(r"SWEEP (\S+) BEST (\S+)", shown).groups()  # type: ignore[union-attr]
    assert "Handle(" not in shown, shown
    sweep_view = shown.split("--- details of the sweep")[1].split("--- details of its best run")[0]
    assert re.search(rf"{best_id} +Completed +0\.05 +1\b", sweep_view), shown  # the sweep's table, best first
    run_view = shown.split("--- details of its best run")[1]
    assert f"Run {best_id} · v1-sweep · local · Completed" in run_view
    assert "accuracy: last 1" in run_view
