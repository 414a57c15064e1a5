"""Shared fixtures: a fresh project folder and store per test, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
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


# A test that uses one of these fixtures needs that service, and carries its marker (so ``-m "not ray"`` works).
SERVICE_FIXTURES = {
    "client": "docker",
    "tcp_daemon": "docker",
    "ssh_project": "ssh",
    "ray_head": "ray",
    "slurm": "slurm",
    "team_pg": "postgres",
    "team_s3": "s3",
    "registry": "registry",
    "private_registry": "registry",
}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The warm runner server the local runs started (launchbay/forkserver.py) ends with the tests."""
    from launchbay import forkserver

    forkserver.stop_server()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in SERVICE_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


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


# -- the five targets ------------------------------------------------------------------------------------------
# How each target is found and configured on this machine (scripts/services/start.sh starts the services);
# test_target_contract.py runs every scenario on each, the per-target files keep what only that target does.

BASE_IMAGE = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE", "")
RAY_ADDRESS = os.environ.get("LAUNCHBAY_TEST_RAY_ADDRESS", "")
SSH_ENV = {k: os.environ.get(f"LAUNCHBAY_TEST_SSH_{k}", "") for k in ("HOST", "PORT", "USER", "KEY", "KNOWN_HOSTS")}


def ray_answers() -> bool:
    """The test Ray head's Jobs API answers."""
    if not RAY_ADDRESS:
        return False
    import urllib.request

    try:
        with urllib.request.urlopen(f"{RAY_ADDRESS}/api/version", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def slurm_answers() -> bool:
    """The test Slurm answers ``sinfo``."""
    import shutil

    if not os.environ.get("LAUNCHBAY_TEST_SLURM") or not shutil.which("sinfo"):
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def toml_table(name: str, settings: dict[str, object]) -> str:
    """``[targets.NAME]`` with ``settings``; None values are left out."""

    def value(v: object) -> str:  # JSON strings, numbers and lists are TOML too; tables are inline
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    return f"[targets.{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in settings.items() if v is not None)


def ssh_settings(workdir: Path, **overrides: object) -> dict[str, object]:
    """The test sshd as an ``ssh`` target whose remote folder is ``workdir``."""
    settings: dict[str, object] = {
        "type": "ssh",
        "host": SSH_ENV["HOST"],
        "port": int(SSH_ENV["PORT"] or 22),
        "user": SSH_ENV["USER"],
        "identity_file": SSH_ENV["KEY"],
        "known_hosts": SSH_ENV["KNOWN_HOSTS"],
        "workdir": str(workdir),
    }
    return {**settings, **overrides}


class TargetUnderTest:
    """One configured target: ``name`` to submit to, ``configure(folder)`` writes it into a project;
    ``remote_dir``: where the target keeps run folders on its side (SSH's workdir, Slurm's shared_dir)."""

    def __init__(self, kind: str, name: str, settings: dict[str, object] | None, remote_dir: Path | None = None):
        self.kind, self.name, self.settings, self.remote_dir = kind, name, settings, remote_dir

    def configure(self, folder: Path) -> None:
        if self.settings is not None:
            (folder / "launchbay.toml").write_text(toml_table(self.name, self.settings))

    def __repr__(self) -> str:
        return self.kind


def target_params(*kinds: str) -> list[object]:
    """``kinds`` as parameters of the ``target`` fixture, each with its service's marker; a test file narrows
    the list with ``@pytest.mark.parametrize("target", target_params(...), indirect=True)``."""
    return [k if k == "local" else pytest.param(k, marks=getattr(pytest.mark, k.split("-")[0])) for k in kinds]


# -- how each flavour is made: one row a target. A factory yields the configured target and cleans up after it;
# ``scratch`` is a folder of the flavour's own (under the session's base temp folder).
Flavour = Callable[[pytest.FixtureRequest, Path], Iterator[TargetUnderTest]]


def _local(request: pytest.FixtureRequest, scratch: Path) -> Iterator[TargetUnderTest]:
    yield TargetUnderTest("local", "local", None)


def _docker(request: pytest.FixtureRequest, scratch: Path) -> Iterator[TargetUnderTest]:
    """``docker`` mounts the run folder (local socket); ``docker-tcp`` reaches the same daemon as a remote one
    over tcp://, so the run folder is copied into the container and back."""
    kind = request.param
    need_service(docker_ready(BASE_IMAGE), "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    host = request.getfixturevalue("tcp_daemon") if kind == "docker-tcp" else None
    yield TargetUnderTest(kind, "box", {"type": "docker", "image": BASE_IMAGE, "docker_host": host})
    remove_containers(str(scratch.parent))


def _ssh(request: pytest.FixtureRequest, scratch: Path) -> Iterator[TargetUnderTest]:
    need_service(all(SSH_ENV.values()), "The test sshd (LAUNCHBAY_TEST_SSH_*)")
    yield TargetUnderTest("ssh", "gpu-box", ssh_settings(scratch / "remote"), scratch / "remote")
    from launchbay.targets.ssh import close_connections

    close_connections()


def _ray(request: pytest.FixtureRequest, scratch: Path) -> Iterator[TargetUnderTest]:
    need_service(ray_answers(), "Ray head (LAUNCHBAY_TEST_RAY_ADDRESS)")
    yield TargetUnderTest("ray", "ray", {"type": "ray", "address": RAY_ADDRESS})


def _slurm(request: pytest.FixtureRequest, scratch: Path) -> Iterator[TargetUnderTest]:
    """shared_dir: the run folder is elsewhere, and sync copies it back."""
    need_service(slurm_answers(), "Slurm (LAUNCHBAY_TEST_SLURM, SLURM_CONF)")
    settings = {"type": "slurm", "python": sys.executable, "shared_dir": str(scratch / "shared")}
    yield TargetUnderTest("slurm", "cluster", settings, scratch / "shared")


FLAVOURS: dict[str, Flavour] = {
    "local": _local,
    "docker": _docker,
    "docker-tcp": _docker,
    "ssh": _ssh,
    "ray": _ray,
    "slurm": _slurm,
}
TARGETS = target_params(*FLAVOURS)


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetUnderTest]:
    """Each target in turn, once per module (one Ray head, one Slurm, one sshd shared by every test)."""
    kind: str = request.param
    if kind not in FLAVOURS:
        raise ValueError(f"no such target kind in the tests: {kind}")
    yield from FLAVOURS[kind](request, tmp_path_factory.mktemp(f"{kind}-target"))


@pytest.fixture(scope="session")
def tcp_daemon() -> Iterator[str]:
    """The local Docker daemon's socket forwarded to a TCP port, so ``docker_host = "tcp://..."`` takes the
    remote path (the run folder is copied into the container and back, not mounted)."""
    import socket
    import threading

    sock_path = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for end in (src, dst):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        src.close()  # each socket is the source of one pump: closed once, when its pump ends

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            daemon = socket.socket(socket.AF_UNIX)
            daemon.connect(sock_path)
            threading.Thread(target=pump, args=(conn, daemon), daemon=True).start()
            threading.Thread(target=pump, args=(daemon, conn), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def remove_containers(store_prefix: str) -> None:
    """Containers of runs whose store lies under ``store_prefix``: a failed test must not leave them running."""
    import docker

    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": "launchbay.store"}):
        if container.labels.get("launchbay.store", "").startswith(store_prefix):
            container.remove(force=True)


def pids_with(token: str) -> list[int]:
    """Live processes on this machine (containers' and the SSH host's included) with ``token`` in their
    command line."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if token.encode() not in fh.read():
                    continue
        except OSError:
            continue
        if pid_alive(int(entry)):
            found.append(int(entry))
    return found


DATA_SERVER = r"""
import hashlib, http.server, sys, time
FILES = {"/ref.csv": b"a,b\n1,2\n" * 1000, "/other.bin": bytes(range(256)) * 64}
GETS = []
class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self, body):
        if self.path.startswith("/slow"):
            time.sleep(60)  # accepts, never answers: a timeout
        path = self.path.split("?")[0]
        data = FILES.get(path)
        if data is None:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"' + hashlib.md5(data).hexdigest() + '"')
        self.end_headers()
        if body:
            print("GET", path, flush=True)
            self.wfile.write(data)
    def do_GET(self): self._answer(True)
    def do_HEAD(self): self._answer(False)
    def log_message(self, *a): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class DataServer:
    """A real HTTP server in a subprocess: /ref.csv and /other.bin with an MD5 ETag, 404 elsewhere,
    /slow... never answers. ``gets()`` is how many full downloads it served so far."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", DATA_SERVER], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"
        self._log: list[str] = []
        import threading

        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.append(line.strip())

    def gets(self, path: str = "/ref.csv") -> int:
        return sum(1 for line in self._log if line == f"GET {path}")


@pytest.fixture(scope="session")
def data_server() -> Iterator[DataServer]:
    server = DataServer()
    yield server
    server.proc.kill()
    server.proc.wait()
    assert server.proc.stdout is not None
    server.proc.stdout.close()


# -- the team store's engines: PostgreSQL (a throwaway cluster) and S3 (moto's server, an emulator) ----------
PG_URL = os.environ.get("LAUNCHBAY_TEST_PG", "")
PG_READER_URL = os.environ.get("LAUNCHBAY_TEST_PG_READER", "")
PG_PASSFILE = os.environ.get("LAUNCHBAY_TEST_PGPASSFILE", "")
S3_ENV = {k: os.environ.get(f"LAUNCHBAY_TEST_S3_{k}", "") for k in ("ENDPOINT", "BUCKET", "KEY_ID", "SECRET")}


def pg_answers() -> bool:
    """The test PostgreSQL takes a login as its ``lb`` role (password from the pgpass file)."""
    if not (PG_URL and PG_PASSFILE):
        return False
    import psycopg

    try:
        with psycopg.connect(PG_URL, passfile=PG_PASSFILE, connect_timeout=5) as conn:
            return bool(conn.execute("SELECT 1").fetchone())
    except psycopg.Error:
        return False


def s3_answers() -> bool:
    """The S3 emulator (moto's server) answers and has the test bucket."""
    if not all(S3_ENV.values()):
        return False
    import urllib.request

    try:
        with urllib.request.urlopen(f"{S3_ENV['ENDPOINT']}/{S3_ENV['BUCKET']}", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def pg_schema_url(url: str, schema: str) -> str:
    """``url`` with its search path set to ``schema`` (each test has a schema of its own)."""
    from urllib.parse import quote

    return f"{url}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def team_pg(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty schema in the test PostgreSQL (owned by ``lb``, readable by ``lb_reader``): its URL.

    The password comes from the services' pgpass file through PGPASSFILE, as a user's ~/.pgpass would."""
    need_service(pg_answers(), "The test PostgreSQL (LAUNCHBAY_TEST_PG, LAUNCHBAY_TEST_PGPASSFILE)")
    import secrets

    import psycopg

    monkeypatch.setenv("PGPASSFILE", PG_PASSFILE)
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, passfile=PG_PASSFILE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO lb_reader")
        conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO lb_reader")
    try:
        yield pg_schema_url(PG_URL, schema)
    finally:
        with psycopg.connect(PG_URL, passfile=PG_PASSFILE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def team_s3() -> tuple[str, dict[str, str]]:
    """A fresh prefix in the S3 emulator's test bucket: its ``s3://`` URL and the ``[s3]`` settings."""
    need_service(s3_answers(), "The S3 emulator, moto's server (LAUNCHBAY_TEST_S3_*)")
    import secrets

    settings = {
        "endpoint": S3_ENV["ENDPOINT"],
        "access_key_id": S3_ENV["KEY_ID"],
        "secret_access_key": S3_ENV["SECRET"],
        "region": "us-east-1",
    }
    return f"s3://{S3_ENV['BUCKET']}/t-{secrets.token_hex(6)}", settings


# -- the Docker registries (scripts/services/start.sh registry): an open one and one with htpasswd auth ----------
REGISTRY_ENV = {
    k: os.environ.get(f"LAUNCHBAY_TEST_{k}", "")
    for k in ("REGISTRY", "PRIVATE_REGISTRY", "REGISTRY_USER", "REGISTRY_PASSWORD")
}


def registry_answers(address: str, want: int) -> bool:
    """The registry at ``address`` answers its API root with ``want`` (200 open, 401 behind auth)."""
    import urllib.error
    import urllib.request

    if not address:
        return False
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(f"http://{address}/v2/", timeout=5) as response:
            return bool(response.status == want)
    except urllib.error.HTTPError as exc:
        return exc.code == want
    except OSError:
        return False


@pytest.fixture
def registry() -> str:
    """The open test registry's address (``127.0.0.1:PORT``): push and pull without credentials."""
    need_service(registry_answers(REGISTRY_ENV["REGISTRY"], 200), "The test Docker registry (LAUNCHBAY_TEST_REGISTRY)")
    return REGISTRY_ENV["REGISTRY"]


class PrivateRegistry:
    def __init__(self, address: str, username: str, password: str) -> None:
        self.address, self.username, self.password = address, username, password


@pytest.fixture
def private_registry() -> PrivateRegistry:
    """The test registry behind htpasswd auth, with the one user it knows."""
    env = REGISTRY_ENV
    need_service(
        registry_answers(env["PRIVATE_REGISTRY"], 401) and bool(env["REGISTRY_USER"] and env["REGISTRY_PASSWORD"]),
        "The private test Docker registry (LAUNCHBAY_TEST_PRIVATE_REGISTRY, LAUNCHBAY_TEST_REGISTRY_USER/PASSWORD)",
    )
    return PrivateRegistry(env["PRIVATE_REGISTRY"], env["REGISTRY_USER"], env["REGISTRY_PASSWORD"])
