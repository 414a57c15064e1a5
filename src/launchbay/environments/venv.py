"""Local environments: one virtual environment per hash under ``<store>/envs/<hash>/venv``.

Built with ``uv`` when it is present (seconds), with ``python -m venv`` and pip
otherwise. A cache hit is a stat of the ``ready`` marker, so a run whose
environment exists starts with no extra work.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EnvironmentBuildError
from .cache import (
    READY,
    Progress,
    build_lock,
    env_dir,
    failing_lines,
    mark_used,
    say,
)
from .spec import EnvironmentSpec, Materialised

BUILD_LOG = "build.log"
_VERSION = re.compile(r"^\d+(\.\d+)*$")
_PROGRESS_LINE = re.compile(r"^\s*(Collecting|Downloading|Installing|Successfully|Resolved|Prepared|Installed|\+ )")


@dataclass
class LocalEnvironment(Materialised):
    """A usable local environment: the interpreter to run with, and how it came to be."""

    python: str = ""
    folder: Path | None = None

    def state(self) -> dict[str, Any]:
        return {**super().state(), "python": self.python}


def find_uv() -> str | None:
    """``uv`` on PATH, or next to the running interpreter (an unactivated venv)."""
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def base_interpreter(spec: EnvironmentSpec) -> str:
    """The interpreter a venv is made from: a path, a command, or ``python3.X`` for a version."""
    wanted = spec.python or sys.executable
    command = f"python{wanted}" if _VERSION.match(wanted) else wanted
    found = shutil.which(command) if os.sep not in command else (command if os.access(command, os.X_OK) else None)
    if not found:
        raise EnvironmentBuildError(
            f"Environment {spec.label}: no interpreter {command!r} on this machine. Install it, or set python to the "
            "path of an existing interpreter in its [environments] section."
        )
    return found


def venv_python(folder: Path) -> Path:
    return folder / "venv" / "bin" / "python"


def is_built(store_root: Path, spec: EnvironmentSpec) -> bool:
    """Is the environment's venv there and whole (its ``ready`` marker written)?"""
    return (env_dir(store_root, spec.hash) / READY).is_file()


def ensure_venv(store_root: Path, spec: EnvironmentSpec, progress: Progress | None = None) -> LocalEnvironment:
    """The environment's venv, built on first use; later calls only check a marker file."""
    started = time.perf_counter()
    if spec.user_managed:
        python = base_interpreter(spec) if spec.python else sys.executable
        return LocalEnvironment(spec, False, time.perf_counter() - started, None, python=python)
    folder = env_dir(store_root, spec.hash)
    python = str(venv_python(folder))
    if (folder / READY).is_file():
        mark_used(folder)
        seconds = time.perf_counter() - started
        return LocalEnvironment(spec, False, seconds, folder / BUILD_LOG, python=python, folder=folder)
    with build_lock(folder / ".lock", progress, f"environment {spec.label}"):
        built = not (folder / READY).is_file()
        if built:
            _build(folder, spec, progress)
        mark_used(folder)
    seconds = time.perf_counter() - started
    return LocalEnvironment(spec, built, seconds, folder / BUILD_LOG, python=python, folder=folder)


def _build(folder: Path, spec: EnvironmentSpec, progress: Progress | None) -> None:
    import json

    shutil.rmtree(folder / "venv", ignore_errors=True)
    (folder / "spec.json").write_text(json.dumps(spec.to_json(), indent=1))
    requirements = folder / "requirements.txt"
    requirements.write_text(spec.requirements_text())
    python = base_interpreter(spec)
    uv = find_uv() if spec.installer in ("auto", "uv") else None
    if spec.installer == "uv" and uv is None:
        raise EnvironmentBuildError(
            f'Environment {spec.label} asks for installer = "uv", but uv is not installed; '
            '`pip install uv`, or set installer = "pip".'
        )
    venv, venv_py = folder / "venv", str(venv_python(folder))
    steps: list[tuple[str, list[str]]] = []
    if uv:
        steps.append(("creating the virtual environment (uv)", [uv, "venv", "--python", python, str(venv)]))
        if spec.pip:
            steps.append(
                (
                    f"installing {len(spec.pip)} package(s) with uv",
                    [uv, "pip", "install", "--python", venv_py, "-r", str(requirements)],
                )
            )
    else:
        steps.append(("creating the virtual environment", [python, "-m", "venv", str(venv)]))
        if spec.pip:
            steps.append(
                (
                    f"installing {len(spec.pip)} package(s) with pip",
                    [venv_py, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)],
                )
            )
    log_tmp = folder / f"{BUILD_LOG}.tmp"
    started = time.time()
    with open(log_tmp, "w") as log:
        log.write(f"# environment {spec.label}\n# hash {spec.hash}\n# requirements:\n")
        log.writelines(f"#   {line}\n" for line in sorted(spec.pip))
        log.writelines(f"# {note}\n" for note in spec.notes)
        for number, (title, command) in enumerate(steps, 1):
            say(progress, f"environment {spec.label}: [{number}/{len(steps)}] {title}")
            code = _run_logged(command, log, progress, spec)
            if code != 0:
                log.close()
                os.replace(log_tmp, folder / BUILD_LOG)
                shutil.rmtree(venv, ignore_errors=True)
                lines = failing_lines((folder / BUILD_LOG).read_text(errors="replace"))
                raise EnvironmentBuildError(
                    f"Environment {spec.label} failed to build: {title} exited with code {code}. "
                    f"Fix its package list and submit again. Failing lines of {folder / BUILD_LOG}:\n"
                    + "\n".join(f"  {ln}" for ln in lines)
                )
        log.write(f"# built in {time.time() - started:.1f} s\n")
    os.replace(log_tmp, folder / BUILD_LOG)
    (folder / READY).write_text(
        json.dumps(
            {
                "built": time.time(),
                "seconds": time.time() - started,
                "installer": "uv" if uv else "pip",
                "python": python,
            }
        )
    )
    say(progress, f"environment {spec.label}: ready in {time.time() - started:.1f} s")


def _run_logged(command: list[str], log: Any, progress: Progress | None, spec: EnvironmentSpec) -> int:
    log.write("$ " + " ".join(command) + "\n")
    log.flush()
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        log.write(f"could not start {command[0]}: {exc}\n")
        return 127
    with proc:  # closes the pipe and waits
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if _PROGRESS_LINE.match(line):
                say(progress, f"environment {spec.label}: {line.strip()}")
    return proc.returncode
