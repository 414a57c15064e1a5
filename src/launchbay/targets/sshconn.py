"""A small synchronous SSH client over asyncssh, shared by the SSH and Slurm targets.

asyncssh is asynchronous; launchbay's targets are not. Every connection runs on
one private event loop in a daemon thread and each call blocks on its result.
Host keys are always checked against a known_hosts file; passwords are never
asked for or stored (keys come from ``identity_file`` or the SSH agent).

    host = SSHHost("gpu-box", 22, "me", identity_file="~/.ssh/id_ed25519")
    rc, out, err = host.do(lambda conn: conn.run("nvidia-smi -L", check=False))  # pooled, reconnects once

    conn = SSHConnection("gpu-box", 22, "me", identity_file="~/.ssh/id_ed25519")  # one of your own
    rc, out, err = conn.run("nvidia-smi -L", check=False)
    conn.upload_blobs("/home/me/.launchbay-remote/blobs", {blob_name(digest): path})  # fileset.blob_name
    result, payload = conn.call(code, args)   # python run by the connection's remote helper
    conn.close()

``run`` starts a shell command on a channel of its own (the user's login shell
and rc files run each time: 0.1 to 0.5 s on many hosts). The file helpers
(``call``, ``missing_blobs``, ``upload_files``) go instead to one
long-lived remote Python per connection, the *agent*, over framed JSON on its
stdin/stdout: a poll for new log bytes costs a few milliseconds, not a shell start.

Every failure is a ``TargetError`` whose message names the cause; a connection
that dropped mid-call raises ``SSHConnectionLost`` (reconnect and retry). The SSH
and Slurm targets share connections through the pool (``SSHHost.do``): one per
host and login in a process, replaced when it dropped.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import hashlib
import json
import os
import shlex
import socket
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from ..errors import TargetError
from .sshagent import AGENT, CHUNK, MISSING, UNPACK, Agent

T = TypeVar("T")
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


#: AES-GCM first: CPUs encrypt it in hardware, and asyncssh's default (ChaCha20) moved 135 MB/s where
#: AES-GCM moved 206 MB/s to the test sshd (OpenSSH's client: 215 MB/s); the rest for older servers
PREFERRED_CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
]


def load_asyncssh() -> Any:
    """asyncssh, imported without the warning cryptography 51+ gives when asyncssh loads its DSA
    support (cryptography's deprecation, not the user's: launchbay never asks for DSA keys; a user
    whose key or host is DSA still gets asyncssh's own error). Without this, every first SSH
    connection printed a CryptographyDeprecationWarning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
        import asyncssh
    return asyncssh


class SSHConnectionLost(TargetError):
    """The connection dropped during a call; a fresh connection may succeed."""


class RemotePythonError(TargetError):
    """The remote interpreter is missing or too old for launchbay's runner."""


MIN_PYTHON = (3, 9)


# -- the private event loop ---------------------------------------------------------------
_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0


def _get_loop() -> asyncio.AbstractEventLoop:
    """One loop per process, started on first use (and again in a forked child)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or not _loop.is_running():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=serve, name="launchbay-ssh", daemon=True).start()
            ready.wait(10)
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def _call(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    future = asyncio.run_coroutine_threadsafe(coro, _get_loop())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


# -- the connection ---------------------------------------------------------------------------
class SSHConnection:
    """One authenticated SSH connection (host key verified); blocking methods.

    ``python`` is the remote interpreter the agent runs on (3.9+); the file helpers
    and ``call`` need it, ``run`` does not.
    """

    def __init__(
        self,
        host: str,
        port: int = 22,
        user: str | None = None,
        identity_file: str | None = None,
        known_hosts: str | None = None,
        *,
        python: str = "python3",
        connect_timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.user = host, int(port), user
        self.identity_file = os.path.expanduser(identity_file) if identity_file else None
        self.known_hosts = os.path.expanduser(known_hosts or DEFAULT_KNOWN_HOSTS)
        self.python = python
        self.connect_timeout = connect_timeout
        #: payload bytes written to remote stdin (commands' input, uploads) by this connection
        self.bytes_sent = 0
        self._conn: Any = None
        self._agent: Agent | None = None
        self._agent_lock = threading.Lock()
        self._conn = _call(self._connect(), timeout=connect_timeout + 5)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"SSHConnection({self.user or ''}@{self.where})"

    def __enter__(self) -> SSHConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connect and explain failures ------------------------------------------------------
    async def _connect(self) -> Any:
        asyncssh = load_asyncssh()

        if self.identity_file and not os.path.isfile(self.identity_file):
            raise TargetError(
                f"The identity file {self.identity_file} does not exist: fix identity_file in the target's "
                "settings, or remove it to use your SSH agent."
            )
        if os.path.isfile(self.known_hosts):
            known_hosts: Any = self.known_hosts
        else:
            known_hosts = asyncssh.import_known_hosts("")
        options: dict[str, Any] = {
            "known_hosts": known_hosts,
            "preferred_auth": "publickey",
            "connect_timeout": self.connect_timeout,
            "keepalive_interval": 15,
            "encryption_algs": PREFERRED_CIPHERS,
        }
        if self.user:
            options["username"] = self.user
        if self.identity_file:
            options["client_keys"] = [self.identity_file]
        try:
            return await asyncssh.connect(self.host, self.port, **options)
        except asyncssh.HostKeyNotVerifiable:
            raise await self._host_key_error() from None
        except asyncssh.PermissionDenied:
            keys = f"the identity file {self.identity_file}" if self.identity_file else "the keys of your SSH agent"
            raise TargetError(
                f"{self.where} refused SSH login for user {self.user or '(default)'!r} with {keys}: check the "
                "user name, and that the public key is in that user's ~/.ssh/authorized_keys on the host."
            ) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise TargetError(
                f"Cannot use the identity file {self.identity_file} ({exc}). If it has a passphrase, add it to "
                "your SSH agent (ssh-add) and remove identity_file: launchbay never asks for or stores passwords."
            ) from None
        except socket.gaierror:
            raise TargetError(
                f"Cannot resolve the host name {self.host!r}: check host in the target's settings."
            ) from None
        except ConnectionRefusedError:
            raise TargetError(
                f"Cannot connect to {self.where} (connection refused): is sshd running there and is the port right?"
            ) from None
        except (asyncio.TimeoutError, TimeoutError):
            raise TargetError(
                f"Cannot connect to {self.where} (no answer within {self.connect_timeout:.0f} s): is the host up "
                "and reachable from here?"
            ) from None
        except OSError as exc:
            why = {errno.EHOSTUNREACH: "host unreachable", errno.ENETUNREACH: "network unreachable"}.get(
                exc.errno or 0, exc.strerror or str(exc)
            )
            raise TargetError(f"Cannot connect to {self.where} ({why}): is the host up and reachable?") from None
        except asyncssh.Error as exc:
            raise TargetError(f"The SSH handshake with {self.where} failed: {exc.reason}.") from None

    async def _host_key_error(self) -> TargetError:
        """Unknown or changed host key: say which, show the fingerprint, say how to accept it."""
        asyncssh = load_asyncssh()

        try:
            key = await asyncio.wait_for(asyncssh.get_server_host_key(self.host, self.port), self.connect_timeout)
            shown = f"{key.get_algorithm()} key {key.get_fingerprint()}" if key else "its key"
        except (OSError, asyncssh.Error, asyncio.TimeoutError):
            shown = "its key"
        known: list[Any] = []
        if os.path.isfile(self.known_hosts):
            try:
                trusted = asyncssh.read_known_hosts(self.known_hosts).match(self.host, self.host, self.port)
                known = list(trusted[0])
            except (OSError, ValueError, asyncssh.Error):
                known = []
        port_flag = f"-p {self.port} " if self.port != 22 else ""
        accept = f"ssh-keyscan {port_flag}{self.host} >> {self.known_hosts}"
        if known:
            entry = f"[{self.host}]:{self.port}" if self.port != 22 else self.host
            return TargetError(
                f"The host key of {self.where} has CHANGED: it now presents {shown}, not the key in "
                f"{self.known_hosts}. Someone may be intercepting the connection; if the host was reinstalled, "
                f"check that fingerprint with its owner, remove the old entry with "
                f"`ssh-keygen -R '{entry}' -f {self.known_hosts}` and accept the new one with `{accept}`."
            )
        return TargetError(
            f"The host key of {self.where} is unknown ({shown} is not in {self.known_hosts}); launchbay refused "
            f"to connect. Check that fingerprint with the host's owner, then accept it with `{accept}` "
            "(or set known_hosts in the target's settings to a file that lists it)."
        )

    # -- commands ----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        conn = self._conn
        return conn is None or conn.is_closed()

    def close(self) -> None:
        """Close the connection (processes started detached on the host keep running)."""
        conn, self._conn, self._agent = self._conn, None, None
        if conn is not None:

            async def _close() -> None:
                conn.close()
                await conn.wait_closed()

            try:
                _call(_close(), timeout=5)
            except Exception:  # noqa: BLE001 - closing a dead connection must not raise
                pass

    def run_bytes(
        self,
        command: str,
        input: bytes | IO[bytes] | None = None,
        check: bool = True,
        timeout: float | None = 120.0,
    ) -> tuple[int, bytes, bytes]:
        """Run a shell command on the host; ``input`` (bytes or a binary file) goes to its stdin."""
        if self.closed:
            raise SSHConnectionLost(f"The SSH connection to {self.where} is closed.")
        try:
            rc, out, err = _call(asyncio.wait_for(self._run(command, input), timeout), timeout=None)
        except (asyncio.TimeoutError, TimeoutError):
            raise TargetError(f"A command on {self.where} did not finish within {timeout} s: {command[:80]}") from None
        except TargetError:
            raise
        except Exception as exc:  # asyncssh.Error, ConnectionError, BrokenPipeError...
            why = str(exc) or type(exc).__name__
            raise SSHConnectionLost(f"The SSH connection to {self.where} was lost ({why}).") from exc
        if check and rc != 0:
            detail = err.decode("utf-8", "replace").strip()[-800:] or out.decode("utf-8", "replace").strip()[-400:]
            raise TargetError(f"Command on {self.where} failed with exit code {rc}: {command[:120]}\n{detail}")
        return rc, out, err

    def run(
        self, command: str, check: bool = True, input: str | bytes | None = None, timeout: float | None = 120.0
    ) -> tuple[int, str, str]:
        """Run a shell command; returns (exit code, stdout, stderr) as text."""
        data = input.encode() if isinstance(input, str) else input
        rc, out, err = self.run_bytes(command, data, check=check, timeout=timeout)
        return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    async def _run(self, command: str, data: bytes | IO[bytes] | None) -> tuple[int, bytes, bytes]:
        asyncssh = load_asyncssh()

        conn = self._conn
        if conn is None:
            raise asyncssh.ConnectionLost("closed")
        process = await conn.create_process(command, encoding=None)

        async def feed() -> None:
            if isinstance(data, (bytes, bytearray)):
                process.stdin.write(data)
                self.bytes_sent += len(data)
            elif data is not None:
                while chunk := data.read(CHUNK):
                    process.stdin.write(chunk)
                    self.bytes_sent += len(chunk)
                    await process.stdin.drain()
            process.stdin.write_eof()

        feeder = asyncio.ensure_future(feed())
        out_task = asyncio.ensure_future(process.stdout.read())
        err_task = asyncio.ensure_future(process.stderr.read())
        try:
            await feeder
        except (BrokenPipeError, ConnectionError, asyncssh.Error):
            pass  # the command exited without reading all of its input: its exit code says why
        out, err = await out_task, await err_task
        await process.wait_closed()
        status = process.exit_status
        return (255 if status is None else int(status)), out, err

    # -- files -------------------------------------------------------------------------------------
    def exists(self, remote_path: str) -> bool:
        rc, _, _ = self.run(f"test -e {_q(remote_path)}", check=False)
        return rc == 0

    def put_bytes(self, remote_path: str, data: bytes, mode: int = 0o644) -> None:
        """Write ``data`` to ``remote_path`` (parents created; atomic rename into place)."""
        tmp = f"{remote_path}.tmp-lb$$"
        self.run_bytes(
            f"mkdir -p {_q(os.path.dirname(remote_path) or '.')} && cat > {_q(tmp)} && chmod {mode:o} {_q(tmp)}"
            f" && mv -f {_q(tmp)} {_q(remote_path)}",
            data,
        )

    def read_from(self, remote_path: str, offset: int = 0) -> bytes:
        """The bytes of ``remote_path`` after ``offset`` (empty when the file does not exist)."""
        _, out, _ = self.run_bytes(f"tail -c +{int(offset) + 1} {_q(remote_path)} 2>/dev/null", check=False)
        return out

    # -- the agent ----------------------------------------------------------------------------
    def remote_python(self) -> dict[str, Any]:
        """Start the agent if needed: ``{"version", "executable", "pid"}`` of the remote python."""
        return self._ensure_agent().hello

    def _ensure_agent(self) -> Agent:
        with self._agent_lock:
            agent = self._agent
            if agent is None or agent.broken:
                if self.closed:
                    raise SSHConnectionLost(f"The SSH connection to {self.where} is closed.")
                try:
                    agent = _call(self._start_agent(), timeout=self.connect_timeout + 60)
                except RemotePythonError:
                    raise
                except Exception as exc:
                    raise SSHConnectionLost(f"The SSH connection to {self.where} was lost ({exc!r}).") from exc
                self._agent = agent
            return agent

    async def _start_agent(self) -> Agent:
        exe = _q(self.python)
        command = f"command -v {exe} >/dev/null 2>&1 || exit 127; exec {exe} -u -c {_q(AGENT)}"
        process = await self._conn.create_process(command, encoding=None)
        line = await process.stdout.readline()
        if not line:
            await process.wait_closed()
            err = (await process.stderr.read()).decode(errors="replace").strip()
            if process.exit_status == 127:
                raise RemotePythonError(
                    f"No Python interpreter {self.python!r} on {self.where}: set python in the target's settings "
                    f"to the path of a Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ interpreter there."
                )
            raise RemotePythonError(
                f"{self.python!r} on {self.where} did not start launchbay's helper (exit code "
                f"{process.exit_status}): {err[-300:]}. Set python in the target's settings to a Python "
                f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ interpreter."
            )
        hello = json.loads(line)
        version = tuple(int(p) for p in str(hello["version"]).split(".")[:2])
        if version < MIN_PYTHON:
            process.close()
            raise RemotePythonError(
                f"The Python on {self.where} ({self.python}) is {hello['version']}; launchbay's runner needs "
                f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}+. Set python in the target's settings to a newer interpreter."
            )
        return Agent(process, hello)

    def call(self, code: str, args: Any = None, data: bytes = b"", timeout: float | None = 120.0) -> tuple[Any, bytes]:
        """Run Python ``code`` in the remote agent with ``args`` and ``data`` bound; it sets
        ``result`` (JSON-able) and may set ``payload`` (bytes). Returns (result, payload)."""
        agent = self._ensure_agent()
        head = {"key": hashlib.sha256(code.encode()).hexdigest(), "code": code, "args": args}
        try:
            reply, payload, sent = _call(asyncio.wait_for(agent.request(head, data), timeout), timeout=None)
        except (asyncio.TimeoutError, TimeoutError):
            raise SSHConnectionLost(f"The remote helper on {self.where} did not answer within {timeout} s.") from None
        except Exception as exc:
            why = str(exc) or type(exc).__name__
            raise SSHConnectionLost(f"The SSH connection to {self.where} was lost ({why}).") from exc
        self.bytes_sent += sent
        if not reply.get("ok"):
            raise TargetError(
                f"launchbay's helper failed on {self.where}: {reply.get('error')}\n{reply.get('trace', '')}"
            )
        return reply.get("result"), payload

    # -- files (through the agent) ----------------------------------------------------------------
    def missing_blobs(self, blob_dir: str, names: Iterable[str]) -> list[str]:
        """Which of ``names`` (blobs by their name in the folder, ``fileset.blob_name``) ``blob_dir`` lacks."""
        result, _ = self.call(MISSING, {"base": blob_dir, "names": sorted(set(names))})
        return list(result)

    def upload_files(
        self, base_dir: str, files: dict[str, Path | bytes], *, blobs: bool = False, batch_bytes: int = 32 << 20
    ) -> int:
        """Send ``files`` (relative path → local file or content); each lands atomically under
        ``base_dir``. ``blobs``: the paths are ``ab/cdef..`` digests, checked on arrival.
        Returns the bytes sent (file contents plus a little framing)."""
        sent = 0
        batch: list[tuple[str, int, int]] = []
        chunks: list[bytes] = []
        size = 0

        def flush() -> None:
            nonlocal sent, size
            if batch:
                before = self.bytes_sent
                self.call(
                    UNPACK, {"base": base_dir, "files": list(batch), "blobs": blobs}, b"".join(chunks), timeout=None
                )
                sent += self.bytes_sent - before
            batch.clear()
            chunks.clear()
            size = 0

        for rel, source in sorted(files.items()):
            if isinstance(source, (bytes, bytearray)):
                data, mode = bytes(source), 0o644
            else:
                data = source.read_bytes()
                mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
            batch.append((rel, len(data), mode))
            chunks.append(data)
            size += len(data)
            if size >= batch_bytes:
                flush()
        flush()
        return sent

    def upload_blobs(self, blob_dir: str, blobs: dict[str, Path]) -> tuple[int, int]:
        """Send the blobs (name in the folder → local file) the remote folder lacks: (blobs sent, bytes sent)."""
        missing = self.missing_blobs(blob_dir, blobs)
        sent = self.upload_files(blob_dir, {name: blobs[name] for name in missing}, blobs=True)
        return len(missing), sent


def _q(text: str) -> str:
    """Shell-quote, but let a leading ``~/`` expand on the remote side."""
    if text.startswith("~/"):
        return "~/" + shlex.quote(text[2:])
    return shlex.quote(text)


# -- the pool: one connection per host and login in this process -------------------------------
@dataclass(frozen=True)
class SSHHost:
    """Where and as whom to log in (the pool's key); ``do`` runs an action on the pooled connection."""

    host: str
    port: int = 22
    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    python: str = "python3"
    connect_timeout: float = field(default=10.0, compare=False)

    @classmethod
    def from_settings(cls, target: str, settings: dict[str, Any]) -> SSHHost:
        """From a ``[targets.NAME]`` table (``host``, ``port``, ``user``, ``identity_file``, ...)."""

        def get(key: str, default: Any = None) -> Any:
            value = settings.get(key)
            return default if value is None or value == "" else value

        host = get("host")
        if not host:
            raise TargetError(f'[targets.{target}] has no host: set host = "name-or-address" in launchbay.toml.')
        return cls(
            str(host),
            int(get("port", 22)),
            get("user"),
            get("identity_file"),
            get("known_hosts"),
            str(get("python", "python3")),
            float(get("connect_timeout", 10)),
        )

    @property
    def where(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    def connection(self, fresh: bool = False) -> SSHConnection:
        """The pooled connection (a new one when it was closed or dropped, or ``fresh``)."""
        global _pool_pid
        with _pool_lock:
            if _pool_pid != os.getpid():  # a forked child must not touch its parent's connections
                _pool.clear()
                _pool_pid = os.getpid()
            conn = _pool.get(self)
            if conn is not None and (fresh or conn.closed):
                conn.close()
                conn = None
            if conn is None:
                conn = SSHConnection(
                    self.host,
                    self.port,
                    self.user,
                    self.identity_file,
                    self.known_hosts,
                    python=self.python,
                    connect_timeout=self.connect_timeout,
                )
                if not _pool:
                    atexit.register(close_connections)  # a clean goodbye instead of a dropped connection
                _pool[self] = conn
            return conn

    def do(self, action: Callable[[SSHConnection], T]) -> T:
        """Run ``action`` on the pooled connection; reconnect once if it dropped."""
        try:
            return action(self.connection())
        except SSHConnectionLost:
            return action(self.connection(fresh=True))


_pool_lock = threading.Lock()
_pool: dict[SSHHost, SSHConnection] = {}
_pool_pid = os.getpid()


def pooled_connections() -> list[SSHConnection]:
    """The connections the pool holds now (for tests and diagnostics)."""
    with _pool_lock:
        return list(_pool.values())


def close_connections() -> None:
    """Close every pooled connection (runs keep going on their hosts)."""
    with _pool_lock:
        for conn in _pool.values():
            conn.close()
        _pool.clear()
