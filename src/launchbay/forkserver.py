"""A warm process that forks the runners of local runs, so a run starts no runner interpreter.

Starting a runner the plain way costs an interpreter and its imports (~50 ms of CPU and most
of a local submit's wait), and a local run's final ingest imports the store (~100 ms more): a
1,000-trial sweep pays both a thousand times. The first local submit starts this server in the
background (and its own runner the plain way); later ones ask it, over a Unix socket that only
this user may use, to fork a runner from a process that has the runner and the store's ingest
imported already. A forked runner double-forks away like a plain one (new session, re-parented),
so it outlives the server, the kernel and the CLI alike.

The server is single-threaded (forking it is safe), bound to one interpreter and one copy of
launchbay's sources (a new copy gets a new server), and exits after
``LAUNCHBAY_FORKSERVER_IDLE_S`` seconds without a request. ``LAUNCHBAY_FORKSERVER=0`` turns it
off. Linux only (abstract socket, peer credentials); elsewhere runners start the plain way.

Usage: ``python -m launchbay.forkserver ADDRESS`` (started by ``request_runner``).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ENABLED_VAR = "LAUNCHBAY_FORKSERVER"
IDLE_VAR = "LAUNCHBAY_FORKSERVER_IDLE_S"
DEFAULT_IDLE_S = 600.0
REPLY_TIMEOUT_S = 30.0
_PACKAGE = Path(__file__).resolve().parent
_start_lock = threading.Lock()
_started: dict[str, float] = {}  # address -> when this process last started a server for it
RESTART_AFTER_S = 10.0  # a server that did not come up (or died) is started again after this


def supported() -> bool:
    return sys.platform.startswith("linux") and os.environ.get(ENABLED_VAR, "1") != "0"


def address(python: str = sys.executable) -> str:
    """The server's abstract socket name: this user, this interpreter, this copy of the sources
    (their newest change included, so an edited or upgraded launchbay never runs old code)."""
    newest = 0
    for folder in (_PACKAGE, _PACKAGE / "store"):
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    newest = max(newest, entry.stat().st_mtime_ns)
    key = hashlib.sha1(f"{python}\0{_PACKAGE}\0{newest}".encode()).hexdigest()[:20]
    return f"\0launchbay-runners-{os.getuid()}-{key}"


def request_runner(run_dir: Path, env: dict[str, str]) -> int | None:
    """Have the server fork the runner of ``run_dir``; its pid, or None when no server answers
    (then nothing was started, and one is started for the next run: start the runner yourself)."""
    if not supported():
        return None
    where = address()
    request = {"run_dir": str(run_dir), "env": env, "umask": _umask()}
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(where)
    except OSError:  # none yet (or it just exited idle)
        conn.close()
        _start_server(where, env)
        return None
    with conn:  # the request is out: from here a failure must not start a second runner
        conn.settimeout(REPLY_TIMEOUT_S)
        conn.sendall(json.dumps(request).encode() + b"\n")
        reply = _read_line(conn).decode()
    status, _, detail = reply.partition(" ")
    if status != "ok":
        from .errors import TargetError

        raise TargetError(f"launchbay's local runner server could not start the run: {detail or 'no answer'}.")
    return int(detail)


def stop_server(python: str = sys.executable) -> bool:
    """Ask this interpreter's server to exit now (tests, upgrades); False when none runs."""
    if not supported():
        return False
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(address(python))
        conn.settimeout(5.0)
        conn.sendall(b'{"stop": true}\n')
        return _read_line(conn) == b"ok"
    except OSError:
        return False
    finally:
        conn.close()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _start_server(where: str, env: dict[str, str]) -> None:
    """Start the server in the background (once, while it starts up); the caller does not wait for it."""
    with _start_lock:
        if time.monotonic() - _started.get(where, -RESTART_AFTER_S) < RESTART_AFTER_S:
            return
        _started[where] = time.monotonic()
    server_env = dict(env)
    # launchbay importable and nothing of this submitter's own path: each runner gets its own (_run_path)
    server_env["PYTHONPATH"] = str(_PACKAGE.parent)
    # single-threaded, so forking it is safe: no BLAS thread pools in the imports it warms
    server_env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

    def start() -> None:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "launchbay.forkserver", where[1:]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=server_env,
                cwd="/",
                close_fds=True,
                start_new_session=True,
            )
            proc.wait()  # it double-forks away at once
        except OSError:
            pass

    threading.Thread(target=start, name="launchbay-forkserver-start", daemon=True).start()


def _read_line(conn: socket.socket, limit: int = 16 << 20) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise OSError("request too large")
    return data.rstrip(b"\n")


# -- the server ----------------------------------------------------------------------------------
def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


SERVER_NAME, RUNNER_NAME = b"lb-forkserver", b"lb-runner"  # what ps -e and top show (/proc/PID/comm)


def _set_name(name: bytes) -> None:
    """The process name (comm): a forked runner's command line is still the server's."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _fork_runner(request: dict[str, object], listener: socket.socket, conn: socket.socket) -> int:
    """Fork, new session, fork again (no zombie, no terminal), become the runner; the runner's pid."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:  # pragma: no cover - runs in the forked processes
        try:
            listener.close()
            conn.close()
            os.close(read_end)
            os.setsid()
            second = os.fork()
            if second:
                os.write(write_end, str(second).encode())
                os._exit(0)
            os.close(write_end)
            _become_runner(request)
        finally:
            os._exit(1)
    os.close(write_end)
    os.waitpid(first, 0)
    with os.fdopen(read_end, "rb") as fh:
        pid = fh.read()
    if not pid:
        raise OSError("the runner could not be forked")
    return int(pid)


def _become_runner(request: dict[str, object]) -> None:  # pragma: no cover - runs in the fork
    import signal

    from . import runfolder as rf
    from . import runner

    run_dir = str(request["run_dir"])
    _set_name(RUNNER_NAME)
    os.umask(int(request["umask"]))  # type: ignore[call-overload]
    os.chdir("/")
    log = os.open(os.path.join(run_dir, rf.JOURNAL, rf.RUNNER_LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})  # type: ignore[call-overload]
    sys.path[:] = _run_path(os.environ.get("PYTHONPATH", ""))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    code = 1
    try:
        code = runner.Runner(run_dir).run()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


_base_path: list[str] = []  # the server's sys.path without its working folder and PYTHONPATH


def _run_path(pythonpath: str) -> list[str]:
    """A runner's sys.path as its own interpreter would have it: its PYTHONPATH first (what it
    imports later, NVML for one, comes from the submitter's path), then the interpreter's own."""
    first = [p for p in pythonpath.split(os.pathsep) if p]
    return first + [p for p in _base_path if p not in first]


def serve(where: str, idle_s: float) -> int:
    own = {p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    _base_path[:] = [p for p in sys.path[1:] if p not in own]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(where)
    except OSError:  # another server has this address: it serves
        return 0
    listener.listen(64)
    _set_name(SERVER_NAME)
    listener.settimeout(idle_s)
    # warm: what every forked runner imports (the runner) and what a local run's final ingest does
    from . import ingest, runner  # noqa: F401

    try:
        import numpy  # noqa: F401
    except ImportError:
        pass
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return 0
        with conn:
            try:
                conn.settimeout(10.0)
                if not _same_user(conn):
                    continue
                request = json.loads(_read_line(conn))
                if request.get("stop"):
                    conn.sendall(b"ok\n")
                    return 0
                pid = _fork_runner(request, listener, conn)
                conn.sendall(f"ok {pid}\n".encode())
            except (OSError, ValueError, KeyError, TypeError) as exc:
                try:
                    conn.sendall(f"error {type(exc).__name__}: {exc}\n".encode())
                except OSError:
                    pass


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m launchbay.forkserver ADDRESS", file=sys.stderr)
        return 2
    from .runner import daemonize

    daemonize()  # the starter reaps the first fork at once
    try:
        idle_s = float(os.environ.get(IDLE_VAR) or DEFAULT_IDLE_S)
    except ValueError:
        idle_s = DEFAULT_IDLE_S
    return serve("\0" + args[0], idle_s)


if __name__ == "__main__":
    sys.exit(main())
