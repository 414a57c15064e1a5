"""The Slurm target: each run is a batch job whose script ``exec``s the runner.

Where the run folder lives (it must be visible from the compute nodes):
- no ``shared_dir``, no ``host``: the store's own run folder (a store on a shared
  filesystem, or a single-node cluster); ``mirror`` has nothing to copy;
- ``shared_dir = "/scratch/me/launchbay"``: ``<shared_dir>/<run_id>``, with the
  project written into its ``work/``; ``mirror`` copies new bytes back;
- ``host = "login-node"``: as with ``shared_dir`` (default ``~/.launchbay-slurm``),
  but on the login node, over the pooled SSH connection (sshconn.SSHHost: ``port``,
  ``user``, ``identity_file``, ``known_hosts`` as for ``type = "ssh"``), with
  ``login_setup`` shell lines (``module load slurm``) before each Slurm command.

Slurm forgets finished jobs (no accounting database, or after ``MinJobAge``), so
the run's journal stays the source of truth; squeue (then sacct, where there is
one) only tells whether the job is still queued or running. Until the runner
starts, the run stays Queued. Other settings: ``sbatch.OPTIONS``, ``extra_sbatch``
(list) and ``python`` (the interpreter on the nodes, default ``python3``).
"""

from __future__ import annotations

import json
import posixpath
import time
from dataclasses import dataclass, field
from typing import Any

from .. import runfolder as rf
from ..distributed import Distributed, check_mpirun, check_slurm_capacity, slurm_settings
from ..errors import ConfigError, TargetError
from ..runner import HEARTBEAT_INTERVAL_S
from ..store import RunRecord
from .base import Launch, Plan, Target, TargetState
from .fileset import file_set
from .runtime import RUNTIME_DIR
from .sbatch import SCRIPT_NAME, render_sbatch
from .slurmsite import Files, Here, Login
from .sshconn import SSHHost

#: squeue states in which the job (and so the runner, once it starts) is still alive
ALIVE_STATES = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "RESIZING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "RESV_DEL_HOLD",
}
DEFAULT_REMOTE_DIR = "~/.launchbay-slurm"


@dataclass
class SlurmState(TargetState):
    """Recorded with a Slurm run: its job, and its run folder as the compute nodes see it."""

    slurm_job_id: str | None = None
    slurm_run_dir: str | None = None
    slurm_host: str | None = None  # the login node, with host = ...
    remote_run_dir: str | None = None  # the same folder, for the SSH copy-back


@dataclass
class SlurmPlan(Plan):
    """The interpreter on the nodes, and what goes into the run folder they see."""

    python: str = "python3"
    files: Files = field(default_factory=dict)
    executable: set[str] = field(default_factory=set)


class SlurmTarget(Target[SlurmState, SlurmPlan]):
    type_name = "slurm"
    state_type = SlurmState
    plan_type = SlurmPlan
    multi_node = True

    @property
    def rank_launcher(self) -> str:
        return "srun"

    def check_distributed(self, dist: Distributed) -> None:
        """``mpirun`` where the job is submitted from this machine; no more nodes or tasks than sinfo shows."""
        super().check_distributed(dist)
        if not self.settings.get("host"):
            check_mpirun(dist)
        code, out, _ = self._slurm("sinfo", "-N", "-h", "-o", "%N %c")
        nodes = {}
        for line in out.splitlines() if code == 0 else []:
            name, _, cpus = line.strip().partition(" ")
            if cpus.strip().isdigit():
                nodes[name] = int(cpus)
        check_slurm_capacity(dist, sorted(nodes.items()), self.name)

    def site(self) -> Here:
        if not self.settings.get("host"):
            return Here()
        return Login(SSHHost.from_settings(self.name, self.settings), str(self.settings.get("login_setup") or ""))

    def _slurm(self, *argv: str, cwd: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        code, out, err = self.site().run(list(argv), cwd=cwd, env=env)
        if code == 127:
            raise TargetError(
                f"`{argv[0]}` was not found{' on ' + str(self.settings['host']) if self.settings.get('host') else ''}; "
                "run launchbay where the Slurm commands are installed, or set host = a login node."
            )
        if code == 124:
            raise TargetError(f"`{argv[0]}` did not answer in 60 s; is slurmctld up? Try `sinfo`.")
        return code, out, err

    def job_state(self, job_id: str) -> tuple[str | None, str]:
        """(state, reason) of a job; state None when Slurm no longer knows it."""
        code, out, err = self._slurm("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%r")
        if code == 0 and out.strip():
            state, _, reason = out.strip().splitlines()[0].partition("|")
            return state.strip(), reason.strip()
        if code != 0 and "invalid job id" not in err.lower():
            raise TargetError(f"squeue failed: {err or code}. Is slurmctld running? Try `sinfo`.")
        try:  # forgotten by slurmctld: accounting remembers, where there is one
            code, out, _ = self._slurm("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State")
        except TargetError:
            return None, ""
        if code == 0 and out.strip():
            return out.split()[0], ""
        return None, ""

    # -- data inputs: a cache on the shared file system, which every node of a job sees ----------
    data_inputs = True

    def data_cache(self) -> str | None:
        """``data_cache``, else ``<shared_dir>/data-cache``; None (read in place) without a shared_dir or host."""
        shared = self.settings.get("shared_dir") or (DEFAULT_REMOTE_DIR if self.settings.get("host") else None)
        cache = self.settings.get("data_cache") or (posixpath.join(str(shared), "data-cache") if shared else None)
        return str(cache) if cache else None

    def deliver_inputs(self, launch: Launch[SlurmState, SlurmPlan]) -> dict[str, tuple[str, int]]:
        """Each input complete in the shared cache, sent over the login node's connection (``host``) or
        copied here; without a shared folder the nodes see this machine's files, which are read in place."""
        from .sshdata import deliver, here

        cache = self.data_cache()
        if cache is None:
            return super().deliver_inputs(launch)
        host = self.settings.get("host")
        connection = SSHHost.from_settings(self.name, self.settings).do if host else here
        where = str(host or cache)
        return {i.name: deliver(self.store, connection, cache, i, where, launch.progress) for i in launch.inputs}

    def collect_data(self, keep: set[str], dry_run: bool = False) -> dict[str, Any] | None:
        from .sshdata import collect, here

        cache = self.data_cache()
        if cache is None:
            return None
        connection = SSHHost.from_settings(self.name, self.settings).do if self.settings.get("host") else here
        return collect(connection, cache, keep, dry_run)

    # -- launch ---------------------------------------------------------------------------------
    def remote_dir(self, record: RunRecord) -> str:
        """The run folder as the compute nodes see it."""
        known = record.target_state.get("slurm_run_dir")
        if known:
            return str(known)
        shared = self.settings.get("shared_dir") or (DEFAULT_REMOTE_DIR if self.settings.get("host") else None)
        if not shared:
            return str(record.run_dir)
        shared = str(shared)
        if shared == "~" or shared.startswith("~/"):
            shared = self.site().home() + shared[1:]
        return posixpath.join(shared, record.run_id)

    def prepare(self, launch: Launch[SlurmState, SlurmPlan]) -> None:
        """Where the run folder goes; an environment's interpreter (building one on the cluster is not done)."""
        record, config, environment, plan = launch.record, launch.config, launch.environment, launch.plan
        plan.python = str(self.settings.get("python") or "python3")
        if environment is not None:
            if environment.needs_build:
                raise ConfigError(
                    f"Environment {environment.name!r} lists packages, and the Slurm target does not install "
                    'packages: install them into an interpreter on the cluster and set python = "/path/to/python" '
                    f"in [targets.{self.name}] (or user_managed = true with python = ... in the environment)."
                )
            if environment.python:
                plan.python = environment.python
        remote = launch.state.slurm_run_dir = self.remote_dir(record)
        config.pythonpath = [RUNTIME_DIR]
        elsewhere = remote != str(record.run_dir)  # else the runner stages the project from the store's blobs
        files = file_set(self.store, record.snapshot_id if elsewhere else None)
        plan.files = {**files.runtime_files(), **files.project_files(self.store)}
        plan.executable = files.executable()
        if elsewhere:
            config.snapshot = {}  # the project goes straight into the run folder's work/
            config.snapshot_links = list(files.links)  # made by the runner in work/

    def start(self, launch: Launch[SlurmState, SlurmPlan]) -> None:
        record, config, state = launch.record, launch.config, launch.state
        site, remote = self.site(), str(state.slurm_run_dir)
        direct = remote == str(record.run_dir)
        script = render_sbatch(
            run_id=record.run_id,
            run_dir=remote,
            python=launch.plan.python,
            settings=slurm_settings(self.settings, config.distributed),
            target=self.name,
        )
        files = launch.plan.files
        files[rf.RUNNER_CONFIG] = config.to_text().encode()
        files[SCRIPT_NAME] = script.encode()
        files[f"{rf.JOURNAL}/.keep"] = b""  # sbatch writes journal/slurm-<id>.out; the folder must exist
        try:
            site.put(remote, files, launch.plan.executable)
        except (OSError, TargetError) as exc:
            raise TargetError(f"Cannot write the run folder {remote} ({exc}); check shared_dir.") from exc
        if not direct:  # a local copy, for `launchbay show`
            (record.run_dir / SCRIPT_NAME).write_text(script)
        # sbatch hands its environment to the job: the secrets stay out of the script and runner.json
        code, out, err = self._slurm("sbatch", "--parsable", SCRIPT_NAME, cwd=remote, env=launch.secret_env)
        if code != 0:
            if not direct:
                site.remove(remote)
            raise TargetError(f"sbatch refused the run: {err or out or code}. Check [targets.{self.name}].")
        state.slurm_job_id = out.strip().split(";")[0]
        if self.settings.get("host"):
            state.remote_run_dir, state.slurm_host = remote, str(self.settings["host"])

    # -- follow ---------------------------------------------------------------------------------
    def mirror(self, record: RunRecord) -> None:
        if record.target_state.get("slurm_run_dir"):
            self.site().mirror(self.remote_dir(record), record)

    def alive(self, record: RunRecord) -> bool | None:
        job_id = record.target_state.get("slurm_job_id")
        if not job_id:
            return None
        try:
            state, reason = self.job_state(str(job_id))
            if state in ALIVE_STATES:
                return True
            site, remote = self.site(), self.remote_dir(record)
            events = site.read(posixpath.join(remote, rf.EVENTS_PATH)) or b""
            if not _runner_started(events):
                self._record_end(site, remote, str(job_id), state, reason)
                self.mirror(record)
                return False
        except TargetError:
            return None
        if record.heartbeat and time.time() - record.heartbeat < 3 * HEARTBEAT_INTERVAL_S:
            return None  # Slurm has let go of the job; the runner may still be writing its end
        return False

    def _record_end(self, site: Here, remote: str, job_id: str, state: str | None, reason: str) -> None:
        """The job ended before the runner started (canceled while queued, no python on the node...)."""
        out = site.read(posixpath.join(remote, rf.JOURNAL, rf.SLURM_OUTPUT.format(job_id))) or b""
        tail = "\n".join(out.decode(errors="replace").strip().splitlines()[-20:])
        if state == "CANCELLED":
            status, message = "Canceled", "Canceled by request (the Slurm job was canceled before it started)."
        else:
            said = f"{state} ({reason})" if reason and reason != "None" else (state or "unknown to Slurm")
            status, message = "Failed", f"The Slurm job {job_id} ended {said} before the runner started."
        site.append(posixpath.join(remote, rf.EVENTS_PATH), rf.final_event_line(status, message, tail))

    def cancel(self, record: RunRecord) -> None:
        """The cancel file (the runner records Canceled at once) and scancel (Slurm frees the allocation)."""
        if record.target_state.get("slurm_run_dir"):
            try:
                self.site().put(self.remote_dir(record), {rf.CANCEL: b""})
            except (OSError, TargetError):
                pass
        self.force_stop(record)

    def force_stop(self, record: RunRecord) -> None:
        job_id = record.target_state.get("slurm_job_id")
        if not job_id:
            return
        code, _, err = self._slurm("scancel", str(job_id))
        if code != 0 and "invalid job id" not in err.lower() and "already completing" not in err.lower():
            raise TargetError(f"scancel {job_id} failed: {err}.")

    def check(self) -> dict[str, Any]:
        try:
            code, out, err = self._slurm("sinfo", "-h", "-o", "%P|%a|%D|%c|%G")
        except TargetError as exc:
            return {"reachable": False, "error": str(exc)}
        if code != 0:
            return {"reachable": False, "error": f"sinfo failed: {err}"}
        partitions = []
        for line in out.strip().splitlines():
            name, avail, nodes, cpus, gres = (line.split("|") + [""] * 5)[:5]
            partitions.append({"partition": name, "state": avail, "nodes": nodes, "cpus": cpus, "gres": gres})
        return {"reachable": True, "partitions": partitions}

    def describe(self, record: RunRecord) -> dict[str, Any]:
        job_id = record.target_state.get("slurm_job_id")
        out: dict[str, Any] = {"slurm_job_id": job_id, "slurm_run_dir": record.target_state.get("slurm_run_dir")}
        if job_id:
            try:
                state, reason = self.job_state(str(job_id))
                out.update(slurm_state=state or "ended (no longer known to Slurm)", slurm_reason=reason)
            except TargetError as exc:
                out["slurm_state"] = f"unknown ({exc})"
        script = record.run_dir / SCRIPT_NAME
        if script.is_file():
            out["rendered_sbatch"] = script.read_text()
        return out


def _runner_started(events: bytes) -> bool:
    for line in events.splitlines():
        try:
            if json.loads(line).get("type") == "runner":
                return True
        except ValueError:
            continue
    return False
