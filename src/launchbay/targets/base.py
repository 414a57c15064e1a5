"""The one launch workflow every target follows; backends fill in a few hooks.

``launch`` is the template method, the same for every target::

    environment = resolve once (the run's, else the target's)
    config      = RunnerConfig (what runner.json says)      state = the target's TargetState
    plan        = the target's Plan (what prepare hands to start)
    prepare(launch)   build or find the environment, send the snapshot   (hook)
    secrets leave the config; runner.json is written into the local run folder
    start(launch)     start the runner, detached                          (hook)
    state is written once into the run's target_state

What a target ships where launchbay is not installed (the runtime, the project's
files) is one list, ``fileset.file_set``; a target only transports it. Distributed
runs ask the target what it can give through ``multi_node``, ``rank_launcher`` and
``check_distributed``.

After the launch, ``mirror`` brings the run folder's new bytes back, ``alive``
says whether the runner still runs, ``cancel`` asks it to stop and ``force_stop``
kills what a dead runner left. The journal in the run folder is the only thing a
target has to bring back.
"""

from __future__ import annotations

import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from .. import runfolder as rf
from .. import secrets
from ..config import LAUNCHBAY_CANCEL_GRACE, LAUNCHBAY_HEARTBEAT_TIMEOUT, ProjectConfig
from ..distributed import Distributed, check_node_count, from_spec, runner_entry
from ..errors import ConfigError
from ..models import RunSpec
from ..store import RunRecord, RunStore
from ..store.records import RunInput
from ..sysmon import DEFAULT_INTERVAL_S as DEFAULT_SYSTEM_METRICS_INTERVAL_S

if TYPE_CHECKING:
    from ..environments.spec import EnvironmentSpec
    from ..snapshot import Snapshot

RUNNER_SOURCE = Path(__file__).resolve().parent.parent / "runner.py"


@dataclass
class RunnerConfig:
    """What the runner reads from runner.json (runner.py); never a secret value."""

    run_id: str
    experiment: str
    command: list[str]
    working_dir: str
    env: dict[str, str]
    max_duration_s: float | None
    cancel_grace_s: float
    system_metrics_interval_s: float
    #: ``{"manifest", "blobs"}`` where the runner finds the snapshot; empty when the target ships work/ itself
    snapshot: dict[str, str]
    created: float
    distributed: dict[str, Any] | None = None
    python: str | None = None  # the interpreter that runs the entry point (default: the runner's)
    pythonpath: list[str] = field(default_factory=list)  # relative to the run folder
    snapshot_links: list[Any] | None = None  # links the runner makes in work/ (targets that ship work/)
    stage_spare: str | None = None  # local: a folder of reusable staged copies (runner_stage.py)
    record_descendants: bool | None = None  # local: so force_stop can find them if the runner is killed
    finish_hook: dict[str, str] | None = None  # local: the store to ingest into as the run ends
    #: data inputs as delivered: name, env (LAUNCHBAY_INPUT_<NAME>), path on the compute side, mode
    inputs: list[dict[str, str]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != []}

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=1)


@dataclass
class TargetState:
    """What a target records with a run at launch (its ``target_state``), written once by ``launch``.

    Each target declares its own fields in a subclass; None fields are not written."""

    environment: dict[str, Any] | None = None  # name, hash, built... of the environment the run got

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class Plan:
    """What ``prepare`` hands to ``start`` besides the config (remote paths, the files to send...).

    Each target declares its own fields in a subclass, with defaults: the template makes
    an empty one and ``prepare`` fills it in."""


S = TypeVar("S", bound=TargetState)
P = TypeVar("P", bound=Plan)
Progress = Callable[[str], None]


@dataclass
class Launch(Generic[S, P]):
    """One run on its way: what the template resolved, and what the hooks fill in."""

    record: RunRecord
    spec: RunSpec
    snapshot: Snapshot | None
    environment: EnvironmentSpec | None
    config: RunnerConfig
    state: S
    plan: P
    #: ``progress(message)`` shows what a long prepare (an environment build) is doing; None: nobody watches
    progress: Progress | None = None
    #: variables the runner gets in its own environment, never in a file (set before ``start``)
    secret_env: dict[str, str] = field(default_factory=dict)
    #: the run's data inputs, as recorded in the store (data/): ``deliver_inputs`` puts them in reach
    inputs: list[RunInput] = field(default_factory=list)

    def report(self, message: str) -> None:
        """Tell whoever watches the submit what the launch is doing now (nothing when nobody does)."""
        if self.progress is not None:
            self.progress(message)


class RunControl(Protocol):
    """What keeps a started run's record true: every target, and a sweep's control (sweeps/control.py)."""

    def mirror(self, record: RunRecord) -> None: ...
    def alive(self, record: RunRecord) -> bool | None: ...
    def cancel(self, record: RunRecord) -> None: ...
    def force_stop(self, record: RunRecord) -> None: ...
    def describe(self, record: RunRecord) -> dict[str, Any]: ...


class Target(ABC, Generic[S, P]):
    """A place runs execute. Subclasses set ``type_name``, ``state_type`` and ``plan_type`` and implement the hooks.

    A new type is one module with such a subclass, and a row of the ``launchbay.targets``
    entry-point group naming it (targets/__init__.py)."""

    type_name: ClassVar[str]
    #: the target's typed ``target_state``: TargetState, or a subclass with the target's own fields
    state_type: type[S]
    #: what its ``prepare`` hands to its ``start``: Plan, or a subclass with the target's own fields
    plan_type: type[P]
    #: how the run's python finds the cell bootstrap: the real module locally,
    #: the shipped copy (runtime/launchbay_cell.py) everywhere else
    cell_module: ClassVar[str] = "launchbay_cell"
    #: can one run get several machines (a distributed run's ``node_count > 1``)? Slurm's can
    multi_node: ClassVar[bool] = False
    #: how a single-machine target places a distributed run's ranks, for the refusal of ``node_count > 1``
    places_ranks: ClassVar[str] = "runs every process on one machine"
    #: set by a sweep controller, which indexes each child's journal as the child ends: a local
    #: runner then skips its own final ingest (an interpreter's worth of imports a trial)
    ingested_by_watcher: bool = False

    def __init__(self, name: str, settings: dict[str, Any], store: RunStore, config: ProjectConfig) -> None:
        self.name, self.settings, self.store, self.config = name, settings, store, config

    # -- the template method ----------------------------------------------------------
    def launch(
        self, record: RunRecord, spec: RunSpec, snapshot: Snapshot | None, progress: Progress | None = None
    ) -> None:
        """Start ``record``'s run; ``progress(message)``, when given, hears what a long prepare is doing."""
        config = self.runner_config(record, spec, snapshot)
        hidden = secrets.hide_in_command(config.command, len(spec.arguments))
        environment = self.environment(spec, record)
        launch = Launch(record, spec, snapshot, environment, config, self.state_type(), self.plan_type(), progress)
        if environment is not None:  # the run's own variables win over its environment's
            config.env = {**environment.env_vars, **config.env}
        launch.inputs = self.store.run_inputs(record.run_id)
        with _heartbeat_while(self.store, record.pk, LAUNCHBAY_HEARTBEAT_TIMEOUT.get() / 3):  # a long build lives
            self.prepare(launch)
            if launch.inputs:
                self._deliver(launch)
        # secret variables (the environment's and the run's) travel with the runner, never in runner.json
        config.env, env_secrets = secrets.split(config.env)
        launch.secret_env = {**env_secrets, **secrets.split(dict(spec.env_vars))[1]}
        if hidden:  # secret arguments too
            launch.secret_env[secrets.SECRET_ARGS_VAR] = json.dumps(hidden)
        self.write_runner_config(record.run_dir, config)  # where the runner reads it, or a copy for `show`
        self.start(launch)
        state = launch.state.to_json()
        if state:
            self.store.merge_target_state(record.pk, **state)
            record.target_state.update(state)
        self.store.update_run(record.pk, heartbeat=time.time())  # the runner's own heartbeats take over

    def environment(self, spec: RunSpec, record: RunRecord | None = None) -> EnvironmentSpec | None:
        """The run's environment, by the one rule every target follows.

        The run's own (``--env``, ``environment=``), else the target's ``environment``
        setting (``env`` is the spelling the SSH target took too). Requirements files and
        inline environments are read relative to the run's source folder (the one the
        snapshot was taken of); before the run exists (``preflight``), the project root."""
        from ..environments.spec import resolve_environment

        ref = spec.environment or self.settings.get("environment") or self.settings.get("env")
        source = record.properties.get("launchbay.source_dir") if record is not None else None
        return resolve_environment(ref, self.config, Path(source) if source else self.config.root)

    def runner_config(self, record: RunRecord, spec: RunSpec, snapshot: Snapshot | None) -> RunnerConfig:
        """What the runner needs, written as runner.json (no secret values)."""
        plain_env = secrets.split(dict(spec.env_vars))[0]
        if spec.pull:
            plain_env["LAUNCHBAY_PULL"] = ",".join(spec.pull)
        return RunnerConfig(
            run_id=record.run_id,
            experiment=record.experiment,
            command=self.command(spec),
            working_dir=spec.working_dir,
            env=plain_env,
            max_duration_s=spec.max_duration_s,
            cancel_grace_s=LAUNCHBAY_CANCEL_GRACE.get(),
            system_metrics_interval_s=self.system_metrics_interval(spec),
            snapshot=self.snapshot_location(record, snapshot),
            created=time.time(),
            distributed=self.distributed_entry(spec),
        )

    # -- data inputs (data/) -----------------------------------------------------------------------
    #: can this target deliver data inputs? (Targets that cannot are refused before the run is written.)
    data_inputs: ClassVar[bool] = False

    def check_inputs(self, spec: RunSpec) -> None:
        """One clear line, before the run exists, when this target cannot give the run its inputs."""
        if spec.inputs and not self.data_inputs:
            raise ConfigError(
                f"Target {self.name!r} ({self.type_name}) does not take data inputs yet; run on a local, docker, "
                "ssh or slurm target, or put the data where its nodes see it and pass that path as an argument."
            )

    def deliver_inputs(self, launch: Launch[S, P]) -> dict[str, tuple[str, int]]:
        """Put each input within the runner's reach: name -> (its path on the compute side, data bytes
        moved). Default (the runner is on this machine): the files where they are, nothing moved."""
        return {i.name: (str(i.location), 0) for i in launch.inputs}

    def collect_data(self, keep: set[str], dry_run: bool = False) -> dict[str, Any] | None:
        """Free the data versions this target's cache holds that are not in ``keep`` (``launchbay data gc
        --target``): {"cache", "versions", "objects", "bytes"}; None for a target without a cache."""
        return None

    def _deliver(self, launch: Launch[S, P]) -> None:
        from ..data.spec import env_var

        delivered = self.deliver_inputs(launch)
        launch.config.inputs = [
            {"name": i.name, "env": env_var(i.name), "path": delivered[i.name][0], "mode": i.mode}
            for i in launch.inputs
        ]
        for i in launch.inputs:
            sent = delivered[i.name][1]
            if sent:
                self.store.set_input_bytes_sent(launch.record.run_id, i.name, sent)
                i.bytes_sent = sent

    # -- distributed runs ---------------------------------------------------------------------
    @property
    def rank_launcher(self) -> str:
        """How the compute side (distlaunch.py) starts a distributed run's ranks: ``procs`` (child
        processes of the run; the default), ``srun`` (Slurm) or ``ray`` (a Ray worker per rank)."""
        return "procs"

    def check_distributed(self, dist: Distributed) -> None:
        """One clear line for what this target cannot give ``dist``, before the run exists.
        Default: a node count only a multi-node target can give. Targets add their own checks."""
        if not self.multi_node:
            check_node_count(dist, self.name, self.type_name, self.places_ranks)

    def distributed_entry(self, spec: RunSpec) -> dict[str, Any] | None:
        """What the compute side (distlaunch.py) reads from runner.json: the configuration and its launcher."""
        dist = from_spec(spec)
        return runner_entry(dist, self.rank_launcher) if dist is not None else None

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
        if spec.command:  # the runner finds the program on PATH, the run's interpreter's folder first
            return list(spec.argv)
        script = spec.script or ""
        # "-x.py" after the interpreter would be read as its option, not as the script
        return ["{python}", f"./{script}" if script.startswith("-") else script, *spec.arguments]

    def snapshot_location(self, record: RunRecord, snapshot: Snapshot | None) -> dict[str, str]:
        if snapshot is None:
            return {}
        return {"manifest": str(self.store.blobs.local_path(snapshot.id)), "blobs": str(self.blob_folder(snapshot.id))}

    def blob_folder(self, snapshot_id: str | None) -> Path:
        """A folder on this machine holding the snapshot's blobs, laid out as the runner stages from it
        (the store's own folder for the embedded store; a filled cache for a remote one)."""
        if snapshot_id is None:
            return self.store.blobs.local_folder(())
        manifest = self.store.snapshot_manifest(snapshot_id)
        return self.store.blobs.local_folder([snapshot_id, *(entry["sha256"] for entry in manifest.get("files") or [])])

    @staticmethod
    def write_runner_config(run_dir: Path, config: RunnerConfig) -> None:
        (run_dir / rf.JOURNAL).mkdir(parents=True, exist_ok=True)
        tmp = run_dir / (rf.RUNNER_CONFIG + rf.TMP)
        tmp.write_text(config.to_text())
        os.replace(tmp, run_dir / rf.RUNNER_CONFIG)

    # -- hooks ------------------------------------------------------------------------------
    def preflight(self, spec: RunSpec) -> None:  # noqa: B027 - an optional hook
        """Fail fast, before the snapshot and the run record exist (host unreachable...). Default: nothing."""

    def needs_preparing(self, spec: RunSpec, record: RunRecord) -> bool:
        """Has ``prepare`` long work ahead (an environment to build, an image to pull)? Then the run is
        launched by a process of its own while it is Preparing, and the submit returns at once
        (preparing.py). Asked once the run is recorded; cheap. Default: an environment to build."""
        environment = self.environment(spec, record)
        return environment is not None and environment.needs_build

    def prepare(self, launch: Launch[S, P]) -> None:  # noqa: B027 - an optional hook
        """Build or find ``launch.environment``, send the snapshot, finish ``launch.config``. Default: nothing."""

    @abstractmethod
    def start(self, launch: Launch[S, P]) -> None:
        """Start the runner, detached, with ``launch.secret_env``; fill ``launch.state``; return once it is on
        its way. runner.json is in the local run folder already."""

    @abstractmethod
    def cancel(self, record: RunRecord) -> None:
        """Ask the runner to stop the run (it records Canceled itself)."""

    def mirror(self, record: RunRecord) -> None:
        """Bring the run folder's new bytes back to the local store. Local: nothing to do."""

    @abstractmethod
    def alive(self, record: RunRecord) -> bool | None:
        """True/False when the target can tell, None to fall back on heartbeats."""

    def force_stop(self, record: RunRecord) -> None:
        """Stop a run whose runner is gone (kill what may be left). Default: nothing."""

    def check(self) -> dict[str, Any]:
        """For ``launchbay targets``: is it reachable, and what does it have."""
        return {"reachable": True}

    def describe(self, record: RunRecord) -> dict[str, Any]:
        """Extra details for ``launchbay show`` (e.g. the rendered sbatch script)."""
        return {}


@contextmanager
def _heartbeat_while(store: RunStore, pk: int, every_s: float) -> Iterator[None]:
    """Beat for a run whose runner has not started yet, so no reader takes a slow prepare for a dead runner."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every_s):
            try:
                store.update_run(pk, heartbeat=time.time())
            except Exception:  # noqa: BLE001 - a missed beat must never break the launch
                pass

    store.update_run(pk, heartbeat=time.time())
    thread = threading.Thread(target=beat, name="launchbay-prepare-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
