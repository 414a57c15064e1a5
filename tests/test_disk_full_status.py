"""A full disk is never a silent Completed (issue 24).

A run whose points or output could not all be written says so on its status line wherever a
person looks (the widget, ``launchbay runs``, ``show`` and ``show --json``, the sidebar's REST
API); every point and line written before and after the disk was full is kept; and the runner
itself survives the full disk, even when the run ends before any space comes back.

A real 16 MB tmpfs, filled to its last byte while the run runs and freed again; no mocks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, need_service, pid_alive, wait_for, write
from launchbay import runfolder as rf

SCRIPT = """
import os, sys, time
from launchbay import Run
flags, wait_for_space = sys.argv[1], sys.argv[2] == "wait"
def phase(name, wait_for):
    open(os.path.join(flags, name), "w").close()
    while not os.path.exists(os.path.join(flags, wait_for)):
        time.sleep(0.02)
run = Run.get_context()
for i in range(1000):
    run.log("m", float(i), step=i)
run.flush()
print("y" * 4095, flush=True)  # the log is one full page: nothing more of it fits on a full disk
phase("logged", "filled")
for i in range(1000, 6000):
    run.log("m", float(i), step=i)
run.flush()  # not written, and launchbay says so in the run's output (not written either)
for i in range(300):
    print("x" * 1000, flush=True)
if wait_for_space:
    phase("refused", "freed")
for i in range(6000, 7000):
    run.log("m", float(i), step=i)
print("after", flush=True)
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs (mount needs root: CI runs as root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    need_service(done.returncode == 0, f"mounting a tmpfs ({done.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Take every byte left on the disk holding ``folder``."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def start(project: Path, disk: Path, flags: Path, wait_for_space: bool) -> tuple[launchbay.RunHandle, Path, Path]:
    """Submit the script with its store on ``disk``; return once the disk is full and the script has logged
    into it. Returns the handle, the run's folder and the filler to delete."""
    write(project, "full.py", SCRIPT)
    handle = launchbay.submit("full.py", args=[str(flags), "wait" if wait_for_space else "go on"])
    run_dir = disk / "store" / "runs" / handle.run_id
    wait_for(lambda: (flags / "logged").exists(), timeout=60)
    log = run_dir / rf.FILES / rf.STD_LOG
    wait_for(lambda: log.exists() and log.stat().st_size == 4096)  # the runner has written the first line
    filler = fill(disk)
    (flags / "filled").touch()
    return handle, run_dir, filler


@pytest.fixture
def flags(tmp_path: Path) -> Path:
    folder = tmp_path / "flags"
    folder.mkdir()
    return folder


@pytest.fixture
def on_small_disk(project: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAUNCHBAY_STORE", str(small_disk / "store"))
    return small_disk


LINE = "Completed — 5,000 points and 301 lines of output not written: disk full"  # 300 lines and launchbay's note


def test_a_run_that_filled_the_disk_says_what_was_not_written_on_its_status_line_everywhere(
    project: Path, on_small_disk: Path, flags: Path
) -> None:
    handle, run_dir, filler = start(project, on_small_disk, flags, wait_for_space=True)
    wait_for(lambda: (flags / "refused").exists(), timeout=60)
    filler.unlink()  # space is back
    (flags / "freed").touch()
    assert handle.wait(timeout=90) == "Completed", handle.get_log()

    steps = handle.get_metric_series("m").steps.tolist()
    assert steps == list(range(1000)) + list(range(6000, 7000))  # all before and all after
    assert handle.get_log().splitlines() == [
        "y" * 4095,
        "launchbay: 301 lines of output not written here: disk full",
        "after",
    ]

    cli = CLI(project)
    listing = cli("runs", check=True).stdout
    assert LINE in next(line for line in listing.splitlines() if line.startswith(handle.run_id))
    shown = cli("show", handle.run_id, check=True).stdout
    assert "status       Completed (exit code 0) — 5,000 points and 301 lines of output not written: disk full" in shown
    details = json.loads(cli("show", "--json", handle.run_id, check=True).stdout)
    assert details["status"] == "Completed"  # the status itself is the same as ever
    assert details["status_detail"] == "5,000 points and 301 lines of output not written: disk full"
    assert details["not_written"] == {"points": 5000, "output_lines": 301, "reason": "disk full"}
    [listed] = json.loads(cli("runs", "--json", check=True).stdout)
    assert listed["status_detail"] == details["status_detail"]

    from launchbay.ipython.widgets import header_html
    from launchbay.server.service import LaunchbayService

    header = re.sub(r"<[^>]+>", "", header_html(handle.record(), 1.0))  # the widget's status line, as text
    assert LINE in header
    service = LaunchbayService.open(None, str(project))
    assert service.run(handle.run_id)["status_detail"] == details["status_detail"]
    assert service.list_runs()["runs"][0]["not_written"] == details["not_written"]


def test_a_run_that_ends_while_the_disk_is_still_full_is_recorded_by_its_runner(
    project: Path, on_small_disk: Path, flags: Path
) -> None:
    handle, run_dir, filler = start(project, on_small_disk, flags, wait_for_space=False)
    events = run_dir / rf.JOURNAL / rf.EVENTS
    runner = json.loads(events.read_text().splitlines()[0])
    assert runner["type"] == "runner"
    wait_for(lambda: rf.has_final_event(run_dir) or not pid_alive(runner["pid"]), timeout=60)
    assert rf.has_final_event(run_dir), "the runner died of the full disk without recording the run's end"
    filler.unlink()

    assert handle.wait(timeout=60) == "Completed", handle.record().error
    assert handle.get_metric_series("m").steps.tolist() == list(range(1000))
    assert handle.get_log().splitlines() == ["y" * 4095]
    details = handle.get_details()
    assert details["status_detail"] == "6,000 points and 302 lines of output not written: disk full"
    again = launchbay.submit("full.py", args=[str(flags), "go on"])  # the store works as before
    assert again.wait(timeout=60) == "Completed" and len(again.get_metric_series("m").steps) == 7000
    assert again.get_details()["status_detail"] is None
