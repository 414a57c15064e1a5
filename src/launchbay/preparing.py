"""A run's long preparation (an environment to build, an image to pull) belongs to the run.

When the target says a launch has long work ahead (``Target.needs_preparing``), the submit records
the run, marks it Preparing and hands it to a detached process of its own (``python -m
launchbay.preparing STORE RUN_ID``), then returns. That process launches the run as the submit would
have, writing what the build does into the run's log (``files/user_logs/std_log.txt``: what
``launchbay logs``, the widget and the sidebar show), so the run's own output follows its build in
one file. A launch that fails ends the run Failed, with the failing lines of the build as its reason.

What the run needs that the store keeps only redacted (secret variables and arguments) waits in the
owner-only file the queue uses for the same purpose (queueing.keep_spec), deleted once the run starts.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import queueing
from . import runfolder as rf
from .errors import LaunchbayError
from .models import RunStatus

if TYPE_CHECKING:
    from .config import ProjectConfig
    from .models import RunSpec
    from .store import RunRecord, Store

STATE_KEY = "preparer"  # target_state: {"host", "pid", "start", "done"}


def detach(store: Store, record: RunRecord, spec: RunSpec, config: ProjectConfig) -> None:
    """Mark ``record`` Preparing and start the process that launches it."""
    from .targets.local import spawn_detached

    queueing.keep_spec(store, record, spec, config)
    state = {"host": socket.gethostname(), "pid": None, "done": False}
    store.merge_target_state(record.pk, **{STATE_KEY: state})
    record.target_state[STATE_KEY] = state
    store.update_run(record.pk, status=RunStatus.PREPARING.value, heartbeat=time.time())
    rf.log_line(record.run_dir, "preparing the run (its environment or image) in the background")
    command = [sys.executable, "-m", "launchbay.preparing", "--detach", store.uri, record.run_id]
    spawn_detached(command, record.run_dir, dict(os.environ), "the process that prepares the run")


def underway(record: RunRecord) -> bool:
    """Is a preparing process (still) responsible for this run, i.e. has it not handed it to a runner?"""
    state = record.target_state.get(STATE_KEY)
    return isinstance(state, dict) and not state.get("done")


def alive(record: RunRecord) -> bool | None:
    """Does the run's preparing process still run? None when it cannot tell (not started yet, another host)."""
    from .targets.local import process_alive

    state = record.target_state.get(STATE_KEY) or {}
    if state.get("host") != socket.gethostname() or not state.get("pid"):
        return None
    return process_alive(int(state["pid"]), record.run_id, state.get("start"))


def stop(record: RunRecord) -> bool:
    """Stop the run's preparing process and what it started (a pip, a conda); True when one was stopped."""
    state = record.target_state.get(STATE_KEY) or {}
    if not alive(record):
        return False
    try:
        os.killpg(os.getpgid(int(state["pid"])), signal.SIGTERM)  # its own session's group: its pip goes too
    except (ProcessLookupError, PermissionError):
        return False
    return True


def prepare(store: Store, run_id: str) -> RunRecord:
    """Launch ``run_id`` as its submit would have, its progress into its log; a failure ends it Failed."""
    from .runner_procs import start_time
    from .targets import make_target

    record = store.get_run(run_id)
    me = os.getpid()
    state = {"host": socket.gethostname(), "pid": me, "start": start_time(me), "done": False}
    store.merge_target_state(record.pk, **{STATE_KEY: state})
    record.target_state[STATE_KEY] = state
    try:
        spec, config = queueing.kept_spec(store, record)
        target = make_target(record.target, config, store)
        target.launch(record, spec, queueing.stored_snapshot(store, record), lambda m: rf.log_line(record.run_dir, m))
    except Exception as exc:  # noqa: BLE001 - whatever stops the launch ends the run, with its words
        message = str(exc) if isinstance(exc, LaunchbayError) else f"{type(exc).__name__}: {exc}"
        rf.log_line(record.run_dir, message)
        store.end_run(record.pk, RunStatus.FAILED, {"message": message, "traceback": _log_tail(record.run_dir)})
    finally:
        queueing.forget_spec(store, run_id)
        store.merge_target_state(record.pk, **{STATE_KEY: {**state, "done": True}})
    return store.get_run(run_id)


def _log_tail(run_dir: Path, lines: int = 20) -> str:
    try:
        text = (run_dir / rf.FILES / rf.STD_LOG).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    from .runner import daemonize
    from .store import open_store

    args = list(sys.argv[1:] if argv is None else argv)
    detach_now = "--detach" in args
    args = [a for a in args if a != "--detach"]
    if len(args) != 2:
        print("usage: python -m launchbay.preparing [--detach] STORE RUN_ID", file=sys.stderr)
        return 2
    if detach_now:
        daemonize()
    store = open_store(args[0])
    try:
        record: Any = prepare(store, args[1])
        return 0 if record.status is not RunStatus.FAILED else 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
