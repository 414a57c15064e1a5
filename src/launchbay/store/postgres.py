"""The team store: the index in PostgreSQL (psycopg 3), blobs in a folder or an S3 bucket.

``PostgresStore`` is the embedded store's SQL modules (runs.py, writes.py, series.py,
model_rows.py) over a PostgreSQL connection: the same SQL text and the same numbered migrations,
spelled for PostgreSQL by its dialect (pgdialect.py). What differs is here:

- the connection: one per thread, autocommit outside write transactions (a reader holds no
  transaction open, so it never blocks a writer, nor a migration), ``?`` placeholders turned into
  psycopg's, every driver error mapped to a launchbay error (``pg_error``) that says what to do; a
  read on a connection the server dropped (a restart) reconnects once, a write says so and writes
  nothing (the run's journal keeps what it was to ingest);
- a batch (every change to one run: ingest, tags, a status) waits for that run's row lock only, so
  runs ingest side by side; what reads then writes across runs (a new run and its experiment, model
  numbers, removing a run) queues on one advisory lock (the dialect's ``begin_write``), as SQLite's
  writers queue on BEGIN IMMEDIATE; readers never wait (MVCC);
- the password is never part of ``uri`` (runs and sweep controllers reopen the store from it): it
  comes from ``PGPASSWORD``, ``~/.pgpass`` (``PGPASSFILE``) or a ``${ENV}`` reference in the URL
  of launchbay.toml, and stays in this process's memory;
- run folders and launchbay's local cache are a folder on this machine (``cache_dir``), so the
  runner's protocol (the journal in the run folder) is the same as on the embedded store;
- an ended run's points stay in the index (``seal`` packs nothing into the run folder, which
  lives on one machine only: every client reads every run).

URL form: ``postgresql://ROLE@HOST:PORT/DATABASE`` with libpq's own query options (``options``,
``sslmode``, ...) and launchbay's: ``blobs`` (a folder or ``s3://bucket/prefix``) and ``cache``
(the local folder), taken off before libpq sees the URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .. import runfolder as rf
from ..errors import LaunchbayError, StoreError, StoreUnavailableError
from . import runfile
from .batch import Batch
from .blobs import BlobStore, FolderBlobs
from .data_rows import DataRows
from .dialect import Dialect
from .files import RunFiles
from .migrations import MIGRATIONS, SCHEMA_VERSION
from .model_rows import ModelRows
from .pgdialect import POSTGRES
from .queue_rows import QueueRows
from .records import RunRecord
from .registry import StoreBackend
from .schedule_rows import ScheduleRows
from .series import SeriesStore
from .transfer import RunTransfer
from .writes import RunWrites, SqliteBatch

_GC_LOCK = 7461727  # the blob collector's advisory lock (shared: writers; exclusive: gc)
FILES_MANIFEST = "launchbay.files_manifest"  # an ended run's property: the manifest of its files
TEAM_MARK = "team-store.json"  # in the local folder: it belongs to a team store (``store repair`` refuses it)
_OWN_OPTIONS = ("blobs", "cache", "project")
CONNECT_TIMEOUT_S = 10


def _driver() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            "A PostgreSQL store needs psycopg 3: pip install 'launchbay[team]' (or psycopg[binary])."
        ) from exc
    return psycopg


@lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """The index's SQL (``?`` placeholders) as psycopg takes it (``%s``, a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class TeamUrl:
    """A ``postgresql://`` URL taken apart: what libpq gets, launchbay's own options, the password."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("postgresql", "postgres"):
            raise StoreError(f"{url!r} is not a postgresql:// URL.")
        query = parse_qsl(parts.query, keep_blank_values=True)
        self.own = {k: v for k, v in query if k in _OWN_OPTIONS}
        libpq = [(k, v) for k, v in query if k not in _OWN_OPTIONS]
        self.password = unquote(parts.password) if parts.password else None
        self.user = unquote(parts.username) if parts.username else None
        host = parts.hostname or ""
        netloc = (quote(self.user, safe="") + "@" if self.user else "") + (f"[{host}]" if ":" in host else host)
        if parts.port:
            netloc += f":{parts.port}"
        self.host, self.port, self.database = host or "localhost", parts.port or 5432, parts.path.lstrip("/")
        self.conninfo = urlunsplit(("postgresql", netloc, parts.path, urlencode(libpq), ""))
        self.schema = _search_path(dict(libpq).get("options", ""))

    @property
    def where(self) -> str:
        """The database as a message names it (never with a password)."""
        schema = f" (schema {self.schema})" if self.schema else ""
        return f"postgresql://{self.user + '@' if self.user else ''}{self.host}:{self.port}/{self.database}{schema}"

    def uri(self, blobs: str | None, cache: Path, project: Path | None = None) -> str:
        """The URL another process reopens this store from: no password, blobs and cache folder named,
        and the project whose launchbay.toml gives ``[store] password`` and ``[s3]`` (their ``${ENV}``
        references are read again there, from that process's environment: no secret is written)."""
        parts = urlsplit(self.conninfo)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if blobs:
            query.append(("blobs", blobs))
        query.append(("cache", str(cache)))
        if project is not None:
            query.append(("project", str(project)))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _search_path(options: str) -> str | None:
    for word in options.replace("-c ", "-c").split():
        if word.startswith("-csearch_path="):
            return word.split("=", 1)[1]
    return None


def default_cache_dir(url: TeamUrl) -> Path:
    """``$XDG_CACHE_HOME/launchbay/team/<host>-<port>-<database>-<hash>`` (or ~/.cache/...)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.sha256(url.conninfo.encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{url.host}-{url.port}-{url.database}")
    return base / "launchbay" / "team" / f"{safe}-{tag}"


def pg_error(exc: BaseException, where: str, user: str | None = None) -> LaunchbayError:
    """The launchbay error for a psycopg error met while using the team store at ``where``."""
    if isinstance(exc, LaunchbayError):
        return exc
    psycopg = _driver()
    errors = psycopg.errors
    message = " ".join(str(exc).split()) or type(exc).__name__
    role = user or "this role"
    if isinstance(exc, errors.InsufficientPrivilege):
        return StoreError(
            f"The PostgreSQL role {role} may only read the team store {where} ({message}); nothing was written."
            " Ask the store's owner to GRANT it INSERT, UPDATE, DELETE, or use a role that may write."
        )
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return StoreError(
            f"The team store {where} is read-only ({message}): it is a standby or in read-only mode;"
            " nothing was written. Point [store] url at the primary server."
        )
    if isinstance(exc, (errors.UndefinedTable, errors.UndefinedColumn)):
        return StoreError(
            f"The team store {where} lacks part of launchbay's schema ({message}). Run"
            " `launchbay store migrate` with a role that owns its tables."
        )
    if isinstance(exc, errors.QueryCanceled):
        return StoreError(
            f"The team store {where} took too long and the statement was canceled ({message}). Try again."
        )
    if isinstance(exc, errors.DeadlockDetected | errors.SerializationFailure):
        return StoreError(f"The team store {where} was busy ({message}); nothing was written. Try again.")
    if isinstance(exc, psycopg.OperationalError):
        lowered = message.lower()
        if "password" in lowered or "authentication" in lowered:
            return StoreError(
                f"PostgreSQL refused the login of {role} to {where} ({message}). Give the password in PGPASSWORD,"
                " a ~/.pgpass line (or PGPASSFILE), or a ${ENV} reference in [store] password or url; never in"
                " the file itself."
            )
        if "does not exist" in lowered:  # the database or the role: waiting will not bring it
            return StoreError(
                f"The team store {where} cannot be used: {message}. Create it (createdb, CREATE ROLE) or fix"
                " [store] url / LAUNCHBAY_STORE."
            )
        return StoreUnavailableError(
            f"Cannot reach the team store {where} ({message}). Check that PostgreSQL is running and reachable;"
            " nothing was written, and runs keep their journals until it is back."
        )
    return StoreError(f"The team store {where} failed: {message}.")


class PgDb:
    """One thread's connection, as the SQL modules use it (``Db`` of dialect.py)."""

    dialect: Dialect = POSTGRES

    def __init__(self, store: PostgresConnection) -> None:
        self._store = store
        self.conn = store.connect()
        self.writing = False  # inside ``transaction()``: a lost connection is an error, never replaced

    def _run(self, many: bool, sql: str, parameters: Any) -> Any:
        psycopg = _driver()
        if self.writing and (self.conn.closed or self.conn.broken):  # never a new connection mid-transaction
            raise StoreUnavailableError(
                f"The team store {self._store.url.where} went away mid-transaction;"
                " nothing of it was written. Try again once it is back."
            )
        if self.conn.closed or self.conn.broken:  # lost earlier (a restart): a new one, or the error saying why
            self.reconnect()
        for attempt in (0, 1):
            idle = not self.writing and self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            try:
                cur = self.conn.cursor()
                if many:
                    cur.executemany(_pg_sql(sql), parameters)
                else:
                    cur.execute(_pg_sql(sql), parameters or None)
                return cur
            except psycopg.OperationalError as exc:
                # the server went away (a restart): a read outside a transaction is tried once more
                if attempt == 0 and idle and self.conn.broken:
                    self.reconnect()
                    continue
                raise self._store.failure(exc) from exc
            except psycopg.Error as exc:
                raise self._store.failure(exc) from exc
        raise AssertionError("unreachable")

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self._run(False, sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        return self._run(True, sql, list(parameters))

    def reconnect(self) -> None:
        self.close()
        self.conn = self._store.connect()

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass


class PostgresConnection(RunWrites, SeriesStore, ModelRows, DataRows, QueueRows, ScheduleRows, RunTransfer):
    """The connection side of ``PostgresStore``: per-thread connections, transactions, migrations."""

    def __init__(
        self,
        url: str,
        *,
        blobs: BlobStore | None = None,
        blobs_url: str | None = None,
        cache_dir: Path | None = None,
        migrate: bool = False,
        password: str | None = None,
        s3: dict[str, Any] | None = None,
        project: Path | None = None,
    ) -> None:
        """``url``: ``postgresql://...`` (see the module docstring); ``blobs``: the blob store (default:
        the folder ``blobs`` of the URL, else ``cache_dir/blobs``); ``migrate``: bring an older schema
        up to this launchbay's (``launchbay store migrate``); a new, empty database is always set up."""
        self.url = TeamUrl(url)
        if password:
            self.url.password = password
        own_cache = self.url.own.get("cache")
        self.root = Path(cache_dir or own_cache or default_cache_dir(self.url)).expanduser().resolve()
        self.cache_dir = self.root
        self.runs_dir = self.root / "runs"
        self._blobs_url = self.url.own.get("blobs") or blobs_url
        self._project = project
        if blobs is None:
            from .remote import open_blobs

            blobs = open_blobs(self._blobs_url, self.root, s3) if self._blobs_url else FolderBlobs(self.root / "blobs")
        self.blobs = blobs
        self.migrated_from = 0  # the schema version the database had when this opened it
        self._local = threading.local()
        self._conns: dict[threading.Thread, PgDb] = {}
        self._conns_lock = threading.Lock()
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            mark = self.root / TEAM_MARK
            if not mark.exists():
                mark.write_text(json.dumps({"store": self.url.where}) + "\n")
        except OSError as exc:
            raise StoreError(f"Cannot make the team store's local folder {self.root}: {exc.strerror or exc}.") from exc
        self._migrate(migrate)

    # -- connections -----------------------------------------------------------------------------
    def connect(self) -> Any:
        psycopg = _driver()
        try:
            return psycopg.connect(
                self.url.conninfo,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="launchbay",
                **({"password": self.url.password} if self.url.password else {}),
            )
        except psycopg.Error as exc:
            raise self.failure(exc) from exc

    @property
    def db(self) -> PgDb:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = PgDb(self)
            with self._conns_lock:
                self._local.conn = conn
                for thread in [t for t in self._conns if not t.is_alive()]:
                    self._conns.pop(thread).close()
                self._conns[threading.current_thread()] = conn
        return conn

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, {}
            self._local = threading.local()
        for conn in conns.values():
            conn.close()

    @property
    def uri(self) -> str:
        from .remote import S3Blobs

        blobs: str | None
        if isinstance(self.blobs, S3Blobs):
            blobs = self.blobs.reopen_url()
        elif isinstance(self.blobs, FolderBlobs):
            blobs = str(self.blobs.root)
        else:
            blobs = self._blobs_url
        return self.url.uri(blobs, self.root, self._project)

    def index_bytes(self) -> int:
        return 0  # the index lives in the database server

    def failure(self, exc: BaseException) -> LaunchbayError:
        return pg_error(exc, self.url.where, self.url.user)

    def transaction(self) -> AbstractContextManager[PgDb]:
        """One write transaction: it waits for the writers' lock (``begin_write``), commits when the
        block ends, rolls back when it raises; a dropped connection writes nothing and is replaced."""
        return self._transaction(whole_store=True)

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """The batch write primitive, as the embedded store's, with one difference: a batch changes one
        run's rows only (ingest, a tag, a status), so it waits for that run's row lock (the writer reads
        the row FOR UPDATE), not for the whole store's writers: runs ingest side by side. What reads then
        writes across runs (a new run's experiment, model numbers, removing a run) keeps the store's lock."""
        with self._transaction(whole_store=False) as db:
            batch = SqliteBatch(db, self.runs_dir)
            yield batch
            batch.flush()

    @contextmanager
    def _transaction(self, whole_store: bool) -> Iterator[PgDb]:
        psycopg = _driver()
        db = self.db
        if db.conn.broken or db.conn.closed:
            db.reconnect()
        try:
            db.writing = True
            with db.conn.transaction():
                if whole_store:
                    db.execute(db.dialect.begin_write)
                yield db
        except psycopg.Error as exc:
            raise self.failure(exc) from exc
        finally:
            db.writing = False
            if db.conn.broken or db.conn.closed:
                db.close()
                self._forget(db)

    def _forget(self, db: PgDb) -> None:
        """Drop a dead connection: this thread opens a new one on next use."""
        with self._conns_lock:
            if getattr(self._local, "conn", None) is db:
                self._local.conn = None
            self._conns = {t: c for t, c in self._conns.items() if c is not db}

    # -- the gc lock: a session advisory lock on a connection of its own ---------------------------
    @contextmanager
    def _gc_lock(self, shared: bool) -> Iterator[None]:
        conn = self.connect()
        try:
            take = "pg_advisory_lock_shared" if shared else "pg_advisory_lock"
            try:
                conn.execute(f"SELECT {take}({_GC_LOCK})")
            except _driver().Error as exc:
                raise self.failure(exc) from exc
            yield
        finally:
            conn.close()  # the session's end frees the lock

    def writing_blobs(self) -> AbstractContextManager[None]:
        return self._gc_lock(shared=True)

    def collecting_blobs(self) -> AbstractContextManager[None]:
        return self._gc_lock(shared=False)

    # -- schema ------------------------------------------------------------------------------------
    def _migrate(self, migrate: bool) -> None:
        try:
            version = self.migrated_from = self.db.dialect.schema_version(self.db)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The team store {self.url.where} has schema version {version}, newer than this launchbay"
                    f" understands ({SCHEMA_VERSION}); nothing was changed. Upgrade launchbay on this machine"
                    " (pip install -U 'launchbay[team]')."
                )
            if version == SCHEMA_VERSION:
                return
            if version and not migrate:
                raise StoreError(
                    f"The team store {self.url.where} has schema version {version}; this launchbay uses"
                    f" {SCHEMA_VERSION}. Migrate it once, for everyone, with `launchbay store migrate`"
                    " (clients older than this launchbay are then refused, with a line telling them to upgrade)."
                )
            with self.transaction() as db:
                version = db.dialect.schema_version(db)  # another client may have done it meanwhile
                for number in range(version, SCHEMA_VERSION):
                    for statement in db.dialect.statements(MIGRATIONS[number]):
                        db.execute(statement)
                if version < SCHEMA_VERSION:
                    db.dialect.set_schema_version(db, SCHEMA_VERSION)
        except BaseException:
            self.close()
            raise

    def schema_version(self) -> int:
        return self.db.dialect.schema_version(self.db)


class PostgresStore(PostgresConnection):
    """The team store (see the module docstring). Close it when done (``close()``, or ``with``).

    A run's folder is on the machine that made it (where its journal is written and ingested from).
    Once the run has ended, ``seal`` puts its files (outputs, logs) into the blob store with a
    manifest its row names; on every other machine, ``files_dir`` fills the run's local folder from
    that manifest on first use, so files, logs and downloads read the same everywhere."""

    shared = True

    def seal(self, record: RunRecord) -> bool:
        """An ended run's files into the blob store, once (its points stay in the index, where every
        client reads them); whether anything changed."""
        from .manifests import put_files

        if not self.is_local(record) or self.get_run(record.run_id).properties.get(FILES_MANIFEST):
            return False
        root = record.run_dir / rf.FILES
        names = RunFiles.file_names(self, record)
        with self.writing_blobs():
            manifest, _ = put_files(self, [(name, root / name) for name in names], run_id=record.run_id)
            with self.write(record.pk) as run:
                properties = run.properties
                if properties.get(FILES_MANIFEST):
                    return False
                run.set(properties={**properties, FILES_MANIFEST: manifest})
        return True

    def check_writable(self) -> None:
        """One query: may this role change runs? (A read-only role learns it before anything is uploaded.)"""
        allowed = self.db.execute("SELECT has_table_privilege(current_user, 'runs', 'INSERT, UPDATE')").fetchone()
        if not allowed[0]:
            raise StoreError(
                f"The PostgreSQL role {self.url.user or 'of this login'} may only read the team store"
                f" {self.url.where}; nothing was written. Ask the store's owner to GRANT it INSERT, UPDATE,"
                " DELETE, or use a role that may write."
            )

    def is_local(self, run: RunRecord) -> bool:
        """Whether the run was made from this machine (its folder, with ``run.json``, is here)."""
        return (run.run_dir / runfile.RUN_FILE).is_file()

    def files_dir(self, run: RunRecord) -> Path:
        local = run.run_dir / rf.FILES
        manifest = run.properties.get(FILES_MANIFEST)
        if manifest and not self.is_local(run) and not (run.run_dir / f".files-{manifest[:16]}").exists():
            from .manifests import read_manifest, write_files

            write_files(self, read_manifest(self, manifest)["files"], local, f"Run {run.run_id}'s file list")
            (run.run_dir / f".files-{manifest[:16]}").touch()
        return local

    def file_manifests(self) -> list[str]:
        column = self.db.dialect.json_field("properties", FILES_MANIFEST)
        rows = self.db.execute(f"SELECT {column} FROM runs WHERE {column} IS NOT NULL").fetchall()
        return [json.loads(value) for (value,) in rows]

    def adopt_rebuilt(self, record: RunRecord) -> bool:
        return False


class PostgresBackend(StoreBackend):
    """``postgresql://`` and ``postgres://`` URIs: the team store."""

    def open(self, location: str | None, start: Path | None = None, *, migrate: bool = False) -> PostgresStore:
        """The team store at ``location``; blobs, password, cache folder and S3 settings from the URL,
        else LAUNCHBAY_BLOBS, else launchbay.toml's ``[store]`` and ``[s3]``."""
        assert location
        from ..config import LAUNCHBAY_BLOBS, load_config

        named = TeamUrl(location).own.get("project")
        config = load_config(Path(named) if named and start is None else start)
        section = config.store
        cache = section.get("cache")
        return PostgresStore(
            location,
            blobs_url=LAUNCHBAY_BLOBS.get() or section.get("blobs") or None,
            cache_dir=Path(str(cache)) if cache else None,
            password=section.get("password") or None,
            s3=config.s3,
            migrate=migrate,
            project=config.root,
        )

    def error(self, exc: BaseException, location: str | None) -> LaunchbayError | None:
        try:
            psycopg = _driver()
        except StoreError:
            return None
        if not isinstance(exc, psycopg.Error):
            return None
        url = TeamUrl(location) if location else None
        return pg_error(exc, url.where if url else "postgresql", url.user if url else None)
