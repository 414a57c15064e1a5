"""The one launch workflow every target follows; backends fill in a few hooks.

``launch`` (the template method) builds the runner's configuration, lets the
target ``prepare`` (environment, upload) and ``start`` the runner. The journal
in the run folder is the only thing a target has to bring back (``sync``).
"""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import runfolder as rf
from .. import secrets
from ..config import LAUNCHBAY_CANCEL_GRACE, ProjectConfig
from ..distributed import runner_entry
from ..errors import ConfigError
from ..models import RunSpec
from ..store import RunRecord, RunStore
from ..sysmon import DEFAULT_INTERVAL_S as DEFAULT_SYSTEM_METRICS_INTERVAL_S

if TYPE_CHECKING:
    from ..snapshot import Snapshot

RUNNER_SOURCE = Path(__file__).resolve().parent.parent / "runner.py"
INRUN_SOURCE = Path(__file__).resolve().parent.parent / "tracking" / "inrun.py"


class Target(ABC):
    """A place runs execute. Subclasses set ``type_name`` and implement the hooks."""

    type_name: ClassVar[str]
    #: how the run's python finds the cell bootstrap: the real module locally,
    #: the shipped copy (runtime/launchbay_cell.py) everywhere else
    cell_module: ClassVar[str] = "launchbay_cell"
    #: set by Session.submit: ``progress(message)`` shows what a long prepare (an environment build) is doing
    progress: Callable[[str], None] | None = None

    def __init__(self, name: str, settings: dict[str, Any], store: RunStore, config: ProjectConfig) -> None:
        self.name, self.settings, self.store, self.config = name, settings, store, config

    # -- the template method ----------------------------------------------------------
    def launch(self, record: RunRecord, spec: RunSpec, snapshot: Snapshot | None) -> None:
        runner_config = self.runner_config(record, spec, snapshot)
        hidden = secrets.hide_in_command(runner_config["command"], len(spec.arguments))
        self.prepare(record, spec, runner_config)
        # an environment's variables joined runner.json's in prepare: secret ones travel with the runner instead
        runner_config["env"], env_secrets = secrets.split(runner_config.get("env") or {})
        secret_env = {**env_secrets, **secrets.split(dict(spec.env_vars))[1]}
        if hidden:  # secret arguments travel in the runner's environment, never in runner.json
            secret_env[secrets.SECRET_ARGS_VAR] = json.dumps(hidden)
        self.start(record, runner_config, secret_env)

    def runner_config(self, record: RunRecord, spec: RunSpec, snapshot: Snapshot | None) -> dict[str, Any]:
        """What the runner needs, written as runner.json (no secret values)."""
        plain_env = secrets.split(dict(spec.env_vars))[0]
        if spec.pull:
            plain_env["LAUNCHBAY_PULL"] = ",".join(spec.pull)
        return {
            "run_id": record.run_id,
            "experiment": record.experiment,
            "command": self.command(spec),
            "working_dir": spec.working_dir,
            "env": plain_env,
            "max_duration_s": spec.max_duration_s,
            "cancel_grace_s": LAUNCHBAY_CANCEL_GRACE.get(),
            "system_metrics_interval_s": self.system_metrics_interval(spec),
            "snapshot": self.snapshot_location(record, snapshot),
            "created": time.time(),
            "distributed": runner_entry(spec, self.type_name, self.settings),
        }

    def system_metrics_interval(self, spec: RunSpec) -> float:
        """The run's own interval, else the target's ``system_metrics_interval``, else 5 s; 0 = off."""
        value: Any = spec.system_metrics_interval_s
        if value is None:
            value = self.settings.get("system_metrics_interval", DEFAULT_SYSTEM_METRICS_INTERVAL_S)
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if not seconds >= 0:
            raise ConfigError(
                f"system_metrics_interval must be a number of seconds >= 0 (0 turns sampling off), not {value!r}."
            )
        return seconds

    def command(self, spec: RunSpec) -> list[str]:
        if spec.code is not None:
            return ["{python}", "-m", self.cell_module, spec.script or ".launchbay/cell.py", *spec.arguments]
        script = spec.script or ""
        # "-x.py" after the interpreter would be read as its option, not as the script
        return ["{python}", f"./{script}" if script.startswith("-") else script, *spec.arguments]

    def snapshot_location(self, record: RunRecord, snapshot: Snapshot | None) -> dict[str, Any]:
        if snapshot is None:
            return {}
        return {"manifest": str(self.store.blobs.path(snapshot.id)), "blobs": str(self.store.blobs.root)}

    @staticmethod
    def write_runner_config(run_dir: Path, runner_config: dict[str, Any]) -> None:
        tmp = run_dir / (rf.RUNNER_CONFIG + rf.TMP)
        tmp.write_text(json.dumps(runner_config, indent=1))
        os.replace(tmp, run_dir / rf.RUNNER_CONFIG)

    # -- hooks ------------------------------------------------------------------------------
    def preflight(self, spec: RunSpec) -> None:  # noqa: B027 - an optional hook
        """Fail fast, before the snapshot and the run record exist (host unreachable...). Default: nothing."""

    def prepare(self, record: RunRecord, spec: RunSpec, runner_config: dict[str, Any]) -> None:
        """Build or fetch the environment, send the snapshot. Default: nothing."""

    @abstractmethod
    def start(self, record: RunRecord, runner_config: dict[str, Any], secret_env: dict[str, str]) -> None:
        """Start the runner, detached; return as soon as it is on its way."""

    @abstractmethod
    def cancel(self, record: RunRecord) -> None:
        """Ask the runner to stop the run (it records Canceled itself)."""

    def sync(self, record: RunRecord) -> None:
        """Bring the run folder's new bytes back to the local store. Local: nothing to do."""

    @abstractmethod
    def runner_alive(self, record: RunRecord) -> bool | None:
        """True/False when the target can tell, None to fall back on heartbeats."""

    def force_stop(self, record: RunRecord) -> None:
        """Stop a run whose runner is gone (kill what may be left). Default: nothing."""

    def check(self) -> dict[str, Any]:
        """For ``launchbay targets``: is it reachable, and what does it have."""
        return {"reachable": True}

    def describe(self, record: RunRecord) -> dict[str, Any]:
        """Extra details for ``launchbay show`` (e.g. the rendered sbatch script)."""
        return {}
