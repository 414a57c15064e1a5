"""A detached controller as the 'runner' of a record on top of runs (a sweep, a pipeline): the control
that keeps such a record true, and the controller process's entry point.

A sweep or a pipeline is not launched on a target, so it is not one: ``Session.target_for`` hands out
its kind's ``ControllerControl`` (``launchbay.controls`` entry points; both satisfy
``targets.base.RunControl``). This module imports neither the session nor a controller, so the core
can use it without an import cycle.
"""

from __future__ import annotations

import sys
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
