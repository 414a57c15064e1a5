"""``launchbay resume RUN`` and ``RunHandle.resume()``: a run stopped part way (its maximum duration, a
cancel, a preempted job) goes on in a new run from the checkpoints it wrote in ``outputs/``.

The new run has the old one's snapshot, environment and arguments, gets the old ``outputs/`` as the data
input ``checkpoint`` (``$LAUNCHBAY_INPUT_CHECKPOINT``) and records ``launchbay.resume_of``. A run still
running, or one that wrote no checkpoint, is refused in one line and no run is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import launchbay
from conftest import TargetUnderTest, target_params, write

pytestmark = pytest.mark.parametrize("target", target_params("local", "slurm"), indirect=True)

TRAIN = """
    import json, os, time
    from launchbay import Run
    run = Run.get_context()
    start = 0
    resumed = os.environ.get("LAUNCHBAY_INPUT_CHECKPOINT")
    if resumed:
        start = json.load(open(os.path.join(resumed, "ckpt.json")))["step"] + 1
    print("START", start, flush=True)
    os.makedirs("outputs", exist_ok=True)
    for step in range(start, 12):
        run.log("loss", 1.0 / (step + 1), step=step)
        with open("outputs/ckpt.json.tmp", "w") as fh:
            json.dump({"step": step}, fh)
        os.replace("outputs/ckpt.json.tmp", "outputs/ckpt.json")
        if not resumed:
            time.sleep(1.0)  # the first run is stopped part way by its maximum duration
    print("DONE", flush=True)
"""


def project(target: TargetUnderTest, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    target.configure(root)
    write(root, "train.py", TRAIN)
    return root


def test_a_run_stopped_by_its_maximum_duration_resumes_from_its_checkpoint(
    target: TargetUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = project(target, tmp_path / "proj")
    monkeypatch.chdir(folder)
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    first = launchbay.submit("train.py", target=target.name, source_dir=folder, max_duration_s=6)
    assert first.wait(timeout=180) == "Canceled"
    saved = json.loads(first.file_path("outputs/ckpt.json").read_text())["step"]
    assert 0 <= saved < 11  # it stopped part way
    second = first.resume()
    assert second.wait(timeout=180) == "Completed", second.record().error
    log = second.get_log()
    assert f"START {saved + 1}" in log and "DONE" in log
    steps = [int(s) for s in second.get_metric_series("loss").steps]
    assert steps == list(range(saved + 1, 12))  # it went on; nothing was done again
    details = second.get_details()
    assert details["tags"]["launchbay.resume_of"] == first.run_id
    [checkpoint] = [i for i in details["inputs"] if i["name"] == "checkpoint"]
    assert checkpoint["files"] == 1
    assert second.record().snapshot_id == first.record().snapshot_id


def test_resume_is_refused_for_a_running_run_and_for_one_without_checkpoints(
    target: TargetUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = project(target, tmp_path / "proj")
    write(folder, "nothing.py", "print('no checkpoints here')\n")
    write(folder, "slow.py", "import time\ntime.sleep(60)\n")
    monkeypatch.chdir(folder)
    store = tmp_path / "store"
    monkeypatch.setenv("LAUNCHBAY_STORE", str(store))
    empty = launchbay.submit("nothing.py", target=target.name, source_dir=folder)
    assert empty.wait(timeout=180) == "Completed"
    running = launchbay.submit("slow.py", target=target.name, source_dir=folder)
    deadline = time.time() + 120
    while running.get_status() != "Running" and time.time() < deadline:
        time.sleep(0.5)
    before = len(launchbay.runs(limit=None))
    cli = [sys.executable, "-m", "launchbay", "resume"]
    for run, message in ((empty, "left nothing in outputs/"), (running, "cancel it first")):
        proc = subprocess.run([*cli, run.run_id], capture_output=True, text=True, cwd=folder, timeout=120)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert len(launchbay.runs(limit=None)) == before  # nothing was written
    running.cancel()
