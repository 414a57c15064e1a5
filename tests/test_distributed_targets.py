"""Distributed runs on the other targets: Slurm (srun across the allocation), Ray (one job),
Docker (one container) and SSH (one host).

The same DDP training, MPI exchange and sleeping ranks as tests/test_distributed.py,
against the real services scripts/services/start.sh runs (Slurm and Ray: 2 CPUs each).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import launchbay
from conftest import pid_alive, wait_for, write
from test_distributed import DDP_TRAIN, SLEEPER, STUBBORN, TF_SCRIPT, check_mpi_run, mpi_project, rank_pids
from test_docker import BASE, containers_of
from test_docker import client as client  # noqa: F401 - the fixture
from test_ray import ray_head  # noqa: F401 - the fixture
from test_ray import target as ray_target
from test_slurm import slurm  # noqa: F401 - the fixture
from test_slurm import target as slurm_target
from test_ssh import remote_dir, ssh_project  # noqa: F401 - the fixtures


def check_ddp(handle: launchbay.RunHandle) -> None:
    assert handle.wait(timeout=240) == "Completed", handle.record().error
    outputs = handle.record().run_dir / "files" / "outputs"
    ranks = [json.loads((outputs / f"rank_{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert [r["env"]["RANK"] for r in ranks] == ["0", "1"]
    assert len(handle.get_metrics()["loss"]) == 5


def test_ddp_on_slurm_with_two_tasks(slurm: None, project: Path) -> None:  # noqa: F811
    slurm_target(project)
    write(project, "train.py", DDP_TRAIN)
    handle = launchbay.submit("train.py", args=["5"], target="cluster", distributed="pytorch:2")
    check_ddp(handle)
    script = handle.get_details()["rendered_sbatch"]
    assert "#SBATCH --nodes=1" in script and "#SBATCH --ntasks-per-node=2" in script
    assert "launchbay: srun --kill-on-bad-exit=1" in handle.get_log()


def test_mpi_on_slurm_exchanges_a_message(slurm: None, project: Path) -> None:  # noqa: F811
    slurm_target(project)
    mpi_project(project)
    check_mpi_run(launchbay.submit("mpi_run.py", target="cluster", distributed=launchbay.Mpi(process_count_per_node=2)))


def test_a_failing_rank_on_slurm_fails_the_run_and_cancel_leaves_nothing(slurm: None, project: Path) -> None:  # noqa: F811
    slurm_target(project)
    write(project, "sleeper.py", SLEEPER)
    failing = launchbay.submit("sleeper.py", args=["1"], target="cluster", distributed="pytorch:2")
    pids = rank_pids(failing, 2)
    assert failing.wait(timeout=60) == "Failed"
    assert failing.record().error["message"] == "Rank 1 failed: RuntimeError: rank 1 broke on purpose"
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=15)
    canceled = launchbay.submit("sleeper.py", target="cluster", distributed="pytorch:2")
    pids = rank_pids(canceled, 2)
    assert canceled.cancel() == "Canceled"
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=15)


def test_a_rank_on_slurm_that_ignores_sigterm_is_stopped_within_seconds(slurm: None, project: Path) -> None:  # noqa: F811
    slurm_target(project)
    write(project, "stubborn.py", STUBBORN)
    handle = launchbay.submit("stubborn.py", target="cluster", distributed="pytorch:2")
    pids = rank_pids(handle, 2)
    started = time.time()
    assert handle.wait(timeout=60) == "Failed"
    assert time.time() - started < 10  # not Slurm's KillWait (30 s)
    assert handle.record().error["message"] == "Rank 1 exited with code 5."
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10)


def test_slurm_refuses_more_tasks_than_its_nodes_have(slurm: None, project: Path) -> None:  # noqa: F811
    slurm_target(project)
    write(project, "hello.py", "print('never')\n")
    for asked, said in (("pytorch:2x1", "needs 2 nodes"), ("pytorch:64", "Lower process_count_per_node")):
        try:
            launchbay.submit("hello.py", target="cluster", distributed=asked)
        except launchbay.LaunchbayError as exc:
            assert said in str(exc)
        else:
            raise AssertionError(f"{asked} was accepted")
    assert launchbay.runs() == []


def test_ddp_on_ray_with_two_ranks_in_one_job(ray_head: str, project: Path) -> None:  # noqa: F811
    ray_target(project, ray_head, python=sys.executable, ranks="job")
    write(project, "train.py", DDP_TRAIN)
    handle = launchbay.submit("train.py", args=["5"], target="ray", distributed="pytorch:2")
    check_ddp(handle)
    assert "rank 1 of 2 done" in (handle.record().run_dir / "files" / "user_logs" / "rank_1.txt").read_text()


def test_cancel_of_a_two_rank_ray_job_run_leaves_nothing(ray_head: str, project: Path) -> None:  # noqa: F811
    ray_target(project, ray_head, python=sys.executable, ranks="job")
    write(project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", target="ray", distributed="pytorch:2")
    pids = rank_pids(handle, 2, timeout=90)
    assert handle.cancel() == "Canceled"
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=15)


def test_two_ranks_in_one_docker_container_with_a_larger_shm_and_cancel_leaves_nothing(
    project: Path,
    client: Any,  # noqa: F811
) -> None:
    write(project, "launchbay.toml", f'[targets.box]\ntype = "docker"\nimage = "{BASE}"\n')
    write(project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", target="box", distributed="pytorch:2")
    rank_pids(handle, 2)  # both ranks are up, each with its own log
    (container,) = containers_of(client, handle.run_id)
    assert container.attrs["HostConfig"]["ShmSize"] == 2 * 1024**3
    top = container.top(ps_args="-eo pid,args")["Processes"]
    assert sum("sleeper.py" in p[-1] and "distlaunch" not in p[-1] for p in top) == 2
    assert handle.cancel() == "Canceled"
    wait_for(lambda: containers_of(client, handle.run_id) == [], timeout=15)


def test_two_ranks_on_an_ssh_host_and_cancel_leaves_nothing(ssh_project: Path) -> None:  # noqa: F811
    write(ssh_project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", target="gpu-box", distributed="pytorch:2")
    pids = rank_pids(handle, 2)  # the test sshd runs on this machine: its pids are ours to check
    assert handle.cancel() == "Canceled"
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=15)


def test_tensorflow_on_slurm_ends_when_its_workers_have(slurm: None, project: Path) -> None:  # noqa: F811
    slurm_target(project)
    write(project, "tf.py", TF_SCRIPT)
    handle = launchbay.submit("tf.py", target="cluster", distributed="tf:1+1")
    assert handle.wait(timeout=60) == "Completed", handle.record().error
    outputs = handle.record().run_dir / "files" / "outputs"
    tasks = [json.loads((outputs / f"tf_{r}.json").read_text())["task"] for r in range(2)]
    assert tasks == [{"type": "worker", "index": 0}, {"type": "ps", "index": 0}]


def test_ddp_on_ray_with_each_rank_a_ray_worker_in_a_placement_group(ray_head: str, project: Path) -> None:  # noqa: F811
    ray_target(project, ray_head, python=sys.executable)  # ranks = "workers", the default
    write(project, "train.py", DDP_TRAIN)
    handle = launchbay.submit("train.py", args=["5"], target="ray", distributed="pytorch:2")
    check_ddp(handle)
    log = handle.get_log()
    assert "launchbay: placement group of 2 bundles of 1 CPU for the ranks" in log
    assert "launchbay: ranks in Ray workers on" in log
    assert "rank 1 of 2 done" in (handle.record().run_dir / "files" / "user_logs" / "rank_1.txt").read_text()


def test_ray_worker_ranks_run_under_their_actors_and_cancel_leaves_nothing(ray_head: str, project: Path) -> None:  # noqa: F811
    ray_target(project, ray_head, python=sys.executable)  # ranks = "workers", the default
    write(project, "sleeper.py", "import os\nprint('parent', open(f'/proc/{os.getppid()}/cmdline').read())\n" + SLEEPER)
    handle = launchbay.submit("sleeper.py", target="ray", distributed="pytorch:2")
    pids = rank_pids(handle, 2, timeout=120)
    logs = handle.record().run_dir / "files" / "user_logs"
    assert all("ray::RankWorker" in (logs / f"rank_{r}.txt").read_text() for r in range(2))
    assert handle.cancel() == "Canceled"
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=20)


def test_a_failing_ray_worker_rank_fails_the_run_naming_it(ray_head: str, project: Path) -> None:  # noqa: F811
    ray_target(project, ray_head, python=sys.executable)  # ranks = "workers", the default
    write(project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", args=["1"], target="ray", distributed="pytorch:2")
    pids = rank_pids(handle, 2, timeout=120)
    assert handle.wait(timeout=60) == "Failed"
    assert handle.record().error["message"] == "Rank 1 failed: RuntimeError: rank 1 broke on purpose"
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=20)


def test_ray_refuses_more_ranks_than_its_cpus(ray_head: str, project: Path) -> None:  # noqa: F811
    write(project, "hello.py", "print('never')\n")
    for ranks, said in (("workers", "the cluster at"), ("job", "its largest node at")):
        ray_target(project, ray_head, ranks=ranks)
        try:
            launchbay.submit("hello.py", target="ray", distributed="pytorch:64")
        except launchbay.LaunchbayError as exc:
            assert said in str(exc) and "Use at most 2 processes." in str(exc), str(exc)
        else:
            raise AssertionError("64 ranks were accepted on a 2-CPU Ray cluster")
    assert launchbay.runs() == []
