"""HyperDrive-style sweeps end to end: a YAML file on the CLI, progress, `runs --parent`, resume, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI, pid_alive, wait_for, write
from launchbay.sweeps import get_sweep
from launchbay.sweeps.names import RETRY_TAG

TRAIN = """
import argparse, math, time
from launchbay import Run
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--bs", type=int, default=16)
p.add_argument("--steps", type=int, default=8)
p.add_argument("--sleep", type=float, default=0.05)
p.add_argument("--metric", default="loss")
a = p.parse_args()
run = Run.get_context()
for i in range(a.steps):
    run.log(a.metric, (math.log10(a.lr) + 2) ** 2 + 1.0 / (i + 1), step=i)
    time.sleep(a.sleep)
"""

YAML_12 = """
sampling:
  type: random
  seed: 3
  parameter_space:
    - name: --lr
      expression: choice
      values: [0.01, 0.012, 1000, 10000]
    - name: bs
      expression: choice
      values: [16, 32]
policy:
  type: BanditPolicy
  evaluation_interval: 1
  slack_factor: 0.2
primary_metric_name: loss
primary_metric_goal: minimize
max_total_runs: 12
max_concurrent_runs: 3
max_duration_minutes: 5
"""


def most_at_once(children: list) -> int:  # type: ignore[type-arg]
    events = sorted([(c.started, 1) for c in children] + [(c.ended, -1) for c in children])
    running = most = 0
    for _, delta in events:
        running += delta
        most = max(most, running)
    return most


@pytest.mark.slow
def test_a_12_run_yaml_sweep_runs_3_at_a_time_and_bandit_stops_the_bad_ones(cli: CLI, project: Path) -> None:
    write(project, "train.py", TRAIN)
    write(project, "sweep.yaml", YAML_12)
    out = cli("sweep", "sweep.yaml", "--", "train.py", "--steps", "12", "--sleep", "0.08", check=True, timeout=240)
    assert "12 runs" in out.stderr
    assert out.stderr.count("  started ") == 12 and "(12 of 12)" in out.stderr
    assert "best so far: loss=" in out.stderr and "stopped early" in out.stderr
    sweep_id = out.stdout.strip().split()[2]
    handle = get_sweep(sweep_id)
    assert handle.status == "Completed"
    children = handle.children()
    assert len(children) == 12 and most_at_once(children) <= 3
    kids = cli.json("runs", "--parent", sweep_id)
    assert isinstance(kids, list) and len(kids) == 12
    stopped = [k for k in kids if k["stopped_early"]]
    assert stopped and all("Bandit" in k["early_termination"] and k["status"] == "Canceled" for k in stopped)
    assert all(k["parameters"]["lr"] >= 1000 for k in stopped)  # only the bad learning rates
    values = [k["primary_metric"]["value"] for k in kids]
    assert values[0] == min(v for v in values if v is not None)  # best first
    assert kids[0]["run_id"] == handle.best_run().run_id  # type: ignore[union-attr]
    text = cli("runs", "--parent", sweep_id, check=True).stdout
    assert "stopped early" in text and "lr" in text.splitlines()[0]
    listing = cli("runs", check=True).stdout
    assert "stopped early" in listing and "Canceled" not in listing  # the record keeps status Canceled


HELD_TRIAL = """
import argparse, os, time
from launchbay import Run
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--executions", required=True)
p.add_argument("--hold", required=True)
a = p.parse_args()
with open(a.executions, "a") as f:  # outside the snapshot: one line an execution, as a side effect would be
    f.write(f"{a.lr:g}\\n")
run = Run.get_context()
step = 0
while True:  # logs until the test removes its hold file
    run.log("loss", a.lr + 1.0 / (step + 1), step=step)
    step += 1
    if not os.path.exists(os.path.join(a.hold, f"{a.lr:g}")):
        break
    time.sleep(0.1)
"""


@pytest.mark.slow
def test_a_resumed_sweep_adopts_its_running_trials_and_runs_again_only_the_one_that_died(
    cli: CLI, project: Path, tmp_path: Path
) -> None:
    from launchbay.sweeps import GridSampling, choice, sweep

    write(project, "train.py", HELD_TRIAL)
    executions, hold = tmp_path / "executions.txt", tmp_path / "hold"
    hold.mkdir()
    lrs = ["1", "2", "3", "4", "5", "6"]
    for lr in lrs:
        (hold / lr).touch()
    handle = sweep(
        "train.py",
        primary_metric="loss",
        max_total_runs=6,
        max_concurrent_runs=3,
        sampling=GridSampling({"lr": choice(*map(int, lrs))}),
        args=["--executions", str(executions), "--hold", str(hold)],
    )

    def started() -> list[str]:
        return executions.read_text().split() if executions.exists() else []

    def trial(lr: str) -> Any:
        return next(c for c in handle.children() if f"{float(c.spec['params']['lr']):g}" == lr)

    first, second, third = wait_for(lambda: started() if len(started()) == 3 else None)
    (hold / first).unlink()  # it completes; the controller starts a fourth trial in its slot
    fourth = wait_for(lambda: started()[3] if len(started()) == 4 else None)
    doomed = wait_for(lambda: (lambda r: r if r.target_state.get("child_pgid") else None)(trial(fourth)))
    controller = wait_for(lambda: handle.record().target_state.get("runner_pid"))

    os.kill(controller, signal.SIGKILL)  # as a machine restart would, but the trials' processes survive it ...
    wait_for(lambda: not pid_alive(controller))
    os.kill(doomed.target_state["runner_pid"], signal.SIGKILL)  # ... all but the fourth trial's
    os.killpg(doomed.target_state["child_pgid"], signal.SIGKILL)
    (hold / second).unlink()  # the second trial ends while no controller runs
    wait_for(lambda: trial(second).status.value == "Completed")
    assert handle.status == "Failed"
    assert trial(third).status.value == "Running"  # the third one goes on with nobody watching

    resumed = cli("sweep", "--resume", handle.run_id, "--detach")
    assert resumed.returncode == 0, resumed.stderr
    for lr in lrs:
        (hold / lr).unlink(missing_ok=True)
    assert handle.wait(timeout=120) == "Completed"

    # every trial's script ran once; only the one whose runner died ran again
    assert Counter(started()) == {lr: 2 if lr == fourth else 1 for lr in lrs}
    children = handle.children(include_retried=True)
    assert len(children) == 7 and [c.tags.get(RETRY_TAG) for c in children].count(doomed.run_id) == 1
    rows = handle.table()
    assert sorted(r["index"] for r in rows) == list(range(6))
    assert all(r["status"] == "Completed" and r["metric"] is not None for r in rows), rows
    assert cli("sweep", "--resume", handle.run_id).returncode == 2  # a finished sweep is not resumed


HELD_UNTIL_RELEASED = """
import argparse, os, time
from launchbay import Run
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--executions", required=True)
p.add_argument("--hold", required=True)
a = p.parse_args()
with open(a.executions, "a") as f:
    f.write(f"{a.lr:g}\\n")
while os.path.exists(os.path.join(a.hold, f"{a.lr:g}")):  # nothing logged until the test lets it go
    time.sleep(0.05)
run = Run.get_context()
for step in range(10**6 if a.lr > 1 else 3):  # the bad trial logs until a policy stops it
    run.log("loss", a.lr, step=step)
    time.sleep(0.1)
"""


@pytest.mark.slow
def test_the_policy_judges_an_adopted_trial_as_it_would_have_before(cli: CLI, project: Path, tmp_path: Path) -> None:
    from launchbay.sweeps import BanditPolicy, GridSampling, choice, sweep

    write(project, "train.py", HELD_UNTIL_RELEASED)
    executions, hold = tmp_path / "executions.txt", tmp_path / "hold"
    hold.mkdir()
    (hold / "0.01").touch()
    (hold / "1000").touch()
    handle = sweep(
        "train.py",
        primary_metric="loss",
        max_total_runs=2,
        max_concurrent_runs=2,
        sampling=GridSampling({"lr": choice(0.01, 1000)}),
        policy=BanditPolicy(slack_factor=0.2),
        args=["--executions", str(executions), "--hold", str(hold)],
    )
    wait_for(lambda: executions.exists() and len(executions.read_text().split()) == 2)
    controller = wait_for(lambda: handle.record().target_state.get("runner_pid"))
    os.kill(controller, signal.SIGKILL)
    wait_for(lambda: not pid_alive(controller))
    (hold / "0.01").unlink()  # the good trial ends while no controller runs
    wait_for(lambda: "Completed" in [c.status.value for c in handle.children()])

    assert cli("sweep", "--resume", handle.run_id, "--detach").returncode == 0
    (hold / "1000").unlink()  # the bad one, adopted, starts logging
    assert handle.wait(timeout=120) == "Completed"
    by_lr = {float(r["params"]["lr"]): r for r in handle.table()}
    assert by_lr[0.01]["status"] == "Completed"
    assert by_lr[1000.0]["stopped_early"] and "Bandit" in by_lr[1000.0]["early_termination"]
    assert sorted(executions.read_text().split()) == ["0.01", "1000"]  # neither ran twice


@pytest.mark.slow
def test_a_primary_metric_the_script_never_logs_fails_the_sweep_with_one_clear_line(project: Path) -> None:
    from launchbay.sweeps import choice, sweep

    write(project, "train.py", TRAIN)
    handle = sweep(
        "train.py",
        {"lr": choice(0.01, 0.1, 1.0, 10.0)},
        primary_metric="val_loss",
        max_total_runs=4,
        max_concurrent_runs=1,
        args=["--steps", "2", "--metric", "loss"],
    )
    assert handle.wait(timeout=60) == "Failed"
    message = handle.record().error["message"]  # type: ignore[index]
    assert "without logging the primary metric 'val_loss'" in message
    assert "it logged: loss" in message
    assert len(handle.children()) == 1  # stopped after the first child, not after all four


def test_invalid_spaces_are_refused_before_any_run_starts(cli: CLI, project: Path) -> None:
    write(project, "train.py", TRAIN)
    cases = {
        "grid with uniform": (
            "sampling:\n  type: grid\n  parameter_space:\n    - {name: lr, expression: uniform, values: [0, 1]}\n",
            "Grid sampling takes only choice",
        ),
        "uniform(1, 0)": (
            "sampling:\n  parameter_space:\n    - {name: lr, expression: uniform, values: [1, 0]}\n",
            "uniform(1, 0) needs min_value < max_value",
        ),
        "unknown expression": (
            "sampling:\n  parameter_space:\n    - {name: lr, expression: beta, values: [1, 2]}\n",
            "Unknown parameter expression 'beta'",
        ),
        "unknown policy": (
            "sampling:\n  parameter_space:\n    - {name: lr, expression: uniform, values: [0, 1]}\n"
            "policy: {type: HyperbandPolicy}\n",
            "Unknown policy 'HyperbandPolicy'",
        ),
    }
    for what, (text, message) in cases.items():
        write(project, "sweep.yaml", text + "primary_metric_name: loss\n")
        bad = cli("sweep", "sweep.yaml", "--", "train.py")
        assert bad.returncode == 2, what
        assert message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, (what, bad.stderr)
    assert cli.json("runs") == []


def test_a_sweep_file_without_a_script_says_how_to_call_it(cli: CLI, project: Path) -> None:
    write(project, "sweep.yaml", YAML_12)
    bad = cli("sweep", "sweep.yaml")
    assert bad.returncode == 2 and "launchbay sweep sweep.yaml -- train.py" in bad.stderr


def test_the_sweep_command_lists_its_options(project: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "launchbay", "sweep", "--help"], capture_output=True, text=True)
    assert "--resume" in out.stdout and "bayesian" in out.stdout
