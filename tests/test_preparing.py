"""An environment build belongs to its run: the submit returns once the run is recorded, the build
happens while the run is Preparing (its lines in the run's log), and the run can be canceled then.

A pip-built venv (``installer = "pip"``, several seconds) is the slow build here.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import launchbay
from conftest import wait_for, write
from launchbay.targets.local import process_alive

SLOW = '[environments.slow]\npip = ["six"]\ninstaller = "pip"\n'


def preparer_pid(handle: launchbay.RunHandle) -> int:
    def recorded() -> int | None:
        return (handle.record().target_state.get("preparer") or {}).get("pid")

    wait_for(lambda: recorded() is not None)
    return int(recorded() or 0)


def test_a_run_being_prepared_is_canceled_and_its_build_stopped(project: Path) -> None:
    write(project, "launchbay.toml", SLOW)
    write(project, "train.py", "print('never ran')\n")
    handle = launchbay.submit("train.py", environment="slow")
    assert handle.status == "Preparing"  # the submit returned before the build
    pid = preparer_pid(handle)
    wait_for(lambda: "creating the virtual environment" in handle.get_log())
    assert handle.cancel() == "Canceled"
    assert "Canceled while preparing" in handle.record().error["message"]  # type: ignore[index]
    wait_for(lambda: not process_alive(pid))
    assert "never ran" not in handle.get_log() and handle.status == "Canceled"


def test_a_run_whose_preparing_process_was_killed_fails_saying_so(project: Path) -> None:
    write(project, "launchbay.toml", SLOW)
    write(project, "train.py", "print('never ran')\n")
    handle = launchbay.submit("train.py", environment="slow")
    pid = preparer_pid(handle)
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # it and its pip, as a reboot would
    wait_for(lambda: not process_alive(pid))
    assert handle.wait(timeout=30) == "Failed"
    assert "The process preparing the run died" in handle.record().error["message"]  # type: ignore[index]
