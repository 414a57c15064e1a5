"""Where the Slurm target runs Slurm's commands and keeps run folders: this machine, or a login node.

``Here`` runs ``sbatch``/``squeue``/``scancel`` as local processes and writes run
folders with plain file calls; ``Login`` does the same over the pooled SSH
connection (sshconn), with ``login_setup`` lines (``module load slurm``) first.
Both bring a run folder back with the one mirror routine (mirror.py).
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil
import subprocess
from pathlib import Path

from ..store import RunRecord
from .mirror import LocalFolder, SSHFolder, mirror
from .sshconn import SSHConnection, SSHHost

Files = dict[str, "bytes | Path"]  # relative path -> content, or a local file to copy


class Here:
    """Slurm commands and run folders on this machine."""

    def run(self, argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        full_env = dict(os.environ, **(env or {}))
        try:
            proc = subprocess.run(
                argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            return 127, "", f"{argv[0]}: command not found"
        except subprocess.TimeoutExpired:
            return 124, "", f"{argv[0]} did not answer in 60 s"
        return proc.returncode, proc.stdout, proc.stderr.strip()

    def home(self) -> str:
        return os.path.expanduser("~")

    def put(self, base: str, files: Files, executable: set[str] | None = None) -> None:
        for rel, source in files.items():
            dest = Path(base) / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, Path):
                shutil.copyfile(source, dest)
            else:
                dest.write_bytes(source)
            if executable and rel in executable:
                dest.chmod(0o755)

    def read(self, path: str) -> bytes | None:
        try:
            return Path(path).read_bytes()
        except OSError:
            return None

    def append(self, path: str, data: bytes) -> None:
        with open(path, "ab") as fh:
            fh.write(data)

    def remove(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def mirror(self, remote: str, record: RunRecord) -> None:
        if Path(remote) != record.run_dir:
            mirror(LocalFolder(Path(remote)), record.run_dir)


class Login(Here):
    """The same, on a login node, over the pooled SSH connection (sshconn)."""

    def __init__(self, remote: SSHHost, setup: str = "") -> None:
        self.remote = remote
        self.setup = setup  # shell lines first, e.g. "module load slurm"

    def run(self, argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        script = f"exec {shlex.join(argv)}"
        if env:  # values arrive on stdin, never in a command line or a file
            script = f"set -a && . /dev/stdin && set +a && {script}"
        if cwd:
            script = f"cd {shlex.quote(cwd)} && {script}"
        if self.setup:
            script = f"{self.setup}\n{script}"
        data = "".join(f"{k}={shlex.quote(v)}\n" for k, v in (env or {}).items())
        rc, out, err = self.remote.do(lambda c: c.run(f"sh -c {shlex.quote(script)}", check=False, input=data))
        return int(rc), str(out), str(err).strip()

    def home(self) -> str:
        _, out, _ = self.remote.do(lambda c: c.run('printf %s "$HOME"'))
        return str(out).strip()

    def put(self, base: str, files: Files, executable: set[str] | None = None) -> None:
        def send(conn: SSHConnection) -> None:
            conn.upload_files(base, files)  # one stream for the whole folder
            if executable:
                conn.run("chmod 755 " + " ".join(shlex.quote(posixpath.join(base, r)) for r in sorted(executable)))

        self.remote.do(send)

    def read(self, path: str) -> bytes | None:
        rc, out, _ = self.remote.do(lambda c: c.run_bytes(f"cat {shlex.quote(path)}", check=False))
        return bytes(out) if rc == 0 else None

    def append(self, path: str, data: bytes) -> None:
        self.remote.do(lambda c: c.run_bytes(f"cat >> {shlex.quote(path)}", data))

    def remove(self, path: str) -> None:
        self.remote.do(lambda c: c.run(f"rm -rf {shlex.quote(path)}", check=False))

    def mirror(self, remote: str, record: RunRecord) -> None:
        mirror(SSHFolder(self.remote.do, remote), record.run_dir)
