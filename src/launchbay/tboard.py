"""TensorBoard over runs' ``./logs``: ``launchbay tensorboard RUN [RUN ...]``, and the widget and sidebar link.

TensorBoard is optional (``pip install tensorboard``). It runs as a child process on
127.0.0.1 over a scratch folder of links ``RUN_ID -> <store>/runs/RUN_ID/files/logs``
(so TensorBoard names each run by its id, whatever its path holds) and reloads
every few seconds; the run's ``./logs`` come back while it runs (see
``livefiles``), so the board is live. The CLI keeps syncing runs that are still
running while it serves; the widget and the sidebar sync their runs already.
One server per set of runs is kept per process and reused.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from . import runfolder as rf
from .errors import LaunchbayError

DEFAULT_PORT = 6006
RELOAD_S = 2
_boards: dict[tuple[str, ...], Board] = {}
_lock = threading.Lock()


class TensorBoardError(LaunchbayError):
    """TensorBoard is missing or did not start."""


def has_event_files(files_dir: Path) -> bool:
    """Does the run have TensorBoard event files under ``logs/``?"""
    logs = files_dir / rf.LOGS
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


def link_folder(logdirs: dict[str, Path]) -> Path:
    """A scratch folder holding one link per run, named by its id, to its logs folder."""
    folder = Path(tempfile.mkdtemp(prefix="launchbay-tensorboard-"))
    for name, path in logdirs.items():
        path.mkdir(parents=True, exist_ok=True)  # a remote run's logs may not be back yet
        (folder / name).symlink_to(path, target_is_directory=True)
    return folder


class Board:
    """A TensorBoard process, where it serves, and its scratch folder."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, folder: Path) -> None:
        self.proc, self.url, self.folder = proc, url, folder
        self.drain: threading.Thread | None = None  # reads its stderr once it answers

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.drain is not None:
            self.drain.join(timeout=5)  # it reads to the end of the pipe, which the exit closed
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


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
    logdirs: dict[str, Path], port: int | None = None, timeout: float = 90.0, die_with_caller: bool = False
) -> Board:
    """Start TensorBoard over ``logdirs`` (run id → folder) and wait until it answers.

    ``die_with_caller`` (the CLI, from its main thread): TensorBoard gets SIGKILL if this process dies."""
    argv = command()
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/"
    folder = link_folder(logdirs)
    options = ["--logdir", str(folder), "--host", "127.0.0.1", "--port", str(port), "--reload_interval", str(RELOAD_S)]
    proc = subprocess.Popen(
        [*argv, *options],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_parent_death_signal if die_with_caller else None,
    )  # in our process group: a Ctrl-C or the end of a Jupyter server stops it too
    board = Board(proc, url, folder)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            err = (proc.stderr.read() if proc.stderr else b"").decode("utf-8", "replace").strip().splitlines()
            board.stop()
            raise TensorBoardError(f"TensorBoard exited with code {proc.returncode}: {' '.join(err[-3:])}")
        try:
            with urllib.request.urlopen(url + "data/logdir", timeout=2):
                board.drain = threading.Thread(target=_drain, args=(proc,), daemon=True)
                board.drain.start()
                return board
        except OSError:
            time.sleep(0.3)
    board.stop()
    raise TensorBoardError(f"TensorBoard did not answer on {url} within {timeout:.0f} s.")


def _parent_death_signal() -> None:
    """Linux: SIGKILL when the thread that started us ends (only the CLI's main thread asks)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _drain(proc: subprocess.Popen[bytes]) -> None:
    """Keep reading TensorBoard's stderr so a full pipe never blocks it."""
    if proc.stderr is not None:
        for _line in iter(proc.stderr.readline, b""):
            pass


def ensure(logdirs: dict[str, Path]) -> str:
    """A running TensorBoard over these runs (started once per process), and its URL."""
    key = tuple(sorted(logdirs))
    with _lock:
        found = _boards.get(key)
        if found and found.alive():
            return found.url
        if not _boards:
            atexit.register(stop_all)
        board = _boards[key] = start(logdirs)
        return board.url


def stop_all() -> None:
    """Stop the servers this process started."""
    with _lock:
        for board in _boards.values():
            board.stop()
        _boards.clear()
