"""The Ray target against a real Ray head on 127.0.0.1 (``scripts/services/start.sh ray``).

Runs reach the store only through the Jobs API (the job's log carries the run
folder back), as they would from a cluster node that shares no filesystem. What
every target does is in test_target_contract.py.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import pytest

import conftest
import launchbay
from conftest import CLI, RAY_ADDRESS, need_service, ray_answers, toml_table, write
from launchbay.errors import TargetError
from launchbay.targets.ray import apply_chunks
from launchbay.targets.rayship import Shipper

ADDRESS = RAY_ADDRESS


@pytest.fixture(scope="module")
def ray_head() -> str:
    """The one Ray head every test shares (started once by start.sh: Ray takes ~1.5 GiB)."""
    need_service(ray_answers(), "Ray head (LAUNCHBAY_TEST_RAY_ADDRESS)")
    return ADDRESS


wait_for = functools.partial(conftest.wait_for, timeout=60, interval=0.25)


def target(project: Path, address: str, **settings: object) -> None:
    (project / "launchbay.toml").write_text(toml_table("ray", {"type": "ray", "address": address, **settings}))


@pytest.mark.ray
def test_run_streams_log_and_metrics_and_brings_outputs_back(ray_head: str, project: Path, cli: CLI) -> None:
    target(project, ray_head, num_cpus=1, env_vars={"GREETING": "hello from ray"})
    write(project, "data/config.txt", "lr=0.1\n")
    write(project, ".launchbayignore", "big/\n")
    write(project, "big/skip.bin", "not shipped\n")
    write(
        project,
        "train.py",
        """
        import os, time
        from launchbay import Run
        run = Run.get_context()
        print("greeting", os.environ.get("GREETING"), flush=True)
        print("config", open("data/config.txt").read().strip(), "big" in os.listdir("."), flush=True)
        for i in range(40):
            run.log("loss", 1.0 / (i + 1), step=i)
            print("step", i, flush=True)
        run.flush()
        print("cwd", os.getcwd(), flush=True)
        deadline = time.time() + 60
        while not os.path.exists("release") and time.time() < deadline:  # the test says when
            time.sleep(0.1)
        os.makedirs("outputs/nested dir", exist_ok=True)
        with open("outputs/nested dir/model.bin", "wb") as fh:
            fh.write(bytes(range(256)) * 1000)
        print("ünïcode ✓ done", flush=True)
    """,
    )
    handle = launchbay.submit("train.py", target="ray")
    assert handle.status == "Queued"
    # live: the log and the points arrive while the job still runs (on this machine, which
    # lets the test tell the job when to finish: the job's folder is named in its log)
    line = wait_for(lambda: next((ln for ln in handle.get_log().splitlines() if ln.startswith("cwd ")), None))
    wait_for(lambda: len(handle.get_metric_series("loss")) == 40)
    assert handle.status == "Running" and "step 39" in handle.get_log()
    (Path(line[4:]) / "release").touch()
    assert handle.wait(timeout=90) == "Completed"
    log = handle.get_log()
    assert "greeting hello from ray" in log and "config lr=0.1 False" in log
    assert "ünïcode ✓ done" in log and "@lb1" not in log
    model = handle.download_file("outputs/nested dir/model.bin", project / "model.bin")
    assert model.read_bytes() == bytes(range(256)) * 1000
    details = cli.json("show", handle.run_id)
    assert details["ray_status"] == "SUCCEEDED"  # type: ignore[index]
    assert details["ray_job_id"] == f"launchbay-{handle.run_id}"  # type: ignore[index]


@pytest.mark.ray
def test_a_job_ray_cannot_place_stays_queued_until_canceled(ray_head: str, project: Path) -> None:
    target(project, ray_head, num_cpus=64)  # the test cluster has 2
    write(project, "train.py", "print('never runs')\n")
    handle = launchbay.submit("train.py", target="ray")
    time.sleep(3)
    details = handle.get_details()
    assert details["status"] == "Queued" and details["ray_status"] == "PENDING"
    assert handle.cancel() == "Canceled"
    assert "stopped" in handle.record().error["message"]  # type: ignore[index]
    assert handle.get_log() == ""


@pytest.mark.ray
def test_a_snapshot_over_rays_package_limit_is_refused_with_our_error(ray_head: str, project: Path) -> None:
    target(project, ray_head)
    write(project, "train.py", "print('never')\n")
    with open(project / "weights.bin", "wb") as fh:
        fh.write(os.urandom(101 * 1024 * 1024))
    with pytest.raises(TargetError, match=r"over the .* Ray's Jobs API accepts.*weights\.bin"):
        launchbay.submit("train.py", target="ray")
    assert launchbay.runs() == []


def test_an_unreachable_cluster_records_no_run(project: Path) -> None:
    target(project, "http://127.0.0.1:9")
    write(project, "train.py", "print('never')\n")
    with pytest.raises(TargetError, match="Cannot reach Ray's Jobs API at http://127.0.0.1:9"):
        launchbay.submit("train.py", target="ray")
    assert launchbay.runs() == []


def test_the_log_protocol_rebuilds_the_run_folder_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the job prints and what sync writes back: appends, rewrites, odd bytes, odd names."""
    node, local = tmp_path / "node", tmp_path / "local"
    files = {
        "files/user_logs/std_log.txt": b"plain\n\xff\xfe not utf-8 \xe2\x9c\x93 \r\n\x00 \xe2\x80\xa8 \x85 end",
        "journal/p1-2.bin": os.urandom(200_000),
        "journal/events.jsonl": b'{"type": "status", "status": "Running"}\n',
        "journal/heartbeat": b"1.0",
        "files/outputs/a b 'c'%20.txt": b"x" * 10,
    }
    shipper = Shipper(str(node))
    for step in range(3):
        for rel, data in files.items():
            path = node / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if rel == "journal/heartbeat":
                path.write_bytes(str(step + 0.5).encode())  # rewritten whole
            elif rel.startswith("files/outputs"):
                path.write_bytes(data * (3 - step))  # rewritten shorter
            else:
                with open(path, "ab") as fh:
                    fh.write(data)
        shipper.ship()
        printed = capsys.readouterr().out
        assert all(line.startswith("@lb1 ") for line in printed.splitlines())
        apply_chunks(local, "runner says hi\n" + printed)
        for rel in files:
            assert (local / rel).read_bytes() == (node / rel).read_bytes(), rel
    assert (local / "journal" / "runner.log").read_text().count("runner says hi") == 3
    assert "\\xff" not in printed and "not utf-8" in printed  # the live log stays readable in Ray's dashboard
