"""The Ray target: each run is a Ray job, submitted through the Jobs API.

The job's working_dir is a zip we build from the snapshot (so launchbay's ignore
rules are the only ones applied): the project under ``work/``, the shipped
runtime, ``runner.json``. Its entry point (``rayship.py``) runs the runner and
prints the run folder's new bytes as tagged lines; ``mirror`` reads the job's log
over HTTP and writes them back into the local run folder. That is the return
path: no shared filesystem, no ``ray.init``, not even Ray installed on the
notebook's side. Every call is plain HTTP to the Jobs REST API (the package
upload is the same ``PUT /api/packages/gcs/...`` Ray's SDK makes). Why not the
SDK: importing it takes 3-6 s, paid on every ``launchbay show`` of a Ray run.

``[targets.NAME]`` settings: ``address`` (the dashboard, ``http://HOST:8265``),
``num_cpus``, ``num_gpus``, ``memory`` (bytes or "4GB"), ``resources`` (table),
``pip`` (list), ``env_vars`` (table), ``environment`` (an [environments.NAME]:
its packages and variables), ``runtime_env`` (table, merged last), ``python``
(the interpreter on the nodes, default ``python``). Secret variables go in
runtime_env's env_vars too, the field Ray's dashboard redacts.
"""

from __future__ import annotations

import json
import os
import shlex
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..distributed import Distributed, check_cluster_cpus
from ..errors import ConfigError, TargetError
from ..models import RunSpec
from ..runfolder import has_final_event
from ..snapshot import human_bytes
from ..store import RunRecord
from .base import Launch, Plan, RunnerConfig, Target, TargetState
from .fileset import FileSet, file_set
from .mirror import RayLog, apply, locked, mirror
from .rayjobs import JobsAPI, cluster_cpus, parse_bytes
from .rayship import RENAMED
from .runtime import RUNTIME_DIR

#: the dashboard refuses request bodies over this size (HTTP 413), so packages too
PACKAGE_LIMIT = 100 * 1024 * 1024
_SHIPPER = Path(__file__).resolve().parent / "rayship.py"
_JOB_ENTRY = f"{RUNTIME_DIR}/launchbay_rayjob.py"  # rayship.py, as the job's entry point in its working_dir
_RUNNING = {"PENDING", "RUNNING"}


@dataclass
class RayState(TargetState):
    """Recorded with a Ray run: its job, and the cluster that runs it."""

    ray_job_id: str | None = None
    ray_address: str | None = None


@dataclass
class RayPlan(Plan):
    """What the job is submitted with: Ray's runtime_env, and the files its working_dir holds."""

    runtime_env: dict[str, Any] = field(default_factory=dict)
    files: FileSet = field(default_factory=lambda: FileSet({}))


def ray_ranks(settings: dict[str, Any]) -> str:
    """The Ray target's ``ranks``: "workers" (default) or "job"."""
    value = str(settings.get("ranks") or "workers")
    if value not in ("workers", "job"):
        raise ConfigError(f'The Ray target\'s ranks = {value!r}; use "workers" (a Ray worker per rank) or "job".')
    return value


class RayTarget(Target[RayState, RayPlan]):
    type_name = "ray"
    state_type = RayState
    plan_type = RayPlan
    places_ranks = "places its ranks itself (a Ray worker each, or all in the job)"

    @property
    def address(self) -> str:
        return str(self.settings.get("address") or os.environ.get("RAY_ADDRESS") or "http://127.0.0.1:8265")

    # -- data inputs: a folder every node sees, or, for a cluster on this machine, the files in place ---
    #: Ray's own ``working_dir`` upload is capped in size and sent again with every job, so data goes
    #: beside it: into ``data_cache`` (a shared file system every node mounts) with the SSH target's
    #: cache protocol, copied here; a cluster whose head is on this machine reads the files in place.
    data_inputs = True

    def data_cache(self) -> str | None:
        cache = self.settings.get("data_cache")
        return str(cache) if cache else None

    def cluster_is_here(self) -> bool:
        from urllib.parse import urlsplit

        return (urlsplit(self.address).hostname or "") in ("127.0.0.1", "localhost", "::1")

    def check_inputs(self, spec: RunSpec) -> None:
        if spec.inputs and self.data_cache() is None and not self.cluster_is_here():
            raise ConfigError(
                f"Target {self.name!r} (ray, {self.address}) needs data_cache = a folder every Ray node sees "
                "(a shared file system) to take data inputs; set it in launchbay.toml."
            )

    def deliver_inputs(self, launch: Launch[RayState, RayPlan]) -> dict[str, tuple[str, int]]:
        """Each input complete in ``data_cache`` (copied here, checked by SHA-256), else in place."""
        from .sshdata import deliver, here

        cache = self.data_cache()
        if cache is None:
            return super().deliver_inputs(launch)
        return {i.name: deliver(self.store, here, cache, i, cache, launch.progress) for i in launch.inputs}

    def collect_data(self, keep: set[str], dry_run: bool = False) -> dict[str, Any] | None:
        from .sshdata import collect, here

        cache = self.data_cache()
        return None if cache is None else collect(here, cache, keep, dry_run)

    # -- distributed runs -------------------------------------------------------------------------
    @property
    def rank_launcher(self) -> str:
        """``ray``: a Ray worker per rank in a placement group; ``ranks = "job"`` runs them in the job."""
        return "ray" if ray_ranks(self.settings) == "workers" else "procs"

    def cpus_per_rank(self) -> float:
        return float(self.settings.get("cpus_per_rank") or 1)

    def distributed_entry(self, spec: RunSpec) -> dict[str, Any] | None:
        entry = super().distributed_entry(spec)
        if entry is not None and entry["launcher"] == "ray":
            entry["cpus_per_rank"] = self.cpus_per_rank()
        return entry

    def check_distributed(self, dist: Distributed) -> None:
        """The node count, then no more ranks than the CPUs they would run on (as the dashboard tells)."""
        super().check_distributed(dist)
        largest, total = cluster_cpus(self.address)
        workers = self.rank_launcher == "ray"
        cpus, where = (total, "the cluster") if workers else (largest, "its largest node")
        if cpus is not None and workers:
            cpus = cpus // self.cpus_per_rank()
        how = "as Ray workers" if workers else "in one Ray job on one node"
        check_cluster_cpus(dist, cpus, how, where, self.address)

    # -- launch ---------------------------------------------------------------------------------
    def prepare(self, launch: Launch[RayState, RayPlan]) -> None:
        """The run's environment becomes Ray's runtime_env (Ray installs the packages on the node);
        the project, the runtime and runner.json travel in the job's working_dir."""
        JobsAPI(self.address).version()  # fail fast, with our message, before building anything
        config, environment = launch.config, launch.environment
        runtime_env: dict[str, Any] = {}
        if self.settings.get("pip"):
            runtime_env["pip"] = [str(p) for p in self.settings["pip"]]
        env_vars = {str(k): str(v) for k, v in (self.settings.get("env_vars") or {}).items()}
        if environment is not None:
            if environment.pip:
                runtime_env["pip"] = sorted(set(runtime_env.get("pip", [])) | set(environment.pip))
            env_vars.update(environment.env_vars)
        if env_vars:
            runtime_env["env_vars"] = env_vars
        runtime_env.update(dict(self.settings.get("runtime_env") or {}))
        files = file_set(self.store, launch.record.snapshot_id)
        config.snapshot = {}  # the project is already in work/ of the job's working_dir (removed at the end)
        config.snapshot_links = list(files.links)  # made by the runner in work/
        config.pythonpath = [RUNTIME_DIR]
        # Ray's stop_job kills every process of the job 3 s after SIGTERM:
        # the run must be stopped, and its end shipped, before that.
        config.cancel_grace_s = min(float(config.cancel_grace_s), 2.0)
        launch.plan.runtime_env, launch.plan.files = runtime_env, files

    def start(self, launch: Launch[RayState, RayPlan]) -> None:
        record, secret_env = launch.record, launch.secret_env
        api = JobsAPI(self.address)
        package = record.run_dir / rf.RAY_PACKAGE
        try:
            self._build_package(package, launch.config, launch.plan.files)
            runtime_env = dict(launch.plan.runtime_env, working_dir=api.upload_package(package))
            if secret_env:
                runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **secret_env}
            job_id = self._submit(api, record, runtime_env)
        finally:
            package.unlink(missing_ok=True)
        launch.state.ray_job_id, launch.state.ray_address = job_id, self.address

    def _build_package(self, package: Path, config: RunnerConfig, files: FileSet) -> None:
        """The job's working_dir as one zip; over Ray's limit is our error, naming the biggest files."""
        renamed: dict[str, str] = {}  # Ray's unpacker skips names with a backslash: rayship.py renames them back
        with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for file in files.project:
                arcname = file.rel
                if "\\" in arcname:
                    shipped = f"{RUNTIME_DIR}/renamed/{len(renamed)}"
                    renamed[shipped], arcname = arcname, shipped
                blob = self.store.blobs.local_path(file.digest)
                info = zipfile.ZipInfo.from_file(blob, arcname=arcname)
                info.external_attr = ((0o755 if file.executable else 0o644) | 0o100000) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(blob, "rb") as src, zf.open(info, "w") as dest:
                    while block := src.read(1 << 20):
                        dest.write(block)
            for rel, data in files.runtime_files().items():
                zf.writestr(rel, data)
            zf.write(_SHIPPER, _JOB_ENTRY)
            zf.writestr(f"{RUNTIME_DIR}/{RENAMED}", json.dumps(renamed))
            zf.writestr(rf.RUNNER_CONFIG, config.to_text())
        size = package.stat().st_size
        if size >= PACKAGE_LIMIT:
            biggest = sorted(files.project, key=lambda f: -f.size)[:5]
            names = ", ".join(f"{f.path} ({human_bytes(f.size)})" for f in biggest)
            raise TargetError(
                f"The run's package for Ray is {human_bytes(size)} compressed, over the {human_bytes(PACKAGE_LIMIT)} "
                f"that Ray's Jobs API accepts. Largest files: {names}. Leave big data out of the snapshot (a line "
                "in .launchbayignore) and read it on the cluster from shared storage instead."
            )

    def _submit(self, api: JobsAPI, record: RunRecord, runtime_env: dict[str, Any]) -> str:
        python = str(self.settings.get("python") or "python")
        request: dict[str, Any] = {
            "entrypoint": f"{shlex.quote(python)} {_JOB_ENTRY} .",
            "submission_id": f"launchbay-{record.run_id}",
            "runtime_env": runtime_env,
            "metadata": {"launchbay_run_id": record.run_id, "launchbay_experiment": record.experiment},
        }
        if self.settings.get("num_cpus") is not None:
            request["entrypoint_num_cpus"] = float(self.settings["num_cpus"])
        elif (record.spec or {}).get("distributed") and self.settings.get("ranks") == "job":
            # all ranks run inside this one job: reserve a CPU each (workers: their placement group does)
            request["entrypoint_num_cpus"] = float(record.spec["distributed"]["process_count_per_node"])
        if self.settings.get("num_gpus") is not None:
            request["entrypoint_num_gpus"] = float(self.settings["num_gpus"])
        if self.settings.get("memory") is not None:
            request["entrypoint_memory"] = parse_bytes(self.settings["memory"])
        if self.settings.get("resources"):
            request["entrypoint_resources"] = {str(k): float(v) for k, v in self.settings["resources"].items()}
        try:
            return api.submit(request)
        except TargetError as exc:
            raise TargetError(f"{exc} Check [targets.{self.name}] in launchbay.toml.") from exc

    # -- follow ---------------------------------------------------------------------------------
    def _api(self, record: RunRecord) -> JobsAPI:
        return JobsAPI(str(record.target_state.get("ray_address") or self.address))

    def mirror(self, record: RunRecord, force: bool = False) -> None:
        """Write the chunks the job printed since last time into the local run folder.

        The Jobs API only returns a job's whole log, so each sync costs the log's
        size: a long log is fetched less often (10 MB: about once a second).
        """
        job_id = record.target_state.get("ray_job_id")
        if not job_id:
            return
        api = self._api(record)

        def interval(pos: int) -> float:
            return 0.0 if force else min(5.0, 0.05 + pos / 10e6)

        mirror(RayLog(record.run_dir, lambda: api.logs(job_id), interval), record.run_dir)

    def alive(self, record: RunRecord) -> bool | None:
        job_id = record.target_state.get("ray_job_id")
        if not job_id:
            return None
        try:
            info = self._api(record).job(job_id)
            if str(info.get("status")) in _RUNNING:
                return True
            self.mirror(record, force=True)  # the whole log, now that the job has ended
        except TargetError:
            return None
        if not has_final_event(record.run_dir):
            _record_end(record.run_dir, info)
        return False

    def cancel(self, record: RunRecord) -> None:
        job_id = record.target_state.get("ray_job_id")
        if not job_id:
            return
        api = self._api(record)
        pending = str(api.job(job_id).get("status")) == "PENDING"
        api.stop(job_id)
        if pending:
            # Ray queues the stop behind the job's start: a job that cannot be placed
            # stays PENDING for its start timeout (15 min). It has not run; it ends here.
            with locked(record.run_dir):
                (record.run_dir / RayLog.STATE).write_text(json.dumps({"closed": True}))
                _record_end(record.run_dir, {"status": "STOPPED"})

    def force_stop(self, record: RunRecord) -> None:
        try:
            self.cancel(record)
        except TargetError:
            pass

    def check(self) -> dict[str, Any]:
        try:
            version = JobsAPI(self.address, timeout=5).version()
        except TargetError as exc:
            return {"reachable": False, "address": self.address, "error": str(exc)}
        return {"reachable": True, "address": self.address, "ray_version": version.get("ray_version")}

    def describe(self, record: RunRecord) -> dict[str, Any]:
        job_id = record.target_state.get("ray_job_id")
        out: dict[str, Any] = {"ray_job_id": job_id, "ray_address": record.target_state.get("ray_address")}
        if job_id:
            try:
                info = self._api(record).job(job_id)
                out.update(ray_status=info.get("status"), ray_message=info.get("message"))
            except TargetError as exc:
                out["ray_status"] = f"unknown ({exc})"
        return out


# -- the notebook side of the log protocol (see rayship.py) --------------------------------------
def apply_chunks(run_dir: Path, text: str) -> None:
    """Write tagged chunks to their files at their offsets; keep other lines in journal/runner.log."""
    apply(run_dir, RayLog.parse(run_dir, text))


def _record_end(run_dir: Path, info: dict[str, Any]) -> None:
    """A job that ended without the runner's own end (stopped while pending, runtime_env failed)."""
    status = str(info.get("status"))
    tail = ""
    runner_log = run_dir / rf.JOURNAL / rf.RUNNER_LOG
    if runner_log.is_file():
        tail = "\n".join(runner_log.read_text(errors="replace").strip().splitlines()[-20:])
    if status == "STOPPED":
        final, message = "Canceled", "Canceled by request (the Ray job was stopped)."
    else:
        final, message = "Failed", f"The Ray job ended {status} before the runner recorded an end"
        lines = [ln.strip() for ln in str(info.get("message") or "").strip().splitlines() if ln.strip()]
        if lines:  # Ray's first line, and the error that explains it (a pip failure is 40 lines down)
            errors = [ln for ln in lines[1:] if ln.startswith("ERROR") or "Error:" in ln]
            message += ": " + lines[0] + (f" ... {errors[-1]}" if errors else "")
            tail = "\n".join(lines[-40:]) + ("\n" + tail if tail else "")
        message += "."
    rf.write_final_event(run_dir, final, message, tail)
