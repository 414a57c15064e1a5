"""Wire models shared by the Python API, CLI, store, REST API and TypeScript."""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


class RunStatus(str, enum.Enum):
    """Lifecycle of a run; the string values are what the store and REST API carry."""

    QUEUED = "Queued"
    PREPARING = "Preparing"
    STARTING = "Starting"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @classmethod
    def parse(cls, text: str) -> RunStatus:
        for status in cls:
            if status.value.lower() == text.strip().lower():
                return status
        names = ", ".join(s.value for s in cls)
        from .errors import ConfigError

        raise ConfigError(f"Unknown status {text!r}; use one of {names}.")

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})

#: the colour each status is drawn in, wherever launchbay draws one (run and sweep widgets, the DAG)
STATUS_COLOURS = {
    "Queued": "#6c757d",
    "Preparing": "#6f42c1",
    "Starting": "#6f42c1",
    "Running": "#0d6efd",
    "Finalizing": "#0dcaf0",
    "Completed": "#198754",
    "Failed": "#dc3545",
    "Canceled": "#fd7e14",
}

#: set on a sweep's child that its early-termination policy (or time limit) stopped
EARLY_TERMINATION_TAG = "launchbay.early_termination"


def stopped_early(status: str, tags: dict[str, str] | None) -> bool:
    """Whether a sweep's policy (or time limit) stopped this run: Canceled with the early-termination tag."""
    return str(status) == RunStatus.CANCELED.value and bool((tags or {}).get(EARLY_TERMINATION_TAG))


def shown_status(status: str, tags: dict[str, str] | None) -> str:
    """What to show a person: "stopped early" for a child a sweep stopped (its status stays Canceled).

    Text and widgets only: JSON and the REST API carry the status and ``stopped_early`` apart."""
    return "stopped early" if stopped_early(status, tags) else str(status)


def iso(ts: float | None) -> str | None:
    """Epoch seconds to an ISO-8601 UTC string (None stays None)."""
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunSpec:
    """What to run, where, with what: everything a target needs to start the runner.

    ``script`` is a script path relative to the working directory inside the snapshot,
    or ``None`` with ``code`` set for a notebook cell. With ``command`` true, ``script`` is a
    program (``bash``, ``./run.sh``, ``torchrun``) and ``arguments`` its arguments, started as
    they are instead of under the run's Python (see ``as_command``).
    """

    script: str | None
    arguments: tuple[str, ...] = ()
    target: str = "local"
    experiment: str = "default"
    name: str | None = None
    environment: str | None = None
    working_dir: str = "."
    code: str | None = None
    push: tuple[str, ...] = ()
    pull: tuple[str, ...] = ()
    max_duration_s: float | None = None
    #: seconds between system metric samples (None: the target's setting, else 5; 0: off)
    system_metrics_interval_s: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)
    parent_run_id: str | None = None
    #: a distributed launch (see distributed.py), as a plain dict: {"kind": "pytorch", ...}
    distributed: dict[str, Any] | None = None
    #: data inputs: name -> "SOURCE[:mount|:download]" (data/spec.py), resolved before the run is written
    inputs: dict[str, str] = field(default_factory=dict)
    #: outputs made datasets once the run completes: name -> path inside outputs/ (data/outputs.py)
    outputs: dict[str, str] = field(default_factory=dict)
    #: True: ``script`` is a program run as it is (``bash run.sh x``), not a Python script (added in JSON
    #: as ``"command": true``; a spec written before it reads as a script run)
    command: bool = False

    @property
    def argv(self) -> tuple[str, ...]:
        """What runs: the program and its arguments of a command, the script and its arguments otherwise."""
        return (self.script or "", *self.arguments)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["arguments"] = list(self.arguments)
        data["push"] = list(self.push)
        data["pull"] = list(self.pull)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        data = dict(data)
        for key in ("arguments", "push", "pull"):
            data[key] = tuple(data.get(key) or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def as_command(command: str | Sequence[str]) -> tuple[str, ...]:
    """A run's command as the words it runs: a list as it is, a string through ``/bin/sh -c`` (so ``&&``,
    pipes, ``$VAR`` and quotes mean what they mean in a shell)."""
    from .errors import ConfigError

    if isinstance(command, str):
        if not command.strip():
            raise ConfigError("The command is empty; pass e.g. command=['bash', 'run.sh'] or 'bash run.sh'.")
        return ("/bin/sh", "-c", command)
    words = tuple(str(w) for w in command)
    if not words or not words[0]:
        raise ConfigError("The command is empty; pass e.g. command=['bash', 'run.sh'] or 'bash run.sh'.")
    return words
