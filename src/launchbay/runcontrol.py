"""A detached controller as the 'runner' of a record on top of runs (a sweep, a pipeline): the control
that keeps such a record true, and the controller process's entry point.

A sweep or a pipeline is not launched on a target, so it is not one: ``Session.target_for`` hands out
its kind's ``ControllerControl`` (``launchbay.controls`` entry points; both satisfy
``targets.base.RunControl``). This module imports neither the session nor a controller, so the core
can use it without an import cycle.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from . import runfolder as rf
from .errors import LaunchbayError
from .store import RunRecord, Store
from .targets.base import RunControl
from .targets.local import runner_pid_alive, stop_runner


class ControllerControl:
    """Follows and stops a record's controller; ``control_for`` finds the control of a child run.
    A kind sets ``type_name``."""

    type_name: str

    def __init__(self, store: Store, control_for: Callable[[RunRecord], RunControl]) -> None:
        self.store, self.control_for = store, control_for

    def mirror(self, record: RunRecord) -> None:
        """The controller writes into the local store: nothing to bring back."""

    def cancel(self, record: RunRecord) -> None:
        stop_runner(record, record.run_id)

    def alive(self, record: RunRecord) -> bool | None:
        return runner_pid_alive(record, record.run_id)

    def force_stop(self, record: RunRecord) -> None:
        """The controller is gone. If the record was being canceled, stop the children it left running,
        as the cancel asked. If it died on its own (killed, its machine restarted), leave its children be:
        each is a whole run with a runner of its own, and a resume (``launchbay sweep --resume``,
        ``launchbay pipeline rerun``) adopts those still running instead of losing their progress and
        repeating their side effects."""
        if not (record.run_dir / rf.CANCEL).exists():
            return
        for run_id in self.store.children(record.run_id, unfinished=True):
            child = self.store.get_run(run_id)
            try:
                self.control_for(child).cancel(child)
            except LaunchbayError:
                pass

    def describe(self, record: RunRecord) -> dict[str, Any]:
        return {}


class ControllerRun:
    """What every controller (a sweep's, a pipeline's, an AutoML run's) does as its record's runner:
    the runner event, a heartbeat while it lives, Running, the cancel it was asked for, and one final
    status followed by an ingest, so that its record reads as any run's does. ``kind`` names it in
    messages; a subclass keeps its own state in ``save`` and may hand launches to ``_launcher``."""

    kind = "controller"

    def __init__(self, store: Store, record: RunRecord) -> None:
        self.store, self.record = store, record
        self.journal = rf.Journal(str(record.run_dir))
        self.cancel_reason: str | None = None
        self._done = threading.Event()
        self._launcher: Any = None  # a ThreadPoolExecutor of launches, shut down at the end

    def save(self) -> None:
        """Write the controller's own state file (none by default)."""

    def _begin(self) -> None:
        """SIGTERM/SIGINT ask for a cancel; the journal says who runs the record and that it is Running."""
        from .runner import HEARTBEAT_INTERVAL_S

        def asked(*_: Any) -> None:
            self.cancel_reason = "Canceled by request."

        signal.signal(signal.SIGTERM, asked)
        signal.signal(signal.SIGINT, asked)
        self.journal.event(type="runner", pid=os.getpid(), pgid=os.getpgrp(), host=os.uname().nodename)
        self.journal.heartbeat()

        def beat() -> None:
            while not self._done.wait(HEARTBEAT_INTERVAL_S):
                self.journal.heartbeat()

        threading.Thread(target=beat, daemon=True).start()
        self.journal.status("Running")

    def _finish(self, status: str, message: str | None = None) -> int:
        """The one final status (with ``message`` as its error), then an ingest; the exit code."""
        self.save()
        if self._launcher is not None:
            self._launcher.shutdown(wait=False)  # every launch it was given has returned
        error = {"message": message, "traceback": ""} if message else None
        self.journal.status(status, exit_code=0 if status == "Completed" else 1, error=error, final=True)
        self._done.set()
        try:
            from .ingest import ingest_run

            ingest_run(self.store, self.store.get_run(self.record.run_id))
        except Exception as exc:  # readers ingest the journal later
            print(f"launchbay {self.kind}: final ingest deferred: {exc}", file=sys.stderr)
        return 0 if status == "Completed" else 1

    def _cancel_requested(self) -> bool:
        if self.cancel_reason is None and (self.record.run_dir / rf.CANCEL).exists():
            self.cancel_reason = "Canceled by request."
        return self.cancel_reason is not None


def controller_main(argv: list[str] | None, controller: Callable[..., Any], module: str) -> int:
    """``python -m MODULE [--detach] [--resume] STORE RUN_ID``: detach (double fork) if asked, then run
    ``controller(store_uri, run_id, resume=...)`` to its end and close its store."""
    from .runner import daemonize

    args = list(sys.argv[1:] if argv is None else argv)
    detach, resume = "--detach" in args, "--resume" in args
    args = [a for a in args if a not in ("--detach", "--resume")]
    if len(args) != 2:
        print(f"usage: python -m {module} [--detach] [--resume] STORE RUN_ID", file=sys.stderr)
        return 2
    if detach:
        daemonize()
    running = controller(args[0], args[1], resume=resume)
    try:
        return int(running.run())
    finally:
        running.store.close()
