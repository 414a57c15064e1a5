"""Shared fixtures: a fresh project folder and store per test, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need_service(available: bool, what: str) -> None:
    """Skip when a service is missing, except under CI=true, where a missing service fails."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI=true: .ci/run must start it.")
    pytest.skip(f"{what} is not available (start it with scripts/services/start.sh)")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder with its own store, as the current directory."""
    folder = tmp_path / "proj"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


class CLI:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def __call__(self, *args: str, check: bool | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "launchbay", *args],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=os.environ.copy(),
        )
        if check:
            assert proc.returncode == 0, f"launchbay {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def json(self, command: str, *args: str) -> object:
        """Run ``launchbay COMMAND --json ARGS`` and parse what it printed."""
        return json.loads(self(command, "--json", *args, check=True).stdout)


@pytest.fixture
def cli(project: Path) -> CLI:
    return CLI(project)


def wait_for(predicate, timeout: float = 30, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy (and return that), or fail."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not reached within {timeout} s")


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a live process (zombies count as dead)?"""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


# Headless Chromium as ENGINES.md starts it on these machines (no background traffic).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def checkout_labextensions(base: Path) -> dict[str, str]:
    """Environment that makes JupyterLab load this checkout's built labextension ahead of the venv's.

    ``base`` is a scratch folder; nothing changes when the checkout has no build."""
    built = Path(__file__).resolve().parents[1] / "src" / "launchbay" / "labextension"
    if not (built / "package.json").is_file():
        return {}
    path = base / "jupyter-path"
    (path / "labextensions").mkdir(parents=True)
    (path / "labextensions" / "launchbay-labextension").symlink_to(built)
    return {"JUPYTER_PATH": os.pathsep.join([str(path), os.environ.get("JUPYTER_PATH", "")]).rstrip(os.pathsep)}


def docker_ready(image: str) -> bool:
    """A Docker daemon answers and has ``image`` (the test base image)."""
    if not image:
        return False
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.images.get(image)
        return True
    except Exception:
        return False
