"""Keep a pipeline's record true, as a target does for a run: the pipeline's 'runner' is its controller process.

A pipeline is not launched on a target, so it is not one: ``Session.target_for`` hands
out a ``PipelineControl`` for pipeline records (both satisfy ``targets.base.RunControl``).
This module imports neither the session nor the controller, so the core can use it
without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import runfolder as rf
from ..errors import LaunchbayError
from ..store import RunRecord, Store
from ..targets.base import RunControl
from ..targets.local import runner_pid_alive, stop_runner


class PipelineControl:
    """Follows and stops a pipeline's controller; ``control_for`` finds the control of a child run."""

    type_name = "pipeline"

    def __init__(self, store: Store, control_for: Callable[[RunRecord], RunControl]) -> None:
        self.store, self.control_for = store, control_for

    def mirror(self, record: RunRecord) -> None:
        """The controller writes into the local store: nothing to bring back."""

    def cancel(self, record: RunRecord) -> None:
        stop_runner(record, record.run_id)

    def alive(self, record: RunRecord) -> bool | None:
        return runner_pid_alive(record, record.run_id)

    def force_stop(self, record: RunRecord) -> None:
        """The controller is gone. If the pipeline was being canceled, stop the children it left running,
        as the cancel asked. If it died on its own (killed, its machine restarted), leave its steps be:
        each is a whole run with a runner of its own, and ``launchbay pipeline rerun`` adopts those still
        running instead of losing their progress and repeating their side effects."""
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
