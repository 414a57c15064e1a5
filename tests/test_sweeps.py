"""Real sweeps of local runs (the pure parts: tests/test_sweep_spaces.py)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI, pid_alive, wait_for, write
from launchbay.sweeps import BanditPolicy, GridSampling, choice, get_sweep, loguniform, sweep, uniform

TRAIN = """
import argparse, math, time
from launchbay import Run
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--bs", type=int, default=16)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--sleep", type=float, default=0.05)
a = p.parse_args()
run = Run.get_context()
for i in range(a.steps):
    run.log("loss", (math.log10(a.lr) + 2) ** 2 + 1.0 / (i + 1), step=i)
    time.sleep(a.sleep)
print("done", a.lr, a.bs)
"""


def final_loss(lr: float) -> float:
    return (math.log10(lr) + 2) ** 2 + 1.0 / 10


# -- real sweeps ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_sweep_runs_children_two_at_a_time_and_finds_the_best(project: Path) -> None:
    write(project, "train.py", TRAIN)
    handle = sweep(
        "train.py",
        {"lr": loguniform(1e-4, 1e-1), "bs": choice(16, 32)},
        primary_metric="loss",
        max_total_runs=6,
        max_concurrent_runs=2,
        sampling=None,
        args=["--steps", "10"],
        experiment="tune",
    )
    assert handle.wait(timeout=90) == "Completed"
    children = handle.children()
    assert len(children) == 6
    assert {c.parent_run_id for c in children} == {handle.run_id}
    assert all(c.status.value == "Completed" for c in children)
    for c in children:
        assert set(c.spec["params"]) == {"lr", "bs"}
        assert c.arguments[:2] == ["--steps", "10"] and "--lr" in c.arguments
        assert c.tags["launchbay.sweep"] == handle.run_id
        assert c.snapshot_id == handle.record().snapshot_id
    events = sorted([(c.started, 1) for c in children] + [(c.ended, -1) for c in children])
    running, most = 0, 0
    for _, delta in events:
        running += delta
        most = max(most, running)
    assert most <= 2
    best = handle.best_run()
    assert best is not None
    expected = min(children, key=lambda c: final_loss(float(c.spec["params"]["lr"])))
    assert best.run_id == expected.run_id
    rows = handle.table()
    assert len(rows) == 6 and all(r["metric"] is not None and r["early_termination"] is None for r in rows)
    from launchbay.ipython.sweep_widget import rows_html, sweep_rows

    widget_rows, params, metric, _goal = sweep_rows(handle)
    assert [r["run_id"] for r in widget_rows] == [c.run_id for c in reversed(handle.children())]
    assert "lr" in params and metric == "loss"
    assert best.run_id in rows_html(widget_rows, params, metric)


@pytest.mark.slow
def test_a_bandit_policy_stops_clearly_bad_children_with_the_reason(project: Path) -> None:
    write(project, "train.py", TRAIN)
    handle = sweep(
        "train.py",
        primary_metric="loss",
        max_total_runs=4,
        max_concurrent_runs=2,
        sampling=GridSampling({"lr": choice(0.01, 0.011, 100.0, 1000.0)}),
        policy=BanditPolicy(slack_factor=0.2),
        args=["--steps", "30", "--sleep", "0.1"],
    )
    assert handle.wait(timeout=90) == "Completed"
    by_lr = {float(r["params"]["lr"]): r for r in handle.table()}
    for lr in (0.01, 0.011):
        assert by_lr[lr]["status"] == "Completed" and by_lr[lr]["early_termination"] is None
    for lr in (100.0, 1000.0):
        assert by_lr[lr]["status"] == "Canceled" and by_lr[lr]["stopped_early"]
        assert "Bandit" in by_lr[lr]["early_termination"]
    assert handle.best_run().run_id == by_lr[0.01]["run_id"]  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_sweep_outlives_the_process_that_started_it(project: Path) -> None:
    write(project, "train.py", TRAIN)
    code = (
        "from launchbay.sweeps import sweep, choice\n"
        "h = sweep('train.py', {'lr': choice(0.1, 0.01)}, primary_metric='loss', max_total_runs=2,"
        " max_concurrent_runs=1)\nprint(h.run_id)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=project)
    handle = get_sweep(out.stdout.strip())
    assert handle.status in ("Queued", "Running")
    assert handle.wait(timeout=60) == "Completed"
    assert len(handle.children()) == 2
    assert handle.best_run() is not None


@pytest.mark.slow
def test_cancel_stops_the_sweep_and_its_children(project: Path) -> None:
    write(project, "train.py", TRAIN)
    handle = sweep(
        "train.py",
        {"lr": uniform(0.01, 0.1)},
        primary_metric="loss",
        max_total_runs=4,
        args=["--steps", "200", "--sleep", "0.1"],
    )
    wait_for(lambda: any(c.status.value == "Running" for c in handle.children()), timeout=30)
    assert handle.cancel() == "Canceled"
    children = handle.children()
    assert children and all(c.status.value == "Canceled" for c in children)


@pytest.mark.slow
def test_max_duration_ends_the_sweep_and_stops_its_children(project: Path) -> None:
    write(project, "train.py", TRAIN)
    handle = sweep(
        "train.py",
        {"lr": uniform(0.01, 0.1)},
        primary_metric="loss",
        max_total_runs=4,
        max_duration_s=1.5,
        args=["--steps", "200", "--sleep", "0.1"],
    )
    assert handle.wait(timeout=60) == "Completed"
    rows = handle.table()
    assert rows and all(r["stopped_early"] and "limit" in r["early_termination"] for r in rows)


@pytest.mark.slow
def test_a_killed_controller_fails_the_sweep_and_its_running_trials_finish(project: Path) -> None:
    write(project, "train.py", TRAIN)
    handle = sweep(
        "train.py", {"lr": uniform(0.01, 0.1)}, primary_metric="loss", args=["--steps", "30", "--sleep", "0.1"]
    )
    wait_for(lambda: [c.status.value for c in handle.children()] == ["Running", "Running"], timeout=30)
    pid = wait_for(lambda: handle.record().target_state.get("runner_pid"))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid))
    record = handle.record()
    assert record.status.value == "Failed" and "died" in record.error["message"]  # type: ignore[index]
    wait_for(lambda: all(c.status.is_terminal() for c in handle.children()), timeout=30)
    children = handle.children()  # kept for `launchbay sweep --resume`, which adopts them; none started since
    assert len(children) == 2 and all(c.status.value == "Completed" for c in children)


@pytest.mark.slow
def test_canceling_a_sweep_whose_controller_died_stops_the_trials_it_left_running(cli: CLI, project: Path) -> None:
    write(project, "train.py", TRAIN)
    handle = sweep(
        "train.py", {"lr": uniform(0.01, 0.1)}, primary_metric="loss", args=["--steps", "200", "--sleep", "0.1"]
    )
    wait_for(lambda: [c.status.value for c in handle.children()] == ["Running", "Running"], timeout=30)
    pid = wait_for(lambda: handle.record().target_state.get("runner_pid"))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid))
    cli("cancel", handle.run_id, check=True)
    assert [c.status.value for c in handle.children()] == ["Canceled", "Canceled"]


@pytest.mark.slow
def test_the_cli_starts_a_detached_sweep_and_runs_lists_it(cli: CLI, project: Path) -> None:
    write(project, "train.py", TRAIN)
    out = cli(
        "sweep",
        "train.py",
        "--param",
        "lr=loguniform(1e-3,1e-1)",
        "--param",
        "bs=choice(16,32)",
        "--metric",
        "loss",
        "--runs",
        "2",
        "--sampling",
        "sobol",
        "--json",
        "--detach",
        "--",
        "--steps",
        "3",
        check=True,
    )
    sweep_id = json.loads(out.stdout)["run_id"]
    assert get_sweep(sweep_id).wait(timeout=60) == "Completed"
    assert get_sweep(sweep_id).config()["sampling"]["type"] == "sobol"
    runs = cli.json("runs")
    assert isinstance(runs, list)
    ids = {r["run_id"]: r for r in runs}
    assert ids[sweep_id]["target_type"] == "sweep" and ids[sweep_id]["status"] == "Completed"
    kids = [r for r in runs if r["parent_run_id"] == sweep_id]
    assert len(kids) == 2 and all(k["arguments"][:2] == ["--steps", "3"] for k in kids)
    bad = cli("sweep", "train.py", "--param", "lr=eval(1)", "--metric", "loss")
    assert bad.returncode == 2 and "parameter expression" in bad.stderr


def test_sweep_plots_show_best_so_far_and_parallel_coordinates() -> None:
    from launchbay.ipython.plots import best_so_far_figure, figure_png, parallel_coordinates_figure

    fig = best_so_far_figure([0.9, 0.5, 0.7, 0.2], "minimize", "loss")
    best_line = [line for line in fig.axes[0].get_lines()][0]
    assert list(best_line.get_ydata()) == [0.9, 0.5, 0.5, 0.2]
    rows = [
        {"lr": 0.1, "bs": 16, "loss": 0.3},
        {"lr": 0.0001, "bs": 32, "loss": 0.9},
        {"lr": 0.01, "bs": "auto", "loss": 0.5},
    ]
    parallel = parallel_coordinates_figure(rows, ["lr", "bs"], "loss")
    (runs,) = parallel.axes[0].collections  # one line per run, drawn together
    assert len(runs.get_segments()) == 3
    assert len(parallel.axes[0].get_lines()) == 3  # one axis line per column
    assert figure_png(parallel).startswith(b"\x89PNG")
