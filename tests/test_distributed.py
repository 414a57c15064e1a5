"""Distributed runs: several ranks that cooperate, fail together and stop together (real processes)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, need_service, pid_alive, wait_for, write
from launchbay.errors import ConfigError

DDP_TRAIN = """
import json, os, sys
import torch
import torch.distributed as dist
from launchbay import Run

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
names = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "LOCAL_WORLD_SIZE")
seen = {k: os.environ.get(k) for k in names}
torch.manual_seed(0)  # the same initial weights everywhere
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
gen = torch.Generator().manual_seed(100 + rank)  # each rank its own data: only averaging keeps them equal
run = Run.get_context()
for step in range(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
    x = torch.randn(16, 4, generator=gen)
    loss = ((model(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    run.log("loss", loss.item(), step=step)
weights = [p.detach().flatten().tolist() for p in model.module.parameters()]
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/rank_{rank}.json", "w") as fh:
    json.dump({"weights": weights, "env": seen, "world": world}, fh)
print(f"rank {rank} of {world} done", flush=True)
dist.barrier()
dist.destroy_process_group()
# torch 2.13.0+cpu's gloo sometimes aborts in interpreter teardown ("terminate called without an
# active exception": 2 of 8 plain two-process runs without launchbay); end before that teardown.
run.flush()
os._exit(0)
"""

SLEEPER = """
import os, sys, time
from launchbay import Run
rank = int(os.environ["RANK"])
Run.get_context().log("alive", 1)
print(f"pid {rank} {os.getpid()}", flush=True)
if rank == (int(sys.argv[1]) if len(sys.argv) > 1 else -1):
    time.sleep(1)
    raise RuntimeError(f"rank {rank} broke on purpose")
time.sleep(300)
"""


TF_SCRIPT = """
import json, os, time
config = json.loads(os.environ["TF_CONFIG"])
print(json.dumps(config), flush=True)
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/tf_{os.environ['RANK']}.json", "w") as fh:
    json.dump(config, fh)
if config["task"]["type"] == "ps":
    time.sleep(300)  # a parameter server serves until it is stopped
while not os.path.exists("outputs/tf_1.json"):  # the worker waits for the server to be up
    time.sleep(0.05)
"""


def _outputs(handle: launchbay.RunHandle, world: int) -> list[dict]:  # type: ignore[type-arg]
    record = handle.record()
    return [json.loads((record.run_dir / "files" / "outputs" / f"rank_{r}.json").read_text()) for r in range(world)]


def rank_pids(handle: launchbay.RunHandle, world: int, timeout: float = 60) -> list[int]:
    """The ranks' pids, as each printed them into its own log (brought back from any target)."""

    def pids() -> list[int] | None:
        record = handle.record()  # catches the run folder up with the target
        assert not record.status.is_terminal(), record.error
        logs = record.run_dir / "files" / "user_logs"
        found = []
        for rank in range(world):
            path = logs / f"rank_{rank}.txt"
            text = path.read_text() if path.exists() else ""
            line = next((ln for ln in text.splitlines() if ln.startswith(f"pid {rank} ")), None)
            if line is None:
                return None
            found.append(int(line.split()[2]))
        return found

    return list(wait_for(pids, timeout=timeout, interval=0.25))


def test_ddp_on_cpu_with_two_local_processes_ends_with_identical_weights(project: Path) -> None:
    pytest.importorskip("torch")
    write(project, "train.py", DDP_TRAIN)
    handle = launchbay.submit("train.py", distributed=launchbay.PyTorch(process_count_per_node=2, node_count=1))
    assert handle.wait(timeout=180) == "Completed", handle.record().error
    ranks = _outputs(handle, 2)
    assert ranks[0]["weights"] == ranks[1]["weights"]  # gradients were averaged
    assert [r["env"]["RANK"] for r in ranks] == ["0", "1"]
    assert [r["env"]["LOCAL_RANK"] for r in ranks] == ["0", "1"]
    for r in ranks:
        assert r["world"] == 2
        assert r["env"]["WORLD_SIZE"] == r["env"]["LOCAL_WORLD_SIZE"] == "2" and r["env"]["NODE_RANK"] == "0"
        assert r["env"]["MASTER_ADDR"] and r["env"]["MASTER_PORT"]
    files = handle.get_file_names()
    assert "user_logs/rank_0.txt" in files and "user_logs/rank_1.txt" in files
    assert "rank 0 of 2 done" in handle.get_log() and "rank 1 of 2 done" not in handle.get_log()
    metrics = handle.get_metrics()
    assert len(metrics["loss"]) == 20 and not any(n.startswith("rank1/") for n in metrics)  # rank 0's only
    assert handle.get_details()["distributed"]["process_count_per_node"] == 2


def test_a_failing_rank_fails_the_run_with_its_error_and_stops_the_others(project: Path) -> None:
    write(project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", args=["1"], distributed="pytorch:2")
    pids = rank_pids(handle, 2)
    started = time.time()
    assert handle.wait(timeout=60) == "Failed"
    error = handle.record().error
    assert error["message"] == "Rank 1 failed: RuntimeError: rank 1 broke on purpose", error
    assert "Traceback" in error["traceback"]
    assert time.time() - started < 15
    assert not any(pid_alive(p) for p in pids)


STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # this rank ignores SIGTERM
print(f"pid {os.environ['RANK']} {os.getpid()}", flush=True)
if os.environ["RANK"] == "1":
    time.sleep(1)
    sys.exit(5)
time.sleep(300)
"""


def test_a_rank_that_ignores_sigterm_is_killed_two_seconds_after_another_failed(project: Path) -> None:
    write(project, "stubborn.py", STUBBORN)
    handle = launchbay.submit("stubborn.py", distributed="pytorch:2")
    pids = rank_pids(handle, 2)
    assert handle.wait(timeout=60) == "Failed"
    assert handle.record().error["message"] == "Rank 1 exited with code 5."
    assert not any(pid_alive(p) for p in pids)
    run_dir = handle.record().run_dir
    final = json.loads((run_dir / "journal" / "events.jsonl").read_text().splitlines()[-1])
    assert final["ts"] - (run_dir / "journal" / "failed_rank.json").stat().st_mtime < 5


def test_killing_one_rank_fails_the_run_naming_that_rank_and_leaves_no_process(project: Path) -> None:
    write(project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", distributed=launchbay.PyTorch(process_count_per_node=2))
    pids = rank_pids(handle, 2)
    os.kill(pids[1], signal.SIGKILL)
    assert handle.wait(timeout=60) == "Failed"
    assert handle.record().error["message"] == "Rank 1 was killed by signal SIGKILL."
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10)


def test_cancel_of_a_two_rank_run_leaves_nothing(project: Path) -> None:
    write(project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", distributed="pytorch:2")
    pids = rank_pids(handle, 2)
    handle.cancel()
    assert handle.status == "Canceled"
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10)


def test_a_runner_killed_with_sigkill_takes_every_rank_with_it(project: Path) -> None:
    write(project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", distributed="pytorch:2")
    pids = rank_pids(handle, 2)
    os.kill(int(handle.record().target_state["runner_pid"]), signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10)
    assert handle.wait(timeout=30) == "Failed"


def test_max_duration_stops_every_rank(project: Path) -> None:
    write(project, "sleeper.py", SLEEPER)
    handle = launchbay.submit("sleeper.py", distributed="pytorch:2", max_duration_s=3)
    pids = rank_pids(handle, 2)
    assert handle.wait(timeout=60) == "Canceled"
    assert "maximum duration" in handle.record().error["message"]
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10)


def test_other_ranks_log_under_a_rank_prefix_only_when_asked(project: Path) -> None:
    write(
        project,
        "log.py",
        """
        import os
        from launchbay import Run
        run = Run.get_context(log_all_ranks=True) if os.environ.get("ALL") else Run.get_context()
        for i in range(3):
            run.log("loss", float(os.environ["RANK"]), step=i)
        """,
    )
    quiet = launchbay.submit("log.py", distributed="pytorch:2")
    loud = launchbay.submit("log.py", distributed="pytorch:2", env_vars={"ALL": "1"})
    configured = launchbay.submit("log.py", distributed=launchbay.PyTorch(process_count_per_node=2, log_all_ranks=True))
    assert quiet.wait(timeout=60) == loud.wait(timeout=60) == configured.wait(timeout=60) == "Completed"
    assert quiet.get_metrics() == {"loss": [0.0, 0.0, 0.0]}
    both = {"loss": [0.0, 0.0, 0.0], "rank1/loss": [1.0, 1.0, 1.0]}
    assert loud.get_metrics() == configured.get_metrics() == both


def test_tensorflow_gets_tf_config_and_parameter_servers_stop_when_workers_end(project: Path) -> None:
    write(project, "tf.py", TF_SCRIPT)
    handle = launchbay.submit("tf.py", distributed=launchbay.TensorFlow(worker_count=1, parameter_server_count=1))
    assert handle.wait(timeout=60) == "Completed"
    run_dir = handle.record().run_dir
    configs = [json.loads((run_dir / "files" / "outputs" / f"tf_{r}.json").read_text()) for r in range(2)]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "ps", "index": 0}]
    assert configs[0]["cluster"] == configs[1]["cluster"] and set(configs[0]["cluster"]) == {"worker", "ps"}


def test_cli_distributed_submit_show_and_rank_logs(project: Path, cli: CLI) -> None:
    write(project, "hello.py", "import os\nprint('hello from rank', os.environ['RANK'], flush=True)\n")
    out = cli("submit", "--distributed", "pytorch:2", "--json", "hello.py", check=True)
    run_id = json.loads(out.stdout)["run_id"]
    assert cli("logs", run_id, check=True).stdout.count("hello from rank 0") == 1
    assert "hello from rank 1" in cli("logs", run_id, "--rank", "1", check=True).stdout
    assert "distributed  pytorch: 2 processes\n" in cli("show", run_id, check=True).stdout
    assert cli.json("show", run_id)["distributed"]["kind"] == "pytorch"  # type: ignore[index]
    rerun = launchbay.get_run(run_id)._session.rerun(run_id)
    assert rerun.wait(timeout=60) == "Completed"
    assert rerun.get_details()["distributed"]["process_count_per_node"] == 2
    bad = cli("logs", run_id, "--rank", "5")
    assert bad.returncode == 2 and "has ranks 0 to 1; rank 5 is not one of them" in bad.stderr


def test_a_distributed_entry_in_launchbay_toml_applies_to_the_target_or_environment(project: Path) -> None:
    write(
        project,
        "launchbay.toml",
        """
        [targets.pair]
        type = "local"
        distributed = "pytorch:2"

        [environments.trio]
        distributed = { kind = "mpi", process_count_per_node = 2, log_all_ranks = true }
        """,
    )
    write(project, "hello.py", "import os\nprint('rank', os.environ['RANK'], 'of', os.environ['WORLD_SIZE'])\n")
    handle = launchbay.submit("hello.py", target="pair")
    assert handle.wait(timeout=60) == "Completed"
    assert "rank 0 of 2" in handle.get_log()
    assert handle.get_details()["distributed"]["kind"] == "pytorch"
    in_env = launchbay.submit("hello.py", target="pair", environment="trio")  # the environment's wins
    assert in_env.wait(timeout=60) == "Completed", in_env.record().error
    assert in_env.get_details()["distributed"] == {
        "kind": "mpi",
        "log_all_ranks": True,
        "process_count_per_node": 2,
        "node_count": 1,
    }
    assert "launchbay: mpirun -np 2" in in_env.get_log()


@pytest.mark.parametrize(
    ("distributed", "target", "message"),
    [
        ("pytorch:2x2", "local", "node_count = 2 is for Slurm targets. Use e.g. pytorch:4 for 4 processes."),
        ("mpi:3x1", "box", r"Target 'box' \(docker\) runs every process on one machine; node_count = 3"),
        ("pytorch:2x2", "ray", r"places its ranks itself \(a Ray worker each, or all in the job\); node_count = 2"),
        (f"pytorch:{(os.cpu_count() or 1) + 1}", "local", "more than the"),
        ("pytorch:0", "local", "needs at least one process"),
        ("gloo:2", "local", "is not understood"),
    ],
)
def test_bad_distributed_input_is_one_clear_line_and_no_run(
    project: Path, distributed: str, target: str, message: str
) -> None:
    write(project, "hello.py", "print('never')\n")
    write(project, "launchbay.toml", '[targets.box]\ntype = "docker"\nimage = "x"\n[targets.ray]\ntype = "ray"\n')
    with pytest.raises(ConfigError, match=message) as caught:
        launchbay.submit("hello.py", target=target, distributed=distributed)
    assert "\n" not in str(caught.value)
    assert launchbay.runs() == []


MPI_PING_C = r"""
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
    int rank, size, value = -1;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0) {
        value = 42;
        MPI_Send(&value, 1, MPI_INT, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(&value, 1, MPI_INT, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        printf("rank 0 of %d sent 42, got %d back\n", size, value);
    } else if (rank == 1) {
        MPI_Recv(&value, 1, MPI_INT, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        printf("rank 1 of %d got %d\n", size, value);
        value += 1;
        MPI_Send(&value, 1, MPI_INT, 0, 0, MPI_COMM_WORLD);
    }
    MPI_Finalize();
    return 0;
}
"""
MPI_RUN = """
import json, os
names = ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "RANK")
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/mpi_{os.environ['OMPI_COMM_WORLD_RANK']}.json", "w") as fh:
    json.dump({k: os.environ.get(k) for k in names}, fh)
os.execv("./ping", ["./ping"])  # the MPI program itself, compiled with mpicc by the test
"""


def mpi_project(project: Path) -> None:
    """A 2-rank MPI program (C, built here with Debian's Open MPI) that passes a number back and forth."""
    import shutil
    import subprocess

    if shutil.which("mpicc") is None:
        need_service(False, "Open MPI (apt-get install openmpi-bin libopenmpi-dev)")
    write(project, "ping.c", MPI_PING_C)
    subprocess.run(["mpicc", "-o", "ping", "ping.c"], cwd=project, check=True)
    write(project, "mpi_run.py", MPI_RUN)


def check_mpi_run(handle: launchbay.RunHandle) -> None:
    assert handle.wait(timeout=120) == "Completed", handle.record().error
    assert "rank 0 of 2 sent 42, got 43 back" in handle.get_log()
    run_dir = handle.record().run_dir
    assert "rank 1 of 2 got 42" in (run_dir / "files" / "user_logs" / "rank_1.txt").read_text()
    seen = [json.loads((run_dir / "files" / "outputs" / f"mpi_{r}.json").read_text()) for r in range(2)]
    assert [s["OMPI_COMM_WORLD_RANK"] for s in seen] == ["0", "1"] == [s["RANK"] for s in seen]
    assert {s["OMPI_COMM_WORLD_SIZE"] for s in seen} == {"2"}


def test_mpi_two_ranks_exchange_a_message_locally(project: Path) -> None:
    mpi_project(project)
    check_mpi_run(launchbay.submit("mpi_run.py", distributed=launchbay.Mpi(process_count_per_node=2)))


def test_a_failing_mpi_rank_fails_the_run_naming_it(project: Path) -> None:
    mpi_project(project)
    write(project, "fail.py", "import os, sys, time\nif os.environ['RANK'] == '1':\n    sys.exit(3)\ntime.sleep(300)\n")
    handle = launchbay.submit("fail.py", distributed="mpi:2")
    assert handle.wait(timeout=60) == "Failed"
    assert handle.record().error["message"] == "Rank 1 exited with code 3."


def test_mpi_without_mpirun_is_refused_before_any_run(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, "hello.py", "print('never')\n")
    monkeypatch.setenv("PATH", str(project))  # no mpirun on it
    with pytest.raises(ConfigError, match=r"needs `mpirun` and it is not installed here; install Open MPI"):
        launchbay.submit("hello.py", distributed="mpi:2")
    assert launchbay.runs() == []


def test_a_notebook_cell_runs_as_two_ranks_and_pulls_rank_0s_values(project: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "launchbay")
        cell = "import os\nrank = int(os.environ['RANK'])\nprint('cell rank', rank, 'of', os.environ['WORLD_SIZE'])\n"
        handle = shell.run_cell_magic("submit", "--distributed pytorch:2 --wait --no-widget --pull rank", cell)
        assert handle.status == "Completed", handle.record().error
        assert "cell rank 0 of 2" in handle.get_log()
        assert shell.user_ns["rank"] == 0
    finally:
        InteractiveShell.clear_instance()


def test_the_run_widget_shows_rank_0_and_picks_another_rank(project: Path) -> None:
    from launchbay.ipython.widgets import RunWidget

    write(project, "hello.py", "import os\nprint('hello from rank', os.environ['RANK'], flush=True)\n")
    handle = launchbay.submit("hello.py", distributed="pytorch:2")
    assert handle.wait(timeout=60) == "Completed"

    def shown(widget: RunWidget) -> str:
        return "".join(o.get("text", "") for o in widget._log.outputs)

    widget = RunWidget(handle)
    assert widget.wait_until_done(30)
    assert "hello from rank 0" in shown(widget) and "rank 1" not in shown(widget)
    assert widget._ranks.options == (("rank 0", 0), ("rank 1", 1))
    widget._ranks.value = 1
    widget._update(handle.record())  # what the poll thread does while a run is live
    assert "hello from rank 1" in shown(widget) and "rank 0" not in shown(widget)
    widget.close()


def test_the_written_forms_of_a_distributed_launch() -> None:
    from launchbay.distributed import parse

    assert parse("pytorch:2") == launchbay.PyTorch(process_count_per_node=2)
    assert parse("torch:3x2") == launchbay.PyTorch(process_count_per_node=2, node_count=3)
    assert parse("mpi:4") == launchbay.Mpi(process_count_per_node=4)
    assert parse("tf:2+1") == launchbay.TensorFlow(worker_count=2, parameter_server_count=1)
    assert parse({"kind": "mpi", "process_count_per_node": 2}) == launchbay.Mpi(process_count_per_node=2)
    config = launchbay.TensorFlow(worker_count=2, parameter_server_count=1, log_all_ranks=True)
    assert parse(config.to_dict()) == config and config.world_size == 3
    assert config.describe() == "tensorflow: 2 workers + 1 parameter servers, every rank logs"
    assert parse(None) is None and parse("") is None
    with pytest.raises(ConfigError, match="unknown key"):
        parse({"kind": "pytorch", "processes": 2})
    with pytest.raises(ConfigError, match="whole number"):
        launchbay.PyTorch(process_count_per_node="2")  # type: ignore[arg-type]
