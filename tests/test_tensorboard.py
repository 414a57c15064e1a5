"""``launchbay tensorboard RUN``: TensorBoard over the run's ./logs, serving its scalars while it runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, free_port, need_service, pid_alive, wait_for, write
from launchbay.tboard import has_event_files

WRITER = """
    import time
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter("logs/train")
    for step in range(300):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (step + 1))
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value])))
        writer.flush()
        time.sleep(0.3)
"""


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_tensorboard_serves_a_running_runs_scalars(project: Path, cli: CLI) -> None:
    need_service(importlib.util.find_spec("tensorboard") is not None, "tensorboard (pip install tensorboard)")
    write(project, "tb.py", WRITER)
    handle = launchbay.submit("tb.py", system_metrics_interval_s=0)
    port = free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "launchbay", "tensorboard", handle.run_id, "--port", str(port)],
        cwd=project,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert board.stdout is not None
        assert f"TensorBoard on http://127.0.0.1:{port}/" in board.stdout.readline()
        base = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run={handle.run_id}/train&tag=loss"

        def points() -> list[list[float]]:
            try:
                got = _get(base)
            except OSError:  # 400 until TensorBoard has read the run
                return []
            return got if isinstance(got, list) and len(got) >= 3 else []

        scalars = wait_for(points, timeout=60, interval=0.5)
        assert handle.status == "Running"  # served live, not after the end
        assert [p[1] for p in scalars[:3]] == [0, 1, 2] and scalars[1][2] == pytest.approx(0.5)
        assert has_event_files(launchbay.get_run(handle.run_id).record().run_dir / "files")
        tensorboard_pids = Path(f"/proc/{board.pid}/task/{board.pid}/children").read_text().split()
        assert tensorboard_pids
    finally:
        handle.cancel()
        board.terminate()  # SIGTERM, as `kill` sends: TensorBoard goes with it
        board.communicate(timeout=20)  # reads and closes its pipes
    assert handle.wait() == "Canceled"
    wait_for(lambda: not any(pid_alive(int(pid)) for pid in tensorboard_pids), timeout=20)


def test_tensorboard_refuses_clearly_when_it_is_not_installed(project: Path, cli: CLI, tmp_path: Path) -> None:
    write(project, "quick.py", "print(1)\n")
    handle = launchbay.submit("quick.py", system_metrics_interval_s=0)
    assert handle.wait() == "Completed"
    blocker = tmp_path / "no-tb"
    blocker.mkdir()
    (blocker / "tensorboard.py").write_text("raise ImportError('hidden by the test')\n")
    env = dict(os.environ, PATH="/nonexistent", PYTHONPATH=f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(
        [sys.executable, "-m", "launchbay", "tensorboard", handle.run_id],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "TensorBoard is not installed: `pip install tensorboard`" in proc.stderr, proc.stderr
