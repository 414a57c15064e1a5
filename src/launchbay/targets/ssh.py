"""The SSH target: runs on a machine you can ``ssh`` to (the GPU box under the desk, a cloud VM).

Remote layout under ``workdir`` (default ``~/.launchbay-remote``)::

    blobs/ab/cdef...        content-addressed cache: a file is sent once, ever
    runtime/<hash>/         the shipped runner and in-run API, one copy per version
    envs/<hash>/venv        an environment (``env = "NAME"``), built on the host once
    runs/<run_id>/          runner.json, journal/, files/ (as in the local store)

A submit is three requests to the connection's remote helper (sshconn's agent): a
probe (interpreter, workdir, which blobs are missing), the upload of the missing
blobs, and the start of the runner in a session of its own (``setsid``; or
``docker run -d`` with ``docker = true``), so the run outlives the connection.
``sync`` brings the remote run folder's new bytes back (``mirror.SSHFolder``), so
any process can re-attach and catch up without losing a line.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import posixpath
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import runfolder as rf
from ..errors import EnvironmentBuildError, TargetError
from ..models import RunSpec
from ..store import RunRecord
from .base import Target
from .mirror import SSHFolder, mirror
from .runtime import runtime_files
from .sshconn import RemotePythonError, SSHConnection, SSHConnectionLost

if TYPE_CHECKING:
    from ..environments.spec import EnvironmentSpec
    from ..snapshot import Snapshot

T = TypeVar("T")
DEFAULT_WORKDIR = "~/.launchbay-remote"
ALIVE_CACHE_S = 3.0

# Run by the connection's remote agent (sshconn): ``args`` in, ``result`` out.
_PROBE = r"""
import os, shutil, subprocess, sys
work = os.path.abspath(os.path.expanduser(args["workdir"]))
info = {"workdir": work, "uid": "%d:%d" % (os.getuid(), os.getgid()), "executable": sys.executable,
        "version": "%d.%d.%d" % sys.version_info[:3]}
try:
    os.makedirs(os.path.join(work, "runs"), exist_ok=True)
except OSError as exc:
    info["workdir_error"] = str(exc)
blobs = os.path.join(work, "blobs")
info["missing"] = [d for d in args["digests"] if not os.path.isfile(os.path.join(blobs, d[:2], d[2:]))]
info["uv"] = shutil.which("uv")
info["runtime_missing"] = [r for r in args["runtime"] if not os.path.isfile(os.path.join(work, r))]
if args["gpus"]:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        info["gpus"] = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    except (OSError, subprocess.SubprocessError):
        info["gpus"] = None
if args["docker"]:
    try:
        out = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                             capture_output=True, text=True, timeout=30)
        info["docker"] = out.stdout.strip() if out.returncode == 0 else "error: " + out.stderr.strip()[-300:]
    except (OSError, subprocess.SubprocessError) as exc:
        info["docker"] = "error: %s" % exc
result = info
"""

# Reap runners this agent started that have ended (no zombies while the connection lives).
_REAP = r"""
import os
while True:
    try:
        pid, _status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        break
"""

# Writes runner.json and starts the runner in a session of its own (setsid: no SIGHUP when
# the connection goes), stdio away from the channel; secrets come in ``args``, never on disk.
_START = (
    _REAP
    + r"""
import subprocess
run_dir, names = args["run_dir"], args["names"]
journal, config = os.path.join(run_dir, names["journal_dir"]), os.path.join(run_dir, names["config"])
os.makedirs(journal, exist_ok=True)
with open(config + ".tmp", "w") as fh:
    fh.write(args["runner_json"])
os.replace(config + ".tmp", config)
env = dict(os.environ)
env.update(args["secret_env"])
with open(os.path.join(journal, names["log"]), "ab") as log:
    if args["wait"]:
        done = subprocess.run(args["argv"], stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=run_dir)
        log.write(done.stdout + done.stderr)
        if done.returncode:
            raise RuntimeError("%s failed: %s" % (args["argv"][0], done.stderr.decode(errors="replace")[-600:]))
        result = {"container": done.stdout.decode().strip()}
    else:
        proc = subprocess.Popen(args["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                cwd=run_dir, start_new_session=True, close_fds=True)
        result = {"pid": proc.pid}
"""
)

# Is the runner ``pid`` alive, and is it still the process that runs ``marker`` (the run dir)?
_ALIVE = (
    _REAP
    + r"""
try:
    with open("/proc/%d/cmdline" % args["pid"], "rb") as fh:
        result = args["marker"].encode() in fh.read()
except FileNotFoundError:
    result = False
except OSError:
    import subprocess
    out = subprocess.run(["ps", "-p", str(args["pid"]), "-o", "args="], capture_output=True, text=True)
    result = args["marker"] in out.stdout
"""
)

# Builds ``folder/venv`` from ``requirements`` once (uv when the host has it, else venv + pip);
# a ``ready`` marker is written last, and an flock keeps two submits from building at once.
_BUILD_ENV = r"""
import fcntl, os, re, shutil, subprocess, sys, time
folder = args["folder"]
os.makedirs(folder, exist_ok=True)
venv = os.path.join(folder, "venv")
python = os.path.join(venv, "bin", "python")
ready = os.path.join(folder, "ready")
with open(os.path.join(folder, ".lock"), "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if os.path.isfile(ready):
        result = {"python": python, "built": False, "seconds": 0.0}
    else:
        started = time.time()
        wanted = args["python"] or sys.executable
        if re.match(r"^[0-9]+([.][0-9]+)*$", wanted):
            wanted = "python" + wanted
        base = wanted if "/" in wanted else shutil.which(wanted)
        requirements = os.path.join(folder, "requirements.txt")
        with open(requirements, "w") as fh:
            fh.write(args["requirements"])
        with open(os.path.join(folder, "spec.json"), "w") as fh:
            fh.write(args["spec"])
        uv = shutil.which("uv") if args["uv"] else None
        if uv:
            steps = [[uv, "venv", "--python", str(base), venv]]
            if args["requirements"]:
                steps.append([uv, "pip", "install", "--python", python, "-r", requirements])
        elif args["requirements"] and subprocess.call([str(base), "-m", "pip", "--python", sys.executable, "--version"],
                                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
            # the base interpreter's pip installs into a venv made without one (skips ensurepip: seconds)
            steps = [[str(base), "-m", "venv", "--without-pip", venv],
                     [str(base), "-m", "pip", "--python", python, "install", "--disable-pip-version-check",
                      "-r", requirements]]
        else:
            steps = [[str(base), "-m", "venv", venv]]
            if args["requirements"]:
                steps.append([python, "-m", "pip", "install", "--disable-pip-version-check", "-r", requirements])
        error = None if base else "no interpreter %r on the host." % wanted
        with open(os.path.join(folder, "build.log"), "w") as log:
            for step in steps if base else []:
                log.write("$ " + " ".join(step) + "\n")
                log.flush()
                code = subprocess.call(step, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
                if code:
                    error = "%s exited with code %d." % (os.path.basename(step[0]), code)
                    break
        if error:
            shutil.rmtree(venv, ignore_errors=True)
            with open(os.path.join(folder, "build.log"), errors="replace") as fh:
                result = {"error": error, "log_tail": fh.read().splitlines()[-15:]}
        else:
            with open(ready, "w") as fh:
                fh.write(repr(time.time()))
            result = {"python": python, "built": True, "seconds": time.time() - started}
"""

# -- one connection per target in this process ---------------------------------------------------
_lock = threading.Lock()
_connections: dict[tuple[Any, ...], SSHConnection] = {}
_alive: dict[str, float] = {}  # run id -> when its runner was last seen alive
_cache_pid = os.getpid()


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _runtime() -> tuple[str, dict[str, bytes]]:
    files = runtime_files()
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel] + b"\0")
    return digest.hexdigest()[:16], files


class SSHTarget(Target):
    type_name = "ssh"

    # -- settings -----------------------------------------------------------------------------------
    def _setting(self, key: str, default: Any = None) -> Any:
        value = self.settings.get(key)
        return default if value is None or value == "" else value

    @property
    def host(self) -> str:
        host = self._setting("host")
        if not host:
            raise TargetError(f'[targets.{self.name}] has no host: set host = "name-or-address" in launchbay.toml.')
        return str(host)

    @property
    def python(self) -> str:
        return str(self._setting("python", "python3"))

    @property
    def key(self) -> tuple[Any, ...]:
        return (
            self.host,
            int(self._setting("port", 22)),
            self._setting("user"),
            self._setting("identity_file"),
            self._setting("known_hosts"),
            self.python,
        )

    @property
    def docker(self) -> bool:
        return _truthy(self._setting("docker", False))

    def where(self) -> str:
        host, port, user = self.key[:3]
        return f"{user + '@' if user else ''}{host}:{port}"

    # -- connection -----------------------------------------------------------------------------------
    def connection(self, fresh: bool = False) -> SSHConnection:
        """The cached connection for this target (a new one when it was closed or dropped)."""
        global _cache_pid
        key = self.key
        with _lock:
            if _cache_pid != os.getpid():  # a forked child must not touch its parent's connections
                _connections.clear()
                _cache_pid = os.getpid()
            conn = _connections.get(key)
            if conn is not None and (fresh or conn.closed):
                conn.close()
                conn = None
            if conn is None:
                host, port, user, identity, known, _python = key
                conn = SSHConnection(
                    host,
                    port,
                    user,
                    identity,
                    known,
                    python=self.python,
                    connect_timeout=float(self._setting("connect_timeout", 10)),
                )
                if not _connections:
                    atexit.register(close_connections)  # a clean goodbye instead of a dropped connection
                _connections[key] = conn
            return conn

    def _call(self, action: Callable[[SSHConnection], T]) -> T:
        """Run ``action`` on the cached connection; reconnect once if it dropped."""
        try:
            return action(self.connection())
        except SSHConnectionLost:
            return action(self.connection(fresh=True))

    # -- probe -------------------------------------------------------------------------------------------
    def probe(
        self, digests: Sequence[str] = (), runtime: Sequence[str] = (), gpus: bool = False, docker: bool = False
    ) -> dict[str, Any]:
        """Ask the host for its python, workdir and missing blobs; raise a clear error when unusable."""
        args = {
            "workdir": str(self._setting("workdir", DEFAULT_WORKDIR)),
            "digests": list(digests),
            "runtime": list(runtime),
            "gpus": gpus,
            "docker": docker,
        }
        try:
            info: dict[str, Any] = self._call(lambda c: c.call(_PROBE, args)[0])
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
        self._check_settings(spec)
        self._check_docker(self.probe(docker=self.docker))

    def runner_config(self, record: RunRecord, spec: RunSpec, snapshot: Snapshot | None) -> dict[str, Any]:
        self._check_settings(spec)
        return super().runner_config(record, spec, snapshot)

    def environment(self, spec: RunSpec) -> EnvironmentSpec | None:
        """The run's environment: ``--env`` / ``environment=``, else the target's ``env`` setting."""
        from ..environments.spec import resolve_environment

        ref = spec.environment or self._setting("env") or self._setting("environment")
        source = self.config.root
        return resolve_environment(ref, self.config, Path(source) if source else None)

    def _check_settings(self, spec: RunSpec) -> None:
        env = self.environment(spec)
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

    def snapshot_location(self, record: RunRecord, snapshot: Snapshot | None) -> dict[str, Any]:
        return {}  # filled in by prepare(), once the remote workdir is known

    def prepare(self, record: RunRecord, spec: RunSpec, runner_config: dict[str, Any]) -> None:
        """Probe the host and send the blobs it lacks (the runtime too, once per version)."""
        blobs: dict[str, Path] = {}
        snapshot_id = record.snapshot_id
        if snapshot_id:
            manifest = self.store.snapshot_manifest(snapshot_id)
            blobs = {entry["sha256"]: self.store.blobs.path(entry["sha256"]) for entry in manifest["files"]}
            blobs[snapshot_id] = self.store.blobs.path(snapshot_id)
        runtime_hash, runtime = _runtime()
        runtime_rel = {f"runtime/{runtime_hash}/{rel}": data for rel, data in runtime.items()}
        info = self.probe(sorted(blobs), sorted(runtime_rel), docker=self.docker)
        self._check_docker(info)
        work = info["workdir"]
        missing = info["missing"]
        started = time.time()
        sent = self._call(
            lambda c: c.upload_files(f"{work}/blobs", {f"{d[:2]}/{d[2:]}": blobs[d] for d in missing}, blobs=True)
        )
        runtime_sent = 0
        if info["runtime_missing"]:
            need = {rel: runtime_rel[rel] for rel in info["runtime_missing"]}
            runtime_sent = self._call(lambda c: c.upload_files(work, need))  # type: ignore[arg-type]
        run_dir = f"{work}/runs/{record.run_id}"
        runner_config["snapshot"] = {}
        if snapshot_id:
            runner_config["snapshot"] = {
                "manifest": f"{work}/blobs/{snapshot_id[:2]}/{snapshot_id[2:]}",
                "blobs": f"{work}/blobs",
            }
        runner_config["pythonpath"] = [f"{work}/runtime/{runtime_hash}"]
        runner_config["python"] = "python3" if self.docker else info["executable"]
        env = self.environment(spec)
        if env is not None:
            runner_config["env"] = {**env.env_vars, **runner_config.get("env", {})}
            if not self.docker:
                runner_config["python"] = self._materialise(record, env, work, info)
        upload = {
            "blobs": len(blobs),
            "blobs_sent": len(missing),
            "bytes_sent": sent,
            "runtime_bytes_sent": runtime_sent,
            "seconds": round(time.time() - started, 3),
        }
        self._plan = {
            "run_dir": run_dir,
            "work": work,
            "runner": f"{work}/runtime/{runtime_hash}/launchbay_runner.py",
            "python": info["executable"],
            "uid": info.get("uid"),
            "image": env.image if env is not None else None,
        }
        self.store.merge_target_state(
            record.pk,
            remote_host=self.where(),
            remote_run_dir=run_dir,
            upload=upload,
            remote_python=f"{info['executable']} ({info['version']})",
        )

    def _materialise(self, record: RunRecord, env: EnvironmentSpec, work: str, info: dict[str, Any]) -> str:
        """The environment's interpreter on the host: a venv under ``<workdir>/envs/<hash>``, built once."""
        if env.user_managed:
            python = env.python or info["executable"]
            state = {"name": env.name, "hash": env.hash, "python": python, "built": False, "user_managed": True}
            self.store.merge_target_state(record.pk, environment=state)
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
        if self.progress:
            self.progress(f"environment {env.label}: checking on {self.where()}")
        result: dict[str, Any] = self._call(lambda c: c.call(_BUILD_ENV, args, timeout=None)[0])
        if result.get("error"):
            lines = "\n".join(f"  {ln}" for ln in result.get("log_tail", []))
            raise EnvironmentBuildError(
                f"Environment {env.label} failed to build on {self.where()}: {result['error']} Fix its package list "
                f"and submit again. Last lines of {args['folder']}/build.log:\n{lines}"
            )
        if self.progress and result["built"]:
            self.progress(f"environment {env.label}: built on {self.where()} in {result['seconds']:.1f} s")
        state = {
            "name": env.name,
            "hash": env.hash,
            "python": result["python"],
            "built": result["built"],
            "build_s": round(result["seconds"], 3),
            "where": self.where(),
        }
        self.store.merge_target_state(record.pk, environment=state)
        return str(result["python"])

    def start(self, record: RunRecord, runner_config: dict[str, Any], secret_env: dict[str, str]) -> None:
        plan = self._plan
        run_dir = plan["run_dir"]
        request: dict[str, Any] = {
            "run_dir": run_dir,
            "runner_json": json.dumps(runner_config, indent=1),
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
                f"{plan['work']}:{plan['work']}",
                "-w",
                run_dir,
                "-e",
                f"HOME={run_dir}",
            ]
            if plan.get("uid"):
                argv += ["--user", plan["uid"]]
            if _truthy(self._setting("gpus", False)):
                argv += ["--gpus", "all"]
            for key in sorted(secret_env):
                argv += ["-e", key]  # the value comes from docker's own environment, not its argv
            argv += [str(self._setting("image") or plan["image"]), "python3", plan["runner"], run_dir]
            request.update(argv=argv, wait=True)
        else:
            request["argv"] = [plan["python"], plan["runner"], run_dir]

        record.run_dir.mkdir(parents=True, exist_ok=True)
        self.write_runner_config(record.run_dir, runner_config)  # a local copy, for `launchbay show` and debugging

        request.setdefault("wait", False)
        try:
            answer: dict[str, Any] = self._call(lambda c: c.call(_START, request)[0])
        except SSHConnectionLost:
            raise
        except TargetError as exc:
            raise TargetError(f"The runner did not start on {self.where()}: {exc}") from None
        if self.docker:
            self.store.merge_target_state(
                record.pk, remote_container=f"launchbay-{record.run_id}", container_id=answer.get("container")
            )
        else:
            self.store.merge_target_state(record.pk, remote_pid=answer["pid"], remote_pgid=answer["pid"])
        _alive[record.run_id] = time.time()

    # -- bring the run back -------------------------------------------------------------------------------------
    def sync(self, record: RunRecord) -> None:
        """Bring the remote run folder's new bytes into the local one (see mirror.py)."""
        run_dir = record.target_state.get("remote_run_dir")
        if run_dir:
            mirror(SSHFolder(self._call, run_dir), record.run_dir)

    def runner_alive(self, record: RunRecord) -> bool | None:
        state = record.target_state
        seen = _alive.get(record.run_id, 0.0)
        if time.time() - seen < ALIVE_CACHE_S:
            return True
        try:
            if state.get("remote_container"):
                name = shlex.quote(state["remote_container"])
                _, out, _ = self._call(
                    lambda c: c.run(f"docker inspect -f '{{{{.State.Running}}}}' {name}", check=False, timeout=30)
                )
                alive = out.strip() == "true"
            elif state.get("remote_pid"):
                args = {"pid": int(state["remote_pid"]), "marker": state.get("remote_run_dir", "")}
                alive = bool(self._call(lambda c: c.call(_ALIVE, args, timeout=30)[0]))
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
        self._call(lambda c: c.run(command + "; true"))
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
            self._call(lambda c: c.run(command + "; true", timeout=30))
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


def close_connections() -> None:
    """Close every cached connection (runs keep going on their hosts)."""
    with _lock:
        for conn in _connections.values():
            conn.close()
        _connections.clear()
