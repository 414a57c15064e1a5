"""The SSH target: runs on a machine you can ``ssh`` to (the GPU box under the desk, a cloud VM).

Remote layout under ``workdir`` (default ``~/.launchbay-remote``)::

    blobs/ab/cdef...        content-addressed cache: a file is sent once, ever
    runtime/<hash>/         the shipped runner and in-run API, one copy per version
    envs/<hash>/venv        an environment (``env = "NAME"``), built on the host once
    runs/<run_id>/          runner.json, journal/, files/ (as in the local store)

Data inputs go to a cache of their own (``data_cache``, default ``~/.cache/launchbay/data``),
shared by every workdir of the host: see sshdata.py.

A submit is three requests to the connection's remote helper (sshconn's agent): a
probe (interpreter, workdir, which blobs are missing), the upload of the missing
blobs, and the start of the runner in a session of its own (``setsid``; or
``docker run -d`` with ``docker = true``), so the run outlives the connection.
``mirror`` brings the remote run folder's new bytes back (``mirror.SSHFolder``), so
any process can re-attach and catch up without losing a line.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import runfolder as rf
from ..errors import EnvironmentBuildError, TargetError, UnknownEnvironmentError
from ..models import RunSpec
from ..store import RunRecord
from . import sshscripts
from .base import Launch, Plan, Target, TargetState
from .fileset import blob_name, file_set
from .mirror import SSHFolder, mirror
from .sshconn import RemotePythonError, SSHConnection, SSHConnectionLost, SSHHost
from .sshconn import close_connections as close_connections  # the pool lives in sshconn; kept importable here

if TYPE_CHECKING:
    from ..environments.spec import EnvironmentSpec
    from ..snapshot import Snapshot

DEFAULT_WORKDIR = "~/.launchbay-remote"
DEFAULT_DATA_CACHE = "~/.cache/launchbay/data"
ALIVE_CACHE_S = 3.0

_alive: dict[str, float] = {}  # run id -> when its runner was last seen alive


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass
class SSHState(TargetState):
    """Recorded with an SSH run: where it runs on the host, and how to reach its runner."""

    remote_host: str | None = None
    remote_run_dir: str | None = None
    remote_python: str | None = None
    upload: dict[str, Any] | None = None  # blobs and bytes sent, seconds
    remote_pid: int | None = None  # the runner, leader of its process group
    remote_pgid: int | None = None
    remote_container: str | None = None  # with docker = true
    container_id: str | None = None


@dataclass
class SSHPlan(Plan):
    """What the probe found on the host, for the start: the workdir, the shipped runner, the login's ids."""

    work: str = ""
    runner: str = ""
    python: str = ""
    uid: str | None = None
    image: str | None = None  # the environment's, with docker = true and no image setting


class SSHTarget(Target[SSHState, SSHPlan]):
    type_name = "ssh"
    state_type = SSHState
    plan_type = SSHPlan
    data_inputs = True  # a cache on the host that receives only what it lacks (sshdata.py)

    # -- settings -----------------------------------------------------------------------------------
    def _setting(self, key: str, default: Any = None) -> Any:
        value = self.settings.get(key)
        return default if value is None or value == "" else value

    @property
    def remote(self) -> SSHHost:
        """The host and login; its ``do`` runs an action on the pooled connection (sshconn)."""
        return SSHHost.from_settings(self.name, self.settings)

    @property
    def docker(self) -> bool:
        return _truthy(self._setting("docker", False))

    def where(self) -> str:
        return self.remote.where

    def data_cache(self) -> str:
        """Where the host keeps data inputs: ``data_cache`` in the target's settings."""
        return str(self._setting("data_cache", DEFAULT_DATA_CACHE))

    def deliver_inputs(self, launch: Launch[SSHState, SSHPlan]) -> dict[str, tuple[str, int]]:
        """Each input's version complete and intact in the host's cache (only missing files are sent)."""
        from .sshdata import deliver

        return {
            i.name: deliver(
                self.store, self.remote.do, self.data_cache(), i, self.where(), launch.progress, self._extra
            )
            for i in launch.inputs
        }

    def collect_data(self, keep: set[str], dry_run: bool = False) -> dict[str, Any] | None:
        from .sshdata import collect

        return collect(self.remote.do, self.data_cache(), keep, dry_run)

    def _extra(self) -> SSHConnection:
        """A connection of its own (not the pool's), for a large data send alongside the pooled one."""
        r = self.remote
        return SSHConnection(
            r.host, r.port, r.user, r.identity_file, r.known_hosts, python=r.python, connect_timeout=r.connect_timeout
        )

    # -- probe -------------------------------------------------------------------------------------------
    def probe(
        self, blobs: Sequence[str] = (), runtime: Sequence[str] = (), gpus: bool = False, docker: bool = False
    ) -> dict[str, Any]:
        """Ask the host for its python, workdir and missing blobs (by ``blob_name``); raise a clear error
        when unusable."""
        args = {
            "workdir": str(self._setting("workdir", DEFAULT_WORKDIR)),
            "blobs": list(blobs),
            "runtime": list(runtime),
            "gpus": gpus,
            "docker": docker,
        }
        try:
            info: dict[str, Any] = self.remote.do(lambda c: c.call(sshscripts.PROBE, args)[0])
        except RemotePythonError as exc:
            raise TargetError(str(exc).replace("the target's settings", f"[targets.{self.name}]")) from None
        if info.get("workdir_error"):
            raise TargetError(
                f"Cannot create the workdir {info['workdir']} on {self.where()} ({info['workdir_error']}): set "
                f"workdir in [targets.{self.name}] to a folder the user can write."
            )
        return info

    # -- launch -------------------------------------------------------------------------------------------
    def preflight(self, spec: RunSpec) -> None:
        """Settings, connection, host key, login and interpreter: any failure before the store is touched."""
        try:
            self._check_settings(self.environment(spec))
        except UnknownEnvironmentError:
            pass  # maybe a file in the submitted folder, not known yet: prepare checks the run's environment
        self._check_docker(self.probe(docker=self.docker))

    def _check_settings(self, env: EnvironmentSpec | None) -> None:
        if self.docker and env is not None and env.pip:
            raise TargetError(
                f"Environment {env.label} lists packages, and with docker = true the SSH target runs an image as it "
                f"is: use an image that has them (image in [targets.{self.name}] or in the environment), or drop "
                "docker = true to have the environment built on the host."
            )
        if self.docker and not (self._setting("image") or (env and env.image)):
            raise TargetError(
                f'[targets.{self.name}] has docker = true but no image: set image = "NAME:TAG" '
                "(an image on the remote host with python3)."
            )

    def _check_docker(self, info: dict[str, Any]) -> None:
        if self.docker and not str(info.get("docker", "")).split(".")[0].isdigit():
            raise TargetError(
                f"docker = true, but Docker does not answer on {self.where()} ({info.get('docker')}): start the "
                f"daemon there or give the user access to it."
            )

    def snapshot_location(self, record: RunRecord, snapshot: Snapshot | None) -> dict[str, str]:
        return {}  # filled in by prepare(), once the remote workdir is known

    def prepare(self, launch: Launch[SSHState, SSHPlan]) -> None:
        """Probe the host and send the blobs it lacks (the runtime too, once per version); build the environment."""
        record, config, state, env = launch.record, launch.config, launch.state, launch.environment
        self._check_settings(env)
        snapshot_id = record.snapshot_id
        files = file_set(self.store, snapshot_id)
        blobs: dict[str, Path] = files.blob_files(self.store)
        runtime_hash = files.runtime_hash()
        runtime_rel = {f"runtime/{runtime_hash}/{rel}": data for rel, data in files.runtime.items()}
        info = self.probe(sorted(blobs), sorted(runtime_rel), docker=self.docker)
        self._check_docker(info)
        work = info["workdir"]
        missing = info["missing"]
        started = time.time()
        sent = self.remote.do(lambda c: c.upload_files(f"{work}/blobs", {n: blobs[n] for n in missing}, blobs=True))
        runtime_sent = 0
        if info["runtime_missing"]:
            need = {rel: runtime_rel[rel] for rel in info["runtime_missing"]}
            runtime_sent = self.remote.do(lambda c: c.upload_files(work, need))  # type: ignore[arg-type]
        run_dir = f"{work}/runs/{record.run_id}"
        config.snapshot = {}
        if snapshot_id:
            config.snapshot = {"manifest": f"{work}/blobs/{blob_name(snapshot_id)}", "blobs": f"{work}/blobs"}
        config.pythonpath = [f"{work}/runtime/{runtime_hash}"]
        config.python = "python3" if self.docker else info["executable"]
        if env is not None and not self.docker:
            config.python = self._materialise(launch, env, work, info)
        launch.plan = SSHPlan(
            work=work,
            runner=f"{work}/runtime/{runtime_hash}/{rf.RUNNER_ENTRY}",
            python=info["executable"],
            uid=info.get("uid"),
            image=env.image if env is not None else None,
        )
        state.remote_host, state.remote_run_dir = self.where(), run_dir
        state.remote_python = f"{info['executable']} ({info['version']})"
        state.upload = {
            "blobs": len(blobs),
            "blobs_sent": len(missing),
            "bytes_sent": sent,
            "runtime_bytes_sent": runtime_sent,
            "seconds": round(time.time() - started, 3),
        }

    def _materialise(
        self, launch: Launch[SSHState, SSHPlan], env: EnvironmentSpec, work: str, info: dict[str, Any]
    ) -> str:
        """The environment's interpreter on the host: a venv under ``<workdir>/envs/<hash>``, built once."""
        if env.user_managed:
            python = env.python or info["executable"]
            launch.state.environment = {
                "name": env.name,
                "hash": env.hash,
                "python": python,
                "built": False,
                "user_managed": True,
            }
            return python
        if env.installer == "uv" and not info.get("uv"):
            raise EnvironmentBuildError(
                f'Environment {env.label} asks for installer = "uv", but uv is not on {self.where()}; install it '
                'there, or set installer = "pip".'
            )
        args = {
            "folder": f"{work}/envs/{env.hash}",
            "requirements": env.requirements_text(),
            "spec": json.dumps(env.to_json(), indent=1),
            "python": env.python,
            "uv": env.installer != "pip",
        }
        launch.report(f"environment {env.label}: checking on {self.where()}")
        result: dict[str, Any] = self.remote.do(lambda c: c.call(sshscripts.BUILD_ENV, args, timeout=None)[0])
        if result.get("error"):
            lines = "\n".join(f"  {ln}" for ln in result.get("log_tail", []))
            raise EnvironmentBuildError(
                f"Environment {env.label} failed to build on {self.where()}: {result['error']} Fix its package list "
                f"and submit again. Last lines of {args['folder']}/build.log:\n{lines}"
            )
        if result["built"]:
            launch.report(f"environment {env.label}: built on {self.where()} in {result['seconds']:.1f} s")
        launch.state.environment = {
            "name": env.name,
            "hash": env.hash,
            "python": result["python"],
            "built": result["built"],
            "build_s": round(result["seconds"], 3),
            "where": self.where(),
        }
        return str(result["python"])

    def start(self, launch: Launch[SSHState, SSHPlan]) -> None:
        record, plan, state, secret_env = launch.record, launch.plan, launch.state, launch.secret_env
        run_dir = str(state.remote_run_dir)
        request: dict[str, Any] = {
            "run_dir": run_dir,
            "runner_json": launch.config.to_text(),
            "names": {"journal_dir": rf.JOURNAL, "config": rf.RUNNER_CONFIG, "log": rf.RUNNER_LOG},
            "secret_env": secret_env,
        }
        if self.docker:
            name = f"launchbay-{record.run_id}"
            argv = [
                "docker",
                "run",
                "-d",
                "--init",
                "--name",
                name,
                "--network",
                str(self._setting("network", "host")),
                "-v",
                f"{plan.work}:{plan.work}",
                "-w",
                run_dir,
                "-e",
                f"HOME={run_dir}",
            ]
            if plan.uid:
                argv += ["--user", plan.uid]
            if _truthy(self._setting("gpus", False)):
                argv += ["--gpus", "all"]
            for key in sorted(secret_env):
                argv += ["-e", key]  # the value comes from docker's own environment, not its argv
            argv += [str(self._setting("image") or plan.image), "python3", plan.runner, run_dir]
            request.update(argv=argv, wait=True)
        else:
            request.update(argv=[plan.python, plan.runner, run_dir], wait=False)
        try:
            answer: dict[str, Any] = self.remote.do(lambda c: c.call(sshscripts.START, request)[0])
        except SSHConnectionLost:
            raise
        except TargetError as exc:
            raise TargetError(f"The runner did not start on {self.where()}: {exc}") from None
        if self.docker:
            state.remote_container, state.container_id = f"launchbay-{record.run_id}", answer.get("container")
        else:
            state.remote_pid = state.remote_pgid = answer["pid"]
        _alive[record.run_id] = time.time()

    # -- bring the run back -------------------------------------------------------------------------------------
    def mirror(self, record: RunRecord) -> None:
        """Bring the remote run folder's new bytes into the local one (see mirror.py)."""
        run_dir = record.target_state.get("remote_run_dir")
        if run_dir:
            mirror(SSHFolder(self.remote.do, run_dir), record.run_dir)

    def alive(self, record: RunRecord) -> bool | None:
        state = record.target_state
        seen = _alive.get(record.run_id, 0.0)
        if time.time() - seen < ALIVE_CACHE_S:
            return True
        try:
            if state.get("remote_container"):
                name = shlex.quote(state["remote_container"])
                _, out, _ = self.remote.do(
                    lambda c: c.run(f"docker inspect -f '{{{{.State.Running}}}}' {name}", check=False, timeout=30)
                )
                alive = out.strip() == "true"
            elif state.get("remote_pid"):
                args = {"pid": int(state["remote_pid"]), "marker": state.get("remote_run_dir", "")}
                alive = bool(self.remote.do(lambda c: c.call(sshscripts.ALIVE, args, timeout=30)[0]))
            else:
                return None
        except TargetError:
            return None  # unreachable: the heartbeat decides
        if alive:
            _alive[record.run_id] = time.time()
        return alive

    def cancel(self, record: RunRecord) -> None:
        """Cancel file plus SIGTERM to the runner's process group; the runner stops the run's tree."""
        state = record.target_state
        run_dir = state.get("remote_run_dir")
        if not run_dir:
            return
        command = f"touch {shlex.quote(posixpath.join(run_dir, rf.CANCEL))}"
        if state.get("remote_container"):
            command += f"; docker kill -s TERM {shlex.quote(state['remote_container'])} >/dev/null 2>&1"
        elif state.get("remote_pgid"):
            command += f"; kill -TERM -- -{int(state['remote_pgid'])} 2>/dev/null"
        self.remote.do(lambda c: c.run(command + "; true"))
        _alive.pop(record.run_id, None)

    def force_stop(self, record: RunRecord) -> None:
        """SIGKILL whatever is left of the run on the host (its runner is gone)."""
        state = record.target_state
        if state.get("remote_container"):
            command = f"docker rm -f {shlex.quote(state['remote_container'])} >/dev/null 2>&1"
        else:
            groups = [int(g) for g in (state.get("child_pgid"), state.get("remote_pgid")) if g]
            if not groups:
                return
            command = "kill -KILL " + " ".join(f"-- -{g}" if i == 0 else f"-{g}" for i, g in enumerate(groups))
            command += " 2>/dev/null"
        try:
            self.remote.do(lambda c: c.run(command + "; true", timeout=30))
        except TargetError:
            pass  # unreachable: nothing more can be done from here

    def check(self) -> dict[str, Any]:
        try:
            info = self.probe(gpus=True, docker=self.docker)
        except TargetError as exc:
            return {"reachable": False, "host": self.where(), "error": str(exc)}
        result: dict[str, Any] = {
            "reachable": True,
            "host": self.where(),
            "python": info["executable"],
            "version": info["version"],
            "workdir": info["workdir"],
        }
        gpus = info.get("gpus")
        result["gpus"] = gpus if gpus else "none (no nvidia-smi)" if gpus is None else "none"
        if self.docker:
            result["docker"] = info.get("docker")
        return result

    def describe(self, record: RunRecord) -> dict[str, Any]:
        state = record.target_state
        return {k: state[k] for k in ("remote_host", "remote_run_dir", "remote_python", "upload") if k in state}
