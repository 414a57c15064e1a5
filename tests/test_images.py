"""Images as Azure ML v1 had them, against a real dockerd and Debian's docker-registry on loopback.

An image the daemon lacks is pulled, with a progress line, while the run is Preparing; a private
registry takes credentials from ``${ENV}`` references in launchbay.toml or from the Docker config,
and they are never written into the store; an environment's Dockerfile is built once per content
hash; with ``[images] registry`` a built image is pushed, and a daemon without it pulls instead of
building. The machine has no internet: every image here grows from the test base image
(``docker import`` of a debootstrap root filesystem), pushed to the loopback registries.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import launchbay
from conftest import BASE_IMAGE, PrivateRegistry, docker_ready, need_service, remove_containers, write
from launchbay.compat.azureml.environment import Environment
from launchbay.config import load_config
from launchbay.environments.image import image_tag
from launchbay.environments.spec import resolve_environment
from launchbay.store import open_store

READ_MARKER = "print('marker', open('/etc/lb-marker').read().strip())\n"


@pytest.fixture
def client(project: Path) -> Iterator[Any]:
    need_service(docker_ready(BASE_IMAGE), "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    import docker

    client = docker.from_env()
    yield client
    remove_containers(str(open_store().root))
    for image in client.images.list():  # what this test made (the registries keep their copies)
        for tag in image.tags:
            if "/launchbay-test/" in tag or (tag.startswith(("launchbay-env:", "127.0.0.1:")) and _made_here(image)):
                try:
                    client.images.remove(tag)
                except docker.errors.APIError:  # in use by a container still going away: the next test's turn
                    pass


def _made_here(image: Any) -> bool:
    """An environment image of a Dockerfile these tests wrote (a marker of their own)."""
    return "lb-marker" in json.dumps(image.history())


def small_image(client: Any, name: str, tmp_path: Path) -> str:
    """``name``: the base image plus one small layer (/etc/lb-marker holds its tag), so a push or pull
    moves that layer and finds the base layer already there."""
    token = name.rpartition(":")[2]
    context = tmp_path / f"ctx-{token}"
    context.mkdir()
    (context / "marker").write_text(token)
    (context / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY marker /etc/lb-marker\n")
    client.images.build(path=str(context), tag=name, rm=True, pull=False)
    return token


def push_and_forget(client: Any, name: str, auth: dict[str, str] | None = None) -> None:
    """Push ``name`` to its registry, then remove it here: the next run must pull it."""
    repo, _, tag = name.rpartition(":")
    errors = [
        e["error"] for e in client.api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth) if "error" in e
    ]
    assert errors == []
    client.images.remove(name)


def docker_target(project: Path, image: str, extra: str = "") -> None:
    write(project, "launchbay.toml", f'[targets.box]\ntype = "docker"\nimage = "{image}"\n{extra}')
    write(project, "show.py", READ_MARKER)


def store_bytes(store_root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in store_root.rglob("*") if p.is_file())


@pytest.mark.docker
def test_an_image_the_daemon_lacks_is_pulled_with_progress(
    project: Path, client: Any, registry: str, tmp_path: Path
) -> None:
    image = f"{registry}/launchbay-test/pull:{secrets.token_hex(4)}"
    token = small_image(client, image, tmp_path)
    push_and_forget(client, image)
    docker_target(project, image)
    handle = launchbay.submit("show.py", target="box")  # returns while the image is pulled
    assert handle.wait(timeout=120) == "Completed", handle.get_log()
    log = handle.get_log()
    assert f"pulling {image} from {registry}" in log
    assert f"pulled {image}: 2 layers (1 already here)" in log and " MB in " in log
    assert f"marker {token}" in log
    client.images.get(image)  # it stays on the daemon: the next run starts without a pull


@pytest.mark.docker
def test_an_image_no_registry_has_fails_the_run_in_one_line(project: Path, client: Any, registry: str) -> None:
    image = f"{registry}/launchbay-test/never-pushed:{secrets.token_hex(4)}"
    docker_target(project, image)
    handle = launchbay.submit("show.py", target="box")
    assert handle.wait(timeout=60) == "Failed"
    message = handle.record().error["message"]  # type: ignore[index]
    assert f"{registry} does not have it" in message and "docker build" in message and "\n" not in message
    assert message in handle.get_log()


@pytest.mark.docker
def test_a_private_registry_takes_credentials_from_env_references_and_never_stores_them(
    project: Path, client: Any, private_registry: PrivateRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = private_registry
    image = f"{reg.address}/launchbay-test/private:{secrets.token_hex(4)}"
    token = small_image(client, image, tmp_path)
    push_and_forget(client, image, {"username": reg.username, "password": reg.password})
    credentials = (
        f'\n[images.credentials."{reg.address}"]\nusername = "${{LB_REG_USER}}"\npassword = "${{LB_REG_PASSWORD}}"\n'
    )
    docker_target(project, image, credentials)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))  # only launchbay.toml's credentials
    monkeypatch.setenv("LB_REG_USER", reg.username)

    monkeypatch.setenv("LB_REG_PASSWORD", "not-the-password")
    refused = launchbay.submit("show.py", target="box")
    assert refused.wait(timeout=60) == "Failed"
    message = refused.record().error["message"]  # type: ignore[index]
    assert f'{reg.address} refused the credentials from [images.credentials."{reg.address}"]' in message
    assert f"docker login {reg.address}" in message and "\n" not in message and "not-the-password" not in message

    monkeypatch.setenv("LB_REG_PASSWORD", reg.password)
    handle = launchbay.submit("show.py", target="box")
    assert handle.wait(timeout=120) == "Completed", handle.get_log()
    assert f"pulled {image}" in handle.get_log() and f"marker {token}" in handle.get_log()
    stored = store_bytes(open_store().root)
    assert reg.password.encode() not in stored and b"not-the-password" not in stored


@pytest.mark.docker
def test_a_private_registry_takes_the_docker_config_login(
    project: Path, client: Any, private_registry: PrivateRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    reg = private_registry
    image = f"{reg.address}/launchbay-test/private:{secrets.token_hex(4)}"
    small_image(client, image, tmp_path)
    push_and_forget(client, image, {"username": reg.username, "password": reg.password})
    docker_target(project, image)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))

    without = launchbay.submit("show.py", target="box")
    assert without.wait(timeout=60) == "Failed"
    assert f"{reg.address} refused no credentials" in without.record().error["message"]  # type: ignore[index]

    login = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()  # what `docker login` writes
    (config_dir / "config.json").write_text(json.dumps({"auths": {reg.address: {"auth": login}}}))
    handle = launchbay.submit("show.py", target="box")
    assert handle.wait(timeout=120) == "Completed", handle.get_log()
    assert f"pulled {image}" in handle.get_log()
    assert reg.password.encode() not in store_bytes(open_store().root)


def dockerfile_environment(project: Path, token: str, extra: str = "") -> None:
    write(project, "Dockerfile", f"FROM {BASE_IMAGE}\nRUN echo {token} > /etc/lb-marker\n")
    write(
        project,
        "launchbay.toml",
        f'[targets.box]\ntype = "docker"\nimage = "{BASE_IMAGE}"\n\n'
        f'[environments.custom]\ndockerfile = "Dockerfile"\n{extra}',
    )
    write(project, "show.py", READ_MARKER)


@pytest.mark.docker
def test_an_environments_dockerfile_is_built_once_by_its_content_hash(project: Path, client: Any) -> None:
    token = secrets.token_hex(4)  # a Dockerfile of its own: no earlier test built it
    dockerfile_environment(project, token)
    first = launchbay.submit("show.py", target="box", environment="custom")
    assert first.wait(timeout=180) == "Completed", first.get_log()
    assert "building image launchbay-env:" in first.get_log() and f"marker {token}" in first.get_log()
    state = first.record().target_state["environment"]
    assert state["built"] is True and state["dockerfile"] is True

    second = launchbay.submit("show.py", target="box", environment="custom")
    assert second.wait(timeout=60) == "Completed", second.get_log()
    assert "building image" not in second.get_log() and f"marker {token}" in second.get_log()
    assert second.record().target_state["environment"]["built"] is False
    assert second.record().target_state["image"] == state["image"]

    write(project, "Dockerfile", f"FROM {BASE_IMAGE}\nRUN echo changed-{token} > /etc/lb-marker\n")
    third = launchbay.submit("show.py", target="box", environment="custom")
    assert third.wait(timeout=180) == "Completed", third.get_log()
    assert third.record().target_state["image"] != state["image"] and f"marker changed-{token}" in third.get_log()


def test_a_v1_base_dockerfile_is_the_same_environment_as_a_dockerfile_in_launchbay_toml(project: Path) -> None:
    text = f"FROM {BASE_IMAGE or 'debian'}\nRUN echo v1 > /etc/lb-marker\n"
    write(project, "Dockerfile", text)
    write(project, "launchbay.toml", '[environments.custom]\ndockerfile = "Dockerfile"\n')
    from_toml = resolve_environment("custom", load_config(project), project)
    v1 = Environment("custom")
    v1.docker.base_dockerfile = text  # v1 took the Dockerfile's text...
    by_text = resolve_environment(v1.to_launchbay(), load_config(project), project)
    by_path = resolve_environment(
        Environment.from_dockerfile("custom", "Dockerfile").to_launchbay(), load_config(project)
    )
    assert from_toml is not None and by_text is not None and by_path is not None  # ...or its path
    assert from_toml.dockerfile == by_text.dockerfile == by_path.dockerfile == text
    assert image_tag(from_toml) == image_tag(by_text)


@pytest.mark.docker
def test_a_built_image_is_pushed_and_a_daemon_without_it_pulls_instead_of_building(
    project: Path, client: Any, registry: str
) -> None:
    token = secrets.token_hex(4)
    dockerfile_environment(project, token, f'\n[images]\nregistry = "{registry}"\n')
    first = launchbay.submit("show.py", target="box", environment="custom")
    assert first.wait(timeout=180) == "Completed", first.get_log()
    tag = first.record().target_state["image"]
    remote = f"{registry}/{tag}"
    assert "building image" in first.get_log() and f"pushed {remote}" in first.get_log()

    for name in (tag, remote):  # as a machine that never built it: this daemon forgets both
        client.images.remove(name)
    second = launchbay.submit("show.py", target="box", environment="custom")
    assert second.wait(timeout=120) == "Completed", second.get_log()
    log = second.get_log()
    assert f"pulled {remote}" in log and "building image" not in log and f"marker {token}" in log
    state = second.record().target_state["environment"]
    assert state["built"] is False and state["pulled_from"] == remote
