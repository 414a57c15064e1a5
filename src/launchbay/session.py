"""Submit runs and keep their records true: the one path the API, CLI and magics share."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace as _replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import preparing, queueing
from . import runfolder as rf
from .config import (
    LAUNCHBAY_HEARTBEAT_TIMEOUT,
    LAUNCHBAY_SCHEDULE,
    LAUNCHBAY_SCHEDULE_FIRE,
    ProjectConfig,
    load_config,
    user_name,
)
from .errors import ConfigError, LaunchbayError, SubmitError
from .models import RunSpec, RunStatus
from .store import RunRecord, Store, open_store

if TYPE_CHECKING:
    from .handle import Model, RunHandle
    from .snapshot import Snapshot
    from .targets import RunControl, Target


def open_session(
    store: str | os.PathLike[str] | None = None,
    *,
    project: str | os.PathLike[str] | None = None,
    start: str | os.PathLike[str] | None = None,
    on_config_error: Callable[[ConfigError], None] | None = None,
) -> Session:
    """The one way a front end (API, CLI, magics, server, sweeps, Azure ML layer) gets a session.

    The store is ``store`` (a folder or a store URI) if given, else ``LAUNCHBAY_STORE``, else the nearest
    ``.launchbay/`` at or above ``start`` (default: the current folder), created there on first use. The
    configuration is the launchbay.toml that applies to ``project`` (default: ``start``, else the current folder).
    With ``on_config_error``, a launchbay.toml that cannot be used is handed to it and the session goes
    on without one (what a command that only reads the store wants); without, it is raised.
    """
    here = Path(start).resolve() if start else None
    config_at = Path(project).resolve() if project else here
    try:
        config = load_config(config_at)
    except ConfigError as exc:
        if on_config_error is None:
            raise
        on_config_error(exc)
        config = ProjectConfig()
    return Session(open_store(store, start=here), config)


class Session:
    """A store plus the project configuration; everything that changes runs goes through here."""

    def __init__(self, store: Store | None = None, config: ProjectConfig | None = None) -> None:
        self.store = store or open_store()
        self.config = config or load_config()

    def default_target(self, explicit: str | None = None) -> str:
        """The one rule for where a run goes: the target named, else launchbay.toml's
        ``[defaults] target``, else ``local``."""
        return explicit or str(self.config.defaults.get("target") or "local")

    def close(self) -> None:
        """Close the store's connections (it opens one again if the session is used afterwards)."""
        self.store.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submit -------------------------------------------------------------------------------
    def target(self, name: str | None = None) -> Target[Any, Any]:
        """The target ``name`` (default: ``default_target``) as this session's launchbay.toml defines it;
        an unknown name is one ``ConfigError`` that lists the targets defined."""
        from .targets import make_target

        return make_target(self.default_target(name), self.config, self.store)

    def check(
        self, spec: RunSpec, root: str | os.PathLike[str] | None = None, config: ProjectConfig | None = None
    ) -> Checked:
        """Everything a run needs that can be checked before it is recorded: the maximum duration, the
        target and its preflight (host, image, distributed settings), and, with ``root``, the script.
        ``config`` is the launchbay.toml that applies (default: the session's). Returns the spec as it will
        run (the Azure ML alias, distributed settings filled in) and its target."""
        from . import distributed
        from .targets import make_target

        _check_max_duration(spec.max_duration_s)
        spec = self._with_azureml_alias(spec)
        config = config or self.config

        target = make_target(spec.target, config, self.store)
        spec = distributed.prepare(spec, target, config)
        if root is not None and spec.command:
            spec = local_program(Path(root), spec)
        target.preflight(spec)
        queueing.limits(config, spec)  # a bad max_concurrent_runs: one line, nothing recorded
        if root is not None and spec.code is None and not spec.command:
            check_script(Path(root), spec)
        return Checked(spec, target)

    def submit(
        self,
        spec: RunSpec,
        source_dir: str | os.PathLike[str] | None = None,
        *,
        extra_files: dict[str, str | bytes] | None = None,
        on_progress: Any = None,
        priority: int = 0,
    ) -> RunHandle:
        """Snapshot ``source_dir``, record the run and start it; nothing is recorded on a bad input.

        On a target or experiment with ``max_concurrent_runs`` and no free slot the run stays Queued
        (``priority``: higher goes first in its queue) and the store's supervisor starts it later."""
        self.store.check_writable()  # a read-only team store role: one line, before any blob is uploaded
        from .gitinfo import git_properties
        from .snapshot import take_snapshot
        from .snapshot_budget import Budget

        root = Path(source_dir or self.config.root or Path.cwd()).resolve()
        config = self.config if source_dir is None else load_config(root)
        priority = queueing.check_priority(priority)
        spec, target = self.check(spec, root, config)
        spec, inputs = self._data_inputs(spec, target, config, on_progress)
        budget = Budget.from_config(config.snapshot)
        in_folder = spec.code is not None or spec.command  # the folder the run starts in, not one file of it
        entry = spec.working_dir.rstrip("/") + "/" if in_folder else f"{spec.working_dir}/{spec.script}"
        with self.store.writing_blobs():  # held until the run row refers to the snapshot
            snapshot = take_snapshot(
                self.store,
                root,
                max_bytes=budget.max_bytes,
                max_files=budget.max_files,
                extra_files=extra_files,
                entry=entry,
                leave_out=tuple(i.location for i in inputs),
            )
            if on_progress:
                on_progress(f"snapshot {snapshot.id[:12]}: {snapshot.files} files, {snapshot.new_blobs} new")
                if snapshot.unreadable:
                    from .snapshot_report import skipped_line

                    on_progress(skipped_line(snapshot.unreadable))
            properties: dict[str, Any] = git_properties(root)
            properties["launchbay.source_dir"] = str(root)
            if snapshot.unreadable:
                properties["launchbay.snapshot.skipped"] = json.dumps(snapshot.unreadable[:50])
            record = self._record(spec, target, snapshot, properties)
            self._record_inputs(record, inputs)
        return self._start(record, spec, target, snapshot, on_progress, config, priority)  # builds report through it

    def launch(
        self,
        spec: RunSpec,
        snapshot: Snapshot,
        properties: dict[str, Any],
        *,
        target: Target[Any, Any] | None = None,
        progress: Callable[[str], None] | None = None,
        before_record: Callable[[], None] | None = None,
        inputs: list[Any] | None = None,
        priority: int = 0,
    ) -> RunHandle:
        """Record a run of ``spec`` on a snapshot already in the store, and start it: what a re-run and a
        sweep's trials share with a submit. ``target`` is the one ``check`` returned (else made from the
        spec); ``progress`` hears the target's long work (an environment build); ``before_record`` runs
        under the blob lock just before the run row is written (a re-run checks there that ``gc`` left its
        old snapshot whole); ``inputs`` are the data versions the run reads (its lineage). A launch that
        fails leaves no run behind. A target or experiment with no free slot queues it (see ``submit``)."""
        spec = self._with_azureml_alias(spec)
        target = target or self.target(spec.target)
        with self.store.writing_blobs():  # gc keeps the snapshot's blobs until the run row exists
            if before_record is not None:
                before_record()
            record = self._record(spec, target, snapshot, properties)
            if inputs:
                self._record_inputs(record, inputs)
        return self._start(record, spec, target, snapshot, progress, self.config, priority)

    def rerun(self, ref: str, target: str | None = None, arguments: list[str] | None = None) -> RunHandle:
        """Submit a past run's exact snapshot, environment and arguments again (see reproduce.py)."""
        from .reproduce import rerun

        return rerun(self, ref, target=target, arguments=arguments)

    def resume(self, ref: str, target: str | None = None) -> RunHandle:
        """Go on from where a stopped run left off: its snapshot, environment and arguments again, with
        its ``outputs/`` as the input ``checkpoint`` (``$LAUNCHBAY_INPUT_CHECKPOINT``); see reproduce.py."""
        from .reproduce import rerun

        return rerun(self, ref, target=target, resume=True)

    def register_model(
        self,
        run: str | RunRecord,
        name: str,
        path: str,
        *,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Model:
        """Register the run's file or folder ``path`` (e.g. ``outputs/model.pt``) as the next version of
        ``name``; the run is caught up with its journal first, so its last files count."""
        from .handle import Model
        from .registry import ModelRegistry

        record = self.refresh(run if isinstance(run, RunRecord) else self.store.resolve_run_id(run))
        version = ModelRegistry(self.store).register(record, name, path, tags=tags, description=description)
        return Model(version, self)

    def _start(
        self,
        record: RunRecord,
        spec: RunSpec,
        target: Target[Any, Any],
        snapshot: Snapshot,
        progress: Callable[[str], None] | None,
        config: ProjectConfig,
        priority: int = 0,
    ) -> RunHandle:
        from .handle import RunHandle

        try:
            now = queueing.enter_queue(self.store, record, spec, config, priority)
            if now is False:
                return RunHandle(record.run_id, self)  # Queued: the supervisor starts it when a slot frees
            if now is None and target.needs_preparing(spec, record):  # a build or a pull: the run's own work
                preparing.detach(self.store, record, spec, config)
                queueing.follow(self.store, record)
                if progress:
                    progress(f"run {record.run_id} is Preparing: `launchbay logs {record.run_id}` shows its build")
                return RunHandle(record.run_id, self)
            target.launch(record, spec, snapshot, progress)
            if now:
                self.store.queue_started(record.pk)
                queueing.forget_spec(self.store, record.run_id)
            queueing.follow(self.store, record)  # a team store sees it end with this notebook closed
        except BaseException:
            self.store.delete_run(record.run_id)  # its queue row (and slot) goes with it
            queueing.forget_spec(self.store, record.run_id)
            raise
        return RunHandle(record.run_id, self)

    def _data_inputs(
        self, spec: RunSpec, target: Target[Any, Any], config: ProjectConfig, progress: Callable[[str], None] | None
    ) -> tuple[RunSpec, list[Any]]:
        """The run's data inputs (its own and launchbay.toml's), checked and hashed before it is written."""
        from .data.runs import run_inputs

        return run_inputs(self.store, config, spec, target, progress)

    def _record_inputs(self, record: RunRecord, inputs: list[Any]) -> None:
        """The run's lineage; nothing of the run is left when it cannot be written."""
        from .data.runs import record_inputs

        try:
            record_inputs(self.store, record, inputs)
        except BaseException:
            self.store.delete_run(record.run_id)
            raise

    def _record(self, spec: RunSpec, target: Target[Any, Any], snapshot: Any, properties: dict[str, Any]) -> RunRecord:
        from . import secrets
        from .data.runs import stored_inputs

        stored_spec = RunSpec.from_json(
            {
                **spec.to_json(),
                "env_vars": secrets.redact(dict(spec.env_vars)),
                "arguments": secrets.redact_arguments(spec.arguments),
                "inputs": stored_inputs(spec.inputs),
            }
        )
        raw = target.config.raw_targets.get(target.name)  # "${VAR}" references, not their values
        state = {"target_settings": secrets.redact_settings(raw or target.settings)}
        schedule = LAUNCHBAY_SCHEDULE.get()  # a schedule's command made this run: it says so
        if schedule:
            stored_spec = _replace(stored_spec, tags={**stored_spec.tags, "launchbay.schedule": schedule})
        record = self.store.create_run(
            stored_spec,
            target_type=target.type_name,
            snapshot_id=snapshot.id,
            properties=properties,
            target_state=state,
            created_by=user_name(self.config),
        )
        fire = LAUNCHBAY_SCHEDULE_FIRE.get()
        if schedule and fire and fire.isdigit():
            self.store.set_fire_run(int(fire), run_id=record.run_id)
        return record

    def _with_azureml_alias(self, spec: RunSpec) -> RunSpec:
        """With the Azure ML v1 layer on, the run gets ``azureml.core.Run`` on its path too."""
        if self.config.azureml_compat or _azureml_layer_on():
            return _replace(spec, env_vars={**spec.env_vars, "LAUNCHBAY_AZUREML_COMPAT": "1"})
        return spec

    # -- keep records true -------------------------------------------------------------------
    def target_for(self, record: RunRecord) -> RunControl:
        """The target a run was launched on, from the settings recorded with it; a record that is control
        on top of runs (a sweep) gets the control of its kind (``targets.make_control``)."""
        from .targets import make_control, make_target

        control = make_control(record.target_type, self.store, self.target_for)
        if control is not None:
            return control

        settings = dict(record.target_state.get("target_settings") or {})
        if not settings:
            settings = {"type": record.target_type or "local"}
        config = ProjectConfig(targets={record.target: settings})
        live = self.config.targets.get(record.target)
        if live and live.get("type") == settings.get("type"):
            config.targets[record.target] = live  # the real values (secrets were redacted)
        return make_target(record.target, config, self.store)

    def refresh(self, ref: str | RunRecord) -> RunRecord:
        """Catch the record up with the run's journal; a run whose runner died becomes Failed."""
        record = ref if isinstance(ref, RunRecord) else self.store.get_run(ref)
        if record.status.is_terminal():
            return record
        if record.status is RunStatus.QUEUED and self.store.queue_state(record.pk) == "waiting":
            queueing.ensure_supervisor(self.store)  # waiting: someone must start it (a killed supervisor's heir)
            return record
        if self.store.shared and not (record.run_dir / rf.RUN_RECORD).is_file():
            return record  # a team store's run made on another machine: that one ingests and judges it
        from .ingest import ingest_run

        target = self.target_for(record)
        try:
            target.mirror(record)
        except LaunchbayError:
            pass  # unreachable for now: heartbeats decide
        if ingest_run(self.store, record, wait=False):
            record = self.store.get_run(record.run_id)
        if record.status.is_terminal():
            return record
        queueing.follow(self.store, record)  # after a reboot: the first look starts following it again
        before_runner = preparing.underway(record)
        alive = preparing.alive(record) if before_runner else target.alive(record)
        timeout = LAUNCHBAY_HEARTBEAT_TIMEOUT.get()
        if alive is False and before_runner:
            record = self.store.get_run(record.run_id)  # it may have handed the run on as it ended
            if not preparing.underway(record) or record.status.is_terminal():
                return self.refresh(record)
            reason = "The process preparing the run died before it started the run (killed, or the machine restarted)."
            queueing.forget_spec(self.store, record.run_id)
        elif alive is False:
            reason = "The runner process died without recording an end (killed, or the machine restarted)."
        elif alive is None and time.time() - (record.heartbeat or record.created) > timeout:
            reason = f"No heartbeat from the runner for over {timeout:.0f} s (killed, or its host was lost)."
        else:
            return record
        try:
            target.mirror(record)
        except LaunchbayError:
            pass
        ingest_run(self.store, record)
        record = self.store.get_run(record.run_id)
        if not record.status.is_terminal():
            target.force_stop(record)
            self._fail(record, reason)
            record = self.store.get_run(record.run_id)
        return record

    def runs(
        self,
        *,
        experiment: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
        user: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, unfinished ones caught up first (a status filter applies after that);
        ``user``: only the runs that person made (``created_by``)."""
        listed = self.store.list_runs(experiment=experiment, status=status, limit=limit, user=user)
        records = [self.refresh(r) for r in listed]
        if status:
            wanted = RunStatus.parse(status)
            records = [r for r in records if r.status is wanted]
        return records

    def _fail(self, record: RunRecord, reason: str) -> None:
        runner_log = record.run_dir / rf.JOURNAL / rf.RUNNER_LOG
        tail = ""
        if runner_log.is_file():
            tail = "\n".join(runner_log.read_text(errors="replace").strip().splitlines()[-20:])
        self.store.end_run(record.pk, RunStatus.FAILED, {"message": reason, "traceback": tail})

    def someone_elses(self, record: RunRecord, force: bool, verb: str) -> bool:
        """Whether ``record`` is another person's run on a team store, which ``verb`` ("cancel", "remove")
        may touch only with ``force`` (raises ConfigError saying so without it); with it, the run
        records who did it (tag ``launchbay.canceled_by`` / ``launchbay.removed_by``)."""
        if not self.someone_elses_quietly(record):
            return False
        me = user_name(self.config)
        if not force:
            raise ConfigError(
                f"Run {record.run_id} was made by {record.created_by}, not by you ({me}): pass --force to {verb} it"
                f" anyway (the run records that {me} did)."
            )
        self.store.set_tag(record.pk, {"cancel": "launchbay.canceled_by"}.get(verb, f"launchbay.{verb}d_by"), me)
        return True

    def someone_elses_quietly(self, record: RunRecord) -> bool:
        """Whether ``record`` was made by someone else on a team store (on the embedded store every run is
        the user's own, whatever name made it)."""
        return self.store.shared and bool(record.created_by) and record.created_by != user_name(self.config)

    def cancel(self, ref: str | RunRecord, wait_s: float = 15.0) -> RunRecord:
        """Stop the run's whole process tree; returns once the run is terminal (or ``wait_s`` passed).

        A sweep's trials are stopped with it, also those a dead controller left running."""
        from .targets import control_kinds

        record = ref if isinstance(ref, RunRecord) else self.store.get_run(ref)
        if record.status is RunStatus.QUEUED and self.store.dequeue(record.pk):  # it never starts
            queueing.forget_spec(self.store, record.run_id)
            self.store.end_run(record.pk, RunStatus.CANCELED, {"message": "Canceled while queued.", "traceback": ""})
            return self.store.get_run(record.run_id)
        record = self.refresh(record)
        if record.status.is_terminal():
            if record.target_type in control_kinds():  # its controller died; the runs it left run on for a resume
                for child in self.store.children(record.run_id, unfinished=True):
                    self.cancel(child, wait_s)
            return record
        if preparing.underway(record) and preparing.stop(record):  # a build or pull under way: stop it there
            target = self.target_for(record)
            target.cancel(record)  # in case it had just started the runner
            reason = "Canceled while preparing (its environment build or image pull was stopped)."
            self.store.end_run(record.pk, RunStatus.CANCELED, {"message": reason, "traceback": ""})
            queueing.forget_spec(self.store, record.run_id)  # what it kept of the run's secrets goes too
            return self.store.get_run(record.run_id)
        if self.store.shared and not (record.run_dir / rf.RUN_RECORD).is_file():
            self.store.check_writable()
            who = f"{record.created_by}'s" if record.created_by else "another"
            raise SubmitError(
                f"Run {record.run_id} runs from {who} machine: only that machine can stop its processes."
                f" Run `launchbay cancel {record.run_id}` there."
            )
        target = self.target_for(record)
        target.cancel(record)
        deadline = time.time() + wait_s
        while time.time() < deadline:
            time.sleep(0.1)
            record = self.refresh(record.run_id)
            if record.status.is_terminal():
                return record
        if target.alive(record) is not True:
            target.force_stop(record)
            reason = "Canceled by request (the runner did not answer; its processes were killed)."
            self.store.end_run(record.pk, RunStatus.CANCELED, {"message": reason, "traceback": ""})
        return self.store.get_run(record.run_id)


class Checked(NamedTuple):
    """What ``Session.check`` hands back: the spec as it will run, and the target it runs on."""

    spec: RunSpec
    target: Target[Any, Any]


def check_script(root: Path, spec: RunSpec) -> None:
    """The script a run names is a file in the submitted folder (a cell run has none to check)."""
    if not spec.script:
        raise SubmitError("No script given; pass the script to run, e.g. `launchbay submit train.py`.")
    script = root / spec.working_dir / spec.script
    if not script.is_file():
        raise SubmitError(
            f"No script {spec.script!r} in {root / spec.working_dir}; check the name or pass --source-dir."
        )


def local_program(root: Path, spec: RunSpec) -> RunSpec:
    """A command whose program is a file of the submitted folder (``run.sh``) runs that file (``./run.sh``),
    not a program of that name on the target's PATH; other programs are found on the target's PATH."""
    program = spec.script or ""
    if not program:
        raise SubmitError("No command given; pass e.g. `launchbay submit -- bash run.sh`.")
    path = root / spec.working_dir / program
    if not path.is_file():
        return spec
    if not os.access(path, os.X_OK):
        raise SubmitError(
            f"{program} in {root / spec.working_dir} is not executable: `chmod +x {program}`, "
            f"or name its interpreter (`launchbay submit -- bash {program}`)."
        )
    return _replace(spec, script=f"./{program}") if "/" not in program else spec


def _check_max_duration(seconds: float | None) -> None:
    """A maximum duration is a number of seconds > 0; 0, a negative number or NaN is refused, never
    read as "no limit" (0, NaN) or "cancel at once" (-1)."""
    if seconds is None:
        return
    try:
        valid = float(seconds) > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(
            f"The maximum duration (--max-duration, max_duration_s=) must be a number of seconds > 0, not {seconds!r}; "
            "leave it out for no limit."
        )


def _azureml_layer_on() -> bool:
    """Is the Azure ML v1 layer on in this process? Its runs then get ``azureml.core.Run`` too."""
    import sys

    layer = sys.modules.get("launchbay.compat.azureml")
    return bool(layer is not None and layer.is_installed())
