"""``./logs`` and ``./outputs`` come back while the run runs, on every target that can run here.

The run appends a line to ``logs/live.txt`` every 0.3 s; the test reads the file from
the local store while the run is still Running, sees it grow, then cancels the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import launchbay
from conftest import TargetUnderTest, target_params, write
from launchbay.handle import RunHandle
from launchbay.store import open_store

LIVE = """
    import os, time
    os.makedirs("logs", exist_ok=True)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/first.txt", "w") as fh:
        fh.write("early output")
    with open("logs/live.txt", "w") as fh:
        for i in range(200):
            fh.write(f"line {i}\\n")
            fh.flush()
            time.sleep(0.3)
"""


FILE_TARGETS = target_params("local", "docker", "docker-tcp", "ssh")  # where a file is rewritten in place


def _wait_running(handle: RunHandle) -> None:
    deadline = time.time() + 60
    while handle.status != "Running" and time.time() < deadline:
        time.sleep(0.1)


def _lines(handle: RunHandle, rel: str) -> list[str]:
    """The file as the local store has it now (after catching the run up, as any reader does)."""
    assert handle.status == "Running", handle.get_log()
    path = open_store().files_dir(handle.record()) / rel
    return path.read_text().splitlines() if path.exists() else []


def test_logs_and_outputs_arrive_while_the_run_runs(project: Path, target: TargetUnderTest) -> None:
    target.configure(project)
    write(project, "live.py", LIVE)
    handle = launchbay.submit("live.py", target=target.name, system_metrics_interval_s=0)
    try:
        _wait_running(handle)
        deadline = time.time() + 60
        seen_at = None
        while time.time() < deadline:
            lines = _lines(handle, "logs/live.txt")
            if lines and seen_at is None:
                seen_at = time.time()
            if len(lines) >= 5:
                break
            time.sleep(0.2)
        assert seen_at is not None and len(lines) >= 5, lines
        assert lines[:5] == [f"line {i}" for i in range(5)]  # appended in order, nothing doubled
        assert open_store().file_path(handle.record(), "outputs/first.txt").read_text() == "early output"
    finally:
        handle.cancel()
    assert handle.wait() == "Canceled"
    final = open_store().file_path(handle.record(), "logs/live.txt").read_text().splitlines()
    assert final[: len(lines)] == lines and final == [f"line {i}" for i in range(len(final))]


@pytest.mark.parametrize("target", FILE_TARGETS, indirect=True)
def test_a_rewritten_file_arrives_with_its_new_content_during_the_run(project: Path, target: TargetUnderTest) -> None:
    target.configure(project)
    write(
        project,
        "rewrite.py",
        """
        import os, time
        os.makedirs("outputs", exist_ok=True)
        for text in ("a much longer first version\\n", "short\\n"):
            with open("outputs/state.txt", "w") as fh:
                fh.write(text)
            time.sleep(2)
        time.sleep(60)
    """,
    )
    handle = launchbay.submit("rewrite.py", target=target.name, system_metrics_interval_s=0)
    try:
        _wait_running(handle)
        contents: set[str] = set()
        deadline = time.time() + 60
        while time.time() < deadline and "short" not in contents:
            contents.update(_lines(handle, "outputs/state.txt"))
            time.sleep(0.2)
        assert "short" in contents, contents
    finally:
        handle.cancel()
    assert handle.wait() == "Canceled"
    assert (open_store().files_dir(handle.record()) / "outputs/state.txt").read_text() == "short\n"


def test_files_replaced_or_renamed_during_a_local_run_end_with_their_last_content(project: Path) -> None:
    write(
        project,
        "rewrite.py",
        """
        import os, time
        os.makedirs("outputs", exist_ok=True)
        for text in ("a much longer first version\\n", "short\\n", "short, then longer again\\n"):
            with open("outputs/state.txt", "w") as fh:
                fh.write(text)
            time.sleep(1.3)
        os.replace("outputs/state.txt", "outputs/renamed.txt")
        with open("outputs/state.txt.new", "w") as fh:
            fh.write("new")
        os.replace("outputs/state.txt.new", "outputs/state.txt")
    """,
    )
    handle = launchbay.submit("rewrite.py", system_metrics_interval_s=0)
    assert handle.wait() == "Completed", handle.get_log()
    files = open_store().files_dir(handle.record()) / "outputs"
    assert (files / "state.txt").read_text() == "new"
    assert (files / "renamed.txt").read_text() == "short, then longer again\n"
    assert not [p for p in os.listdir(files) if p.endswith(".tmp")]
