"""The team store: PostgreSQL for the index, S3 for blobs, what a team expects of them beyond the contract.

PostgreSQL is a throwaway cluster of Debian's packages (scripts/services/start.sh postgres), each test
in a schema of its own; S3 is moto's standalone server, an S3 *emulator* spoken to over real HTTP.
The contract every store keeps is tests/test_store_contract.py; here: opening by URL, where the
password is (never written), schema versions between clients, a read-only role, a server that is
away or restarts, and two ingesters of one run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import PG_PASSFILE, PG_READER_URL, free_port, pg_schema_url
from launchbay.errors import StoreError, StoreUnavailableError
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunRecord, Store, open_store
from launchbay.store.migrations import SCHEMA_VERSION
from launchbay.store.postgres import PostgresStore
from launchbay.store.remote import S3Blobs


def new_run(store: Store, experiment: str = "exp") -> RunRecord:
    spec = RunSpec(script="train.py", experiment=experiment, params={"lr": 0.1})
    return store.create_run(spec, target_type="local", snapshot_id=None, properties={})


def restart_postgres(data: str) -> None:
    """``pg_ctl -m fast restart`` of the test cluster (its log stays its own: the server outlives this call)."""
    log = str(Path(data).parent / "postgres.log")
    pg_ctl = "/usr/lib/postgresql/15/bin/pg_ctl"
    subprocess.run(
        ["runuser", "-u", "postgres", "--", pg_ctl, "-D", data, "-l", log, "-m", "fast", "-w", "restart"],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


def schema_of(url: str) -> str:
    return url.rsplit("%3D", 1)[1]


def test_a_postgresql_url_opens_the_team_store_and_its_uri_reopens_it_without_the_password(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password given in the URL (here: the pgpass file's, as a ${ENV} reference would expand to)
    is used to log in and then kept out of ``uri``, of run.json and of every file of the local folder."""
    password = next(line.split(":")[4] for line in Path(PG_PASSFILE).read_text().splitlines() if ":lb:" in line)
    monkeypatch.delenv("PGPASSFILE")  # only the URL's password can log in now
    with_password = team_pg.replace("lb@", f"lb:{password}@")
    blobs, s3 = team_s3
    with PostgresStore(with_password, blobs_url=blobs, cache_dir=tmp_path / "local", s3=s3) as store:
        run = new_run(store)
        uri = store.uri
        assert password not in uri and uri.startswith("postgresql://lb@127.0.0.1:")
        assert "blobs=s3" in uri and "cache=" in uri  # another process reopens the same store from it
        assert isinstance(store.blobs, S3Blobs)
    for path in (tmp_path / "local").rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    monkeypatch.setenv("PGPASSFILE", PG_PASSFILE)
    with open_store(uri) as again:  # by scheme, through the registry
        assert isinstance(again, PostgresStore)
        assert again.get_run(run.run_id).params == {"lr": 0.1}
        assert again.runs_dir == tmp_path / "local" / "runs"


def test_a_wrong_password_is_one_line_that_says_where_passwords_go(team_pg: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"refused the login of lb .*PGPASSWORD.*pgpass") as caught:
        PostgresStore(team_pg.replace("lb@", "lb:not-the-password@"), cache_dir=tmp_path)
    assert "\n" not in str(caught.value) and "not-the-password" not in str(caught.value)


def test_a_server_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"Cannot reach the team store postgresql://lb@127\.0\.0\.1:\d+/launchbay"):
        PostgresStore(f"postgresql://lb@127.0.0.1:{free_port()}/launchbay", cache_dir=tmp_path)


def test_a_newer_schema_is_refused_by_an_older_client_and_an_older_one_names_the_migrate_command(
    team_pg: str, tmp_path: Path
) -> None:
    with PostgresStore(team_pg, cache_dir=tmp_path) as store:
        run = new_run(store)
    schema = schema_of(team_pg)
    with psycopg.connect(team_pg.split("?")[0], passfile=PG_PASSFILE, autocommit=True) as conn:
        conn.execute(f"UPDATE {schema}.launchbay_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this launchbay") as newer:
        PostgresStore(team_pg, cache_dir=tmp_path)
    assert "\n" not in str(newer.value) and "pip install -U" in str(newer.value)
    # a store left at the schema before the last migration (as the launchbay before it made it)
    with psycopg.connect(team_pg.split("?")[0], passfile=PG_PASSFILE, autocommit=True) as conn:
        for table in ("queue", "queue_lock", "schedules", "schedule_fires"):  # the last migration: queues, schedules
            conn.execute(f"DROP TABLE {schema}.{table}")
        conn.execute(f"UPDATE {schema}.launchbay_schema SET version = %s", (SCHEMA_VERSION - 1,))
    with pytest.raises(StoreError, match=r"`launchbay store migrate`"):
        PostgresStore(team_pg, cache_dir=tmp_path)
    env = {**os.environ, "LAUNCHBAY_STORE": team_pg}
    done = subprocess.run(
        [sys.executable, "-m", "launchbay", "store", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"schema {SCHEMA_VERSION - 1} -> {SCHEMA_VERSION}" in done.stdout
    with PostgresStore(team_pg, cache_dir=tmp_path) as store:
        assert store.get_run(run.run_id).run_id == run.run_id and store.queue_entries() == []


def test_a_read_only_role_lists_and_reads_and_gets_one_line_for_a_write(team_pg: str, tmp_path: Path) -> None:
    with PostgresStore(team_pg, cache_dir=tmp_path / "owner") as store:
        run = new_run(store)
        with store.write(run.pk) as writer:
            writer.append_points("loss", [("loss", 0.5, 0, time.time())])
    reader_url = pg_schema_url(PG_READER_URL, schema_of(team_pg))
    with PostgresStore(reader_url, cache_dir=tmp_path / "reader") as reader:
        assert [r.run_id for r in reader.list_runs()] == [run.run_id]
        assert reader.read_series(reader.get_run(run.run_id), "loss").values.tolist() == [0.5]
        with pytest.raises(StoreError, match=r"role lb_reader may only read the team store .*nothing was written"):
            new_run(reader)
        with pytest.raises(StoreError, match=r"may only read"):
            reader.end_run(reader.get_run(run.run_id).pk, RunStatus.CANCELED)
        assert reader.runs_dir.is_dir() and not any(reader.runs_dir.iterdir())  # no folder left behind


def test_two_ingesters_of_one_run_claim_its_journal_bytes_once(team_pg: str, tmp_path: Path) -> None:
    """Eight clients (each its own store and connection, as eight machines) race to ingest the same
    journal bytes: the offsets are claimed in the transaction that appends the points, so exactly
    one appends them and nothing is doubled."""
    with PostgresStore(team_pg, cache_dir=tmp_path / "a") as store:
        run = new_run(store)
    won: list[int] = []
    start = threading.Barrier(8)

    def ingest(i: int) -> None:
        with PostgresStore(team_pg, cache_dir=tmp_path / f"client{i}") as mine:
            start.wait()
            for chunk in range(20):
                with mine.write(run.pk) as writer:
                    if writer.claim_offsets({"events.jnl": (chunk * 100, chunk * 100 + 100)}):
                        writer.append_points("loss", [("loss", float(chunk), chunk, time.time())])
                        won.append(chunk)

    threads = [threading.Thread(target=ingest, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(won) == list(range(20))
    with PostgresStore(team_pg, cache_dir=tmp_path / "a") as store:
        series = store.read_series(store.get_run(run.run_id), "loss")
        assert series.steps.tolist() == list(range(20))
        assert store.journal_position(run.pk)[0] == {"events.jnl": 2000}


def test_readers_never_wait_for_a_writer(team_pg: str, tmp_path: Path) -> None:
    """A write transaction held open (the writers' lock taken, rows changed) does not delay a listing."""
    with (
        PostgresStore(team_pg, cache_dir=tmp_path / "w") as writer_store,
        PostgresStore(team_pg, cache_dir=tmp_path / "r") as reader,
    ):
        run = new_run(writer_store)
        held = threading.Event()
        release = threading.Event()

        def slow_writer() -> None:
            with writer_store.write(run.pk) as writer:
                writer.set_tag("k", "v")
                held.set()
                release.wait(10)

        thread = threading.Thread(target=slow_writer)
        thread.start()
        assert held.wait(10)
        began = time.monotonic()
        listed = reader.list_runs()
        assert time.monotonic() - began < 1.0
        assert "k" not in listed[0].tags  # the uncommitted tag is not seen
        release.set()
        thread.join(10)
        assert reader.get_run(run.run_id).tags["k"] == "v"


@pytest.mark.slow
def test_a_restart_of_postgresql_loses_nothing_and_the_store_goes_on(team_pg: str, tmp_path: Path) -> None:
    """``pg_ctl -m fast restart`` while a client holds connections: its next read reconnects by
    itself, a write in flight when the server went away wrote nothing (one line, not a traceback),
    and the write done again afterwards is there exactly once."""
    data = os.environ["LAUNCHBAY_TEST_PG_DATA"]
    with PostgresStore(team_pg, cache_dir=tmp_path) as store:
        run = new_run(store)
        with store.write(run.pk) as writer:
            assert writer.claim_offsets({"events.jnl": (0, 10)})
            writer.append_points("loss", [("loss", 1.0, 0, time.time())])
        failed: list[BaseException] = []
        inside = threading.Event()

        def writing_across_the_restart() -> None:
            try:
                with store.write(run.pk) as writer:
                    assert writer.claim_offsets({"events.jnl": (10, 20)})
                    writer.append_points("loss", [("loss", 2.0, 1, time.time())])
                    inside.set()
                    time.sleep(3)  # the server restarts meanwhile
                    writer.set_tag("late", "yes")
            except StoreError as exc:
                failed.append(exc)

        thread = threading.Thread(target=writing_across_the_restart)
        thread.start()
        assert inside.wait(10)
        restart_postgres(data)
        thread.join(30)
        assert failed and "\n" not in str(failed[0])
        record = store.get_run(run.run_id)  # a read reconnects
        assert store.read_series(record, "loss").values.tolist() == [1.0]
        assert store.journal_position(run.pk)[0] == {"events.jnl": 10}
        with store.write(run.pk) as writer:  # ingest goes on from where it was
            assert writer.claim_offsets({"events.jnl": (10, 20)})
            writer.append_points("loss", [("loss", 2.0, 1, time.time())])
        assert store.read_series(record, "loss").values.tolist() == [1.0, 2.0]


class LateForwarder:
    """A TCP port that refuses connections until ``open()``, then relays them to ``upstream``: an
    S3 service that is unreachable for a while, then back."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream, self.port = upstream, free_port()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def open(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        server.settimeout(0.2)
        self._server = server
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while self._server is not None:
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with src, dst:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for thread in self._threads:
            thread.join(5)


def test_an_upload_while_s3_is_unreachable_is_retried_with_backoff_until_it_is_back(
    team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, settings = team_s3
    endpoint = settings["endpoint"].removeprefix("http://")
    host, port = endpoint.split(":")
    away = LateForwarder((host, int(port)))
    blobs = S3Blobs(url, tmp_path / "cache", {**settings, "endpoint": f"http://127.0.0.1:{away.port}"})
    done: list[str] = []
    began = time.monotonic()
    upload = threading.Thread(target=lambda: done.append(blobs.put_bytes(b"kept through an outage")))
    upload.start()
    time.sleep(3)  # the service is away for 3 s: connection refused, again and again
    assert not done
    away.open()
    try:
        upload.join(60)
        assert done and time.monotonic() - began >= 3
        direct = S3Blobs(url, tmp_path / "other-machine", settings)
        assert direct.read_bytes(done[0]) == b"kept through an outage"  # whole, from the bucket itself
    finally:
        away.close()


def test_launchbay_toml_names_the_team_store_and_its_password_is_an_env_reference_never_written(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = next(line.split(":")[4] for line in Path(PG_PASSFILE).read_text().splitlines() if ":lb:" in line)
    monkeypatch.delenv("PGPASSFILE")
    monkeypatch.delenv("LAUNCHBAY_STORE", raising=False)
    monkeypatch.setenv("LB_PG_PASSWORD", password)
    blobs, s3 = team_s3
    monkeypatch.setenv("TEAM_S3_SECRET", s3["secret_access_key"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "launchbay.toml").write_text(
        f'[store]\nurl = "{team_pg}"\nblobs = "{blobs}"\npassword = "${{LB_PG_PASSWORD}}"\n'
        f'cache = "{tmp_path / "local"}"\n\n[s3]\nendpoint = "{s3["endpoint"]}"\nregion = "us-east-1"\n'
        f'access_key_id = "{s3["access_key_id"]}"\nsecret_access_key = "${{TEAM_S3_SECRET}}"\n'
    )
    with open_store(start=project) as store:
        assert isinstance(store, PostgresStore) and isinstance(store.blobs, S3Blobs)
        run = new_run(store)
        digest = store.blobs.put_bytes(b"through [s3]")
        assert password not in store.uri
    assert S3Blobs(blobs, tmp_path / "elsewhere", s3).read_bytes(digest) == b"through [s3]"
    for path in [*(tmp_path / "local").rglob("*"), project / "launchbay.toml"]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert run.created_by  # the login name: no [user] name here


def test_the_environment_alone_names_a_team_store_and_its_bucket(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LAUNCHBAY_STORE and LAUNCHBAY_BLOBS, with boto3's own AWS_* variables for the endpoint and keys."""
    blobs, s3 = team_s3
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LAUNCHBAY_STORE", team_pg)
    monkeypatch.setenv("LAUNCHBAY_BLOBS", blobs)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3["secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("LAUNCHBAY_USER", "robin")
    with open_store() as store:
        assert isinstance(store, PostgresStore) and store.blobs.location == blobs
        assert store.root.is_relative_to(tmp_path / "xdg" / "launchbay" / "team")
        digest = store.blobs.put_bytes(b"through AWS_*")
        run = new_run(store)
        assert [r.run_id for r in store.list_runs(user="robin")] == [run.run_id]
    assert S3Blobs(blobs, tmp_path / "elsewhere", s3).read_bytes(digest) == b"through AWS_*"


def test_the_embedded_store_commands_say_in_one_line_that_a_team_store_is_not_theirs(
    team_pg: str, tmp_path: Path
) -> None:
    env = {**os.environ, "LAUNCHBAY_STORE": team_pg}
    for command in (["store", "repair"], ["store", "verify"], ["store", "aside"]):
        done = subprocess.run(
            [sys.executable, "-m", "launchbay", *command], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "is a team store" in done.stderr
    assert not any(tmp_path.iterdir())  # no folder named after the URL


INGESTER = """
import sys
from launchbay.ingest import ingest_run
from launchbay.store import open_store
with open_store(sys.argv[1]) as store:
    ingest_run(store, store.get_run(sys.argv[2]))
"""


@pytest.mark.slow
def test_sixteen_processes_ingesting_sixteen_runs_at_once_lose_no_point_and_see_no_lock_error(
    team_pg: str, tmp_path: Path
) -> None:
    """Each run's journal (4 frames of 5,000 points) is ingested by its own process, and a second
    process per run races the first for the same bytes (on one machine the ingest lock orders the
    two; across machines the journal offsets do, as the eight-clients test shows): 32 writers at
    once, every point kept once, no lock error."""
    import marshal
    import struct

    with PostgresStore(team_pg, cache_dir=tmp_path) as store:
        runs = [new_run(store) for _ in range(16)]
        now = time.time()
        for run in runs:
            journal = run.run_dir / "journal"
            journal.mkdir(parents=True, exist_ok=True)
            with open(journal / "p1.bin", "wb") as fh:
                for start in range(0, 20_000, 5_000):
                    data = marshal.dumps(("m", [("loss", i * 0.5, i, now) for i in range(start, start + 5_000)]))
                    fh.write(struct.pack("<I", len(data)) + data)
        procs = [
            subprocess.Popen([sys.executable, "-c", INGESTER, store.uri, run.run_id], stderr=subprocess.PIPE)
            for run in runs
            for _ in range(2)
        ]
        errors = [p.communicate(timeout=240)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0] * 32, errors
        assert not any(errors), errors
        for run in runs:
            assert store.read_series(store.get_run(run.run_id), "loss").steps.tolist() == list(range(20_000))


def test_a_database_that_does_not_exist_is_one_line_that_is_not_waited_for(team_pg: str, tmp_path: Path) -> None:
    missing = team_pg.split("?")[0].rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError, match=r"no_such_database.*does not exist.*createdb") as caught:
        PostgresStore(missing, cache_dir=tmp_path)
    assert not isinstance(caught.value, StoreUnavailableError)  # a wait would never end


def test_an_ended_runs_files_go_to_the_bucket_once_gc_keeps_them_and_another_machine_reads_them(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from launchbay.housekeeping import collect_garbage

    blobs, s3 = team_s3
    with PostgresStore(team_pg, blobs_url=blobs, cache_dir=tmp_path / "mine", s3=s3) as store:
        run = new_run(store)
        (run.run_dir / "files" / "outputs").mkdir(parents=True)
        (run.run_dir / "files" / "outputs" / "model.txt").write_text("weights")
        store.end_run(run.pk, RunStatus.COMPLETED)
        assert store.seal(store.get_run(run.run_id))  # what ingest does once the run's final event is in
        assert not store.seal(store.get_run(run.run_id))  # once only: the manifest is recorded already
        report = collect_garbage(store)
        assert report["blobs"] == 0 and report["kept_blobs"] == 2  # the manifest and the file
    with PostgresStore(team_pg, blobs_url=blobs, cache_dir=tmp_path / "theirs", s3=s3) as other:
        record = other.get_run(run.run_id)
        assert other.file_names(record) == ["outputs/model.txt"]
        assert other.file_path(record, "outputs/model.txt").read_text() == "weights"
        assert not other.is_local(record) and not other.seal(record)  # only its own machine seals it
