"""Where built environments live in the store, and the lock that keeps builds apart.

``<store>/envs/<hash>/`` holds ``spec.json``, ``requirements.txt``, the build
logs, ``venv/`` and a ``ready`` marker written last: a folder without it is an
unfinished build and is started again. Two processes building the same hash
take turns on ``<hash>/.lock`` (flock), and the second one finds it built.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import runfolder as rf

Progress = Callable[[str], None]
ENVS_DIR = "envs"
READY = "ready"
LAST_USED = "last_used"


def envs_root(store_root: Path) -> Path:
    return store_root / ENVS_DIR


def env_dir(store_root: Path, env_hash: str) -> Path:
    return envs_root(store_root) / env_hash


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        try:
            progress(message)
        except Exception:  # a broken progress display must never break a build
            pass


def mark_used(folder: Path) -> None:
    """Record the time of last use (for ``env prune``); one small write."""
    try:
        (folder / LAST_USED).write_text(repr(time.time()))
    except OSError:
        pass


@contextmanager
def build_lock(path: Path, progress: Progress | None = None, what: str = "") -> Iterator[None]:
    """An exclusive flock on ``path``; says so when it has to wait for another build."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(progress, f"{what}: waiting for another process that is building it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_locked(path: Path) -> bool:
    """True while some process holds the build lock at ``path``."""
    if not path.exists():
        return False
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


_FAILING = re.compile(r"error|fail|cause:|not found|no matching|could not|unsatisfiable|hint:", re.IGNORECASE)


def failing_lines(log_text: str, limit: int = 12) -> list[str]:
    """The lines of a build log that say why it failed (else its last lines)."""
    lines = [ln.rstrip() for ln in log_text.splitlines() if ln.strip()]
    hits = [ln for ln in lines if _FAILING.search(ln) and not ln.startswith("$ ")]
    return (hits or lines)[-limit:]


def copy_build_log(log: Path | None, run_dir: Path, name: str = "env_build.log") -> None:
    """Keep the environment's build log with the run (``files/user_logs/``), before the runner starts."""
    if log is None or not log.is_file():
        return
    dest = run_dir / rf.FILES / rf.USER_LOGS / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(log, dest)  # logs are written once: a hard link is a free copy
    except OSError:
        dest.write_bytes(log.read_bytes())


def read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
