"""A YAML sweep on every remote target (real services): the controller stays local and
launches each child on the target, never more than max_concurrent_runs at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CLI, TargetUnderTest, target_params, write
from launchbay.sweeps import get_sweep

TRAIN = """
import argparse, math, time
from launchbay import Run
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--steps", type=int, default=6)
a = p.parse_args()
run = Run.get_context()
for i in range(a.steps):
    run.log("loss", (math.log10(a.lr) + 2) ** 2 + 1.0 / (i + 1), step=i)
    time.sleep(0.1)
"""

SWEEP = """
sampling:
  type: grid
  parameter_space:
    - {name: lr, expression: choice, values: [0.01, 0.1, 1.0, 0.001]}
policy: {type: MedianStoppingPolicy, evaluation_interval: 1, delay_evaluation: 2}
primary_metric_name: loss
primary_metric_goal: minimize
max_total_runs: 4
max_concurrent_runs: 2
max_duration_minutes: 4
"""


@pytest.mark.slow
@pytest.mark.parametrize("target", target_params("docker", "slurm", "ray", "ssh"), indirect=True)
def test_a_yaml_sweep_runs_on_the_target_two_at_a_time(target: TargetUnderTest, cli: CLI, project: Path) -> None:
    target.configure(project)
    write(project, "train.py", TRAIN)
    write(project, "sweep.yaml", SWEEP)
    out = cli("sweep", "sweep.yaml", "-t", target.name, "--", "train.py", timeout=300)
    assert out.returncode == 0, out.stderr
    sweep_id = out.stdout.strip().split()[2]
    handle = get_sweep(sweep_id)
    children = handle.children()
    assert len(children) == 4 and {c.target for c in children} == {target.name}
    assert {c.target_type for c in children} == {target.kind}
    assert all(
        c.status.value == "Completed" or "Median" in c.tags.get("launchbay.early_termination", "") for c in children
    )
    events = sorted([(c.started, 1) for c in children] + [(c.ended, -1) for c in children])
    running = most = 0
    for _, delta in events:
        running += delta
        most = max(most, running)
    assert most <= 2
    best = handle.best_run()
    assert best is not None and best.get_details()["params"]["lr"] in ("0.01", 0.01)
    kids = cli.json("runs", "--parent", sweep_id)
    assert isinstance(kids, list) and kids[0]["parameters"]["lr"] == 0.01
