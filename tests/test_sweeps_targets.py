"""A YAML sweep on every remote target (real services): the controller stays local and
launches each child on the target, never more than max_concurrent_runs at a time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import CLI, need_service, write
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


def _answers(command: list[str]) -> bool:
    try:
        return (
            shutil.which(command[0]) is not None
            and subprocess.run(command, capture_output=True, timeout=20).returncode == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def _docker(project: Path) -> str:
    base = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE", "")
    need_service(bool(base) and _answers(["docker", "image", "inspect", base]), "Docker with the test base image")
    return f'type = "docker"\nimage = "{base}"\n'


def _slurm(project: Path) -> str:
    need_service(bool(os.environ.get("LAUNCHBAY_TEST_SLURM")) and _answers(["sinfo", "-h"]), "Slurm")
    return f'type = "slurm"\npython = {json.dumps(sys.executable)}\ncpus_per_task = 1\n'


def _ray(project: Path) -> str:
    address = os.environ.get("LAUNCHBAY_TEST_RAY_ADDRESS", "")
    try:
        with urllib.request.urlopen(f"{address}/api/version", timeout=5) as response:
            ok = response.status == 200
    except (OSError, ValueError):
        ok = False
    need_service(ok, "Ray head (LAUNCHBAY_TEST_RAY_ADDRESS)")
    return f'type = "ray"\naddress = "{address}"\n'


def _ssh(project: Path) -> str:
    env = {k: os.environ.get(f"LAUNCHBAY_TEST_SSH_{k}", "") for k in ("HOST", "PORT", "USER", "KEY", "KNOWN_HOSTS")}
    need_service(all(env.values()), "The test sshd (LAUNCHBAY_TEST_SSH_*)")
    return (
        f'type = "ssh"\nhost = "{env["HOST"]}"\nport = {env["PORT"]}\nuser = "{env["USER"]}"\n'
        f'identity_file = "{env["KEY"]}"\nknown_hosts = "{env["KNOWN_HOSTS"]}"\n'
        f'workdir = "{project.parent / "remote"}"\n'
    )


TARGETS = {"docker": _docker, "slurm": _slurm, "ray": _ray, "ssh": _ssh}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TARGETS))
def test_a_yaml_sweep_runs_on_the_target_two_at_a_time(kind: str, cli: CLI, project: Path) -> None:
    write(project, "launchbay.toml", "[targets.box]\n" + TARGETS[kind](project))
    write(project, "train.py", TRAIN)
    write(project, "sweep.yaml", SWEEP)
    out = cli("sweep", "sweep.yaml", "-t", "box", "--", "train.py", timeout=300)
    assert out.returncode == 0, out.stderr
    sweep_id = out.stdout.strip().split()[2]
    handle = get_sweep(sweep_id)
    children = handle.children()
    assert len(children) == 4 and {c.target for c in children} == {"box"}
    assert {c.target_type for c in children} == {kind}
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
