"""TensorBoard over runs' ``./logs``: ``launchbay tensorboard RUN [RUN ...]``, and the widget and sidebar link.

TensorBoard is optional (``pip install tensorboard``). It runs as a child process on
127.0.0.1 with ``--logdir_spec RUN_ID:<store>/runs/RUN_ID/files/logs,...`` and
reloads every few seconds; the run's ``./logs`` come back while it runs (see
``livefiles``), so the board is live. The CLI keeps syncing runs that are still
running while it serves; the widget and the sidebar sync their runs already.
One server per set of runs is kept per process and reused.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from .errors import LaunchbayError

DEFAULT_PORT = 6006
RELOAD_S = 2
_servers: dict[tuple[str, ...], tuple[subprocess.Popen[bytes], str]] = {}
_lock = threading.Lock()


class TensorBoardError(LaunchbayError):
    """TensorBoard is missing or did not start."""


def has_event_files(files_dir: Path) -> bool:
    """Does the run have TensorBoard event files under ``logs/``?"""
    logs = files_dir / "logs"
    if not logs.is_dir():
        return False
    return any(".tfevents." in name for _parent, _dirs, names in os.walk(logs) for name in names)


def command() -> list[str]:
    """How to start TensorBoard here: launchbay's interpreter if it has it, else ``tensorboard`` on PATH."""
    try:
        importable = importlib.util.find_spec("tensorboard.main") is not None
    except ImportError:
        importable = False
    if importable:
        return [sys.executable, "-m", "tensorboard.main"]
    found = shutil.which("tensorboard")
    if found:
        return [found]
    raise TensorBoardError(
        "TensorBoard is not installed: `pip install tensorboard` (in the environment that runs launchbay), then retry."
    )


def logdir_spec(logdirs: dict[str, Path]) -> str:
    """``name:path,...`` for ``--logdir_spec`` (a path holding a comma cannot be named there)."""
    for name, path in logdirs.items():
        if "," in str(path) or ":" in name or "," in name:
            raise TensorBoardError(f"TensorBoard cannot read {path} for {name}: its path holds a comma or colon.")
    return ",".join(f"{name}:{path}" for name, path in logdirs.items())


def free_port(preferred: int = DEFAULT_PORT) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise TensorBoardError("No free port on 127.0.0.1 for TensorBoard.")


def start(
    logdirs: dict[str, Path], port: int | None = None, timeout: float = 90.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start TensorBoard over ``logdirs`` (run id → folder) and wait until it answers; returns (process, url)."""
    argv = command()
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen(
        [
            *argv,
            "--logdir_spec",
            logdir_spec(logdirs),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            str(RELOAD_S),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # in our process group: a Ctrl-C or the end of a Jupyter server stops it too
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            err = (proc.stderr.read() if proc.stderr else b"").decode("utf-8", "replace").strip().splitlines()
            raise TensorBoardError(f"TensorBoard exited with code {proc.returncode}: {' '.join(err[-3:])}")
        try:
            with urllib.request.urlopen(url + "data/logdir", timeout=2):
                threading.Thread(target=_drain, args=(proc,), daemon=True).start()
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise TensorBoardError(f"TensorBoard did not answer on {url} within {timeout:.0f} s.")


def _drain(proc: subprocess.Popen[bytes]) -> None:
    """Keep reading TensorBoard's stderr so a full pipe never blocks it."""
    if proc.stderr is not None:
        for _line in iter(proc.stderr.readline, b""):
            pass


def ensure(logdirs: dict[str, Path]) -> str:
    """A running TensorBoard over these runs (started once per process), and its URL."""
    key = tuple(sorted(logdirs))
    with _lock:
        found = _servers.get(key)
        if found and found[0].poll() is None:
            return found[1]
        proc, url = start(logdirs)
        if not _servers:
            atexit.register(stop_all)
        _servers[key] = (proc, url)
        return url


def stop_all() -> None:
    """Stop the servers this process started."""
    with _lock:
        for proc, _url in _servers.values():
            if proc.poll() is None:
                proc.terminate()
        _servers.clear()


# -- the CLI ----------------------------------------------------------------------------------
def register(sub: Any, add: Any) -> None:
    p = add("tensorboard", cmd_tensorboard, "start TensorBoard over runs' ./logs (live while they run)", False)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids (unique prefixes work)")
    p.add_argument("--port", type=int, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}, else a free one)")


def cmd_tensorboard(args: argparse.Namespace) -> int:
    from .cli import _session

    session = _session(args)
    records = [session.refresh(session.store.resolve_run_id(ref)) for ref in args.runs]
    logdirs = {r.run_id: session.store.files_dir(r) / "logs" for r in records}
    proc, url = start(logdirs, port=args.port)
    print(f"TensorBoard on {url} over {len(records)} run(s); Ctrl-C stops it.", flush=True)
    try:
        while proc.poll() is None:
            live = [r for r in records if not r.status.is_terminal()]
            records = [session.refresh(r) if r in live else r for r in records]  # brings ./logs back
            time.sleep(RELOAD_S)
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0
