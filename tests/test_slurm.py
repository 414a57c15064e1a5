"""The Slurm target against a real single-node Slurm (slurmctld + slurmd + munge on 127.0.0.1).

Start it with ``scripts/services/start.sh slurm`` and ``source $LAUNCHBAY_SERVICES_DIR/env.sh``.
The node has 2 CPUs, which the queue test uses: two runs asking for both cannot run together.
What every target does is in test_target_contract.py.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import conftest
import launchbay
from conftest import CLI, SSH_ENV, need_service, slurm_answers, ssh_settings, toml_table, write
from launchbay.errors import ConfigError, TargetError
from launchbay.targets.sbatch import render_sbatch
from test_resume import TRAIN as CHECKPOINTING


@pytest.fixture(scope="module")
def slurm() -> None:
    need_service(slurm_answers(), "Slurm (LAUNCHBAY_TEST_SLURM, SLURM_CONF)")


wait_for = functools.partial(conftest.wait_for, timeout=45, interval=0.2)


def target(project: Path, **settings: object) -> None:
    (project / "launchbay.toml").write_text(
        toml_table("cluster", {"type": "slurm", "python": sys.executable, **settings})
    )


def test_rendered_script_keeps_hostile_paths_and_interpreter_literal(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs 'q' \"d\" $HOME `id`\nnext line"
    run_dir.mkdir()
    fake_python = tmp_path / "my python's dir" / "py thon"
    fake_python.parent.mkdir()
    fake_python.write_text(f"#!{sys.executable}\nimport sys, json\nprint(json.dumps(sys.argv[1:]))\n")
    fake_python.chmod(0o755)
    settings = {
        "partition": "debug",
        "account": "proj-42",
        "nodes": 2,
        "ntasks_per_node": 4,
        "cpus_per_task": 8,
        "gpus_per_node": "a100:4",
        "time": "1-00:00:00",
        "extra_sbatch": ["--comment=x", "#SBATCH --qos=hi"],
    }
    script = render_sbatch(run_id="exp_1_abc", run_dir=str(run_dir), python=str(fake_python), settings=settings)
    options = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert options == [
        "#SBATCH --job-name=launchbay-exp_1_abc",
        "#SBATCH --output=journal/slurm-%j.out",
        "#SBATCH --partition=debug",
        "#SBATCH --account=proj-42",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --gpus-per-node=a100:4",
        "#SBATCH --time=1-00:00:00",
        "#SBATCH --comment=x",
        "#SBATCH --qos=hi",
    ]
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert json.loads(out) == [f"{run_dir}/runtime/launchbay_runner.py", str(run_dir)]


def test_a_setting_that_is_not_a_slurm_value_is_refused_before_anything_runs(project: Path) -> None:
    target(project, partition="debug; rm -rf ~")
    write(project, "train.py", "print('never')\n")
    with pytest.raises(ConfigError, match="partition"):
        launchbay.submit("train.py", target="cluster")
    assert launchbay.runs() == []


@pytest.mark.slurm
def test_run_streams_metrics_keeps_outputs_and_shows_its_script(
    slurm: None, project: Path, tmp_path: Path, cli: CLI
) -> None:
    shared = tmp_path / "shared 'scratch' \"dir\"\nline"
    target(project, shared_dir=str(shared), cpus_per_task=1, time="00:10:00", extra_sbatch=["--comment=launchbay"])
    write(
        project,
        "train.py",
        """
        import os, sys, time
        from launchbay import Run
        run = Run.get_context()
        for i in range(40):
            run.log("loss", 1.0 / (i + 1), step=i)
        run.flush()
        deadline = time.time() + 60
        while not os.path.exists("release") and time.time() < deadline:  # the test says when
            time.sleep(0.1)
        os.makedirs("outputs", exist_ok=True)
        with open("outputs/model.txt", "w") as fh:
            fh.write("weights")
        print("done", flush=True)
    """,
    )
    handle = launchbay.submit("train.py", target="cluster")
    # live: the points arrive while the job still runs on the "cluster"
    wait_for(lambda: len(handle.get_metric_series("loss")) == 40)
    assert handle.status == "Running"
    (shared / handle.run_id / "work" / "release").touch()
    assert handle.wait(timeout=60) == "Completed"
    assert "done" in handle.get_log()
    assert handle.get_metric_series("loss").values.tolist() == [1.0 / (i + 1) for i in range(40)]
    assert handle.download_file("outputs/model.txt", project / "model.txt").read_text() == "weights"
    details = handle.get_details()
    script = details["rendered_sbatch"]
    assert f"#SBATCH --job-name=launchbay-{handle.run_id}" in script
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --comment=launchbay" in script
    assert Path(details["slurm_run_dir"]) == shared / handle.run_id
    shown = cli("show", handle.run_id, check=True).stdout
    assert "rendered_sbatch:" in shown and f"launchbay-{handle.run_id}" in shown


@pytest.mark.slurm
def test_a_job_waiting_behind_another_shows_queued_then_completes(slurm: None, project: Path) -> None:
    target(project, cpus_per_task=2)  # the whole node: one such job at a time
    write(
        project,
        "hold.py",
        """
        import os, time
        print("holding", flush=True)
        deadline = time.time() + 60
        while not os.path.exists("release") and time.time() < deadline:  # the test says when
            time.sleep(0.1)
    """,
    )
    write(project, "next.py", "print('my turn')\n")
    first = launchbay.submit("hold.py", target="cluster")
    wait_for(lambda: "holding" in first.get_log())
    second = launchbay.submit("next.py", target="cluster")
    third = launchbay.submit("next.py", target="cluster")
    details = second.get_details()
    assert first.status == "Running"
    assert details["status"] == "Queued" and details["slurm_state"] == "PENDING"
    assert details["slurm_reason"] in ("Resources", "Priority", "None")
    assert third.cancel() == "Canceled"  # canceled while still waiting: it never ran
    assert "canceled before it started" in third.record().error["message"]  # type: ignore[index]
    assert second.status == "Queued"
    (first.record().run_dir / "work" / "release").touch()
    assert first.wait(timeout=60) == "Completed"
    assert second.wait(timeout=60) == "Completed"
    assert "my turn" in second.get_log()
    assert second.record().started >= first.record().ended - 1
    assert third.get_log() == ""


@pytest.mark.slurm
def test_sbatch_refusing_the_job_records_no_run(slurm: None, project: Path) -> None:
    target(project, partition="no-such-partition")
    write(project, "train.py", "print('never')\n")
    with pytest.raises(TargetError, match="sbatch refused the run: .*partition"):
        launchbay.submit("train.py", target="cluster")
    assert launchbay.runs() == []


@pytest.mark.slurm
def test_targets_lists_the_partitions(slurm: None, project: Path, cli: CLI) -> None:
    target(project)
    listing = cli.json("targets")
    entry = next(t for t in listing if t["name"] == "cluster")  # type: ignore[union-attr]
    assert entry["reachable"] is True
    assert any(p["partition"].rstrip("*") == "debug" for p in entry["partitions"])


@pytest.mark.slurm
@pytest.mark.ssh
def test_submitting_through_a_login_node_over_ssh(slurm: None, project: Path, tmp_path: Path) -> None:
    need_service(all(SSH_ENV.values()), "the test sshd (LAUNCHBAY_TEST_SSH_*)")
    remote = tmp_path / "login home"
    login = {k: v for k, v in ssh_settings(remote).items() if k not in ("type", "workdir")}
    # the login shell does not have the test cluster's SLURM_CONF; a real one has /etc/slurm
    login["login_setup"] = f"export SLURM_CONF={shlex.quote(os.environ['SLURM_CONF'])}"
    target(project, shared_dir=str(remote), **login)
    write(
        project,
        "train.py",
        """
        import os, time
        from launchbay import Run
        run = Run.get_context()
        for i in range(20):
            run.log("acc", i / 20, step=i)
            time.sleep(0.1)
        os.makedirs("outputs", exist_ok=True)
        open("outputs/result.txt", "w").write("over ssh")
        print("token", os.environ.get("API_TOKEN") == "s3cret", flush=True)
    """,
    )
    handle = launchbay.submit("train.py", target="cluster", env_vars={"API_TOKEN": "s3cret"})
    assert handle.wait(timeout=90) == "Completed"
    assert "token True" in handle.get_log()
    assert len(handle.get_metric_series("acc")) == 20
    assert handle.download_file("outputs/result.txt", project / "r.txt").read_text() == "over ssh"
    details = handle.get_details()
    assert details["slurm_run_dir"] == str(remote / handle.run_id) and details["slurm_state"] == "COMPLETED"
    assert "s3cret" not in (remote / handle.run_id / "launchbay.sbatch").read_text()


def _slurm_command(*words: str) -> str:
    return subprocess.run(list(words), capture_output=True, text=True, check=True).stdout


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_a_preempted_job_ends_resumable_and_its_requeued_start_changes_nothing(slurm: None, project: Path) -> None:
    """Slurm stops a preempted (requeued) job with SIGTERM and later starts its script again: the run ends
    Canceled with a reason that says so and how to go on; the second start leaves it as it was."""
    target(project, extra_sbatch=["--requeue"])
    write(project, "train.py", CHECKPOINTING)  # a step a second, its checkpoint in outputs/
    first = launchbay.submit("train.py", target="cluster")
    wait_for(lambda: len(first.get_metric_series("loss")) >= 2)
    job = str(first.record().target_state["slurm_job_id"])
    _slurm_command("scontrol", "requeue", job)  # what preemption with --requeue does
    assert first.wait(timeout=60) == "Canceled"
    reason = first.record().error["message"]  # type: ignore[index]
    assert f"Stopped by Slurm (job {job}" in reason and f"launchbay resume {first.run_id}" in reason
    saved = json.loads(first.file_path("outputs/ckpt.json").read_text())["step"]
    state = functools.partial(_slurm_command, "squeue", "-h", "-t", "all", "-j", job, "-o", "%T")
    wait_for(lambda: state().strip() == "PENDING")  # requeued: Slurm holds it back a while (BeginTime)
    _slurm_command("scontrol", "update", f"jobid={job}", "starttime=now")  # so that it starts again now
    # started again on slurmctld's next scheduling pass, which a loaded machine can put off past 45 s
    wait_for(lambda: state().strip() in ("COMPLETED", ""), timeout=150)
    events = first.record().run_dir / "journal" / "events.jsonl"
    assert events.read_text().count('"final": true') == 1  # its second start wrote no second end
    assert launchbay.get_run(first.run_id).status == "Canceled"
    second = first.resume()
    assert second.wait(timeout=120) == "Completed", second.record().error
    assert [int(s) for s in second.get_metric_series("loss").steps] == list(range(saved + 1, 12))
