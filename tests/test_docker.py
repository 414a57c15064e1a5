"""The Docker target against a real dockerd (scripts/services/start.sh docker).

The base image has Debian's python3 and not launchbay: the runner and the in-run
API travel with the run. What every target does is in test_target_contract.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import launchbay
from conftest import BASE_IMAGE, CLI, docker_ready, need_service, remove_containers, wait_for, write
from launchbay.config import load_config
from launchbay.environments.image import image_tag
from launchbay.environments.spec import resolve_environment
from launchbay.models import RunSpec
from launchbay.session import Session
from launchbay.store import open_store

BASE = BASE_IMAGE


@pytest.fixture
def client(project: Path) -> Iterator[Any]:
    need_service(docker_ready(BASE), "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    import docker

    yield docker.from_env()
    remove_containers(str(open_store().root))  # a failed test must not leave its containers running


def containers_of(client: Any, run_id: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"launchbay.run_id={run_id}"}))


def config(project: Path, remote: str | None = None) -> None:
    """``box``: the local socket; ``remote`` (when given a tcp:// address): the same daemon as a remote one."""
    extra = f'\n[targets.remote]\ntype = "docker"\nimage = "{BASE}"\ndocker_host = "{remote}"\n' if remote else ""
    write(
        project,
        "launchbay.toml",
        f"""
        [targets.box]
        type = "docker"
        image = "{BASE}"

        [environments.six]
        pip = ["six"]
        env = {{ GREETING = "from env" }}

        [environments.broken]
        pip = ["launchbay-no-such-package-xyz"]
    """
        + extra,
    )


@pytest.mark.docker
@pytest.mark.parametrize("target", ["box", "remote"])
def test_outputs_belong_to_the_submitting_user_and_the_container_is_removed(
    project: Path, client: Any, tcp_daemon: str, target: str
) -> None:
    """``box`` bind-mounts the run folder (local socket); ``remote`` reaches the daemon over tcp://, so the
    run folder is copied into the container and its journal, log and outputs copied back."""
    config(project, remote=tcp_daemon)
    write(project, "train.py", "import os\nos.makedirs('outputs')\nopen('outputs/model.txt', 'w').write('weights')\n")
    handle = launchbay.submit("train.py", target=target)
    assert handle.wait() == "Completed", handle.get_log()
    produced = open_store().file_path(handle.record(), "outputs/model.txt")
    assert produced.read_text() == "weights" and produced.stat().st_uid == os.getuid()
    record = handle.record()
    assert record.target_state["container_name"] == f"launchbay-{handle.run_id}"
    assert record.target_state["transfer"] == ("mount" if target == "box" else "copy")
    assert containers_of(client, handle.run_id) == []  # removed after the run, outputs kept


@pytest.mark.docker
def test_an_environment_image_is_built_once_and_reused(project: Path, client: Any, cli: CLI) -> None:
    config(project)
    write(
        project,
        "train.py",
        """
        import os, sys, six
        from launchbay import Run
        Run.get_context().log("six_major", int(six.__version__.split(".")[0]))
        print("python", sys.executable, "greeting", os.environ["GREETING"])
    """,
    )
    env = resolve_environment("six", load_config(project), project)
    assert env is not None
    tag = image_tag(env.with_image(BASE))
    try:
        client.images.remove(tag, force=True)  # the first submit below must build
    except Exception:
        pass
    messages: list[str] = []
    session = Session(open_store(), load_config(project))
    first = session.submit(RunSpec("train.py", target="box", environment="six"), project, on_progress=messages.append)
    assert any("Preparing" in m for m in messages)  # the build is the run's: its lines are in the run's log
    assert first.wait() == "Completed", first.get_log()
    assert "building image" in first.get_log()
    assert "python /opt/env/bin/python greeting from env" in first.get_log()
    assert first.get_metrics()["six_major"] == 1.0
    assert "user_logs/env_build.log" in first.get_file_names()
    assert first.record().target_state["environment"]["built"] is True
    assert first.record().target_state["image"] == tag

    messages.clear()
    second = session.submit(RunSpec("train.py", target="box", environment="six"), project, on_progress=messages.append)
    assert second.wait() == "Completed", second.get_log()
    assert second.record().target_state["environment"]["built"] is False
    assert not any("image" in m for m in messages)  # no build step reported
    assert "already built" in cli("env", "build", "six", "--target", "box", check=True).stdout
    assert tag in cli("env", "list", check=True).stdout


@pytest.mark.docker
@pytest.mark.parametrize("target", ["box", "remote"])
def test_a_container_killed_from_outside_fails_with_a_reason(
    project: Path, client: Any, tcp_daemon: str, target: str
) -> None:
    config(project, remote=tcp_daemon)
    write(project, "sleepy.py", "import time\nprint('up', flush=True)\ntime.sleep(300)\n")
    handle = launchbay.submit("sleepy.py", target=target)
    wait_for(lambda: "up" in handle.get_log())
    name = handle.record().target_state["container_name"]
    client.containers.get(name).kill()  # as `docker kill` would
    assert handle.wait(timeout=30) == "Failed"
    error = handle.record().error or {}
    assert name in error["message"] and "killed" in error["message"]
    assert containers_of(client, handle.run_id) == []


@pytest.mark.docker
def test_a_package_that_fails_to_install_fails_the_run_with_the_build_log_lines(project: Path, client: Any) -> None:
    config(project)
    write(project, "train.py", "print('never')\n")
    handle = launchbay.submit("train.py", target="box", environment="broken")
    assert handle.wait(timeout=180) == "Failed"
    message = handle.record().error["message"]  # type: ignore[index]
    assert "launchbay-no-such-package-xyz" in message and "image-build.log" in message
    assert "No matching distribution" in message or "Could not find a version" in message
    assert "launchbay-no-such-package-xyz" in handle.get_log()


@pytest.mark.docker
def test_a_missing_image_that_cannot_be_pulled_fails_the_run_saying_how_to_get_one(project: Path, client: Any) -> None:
    write(project, "launchbay.toml", '[targets.box]\ntype = "docker"\nimage = "launchbay-no-such-image:1"\n')
    write(project, "train.py", "print('never')\n")
    handle = launchbay.submit("train.py", target="box")  # pulled from docker.io: unreachable, or no such image
    assert handle.wait(timeout=120) == "Failed"
    message = handle.record().error["message"]  # type: ignore[index]
    assert "launchbay-no-such-image:1 is not on the daemon" in message and "docker.io" in message
    assert "docker build" in message and "docker import" in message


@pytest.mark.docker
def test_targets_lists_the_daemon(project: Path, cli: CLI, client: Any) -> None:
    config(project)
    rows = {r["name"]: r for r in cli.json("targets")}  # type: ignore[union-attr]
    assert rows["box"]["reachable"] is True and "present" in rows["box"]["image"]


def test_no_daemon_says_how_to_start_one(project: Path, cli: CLI) -> None:
    pytest.importorskip("docker")
    sock = project / "no-docker.sock"
    write(project, "launchbay.toml", f'[targets.box]\ntype = "docker"\nimage = "x"\ndocker_host = "unix://{sock}"\n')
    write(project, "train.py", "print('never')\n")
    proc = cli("submit", "-t", "box", "train.py")
    assert proc.returncode == 2
    assert f"No Docker daemon at unix://{sock}" in proc.stderr and "dockerd" in proc.stderr
    assert "docker_host in [targets.box]" in proc.stderr
    assert cli.json("runs") == []
    row = next(r for r in cli.json("targets") if r["name"] == "box")  # type: ignore[union-attr]
    assert row["reachable"] is False


class _CapturingClient:
    """Stands in for the Docker API: the one mock here, because no GPU machine is available to CI."""

    def __init__(self) -> None:
        self.run_kwargs: dict[str, Any] = {}
        outer = self

        class Images:
            def get(self, name: str) -> object:
                return object()

        class Container:
            id = "f" * 64

        class Containers:
            def run(self, **kwargs: Any) -> Container:
                outer.run_kwargs = kwargs
                return Container()

            def list(self, **kwargs: Any) -> list[Any]:
                return []

        self.images, self.containers = Images(), Containers()

    def ping(self) -> bool:
        return True


@pytest.mark.parametrize(("gpus", "count"), [("all", -1), (2, 2)])
def test_gpus_become_device_requests(project: Path, gpus: Any, count: int) -> None:
    """Captures the kwargs given to ``containers.run`` (a mock: CI has no GPU; a real run is checked by hand)."""
    pytest.importorskip("docker")
    from launchbay.targets import dockerapi as docker_target

    host = f"tcp://gpu-box-{count}.invalid:2375"
    fake = _CapturingClient()
    docker_target._clients[host] = fake
    try:
        value = f'"{gpus}"' if isinstance(gpus, str) else gpus
        write(
            project,
            "launchbay.toml",
            f'[targets.gpu]\ntype = "docker"\nimage = "cuda:12"\ndocker_host = "{host}"\n'
            f'transfer = "mount"\ngpus = {value}\nshm_size = "2g"\n',
        )
        write(project, "train.py", "print(1)\n")
        launchbay.submit("train.py", target="gpu")
    finally:
        docker_target._clients.pop(host, None)
    sent = fake.run_kwargs
    (request,) = sent["device_requests"]
    assert request["Count"] == count and request["Capabilities"] == [["gpu"]]
    assert sent["shm_size"] == "2g" and sent["init"] is True and sent["network_mode"] == "none"
    assert sent["user"] == f"{os.getuid()}:{os.getgid()}"
