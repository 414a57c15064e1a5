"""The Docker target: the runner inside a container, from an image or an environment's image.

The container needs only the image's Python: the runner and the in-run API are
shipped into the run folder (``runtime/``). On a local daemon the run folder and
the blob folder are bind-mounted (``/launchbay/run``, ``/launchbay/blobs``), so
the journal and logs appear in the store as they are written. On a remote daemon
(``ssh://``, ``tcp://``) they are copied in before the start and copied back by
``mirror``. The container runs with ``init=True`` (signals reach the runner), as
the submitting user, with no network unless asked, and is removed once its run
has ended and its files are kept.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import runfolder as rf
from ..errors import ConfigError, LaunchbayError, TargetError
from ..runfolder import has_final_event
from ..store import RunRecord
from ..store.records import RunInput
from .base import Launch, Plan, RunnerConfig, Target, TargetState
from .dockerapi import DEFAULT_SOCKET, api_message, device_requests, docker_client, parse_mounts
from .fileset import blob_name, file_set
from .mirror import DockerArchive, mirror
from .runtime import RUNTIME_DIR, write_runtime

if TYPE_CHECKING:
    from ..environments.registries import ImageSettings
    from ..environments.spec import EnvironmentSpec
    from ..models import RunSpec
    from ..snapshot import Snapshot

RUN_MOUNT = "/launchbay/run"
BLOB_MOUNT = "/launchbay/blobs"
INPUT_MOUNT = "/launchbay/inputs"  # each data input, bind-mounted read-only at INPUT_MOUNT/NAME
LABEL_RUN = "launchbay.run_id"
LABEL_STORE = "launchbay.store"
LIVE_STATES = ("created", "running", "restarting", "paused")
PULL_EVERY_S = 1.0  # copy mode: at most one journal pull per run per second
DISTRIBUTED_SHM_SIZE = "2g"  # a distributed run's /dev/shm unless shm_size is set

_last_pull: dict[str, float] = {}


@dataclass
class DockerState(TargetState):
    """Recorded with a Docker run: where its container runs, and how its files travel."""

    image: str | None = None
    docker_host: str | None = None
    transfer: str | None = None  # "mount" or "copy"
    container_id: str | None = None
    container_name: str | None = None


class DockerTarget(Target[DockerState, Plan]):
    type_name = "docker"
    state_type = DockerState
    plan_type = Plan
    data_inputs = True

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

    # -- data inputs: bind-mounted read-only, never copied ------------------------------------------
    def deliver_inputs(self, launch: Launch[DockerState, Plan]) -> dict[str, tuple[str, int]]:
        """A local daemon bind-mounts each input where it is; a remote one gets a volume per version
        (dockerdata.py), filled once and mounted read-only."""
        if self.transfer() == "mount":
            return {i.name: (self._input_mount(i)[1], 0) for i in launch.inputs}
        from .dockerdata import fill_volume, path_inside

        client, image, user = self.client(), str(launch.state.image), self.user()
        return {
            i.name: (path_inside(self.store, i), fill_volume(client, self.store, i, image, user, launch.progress))
            for i in launch.inputs
        }

    def collect_data(self, keep: set[str], dry_run: bool = False) -> dict[str, Any] | None:
        if self.transfer() == "mount":
            return None  # inputs are read where they are
        from .dockerdata import collect_volumes

        client = self.client()
        for container in client.containers.list(filters={"label": f"{LABEL_STORE}={self.store.cache_dir}"}):
            try:  # a run that has recorded its end: its container is about to exit
                ended = has_final_event(self.store.get_run(container.labels.get(LABEL_RUN, "")).run_dir)
            except LaunchbayError:
                ended = True
            if ended:
                self._wait_exit(container)
        self._reap(client)  # the containers of ended runs go first: only live runs keep a volume in use
        return collect_volumes(client, self.store, self.docker_host(), keep, dry_run)

    @staticmethod
    def _input_mount(item: RunInput) -> tuple[str, str]:
        """(the file or folder on this machine, where the container sees it): a file keeps its name."""
        location = Path(str(item.location)).resolve()
        inside = f"{INPUT_MOUNT}/{item.name}"
        return str(location), inside if item.kind == "folder" else f"{inside}/{location.name}"

    # -- launch -------------------------------------------------------------------------------
    def snapshot_location(self, record: RunRecord, snapshot: Snapshot | None) -> dict[str, str]:
        if snapshot is None:
            return {}
        return {"manifest": f"{BLOB_MOUNT}/{blob_name(snapshot.id)}", "blobs": BLOB_MOUNT}

    def prepare(self, launch: Launch[DockerState, Plan]) -> None:
        """The image: the target's (pulled when the daemon lacks it), or the environment's (built once per
        hash, or pulled from ``[images] registry``); the runtime into the run folder."""
        from ..environments.cache import copy_build_log
        from ..environments.image import ensure_image, image_python
        from ..environments.pull import ensure_present

        client = self.client(ping=True)
        where = self.docker_host()
        settings = self.image_settings()
        image = self.settings.get("image")
        python = str(self.settings.get("python") or "python3")
        env, state = launch.environment, launch.state
        if env is not None:
            env = self.with_base(env)
            if env.needs_image_build:
                built = ensure_image(client, env, self.store.cache_dir, where, launch.progress, settings)
                image, python = built.tag, built.python
                copy_build_log(built.log, launch.record.run_dir)
                state.environment = built.state()
            else:
                image = env.image
                python = image_python(env) if env.python else python
                state.environment = {
                    "name": env.name,
                    "hash": env.hash,
                    "image": image,
                    "built": False,
                    "user_managed": True,
                }
        if not image:
            raise ConfigError(
                f'[targets.{self.name}] needs image = "..." (an image on the daemon or in a registry) or environment = '
                '"NAME" (an environment with a base image or a Dockerfile) to know what to run.'
            )
        if env is None or not env.needs_image_build:
            ensure_present(client, str(image), where, settings, launch.progress)
        write_runtime(launch.record.run_dir)
        launch.config.pythonpath = [RUNTIME_DIR, *launch.config.pythonpath]
        launch.config.python = python
        state.image, state.docker_host, state.transfer = str(image), where, self.transfer()

    def with_base(self, env: EnvironmentSpec) -> EnvironmentSpec:
        """The environment on this target: its own base image, else the target's (a Dockerfile names its own)."""
        if env.dockerfile:
            return env
        image = self.settings.get("image")
        return env.with_image(env.image or (str(image) if image else None))

    def image_settings(self) -> ImageSettings:
        """``[images]`` of launchbay.toml: the registry built images go to, and credentials."""
        from ..environments.registries import image_settings

        return image_settings(self.config)

    def needs_preparing(self, spec: RunSpec, record: RunRecord) -> bool:
        """A pull or a build ahead: the target's image or the environment's is not on the daemon yet."""
        from docker.errors import DockerException, ImageNotFound

        from ..environments.image import image_tag

        env = self.environment(spec, record)
        image = self.settings.get("image")
        if env is not None:
            env = self.with_base(env)
            image = image_tag(env) if env.needs_image_build else env.image
        if not image:
            return False  # prepare says what is missing, at once
        try:
            self.client().images.get(str(image))
            return False
        except ImageNotFound:
            return True
        except (DockerException, LaunchbayError):
            return False  # an unreachable daemon: prepare says so, at once

    def container_options(self, launch: Launch[DockerState, Plan]) -> dict[str, Any]:
        """Everything ``containers.run`` gets (kept apart so a test can read what is sent)."""
        record, state = launch.record, launch.state
        network = str(self.settings.get("network") or "none")
        runner_python = str(self.settings.get("python") or "python3")
        options: dict[str, Any] = {
            "image": state.image,
            "command": [runner_python, f"{RUN_MOUNT}/{RUNTIME_DIR}/{rf.RUNNER_ENTRY}", RUN_MOUNT],
            "name": f"launchbay-{record.run_id}",
            "detach": True,
            "init": True,
            "auto_remove": False,
            "network_mode": network,
            "user": self.user(),
            "working_dir": RUN_MOUNT,
            "environment": dict(launch.secret_env),
            "labels": {LABEL_RUN: record.run_id, LABEL_STORE: str(self.store.cache_dir)},
        }
        if self.transfer() == "mount":
            volumes = {
                str(record.run_dir.resolve()): {"bind": RUN_MOUNT, "mode": "rw"},
                str(self.blob_folder(record.snapshot_id).resolve()): {"bind": BLOB_MOUNT, "mode": "ro"},
            }
            for item in launch.inputs:  # read-only: a write fails with "Read-only file system"
                source, inside = self._input_mount(item)
                volumes[source] = {"bind": inside, "mode": "ro"}
            volumes.update(parse_mounts(self.settings.get("mounts")))
            options["volumes"] = volumes
        else:
            from .dockerdata import volume_mounts

            volumes = volume_mounts(launch.inputs)  # each input's volume, read-only
            volumes.update(parse_mounts(self.settings.get("mounts")))
            if volumes:
                options["volumes"] = volumes
        requests = device_requests(self.settings.get("gpus"))
        if requests:
            options["device_requests"] = requests
        if self.settings.get("shm_size"):
            options["shm_size"] = self.settings["shm_size"]
        elif launch.config.distributed:  # ranks share tensors through /dev/shm; Docker gives 64 MB
            options["shm_size"] = DISTRIBUTED_SHM_SIZE
        return options

    def start(self, launch: Launch[DockerState, Plan]) -> None:
        from docker.errors import DockerException

        record = launch.record
        options = self.container_options(launch)
        client = self.client()
        try:
            if self.transfer() == "mount":
                container = client.containers.run(**options)
            else:
                options.pop("detach")
                container = client.containers.create(**options)
                container.put_archive("/", self._inputs_tar(record, launch.config))
                container.start()
        except DockerException as exc:
            self._remove_quietly(client, options["name"])
            raise TargetError(
                f"Docker could not start the run's container from {options['image']!r}: {api_message(exc)}."
            ) from exc
        launch.state.container_id, launch.state.container_name = container.id, options["name"]
        self._reap(client)

    def _reap(self, client: Any) -> None:
        """Remove this store's exited containers whose runs have ended (in case nobody synced them)."""
        from docker.errors import DockerException

        try:
            exited = client.containers.list(
                all=True, filters={"label": f"{LABEL_STORE}={self.store.cache_dir}", "status": "exited"}
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
    def _inputs_tar(self, record: RunRecord, config: RunnerConfig) -> bytes:
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
            for path in sorted(record.run_dir.rglob("*")):
                rel = path.relative_to(record.run_dir).as_posix()
                if path.is_dir():
                    add_dir(f"launchbay/run/{rel}")
                elif path.is_file():
                    add_file(f"launchbay/run/{rel}", path)
            if config.snapshot.get("manifest") and record.snapshot_id:  # the runtime is in the run folder already
                made = set()
                for name, blob in file_set(self.store, record.snapshot_id).blob_files(self.store).items():
                    folder = name.rpartition("/")[0]
                    if folder not in made:
                        add_dir(f"launchbay/blobs/{folder}")
                        made.add(folder)
                    add_file(f"launchbay/blobs/{name}", blob)
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
            raise TargetError(f"Docker at {self.docker_host(record)} did not answer: {api_message(exc)}.") from exc

    def mirror(self, record: RunRecord) -> None:
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

    def alive(self, record: RunRecord) -> bool | None:
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
                    info["image"] = f"{image} (not on the daemon: pulled on the first run)"
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


def _one_file_tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), time.time()
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
