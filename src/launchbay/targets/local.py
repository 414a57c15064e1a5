"""The local target: the runner as a detached background process on this machine."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from .. import forkserver
from .. import runfolder as rf
from ..distributed import Distributed, check_local_cpus, check_mpirun
from ..errors import ConfigError, TargetError
from ..models import RunSpec
from ..runner_procs import kill_recorded
from ..store import RunRecord
from .base import RUNNER_SOURCE, Launch, Plan, RunnerConfig, Target, TargetState
from .runtime import RUNTIME_DIR, WANTS_EXTRAS, write_runtime


def process_alive(pid: int, must_contain: str | None = None, start: int | None = None) -> bool:
    """Is ``pid`` a live (not zombie) process, and is it the one we started?

    ``start`` (its start time, when the runner recorded it) says so exactly; else its command
    line must contain ``must_contain``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        if fields[0] in (b"Z", b"X"):
            return False
        if start is not None:
            return int(fields[19]) == start
        if must_contain:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                return must_contain.encode() in fh.read()
        return True
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except PermissionError:
        return True


def stop_runner(record: RunRecord, marker: str) -> None:
    """Ask a local runner (or sweep controller) to stop: the cancel file, then SIGTERM to its pid.

    ``marker`` is a string its command line must contain, so a reused pid is never signalled."""
    (record.run_dir / rf.CANCEL).touch()
    pid = record.target_state.get("runner_pid")
    if pid and process_alive(int(pid), marker, record.target_state.get("runner_start")):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


def runner_pid_alive(record: RunRecord, marker: str) -> bool | None:
    """Is the runner whose pid the journal recorded still running? None before it recorded one."""
    pid = record.target_state.get("runner_pid")
    if not pid:
        return None
    return process_alive(int(pid), marker, record.target_state.get("runner_start"))


def with_launchbay_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with launchbay's sources first on PYTHONPATH (for the runner and what it starts)."""
    src_root = str(Path(__file__).resolve().parents[2])
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (src_root, env.get("PYTHONPATH", "")) if p)}


def spawn_detached(command: list[str], run_dir: Path, env: dict[str, str], what: str) -> None:
    """Start ``command`` (which double-forks itself away) so it outlives this process.

    launchbay's sources go first on its PYTHONPATH; its output goes to the run's journal."""
    env = with_launchbay_path(env)
    (run_dir / rf.JOURNAL).mkdir(parents=True, exist_ok=True)
    with open(run_dir / rf.JOURNAL / rf.RUNNER_LOG, "ab") as log:
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise TargetError(f"Could not start {what} with {command[0]}: {exc}.") from exc
    proc.wait()  # it forks itself away at once; this reaps the intermediate


class LocalTarget(Target[TargetState, Plan]):
    type_name = "local"
    state_type = TargetState
    plan_type = Plan
    cell_module = "launchbay.cellrunner"
    data_inputs = True  # read where they are: no copy for a mount (the runner copies a download)

    def python(self) -> str:
        return str(self.settings.get("python") or sys.executable)

    def preflight(self, spec: RunSpec) -> None:
        """A ``python`` setting that names no interpreter is refused before the run is recorded
        (an environment brings its own interpreter, and checks it when it is built)."""
        python = self.python()
        if self.environment(spec) is not None or _executable(python):
            return
        where = f" in {self.config.path}" if self.config.path else ""
        raise ConfigError(
            f"Target {self.name!r}: python {python!r} is not an interpreter on this machine (no such executable); "
            f"set python in [targets.{self.name}]{where} to an existing one, e.g. {sys.executable!r}, or remove it."
        )

    def check_distributed(self, dist: Distributed) -> None:
        """One machine: the node count, its CPUs, and ``mpirun`` here for an MPI run."""
        super().check_distributed(dist)
        check_local_cpus(dist)
        check_mpirun(dist)

    def prepare(self, launch: Launch[TargetState, Plan]) -> None:
        """The environment's venv (built once per hash); reusable staged copies; the finish hook."""
        record, config = launch.record, launch.config
        config.python = self.python()
        if launch.environment is not None:
            from ..environments.cache import copy_build_log
            from ..environments.venv import ensure_venv

            local = ensure_venv(self.store.cache_dir, launch.environment, launch.progress)
            if Path(local.python) != Path(sys.executable):
                use_shipped_runtime(record.run_dir, config)
            config.python = local.python
            copy_build_log(local.log, record.run_dir)
            launch.state.environment = local.state()
        if Path(config.python) == Path(sys.executable) and launch.spec.env_vars.get(WANTS_EXTRAS):
            write_runtime(record.run_dir, extras_only=True)  # the Azure ML alias: the runner puts it on the path
        source = str(record.properties.get("launchbay.source_dir") or "")
        key = hashlib.sha1(source.encode()).hexdigest()[:16]
        # a finished run's untouched copies, reused by the next run of this folder (runner_stage.py)
        config.stage_spare = str(self.store.cache_dir / "cache" / "stage" / key)
        config.record_descendants = True  # so force_stop can find them if the runner is killed
        if not self.ingested_by_watcher:
            config.finish_hook = {"store": self.store.uri, "run_id": record.run_id}

    def needs_preparing(self, spec: RunSpec, record: RunRecord) -> bool:
        """Only a venv not built yet: a built one is a marker file away."""
        from ..environments.venv import is_built

        environment = self.environment(spec, record)
        return environment is not None and environment.needs_build and not is_built(self.store.cache_dir, environment)

    def start(self, launch: Launch[TargetState, Plan]) -> None:
        run_dir = launch.record.run_dir
        env = with_launchbay_path({**os.environ, **launch.secret_env})
        (run_dir / rf.JOURNAL).mkdir(parents=True, exist_ok=True)
        if forkserver.request_runner(run_dir, env) is None:  # no warm server yet: an interpreter of its own
            spawn_detached([sys.executable, str(RUNNER_SOURCE), "--detach", str(run_dir)], run_dir, env, "the runner")

    def cancel(self, record: RunRecord) -> None:
        stop_runner(record, str(record.run_dir))

    def alive(self, record: RunRecord) -> bool | None:
        return runner_pid_alive(record, str(record.run_dir))

    def force_stop(self, record: RunRecord) -> None:
        pgid = record.target_state.get("child_pgid")
        if pgid:
            try:
                os.killpg(int(pgid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        # descendants in other sessions, which the dead runner last saw (pid + start time)
        kill_recorded(str(record.run_dir / rf.DESCENDANTS))

    def check(self) -> dict[str, Any]:
        return {"reachable": True, "python": self.python(), "version": sys.version.split()[0]}


def _executable(command: str) -> bool:
    """Does ``command`` (a path, or a name looked up on PATH) name an executable file?"""
    if os.sep not in command:
        return shutil.which(command) is not None
    return os.path.isfile(command) and os.access(command, os.X_OK)


def use_shipped_runtime(run_dir: Path, config: RunnerConfig) -> None:
    """An interpreter without launchbay: ship the in-run API and cell bootstrap next to the run."""
    write_runtime(run_dir)
    config.pythonpath = [RUNTIME_DIR, *config.pythonpath]
    command = list(config.command)
    if len(command) > 2 and command[1] == "-m" and command[2] == "launchbay.cellrunner":
        command[2] = "launchbay_cell"
    config.command = command
