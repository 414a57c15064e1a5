"""The Docker target: the runner inside a container, from an image or an environment's image.

The container needs only the image's Python: the runner and the in-run API are
shipped into the run folder (``runtime/``). On a local daemon the run folder and
the blob folder are bind-mounted (``/launchbay/run``, ``/launchbay/blobs``), so
the journal and logs appear in the store as they are written. On a remote daemon
(``ssh://``, ``tcp://``) they are copied in before the start and copied back by
``sync``. The container runs with ``init=True`` (signals reach the runner), as
the submitting user, with no network unless asked, and is removed once its run
has ended and its files are kept.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import runfolder as rf
from ..errors import ConfigError, LaunchbayError, TargetError
from ..models import RunSpec
from ..runfolder import has_final_event
from ..store import RunRecord
from .base import Target
from .mirror import DockerArchive, mirror
from .runtime import RUNTIME_DIR, write_runtime

if TYPE_CHECKING:
    from ..snapshot import Snapshot

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
RUN_MOUNT = "/launchbay/run"
BLOB_MOUNT = "/launchbay/blobs"
LABEL_RUN = "launchbay.run_id"
LABEL_STORE = "launchbay.store"
LIVE_STATES = ("created", "running", "restarting", "paused")
PULL_EVERY_S = 1.0  # copy mode: at most one journal pull per run per second
DISTRIBUTED_SHM_SIZE = "2g"  # a distributed run's /dev/shm unless shm_size is set

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
_last_pull: dict[str, float] = {}


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError", "timed out"):
        if marker in text:
            return {
                "FileNotFoundError": "the socket does not exist",
                "ConnectionRefusedError": "connection refused",
                "PermissionError": "permission denied on the socket",
                "timed out": "timed out",
            }[marker]
    return text[:200]


def docker_client(host: str, target_name: str = "NAME", ping: bool = False) -> Any:
    """A client for ``host`` (cached per host for the process); ``ping`` checks the daemon answers now."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:
        raise TargetError("The Docker target needs the docker package: pip install 'launchbay[docker]'.") from exc
    if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
        raise TargetError(_no_daemon(host, "the socket does not exist", target_name))
    with _clients_lock:
        cached = _clients.get(host)
    if cached is not None:
        if not ping:
            return cached
        try:
            cached.ping()
            return cached
        except (DockerException, OSError) as exc:
            with _clients_lock:
                _clients.pop(host, None)
            raise TargetError(_no_daemon(host, _short_reason(exc), target_name)) from exc
    try:
        kwargs: dict[str, Any] = {"base_url": host, "timeout": 120}
        if host.startswith("ssh://"):
            try:
                import paramiko  # noqa: F401
            except ImportError:
                kwargs["use_ssh_client"] = True  # the ssh binary instead of paramiko
        client = docker.DockerClient(**kwargs)
        client.ping()
    except (DockerException, OSError) as exc:
        raise TargetError(_no_daemon(host, _short_reason(exc), target_name)) from exc
    with _clients_lock:
        _clients[host] = client
    return client


def _no_daemon(host: str, reason: str, target_name: str) -> str:
    if host.startswith("unix://"):
        return (
            f"No Docker daemon at {host}: {reason}. Start one with `dockerd` (or `sudo systemctl start docker`) "
            f"or set docker_host in [targets.{target_name}]."
        )
    return (
        f"No Docker daemon reachable at {host}: {reason}. Check that the daemon runs there and this machine can "
        f"reach it, or fix docker_host in [targets.{target_name}]."
    )


def device_requests(gpus: Any) -> list[Any]:
    """``gpus = "all"``, a count, or device ids ("0,1") as Docker device requests (like ``--gpus``)."""
    from docker.types import DeviceRequest

    if gpus in (None, "", 0, "0", False):
        return []
    if gpus is True or str(gpus).lower() == "all":
        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    text = str(gpus)
    if text.isdigit():
        return [DeviceRequest(count=int(text), capabilities=[["gpu"]])]
    ids = [part.strip() for part in text.replace("device=", "").split(",") if part.strip()]
    return [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]


def parse_mounts(mounts: Any) -> dict[str, dict[str, str]]:
    """Extra mounts: ``["/data:/data:ro", ...]`` or ``[{source=, target=, mode=}]``."""
    out: dict[str, dict[str, str]] = {}
    if isinstance(mounts, str):
        mounts = [m for m in mounts.split(";") if m.strip()]
    for item in mounts or []:
        if isinstance(item, dict):
            source, dest, mode = item.get("source"), item.get("target"), item.get("mode", "rw")
        else:
            parts = str(item).split(":")
            if len(parts) not in (2, 3):
                raise ConfigError(f"Mount {item!r} should look like '/host/path:/container/path[:ro]'.")
            source, dest, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else "rw"
        if not source or not dest:
            raise ConfigError(f"Mount {item!r} needs both a source and a target path.")
        out[str(Path(str(source)).expanduser().resolve())] = {"bind": str(dest), "mode": str(mode)}
    return out


class DockerTarget(Target):
    type_name = "docker"
    _image = ""  # set by prepare: the image the run's container starts from

    # -- settings ---------------------------------------------------------------------------
    def docker_host(self, record: RunRecord | None = None) -> str:
        if record is not None and record.target_state.get("docker_host"):
            return str(record.target_state["docker_host"])
        return str(self.settings.get("docker_host") or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET)

    def transfer(self, record: RunRecord | None = None) -> str:
        """``mount`` (bind mounts; local daemons) or ``copy`` (put/get archive; remote daemons)."""
        if record is not None and record.target_state.get("transfer"):
            return str(record.target_state["transfer"])
        mode = str(self.settings.get("transfer") or "auto")
        if mode not in ("auto", "mount", "copy"):
            raise ConfigError(f'[targets.{self.name}] transfer = {mode!r}; use "auto", "mount" or "copy".')
        if mode == "auto":
            return "mount" if self.docker_host().startswith("unix://") else "copy"
        return mode

    def client(self, record: RunRecord | None = None, ping: bool = False) -> Any:
        return docker_client(self.docker_host(record), self.name, ping=ping)

    def user(self) -> str:
        return str(self.settings.get("user") or f"{os.getuid()}:{os.getgid()}")

    # -- launch -------------------------------------------------------------------------------
    def snapshot_location(self, record: RunRecord, snapshot: Snapshot | None) -> dict[str, Any]:
        if snapshot is None:
            return {}
        return {"manifest": f"{BLOB_MOUNT}/{snapshot.id[:2]}/{snapshot.id[2:]}", "blobs": BLOB_MOUNT}

    def prepare(self, record: RunRecord, spec: RunSpec, runner_config: dict[str, Any]) -> None:
        from ..environments.cache import copy_build_log
        from ..environments.image import ENV_PYTHON, ensure_image, image_python, require_image
        from ..environments.spec import resolve_environment

        client = self.client(ping=True)
        where = self.docker_host()
        image = self.settings.get("image")
        python = str(self.settings.get("python") or "python3")
        state: dict[str, Any] = {}
        ref = spec.environment or self.settings.get("environment")
        source = record.properties.get("launchbay.source_dir")
        env = resolve_environment(ref, self.config, Path(source) if source else None)
        if env is not None:
            env = env.with_image(env.image or (str(image) if image else None))
            runner_config["env"] = {**env.env_vars, **runner_config.get("env", {})}
            if env.needs_build:
                progress = getattr(self, "progress", None)
                built = ensure_image(client, env, self.store.root, where, progress)
                image, python = built.tag, ENV_PYTHON
                copy_build_log(built.log, record.run_dir)
                state["environment"] = built.state()
            else:
                image = env.image
                python = image_python(env) if env.python else python
                state["environment"] = {
                    "name": env.name,
                    "hash": env.hash,
                    "image": image,
                    "built": False,
                    "user_managed": True,
                }
        if not image:
            raise ConfigError(
                f'[targets.{self.name}] needs image = "..." (an image on the daemon) or environment = "NAME" '
                "(an environment with a base image) to know what to run."
            )
        if env is None or not env.needs_build:
            require_image(client, str(image), where)
        write_runtime(record.run_dir)
        runner_config["pythonpath"] = [RUNTIME_DIR, *runner_config.get("pythonpath", [])]
        runner_config["python"] = python
        self._image = str(image)
        self.store.merge_target_state(
            record.pk, image=self._image, docker_host=where, transfer=self.transfer(), **state
        )

    def container_options(
        self, record: RunRecord, runner_config: dict[str, Any], secret_env: dict[str, str]
    ) -> dict[str, Any]:
        """Everything ``containers.run`` gets (kept apart so a test can read what is sent)."""
        network = str(self.settings.get("network") or "none")
        runner_python = str(self.settings.get("python") or "python3")
        options: dict[str, Any] = {
            "image": self._image,
            "command": [runner_python, f"{RUN_MOUNT}/{RUNTIME_DIR}/launchbay_runner.py", RUN_MOUNT],
            "name": f"launchbay-{record.run_id}",
            "detach": True,
            "init": True,
            "auto_remove": False,
            "network_mode": network,
            "user": self.user(),
            "working_dir": RUN_MOUNT,
            "environment": dict(secret_env),
            "labels": {LABEL_RUN: record.run_id, LABEL_STORE: str(self.store.root)},
        }
        if self.transfer() == "mount":
            volumes = {
                str(record.run_dir.resolve()): {"bind": RUN_MOUNT, "mode": "rw"},
                str(self.store.blobs.root.resolve()): {"bind": BLOB_MOUNT, "mode": "ro"},
            }
            volumes.update(parse_mounts(self.settings.get("mounts")))
            options["volumes"] = volumes
        elif self.settings.get("mounts"):
            options["volumes"] = parse_mounts(self.settings.get("mounts"))
        requests = device_requests(self.settings.get("gpus"))
        if requests:
            options["device_requests"] = requests
        if self.settings.get("shm_size"):
            options["shm_size"] = self.settings["shm_size"]
        elif runner_config.get("distributed"):  # ranks share tensors through /dev/shm; Docker gives 64 MB
            options["shm_size"] = DISTRIBUTED_SHM_SIZE
        return options

    def start(self, record: RunRecord, runner_config: dict[str, Any], secret_env: dict[str, str]) -> None:
        from docker.errors import DockerException

        (record.run_dir / rf.JOURNAL).mkdir(parents=True, exist_ok=True)
        self.write_runner_config(record.run_dir, runner_config)
        options = self.container_options(record, runner_config, secret_env)
        client = self.client()
        try:
            if self.transfer() == "mount":
                container = client.containers.run(**options)
            else:
                options.pop("detach")
                container = client.containers.create(**options)
                container.put_archive("/", self._inputs_tar(record, runner_config))
                container.start()
        except DockerException as exc:
            self._remove_quietly(client, options["name"])
            raise TargetError(
                f"Docker could not start the run's container from {self._image!r}: {_api_message(exc)}."
            ) from exc
        self.store.merge_target_state(record.pk, container_id=container.id, container_name=options["name"])
        self._reap(client)

    def _reap(self, client: Any) -> None:
        """Remove this store's exited containers whose runs have ended (in case nobody synced them)."""
        from docker.errors import DockerException

        try:
            exited = client.containers.list(
                all=True, filters={"label": f"{LABEL_STORE}={self.store.root}", "status": "exited"}
            )
            for container in exited:
                run_id = container.labels.get(LABEL_RUN, "")
                try:
                    record = self.store.get_run(run_id)
                except LaunchbayError:
                    container.remove(force=True)  # its run was deleted
                    continue
                if record.status.is_terminal() or has_final_event(record.run_dir):
                    self._finish(container, record)
        except DockerException:
            pass

    # -- copy mode (remote daemons) --------------------------------------------------------
    def _inputs_tar(self, record: RunRecord, runner_config: dict[str, Any]) -> bytes:
        """The run folder and the snapshot's blobs as one tar, owned by the container user."""
        uid, gid = (int(x) for x in self.user().split(":")[:2]) if ":" in self.user() else (os.getuid(), os.getgid())
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:

            def add_dir(name: str) -> None:
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, gid, time.time()
                tar.addfile(info)

            def add_file(name: str, path: Path) -> None:
                info = tar.gettarinfo(str(path), arcname=name)
                info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)

            for folder in ("launchbay", "launchbay/run", f"launchbay/run/{rf.JOURNAL}", "launchbay/blobs"):
                add_dir(folder)
            made = set()
            for path in sorted(record.run_dir.rglob("*")):
                rel = path.relative_to(record.run_dir).as_posix()
                if path.is_dir():
                    add_dir(f"launchbay/run/{rel}")
                elif path.is_file():
                    add_file(f"launchbay/run/{rel}", path)
            snapshot = (runner_config.get("snapshot") or {}).get("manifest")
            if snapshot and record.snapshot_id:
                digests = [record.snapshot_id]
                digests += [f["sha256"] for f in self.store.snapshot_manifest(record.snapshot_id)["files"]]
                for digest in dict.fromkeys(digests):
                    if digest[:2] not in made:
                        add_dir(f"launchbay/blobs/{digest[:2]}")
                        made.add(digest[:2])
                    add_file(f"launchbay/blobs/{digest[:2]}/{digest[2:]}", self.store.blobs.path(digest))
        return buf.getvalue()

    def _pull(self, container: Any, record: RunRecord, final: bool) -> None:
        """Bring the container's run folder up to date locally (every file once the run has ended)."""
        mirror(DockerArchive(container, RUN_MOUNT), record.run_dir, everything=final)

    # -- keep records true -------------------------------------------------------------------
    def _container(self, record: RunRecord) -> Any:
        """The run's container, or None once it is gone. Raises TargetError when the daemon is unreachable."""
        from docker.errors import DockerException, NotFound

        cid = record.target_state.get("container_id")
        if not cid:
            return None
        client = self.client(record)
        try:
            return client.containers.get(cid)
        except NotFound:
            return None
        except DockerException as exc:
            raise TargetError(f"Docker at {self.docker_host(record)} did not answer: {_api_message(exc)}.") from exc

    def sync(self, record: RunRecord) -> None:
        if not record.target_state.get("container_id"):
            return
        container = self._container(record)
        if container is None:
            if not has_final_event(record.run_dir):
                name = record.target_state.get("container_name") or record.target_state.get("container_id")
                rf.write_final_event(
                    record.run_dir,
                    "Failed",
                    f"Container {name} disappeared before the run finished "
                    "(removed from outside, e.g. `docker rm -f`, or the daemon lost it).",
                )
            return
        status = container.attrs.get("State", {}).get("Status")
        copy = self.transfer(record) == "copy"
        if copy and status in LIVE_STATES:
            now = time.time()
            if now - _last_pull.get(record.run_id, 0.0) >= PULL_EVERY_S:
                _last_pull[record.run_id] = now
                self._pull(container, record, final=False)
        if status in LIVE_STATES and has_final_event(record.run_dir):
            # the runner recorded the end and is exiting: once ingested nobody syncs this run again
            status = self._wait_exit(container)
        if status not in LIVE_STATES:
            self._finish(container, record)

    @staticmethod
    def _wait_exit(container: Any, timeout: float = 10.0) -> str:
        from docker.errors import DockerException

        try:
            container.wait(timeout=timeout)
        except Exception:  # a read timeout comes from requests, not docker
            pass
        try:
            container.reload()
        except DockerException:
            return "removed"
        return str(container.attrs.get("State", {}).get("Status"))

    def _finish(self, container: Any, record: RunRecord) -> None:
        """The container has exited: keep its files and output, record a failure if the runner could not, remove it."""
        from docker.errors import DockerException

        if self.transfer(record) == "copy":
            self._pull(container, record, final=True)
        try:
            output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        except DockerException:
            output = ""
        if output:
            (record.run_dir / rf.JOURNAL).mkdir(parents=True, exist_ok=True)
            (record.run_dir / rf.JOURNAL / rf.RUNNER_LOG).write_text(output)
        if not has_final_event(record.run_dir):
            state = container.attrs.get("State", {})
            code = state.get("ExitCode")
            if state.get("OOMKilled"):
                why = "was killed for running out of memory (OOM)"
            elif code == 137:
                why = "was killed (SIGKILL: `docker kill`, `docker rm -f` or the daemon stopping it)"
            elif code == 143:
                why = "was stopped with SIGTERM before the runner could record the end"
            else:
                why = f"exited with code {code}"
            name = record.target_state.get("container_name") or container.name
            tail = "\n".join(output.strip().splitlines()[-20:])
            rf.write_final_event(
                record.run_dir, "Failed", f"Container {name} ({container.id[:12]}) {why} before the run finished.", tail
            )
        try:
            container.remove(force=True)
        except DockerException:
            pass
        _last_pull.pop(record.run_id, None)

    def runner_alive(self, record: RunRecord) -> bool | None:
        if not record.target_state.get("container_id"):
            return None
        try:
            container = self._container(record)
        except TargetError:
            return None  # daemon unreachable for now: heartbeats decide
        if container is None:
            return False
        return container.attrs.get("State", {}).get("Status") in LIVE_STATES

    def cancel(self, record: RunRecord) -> None:
        from docker.errors import DockerException

        if self.transfer(record) == "mount":
            (record.run_dir / rf.CANCEL).touch()
        container = self._container(record)
        if container is None:
            return
        if self.transfer(record) == "copy":
            try:
                container.put_archive(RUN_MOUNT, _one_file_tar(rf.CANCEL, b""))
            except DockerException:
                pass
        try:
            container.kill(signal="SIGTERM")  # docker-init passes it to the runner, which stops the run
        except DockerException:
            pass

    def force_stop(self, record: RunRecord) -> None:
        from docker.errors import DockerException

        try:
            container = self._container(record)
        except TargetError:
            return
        if container is None:
            return
        try:
            container.kill()
        except DockerException:
            pass
        try:
            container.reload()
            self._finish(container, record)
        except DockerException:
            pass

    @staticmethod
    def _remove_quietly(client: Any, name: str) -> None:
        from docker.errors import DockerException

        try:
            client.containers.get(name).remove(force=True)
        except DockerException:
            pass

    def check(self) -> dict[str, Any]:
        host = self.docker_host()
        try:
            client = self.client()
            version = client.version()
            info: dict[str, Any] = {
                "reachable": True,
                "docker_host": host,
                "server": version.get("Version"),
                "transfer": self.transfer(),
            }
            image = self.settings.get("image")
            if image:
                from docker.errors import ImageNotFound

                try:
                    client.images.get(image)
                    info["image"] = f"{image} (present)"
                except ImageNotFound:
                    info["image"] = f"{image} (MISSING: docker pull/import it)"
            if self.settings.get("gpus"):
                runtimes = client.info().get("Runtimes") or {}
                info["gpus"] = self.settings["gpus"]
                info["nvidia_runtime"] = "nvidia" in runtimes
            return info
        except Exception as exc:  # `launchbay targets` must list an unreachable target, not crash
            return {"reachable": False, "docker_host": host, "error": str(exc)}

    def describe(self, record: RunRecord) -> dict[str, Any]:
        state = record.target_state
        return {k: state[k] for k in ("container_name", "image", "docker_host") if state.get(k)}


def _api_message(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip().rstrip(".")


def _one_file_tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), time.time()
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
