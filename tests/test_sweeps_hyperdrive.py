"""HyperDrive-style sweeps end to end: a YAML file on the CLI, progress, `runs --parent`, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI, pid_alive, wait_for, write
from launchbay.sweeps import get_sweep

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
    stopped = [k for k in kids if k["status"] == "stopped early"]
    assert stopped and all("Bandit" in k["early_termination"] and k["run_status"] == "Canceled" for k in stopped)
    assert all(k["parameters"]["lr"] >= 1000 for k in stopped)  # only the bad learning rates
    values = [k["primary_metric"]["value"] for k in kids]
    assert values[0] == min(v for v in values if v is not None)  # best first
    assert kids[0]["run_id"] == handle.best_run().run_id  # type: ignore[union-attr]
    text = cli("runs", "--parent", sweep_id, check=True).stdout
    assert "stopped early" in text and "lr" in text.splitlines()[0]
    listing = cli("runs", check=True).stdout
    assert "stopped early" in listing and "Canceled" not in listing  # the record keeps status Canceled


@pytest.mark.slow
def test_a_sweep_whose_controller_was_killed_resumes_without_rerunning_finished_trials(cli: CLI, project: Path) -> None:
    write(project, "train.py", TRAIN)
    write(
        project,
        "sweep.yaml",
        "sampling:\n  type: bayesian\n  seed: 1\n  parameter_space:\n"
        "    - {name: lr, expression: loguniform, values: [0.001, 0.1]}\n"
        "primary_metric_name: loss\nmax_total_runs: 6\nmax_concurrent_runs: 2\n",
    )
    out = cli("sweep", "sweep.yaml", "--json", "--detach", "--", "train.py", "--steps", "15", "--sleep", "0.1")
    sweep_id = json.loads(out.stdout)["run_id"]
    handle = get_sweep(sweep_id)

    def midway() -> bool:
        states = [c.status.value for c in handle.children()]
        return states.count("Completed") >= 2 and "Running" in states

    wait_for(midway, timeout=60)
    pid = wait_for(lambda: handle.record().target_state.get("runner_pid"))
    os.kill(pid, signal.SIGKILL)  # as a machine restart would
    wait_for(lambda: not pid_alive(pid))
    assert handle.record().status.value == "Failed"
    wait_for(lambda: all(c.status.is_terminal() for c in handle.children()))  # the orphans were stopped
    before = {c.run_id: c for c in handle.children()}
    finished = {rid for rid, c in before.items() if c.status.value == "Completed"}
    cut_off = {rid for rid, c in before.items() if c.status.value == "Canceled"}
    assert cut_off and len(before) < 6, [(c.status.value, c.error, c.tags) for c in before.values()]
    resumed = cli("sweep", "--resume", sweep_id, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert handle.status == "Completed"
    after = handle.children()
    assert len(after) == 6 and all(c.status.value == "Completed" for c in after)
    assert finished <= {c.run_id for c in after}  # finished trials were kept, not run again
    retried = [c for c in after if "launchbay.sweep.retry_of" in c.tags]
    assert {c.tags["launchbay.sweep.retry_of"] for c in retried} == cut_off
    for c in retried:  # a cut-off trial runs again with the same parameters
        assert c.spec["params"] == before[c.tags["launchbay.sweep.retry_of"]].spec["params"]
    assert sorted(int(c.tags["launchbay.sweep.index"]) for c in after) == list(range(6))
    again = cli("sweep", "--resume", sweep_id)
    assert again.returncode == 2 and "only a sweep whose controller died" in again.stderr


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
