"""The run folder protocol: its layout, its record format and the final event.

One module names every file of a run folder, so the runner (compute side), the
targets that bring a folder back, ingest and the store agree by construction.
Standard library only (Python 3.9+): it ships with the runner as
``runtime/launchbay_runfolder.py``, and ``scan`` also runs on SSH hosts through
the connection's remote helper.

    RUN_DIR/
      runner.json  run.json       what to run; the index's row (for store repair)
      cancel  descendants         stop request; the process tree of a live run
      runtime/  work/             the shipped runner; the staged snapshot (the run's cwd)
      journal/
        events.jsonl              status events, a JSON object a line; the last one says "final"
        heartbeat                 the runner's last sign of life (a float, rewritten in place)
        events.reserve            space a runner holds for its last events on a full disk
        *.jnl  *.bin              in-run records (append-only); *.lost: points not written
        sealed.series  sealed.records   an ended run's points, packed, and its other records:
                                  they replace the *.jnl/*.bin the store ingested (store/sealed.py)
        runner.log  failed_rank.json  fail_request.json  ranks/rank_N.json
      files/
        user_logs/std_log.txt     the run's output (append-only), rank_N.txt per rank
        outputs/  logs/           the run's ./outputs and ./logs, kept while it runs
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

# -- the layout ---------------------------------------------------------------------------------
RUNNER_CONFIG = "runner.json"
RUN_RECORD = "run.json"
CANCEL = "cancel"
DESCENDANTS = "descendants"
RUNTIME = "runtime"
RUNNER_ENTRY = "launchbay_runner.py"  # the runner as shipped in runtime/: the one file every target starts
WORK = "work"
JOURNAL = "journal"
FILES = "files"

EVENTS = "events.jsonl"
HEARTBEAT = "heartbeat"
RESERVE = "events.reserve"  # in journal/: never read nor copied; the runner removes it at the run's end
RESERVE_BYTES = 64 << 10  # a run's last events (a traceback included) many times over
HEARTBEAT_BYTES = 32  # written in place: a full disk has no block for a new copy
RUNNER_LOG = "runner.log"
FAILED_RANK = "failed_rank.json"
FAIL_REQUEST = "fail_request.json"
RANKS = "ranks"  # journal/ranks/: each rank's exit record under srun or mpirun
RANK_RECORD = "rank_{}.json"
SYSTEM_JOURNAL = "system.bin"
RECORDS = ".jnl"  # the in-run API's journal files
LEGACY_RECORDS = ".bin"  # the first record format (length-prefixed), still read
LOST = ".lost"  # a journal file's count of points it could not write
TMP = ".tmp"  # written next to a file, then renamed over it: never read or copied
SEALED_SERIES = "sealed.series"  # written by the store once the run has ended, never by a runner
SEALED_RECORDS = "sealed.records"

USER_LOGS = "user_logs"
STD_LOG = "user_logs/std_log.txt"  # relative to files/
RANK_LOG = "user_logs/rank_{}.txt"
OUTPUTS = "outputs"
LOGS = "logs"
KEPT = (OUTPUTS, LOGS)  # the run's working folders kept under files/

#: relative to the run folder (``/`` separated), as the mirror names them
EVENTS_PATH = f"{JOURNAL}/{EVENTS}"
HEARTBEAT_PATH = f"{JOURNAL}/{HEARTBEAT}"
STD_LOG_PATH = f"{FILES}/{STD_LOG}"
MIRROR_LOCK = ".sync.lock"  # taken by whoever writes a mirrored copy
MIRROR_LOG_PREFIX = ".sync.log_prefix"  # in a copy: bytes of launchbay's own lines before the far log's first
INGEST_LOCK = ".ingest.lock"  # in journal/: one process ingests a run at a time (ingest.py)
LIVE_INGEST_LOCK = ".live-ingest.lock"  # in journal/: held by a local runner that indexes its journal live

# -- files of one target ----------------------------------------------------------------------
SBATCH_SCRIPT = "launchbay.sbatch"  # the rendered batch script (Slurm)
SLURM_OUTPUT = "slurm-{}.out"  # in journal/: what sbatch itself printed (job id, or %j for sbatch)
RAY_PACKAGE = "ray_working_dir.zip"  # the job's working_dir while it is uploaded
RAY_LOG_STATE = "ray_sync.json"  # in the copy: how far the job's log was read


def is_record_file(name: str) -> bool:
    """A journal file of in-run records (``*.jnl``, or ``*.bin`` of the first format)."""
    return name.endswith((RECORDS, LEGACY_RECORDS))


def is_append_only(rel: str) -> bool:
    """Files that only ever grow: a copy is brought up to date with their new bytes."""
    if rel in (EVENTS_PATH, STD_LOG_PATH) or rel.startswith(f"{FILES}/{USER_LOGS}/rank_"):
        return True
    if rel.startswith(f"{FILES}/{LOGS}/") and ".tfevents." in rel:
        return True  # TensorBoard event files
    return rel.startswith(f"{JOURNAL}/") and is_record_file(rel)


def is_rewritten(rel: str) -> bool:
    """Small files rewritten in place (the heartbeat, ``*.lost``): always copied whole."""
    return rel == HEARTBEAT_PATH or rel.endswith(LOST)


# -- the record format ------------------------------------------------------------------------------
def event_line(fields: dict[str, Any]) -> str:
    """One event as its line in events.jsonl (``ts`` added when missing)."""
    fields.setdefault("ts", time.time())
    return json.dumps(fields, default=str) + "\n"


class Journal:
    """Appends events and keeps the heartbeat fresh, as the runner (and a sweep controller) does.

    A full disk (or any write error) never raises out of here: the runner would die of it and
    the run read "runner process died". An event that cannot be written waits, in order, for
    the next write; a line cut short is finished, not repeated. With ``reserve`` the journal
    holds ``RESERVE_BYTES`` from the start and gives them up for the final event only, so the
    run's end (and every event still waiting) is recorded on a disk that stays full."""

    def __init__(self, run_dir: str, reserve: bool = False) -> None:
        self.dir = os.path.join(run_dir, JOURNAL)
        os.makedirs(self.dir, exist_ok=True)
        self._fd = os.open(os.path.join(self.dir, EVENTS), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._unwritten = bytearray()
        self._lock = threading.Lock()
        self._reserve = os.path.join(self.dir, RESERVE) if reserve and _hold(os.path.join(self.dir, RESERVE)) else ""

    def event(self, **fields: Any) -> bool:
        """Append one event; False when it (or one before it) waits for space."""
        line = event_line(fields).encode()
        with self._lock:
            self._unwritten += line
            written = self._write_unwritten()
            if fields.get("final") and self._reserve:
                if not written:  # the space held for this moment: the run's end is recorded
                    _release(self._reserve)
                    written = self._write_unwritten()
                if written:
                    _release(self._reserve)
                    self._reserve = ""
            return written

    def status(self, status: str, **fields: Any) -> bool:
        return self.event(type="status", status=status, **fields)

    def flush(self) -> bool:
        """Write the events still waiting for space; True once none waits."""
        with self._lock:
            return self._write_unwritten()

    def _write_unwritten(self) -> bool:
        try:
            while self._unwritten:
                del self._unwritten[: os.write(self._fd, self._unwritten)]
        except OSError:
            return False
        return True

    def heartbeat(self) -> None:
        """The time, rewritten in place (padded to a fixed width): it needs no new block. Never raises."""
        try:
            fd = os.open(os.path.join(self.dir, HEARTBEAT), os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            os.pwrite(fd, repr(time.time()).encode().ljust(HEARTBEAT_BYTES), 0)
        except OSError:
            pass
        finally:
            os.close(fd)


def _hold(path: str) -> bool:
    """Take ``RESERVE_BYTES`` of real blocks at ``path``: written, not sparse (a write is charged to
    the disk at once, even where the file system allocates later)."""
    try:
        with open(path, "wb") as fh:
            fh.write(b"\0" * RESERVE_BYTES)
        return True
    except OSError:
        _release(path)
        return False


def _release(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def events_have_final(events: bytes) -> bool:
    """Does a run's events journal (complete lines only) hold the run's final status?"""
    end = events.rfind(b"\n")
    for line in events[: end + 1].splitlines():
        if b'"final"' in line:
            try:
                if json.loads(line).get("final"):
                    return True
            except ValueError:
                continue
    return False


def has_final_event(run_dir: Any) -> bool:
    """Has the run's end been recorded in ``run_dir``'s journal?"""
    try:
        with open(os.path.join(str(run_dir), JOURNAL, EVENTS), "rb") as fh:
            return events_have_final(fh.read())
    except OSError:
        return False


def final_event_line(status: str, message: str, traceback: str = "", exit_code: int | None = None) -> bytes:
    """The final status event the runner writes; targets write it themselves when the runner could not."""
    event = {
        "type": "status",
        "status": status,
        "exit_code": exit_code,
        "final": True,
        "error": {"message": message, "traceback": traceback},
    }
    return event_line(event).encode()


def write_final_event(run_dir: Any, status: str, message: str, traceback: str = "") -> None:
    """Record the end the runner could not write (its container, job or host went away)."""
    path = os.path.join(str(run_dir), JOURNAL, EVENTS)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab") as fh:
        if fh.tell():  # a line cut short by the runner's death must not swallow this one
            with open(path, "rb") as old:
                old.seek(fh.tell() - 1)
                if old.read(1) != b"\n":
                    fh.write(b"\n")
        fh.write(final_event_line(status, message, traceback))


# -- what a mirror copies -----------------------------------------------------------------------------
PROBE = 4096  # a copy that only grew is recognised by the hash of its last bytes


LOG_LINE_PREFIX = "launchbay: "


def log_line(run_dir: Any, message: str, prefix: str = LOG_LINE_PREFIX) -> None:
    """Lines of launchbay's own in the run's log (``files/user_logs/std_log.txt``), before its runner
    writes there: what an environment build or an image pull does while the run is Preparing."""
    path = os.path.join(str(run_dir), FILES, STD_LOG)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as fh:
            fh.write("".join(f"{prefix}{line}\n" for line in message.splitlines() or [""]))
    except OSError:  # a full disk: the run's status still says what happened
        pass


def tail_hash(read: Callable[[int, int], bytes], size: int) -> str:
    """sha1 of the ``PROBE`` bytes before ``size``; ``read(start, length)`` reads the file."""
    start = max(0, size - PROBE)
    return hashlib.sha1(read(start, size - start)).hexdigest()


def copy_from(
    rel: str, size: int, mtime_ns: int, have: list[Any] | None, read: Callable[[int, int], bytes]
) -> int | None:
    """Where a copy described by ``have`` ([size, mtime_ns, tail hash]) must be continued from:
    None when it is up to date, 0 for the whole file, else the offset of the new bytes."""
    if have is None:
        return 0
    have_size, have_mtime = int(have[0]), int(have[1])
    if have_size == size and have_mtime == mtime_ns:
        return None
    if is_rewritten(rel):
        return 0
    if is_append_only(rel) and have_size <= size:
        return None if have_size == size else have_size
    if have_size < size and len(have) > 2 and tail_hash(read, have_size) == have[2]:
        return have_size  # it grew, with the same bytes before the old end
    return 0


def scan(base: str, known: dict[str, list[Any]], folders: list[str], limit: int) -> tuple[dict[str, Any], bytes]:
    """What a copy described by ``known`` (rel -> [size, mtime_ns, tail hash]) lacks of ``folders``.

    At most ``limit`` bytes; ``result["files"]`` rows are [rel, offset, length, size, mtime_ns]
    over the payload. events.jsonl comes last, cut at the size it had before anything
    else was read: whatever the runner wrote before an event is sent with it.
    """
    events_size = _size(os.path.join(base, JOURNAL, EVENTS))
    names: list[str] = []
    for folder in folders:
        for parent, dirs, files in os.walk(os.path.join(base, folder)):
            dirs.sort()
            for name in sorted(files):
                rel = os.path.relpath(os.path.join(parent, name), base).replace(os.sep, "/")
                if not name.endswith(TMP) and rel != EVENTS_PATH and name != RESERVE:
                    names.append(rel)
    if any(EVENTS_PATH.startswith(f.rstrip("/") + "/") for f in folders):
        names.append(EVENTS_PATH)
    index: list[list[Any]] = []
    chunks: list[bytes] = []
    left, truncated = limit, False
    for rel in dict.fromkeys(names):
        if truncated:
            break
        path = os.path.join(base, rel)
        try:
            st = os.stat(path)
            have = known.get(rel)
            if have is not None and int(have[0]) == st.st_size and int(have[1]) == st.st_mtime_ns:
                continue  # unchanged: not even opened
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                size = min(st.st_size, events_size) if rel == EVENTS_PATH else st.st_size

                def read(start: int, length: int, fh: Any = fh) -> bytes:
                    fh.seek(start)
                    return bytes(fh.read(length))

                start = copy_from(rel, size, st.st_mtime_ns, have, read)
                if start is None:
                    continue
                data = read(start, min(size - start, left + 1))
        except (OSError, ValueError):
            continue
        if len(data) > left:
            data, truncated = data[:left], True
        index.append([rel, start, len(data), size, st.st_mtime_ns])
        chunks.append(data)
        left -= len(data)
    return {"files": index, "truncated": truncated}, b"".join(chunks)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
