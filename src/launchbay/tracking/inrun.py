"""The in-run API: ``Run.get_context()`` and its logging methods.

Standard library only: this module (with ``journalfmt.py``) is shipped next to the
runner into containers, remote hosts and cluster nodes where launchbay is not installed.

Why it is fast: ``log`` only appends a tuple to a list. A daemon thread swaps the
list out every 0.2 s and writes it, marshalled in one C call, as framed records of an
append-only per-process journal file (format in ``journalfmt``). The store ingests
those files. Values that are not plain ints/floats (NumPy scalars, PyTorch tensors,
even on a GPU, Decimal, ...) are converted there, in the background and in batches, so
the training step never waits for a device synchronisation: an int64 stays exact, anything
else that converts to a float is kept as that float (a metric whose value it rounded is
marked so), and only what cannot be a number is refused, with one warning per metric.

What survives what: a final flush runs at exit, on exceptions, on SIGTERM (the handler
is installed when this module is imported in the main thread of a run), in forked and
spawned ``multiprocessing`` workers, and signals are held while a flush writes, so a
signal never interrupts (or deadlocks) one. SIGKILL and ``os._exit`` lose what was
logged since the last flush (at most ``FLUSH_INTERVAL_S``). On a full disk a record is
written whole or not at all, and the count of points not written is kept in a small
side file whose space was reserved up front.
"""

from __future__ import annotations

import atexit
import errno
import json
import marshal
import operator
import os
import re
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from launchbay import runfolder as rf  # absolute: shipped, this file is launchbay/_inrun.py

from .journalfmt import MAX_POINTS_PER_RECORD, encode, exact_step, number, plain, plain_batch, resolve_tensors

ENV_RUN_ID = "LAUNCHBAY_RUN_ID"
ENV_JOURNAL_DIR = "LAUNCHBAY_JOURNAL_DIR"
ENV_FILES_DIR = "LAUNCHBAY_FILES_DIR"
ENV_EXPERIMENT = "LAUNCHBAY_EXPERIMENT"
ENV_RANK = "LAUNCHBAY_RANK"  # set by distlaunch.py in each rank of a distributed run
ENV_LOG_ALL_RANKS = "LAUNCHBAY_LOG_ALL_RANKS"
FLUSH_INTERVAL_S = 0.2
SIGTERM_GRACE_S = 2.0  # how long the SIGTERM handler gets before the flush thread ends the process
_WAKEUP: dict[str, Any] = {"read": None, "write": None, "seen": 0, "handled": 0, "pid": None}
LOST_FILE_SIZE = 64  # the side file holding "<points not written> <errno>", written in place
_value_of = operator.itemgetter(1)
_plain = plain  # kept for code that imported it from here


@contextmanager
def _signals_held() -> Iterator[None]:
    """In the main thread, hold every signal while a record is taken and written.

    Python runs signal handlers in the main thread between bytecodes; a handler that
    flushes (ours on SIGTERM, or the user's) would otherwise find the journal half-way
    through a write, or wait forever for a lock its own thread holds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Journal:
    """One append-only file per process; a record is written whole or not at all."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        stem = os.path.join(directory, f"p{os.getpid()}-{time.time_ns()}")
        self.path = stem + rf.RECORDS
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()
        self.not_written = 0
        self._lost_fd: int | None = None
        try:  # reserve the side file's space now: the count must fit when the disk is full
            fd = os.open(stem + rf.LOST, os.O_RDWR | os.O_CREAT, 0o644)
            os.write(fd, b"0".ljust(LOST_FILE_SIZE))
            self._lost_fd = fd
        except OSError:
            pass

    def write(self, payload: bytes, points: int) -> bool:
        """Append one framed record; on any error cut the file back and count the points."""
        framed = memoryview(encode(payload))
        with self._lock:
            start = os.lseek(self._fd, 0, os.SEEK_END)
            try:
                done = 0
                while done < len(framed):
                    done += os.write(self._fd, framed[done:])
            except OSError as exc:
                try:
                    os.ftruncate(self._fd, start)
                except OSError:
                    pass
                self._lost(points, exc)
                return False
        return True

    def _lost(self, points: int, exc: OSError) -> None:
        first = self.not_written == 0
        self.not_written += points
        code = errno.errorcode.get(exc.errno or 0, "EIO")
        if self._lost_fd is not None:
            try:
                os.pwrite(self._lost_fd, f"{self.not_written} {code}".encode().ljust(LOST_FILE_SIZE), 0)
            except OSError:
                pass
        if first:
            what = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else str(exc)
            print(
                f"launchbay: {what}: metrics are not being written to {self.path}; "
                "the run records how many points are missing.",
                file=sys.stderr,
            )


def _fast_log(points: list[tuple[Any, Any, Any, float]], prefix: str = "", muted: bool = False) -> Any:
    """``Run.log`` for a live run: one tuple appended to a list, nothing else (about 0.2 us).

    In a distributed run's other ranks names get a ``rank<N>/`` prefix, or nothing is kept (``muted``)."""
    append = points.append
    now = time.time
    if muted:

        def log(name: str, value: Any, step: int | None = None, description: str = "") -> None:
            pass

    elif prefix:

        def log(name: str, value: Any, step: int | None = None, description: str = "") -> None:
            append((prefix + name, value, step, now()))

    else:

        def log(name: str, value: Any, step: int | None = None, description: str = "") -> None:
            append((name, value, step, now()))

    log.__doc__ = Run.log.__doc__
    return log


class Run:
    """The run a piece of code executes in; ``Run.get_context()`` returns it.

    Outside a submitted run the context is an offline run that prints what it
    would have logged, so the same script works with and without launchbay.
    """

    _context: Run | None = None
    _context_lock = threading.Lock()

    def __init__(self, run_id: str | None, journal_dir: str | None, files_dir: str | None) -> None:
        self.id = run_id or "offline"
        self.offline = run_id is None or journal_dir is None
        self.experiment_name = os.environ.get(ENV_EXPERIMENT, "")
        self._journal_dir = journal_dir
        self._files_dir = files_dir
        self._points: list[tuple[Any, Any, Any, float]] = []
        self._flush_lock = threading.Lock()
        self._image_counter = 0
        self._journal: _Journal | None = None
        self._stop = threading.Event()
        self._at_exit = False
        self._warned: set[str] = set()
        self._busy = threading.local()
        self._deferred: BaseException | None = None
        self.rank = int(os.environ.get(ENV_RANK) or 0)
        self._prefix, self._muted = "", False
        self._set_log_all_ranks(os.environ.get(ENV_LOG_ALL_RANKS) == "1")
        if not self.offline:
            self._start()

    def _set_log_all_ranks(self, flag: bool) -> None:
        """Rank 0 logs under plain names; other ranks under ``rank<N>/NAME`` when asked, else not at all,
        so rank 0's series never get silent duplicates."""
        if self.rank == 0:
            return
        self._prefix, self._muted = (f"rank{self.rank}/", False) if flag else ("", True)
        if self._journal is not None:
            self.log = _fast_log(self._points, self._prefix, self._muted)  # type: ignore[method-assign]

    # -- construction ------------------------------------------------------
    @classmethod
    def get_context(cls, log_all_ranks: bool | None = None) -> Run:
        """The current run (live inside a submitted run, offline otherwise).

        In a distributed run only rank 0 logs metrics, unless ``log_all_ranks=True``
        (here or on the launch configuration): other ranks then log as ``rank<N>/NAME``."""
        run = cls._context
        if run is None:
            with cls._context_lock:
                if cls._context is None:
                    cls._context = cls(
                        os.environ.get(ENV_RUN_ID),
                        os.environ.get(ENV_JOURNAL_DIR),
                        os.environ.get(ENV_FILES_DIR),
                    )
                run = cls._context
        if log_all_ranks is not None:
            run._set_log_all_ranks(log_all_ranks)
        return run

    def _start(self) -> None:
        assert self._journal_dir is not None
        try:
            self._journal = _Journal(self._journal_dir)
        except OSError as exc:  # never stop the user's code over logging
            print(f"launchbay: cannot write metrics to {self._journal_dir}: {exc}", file=sys.stderr)
            self.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
            return
        self.log = _fast_log(self._points, self._prefix, self._muted)  # type: ignore[method-assign]
        self._refused: dict[str, list[Any]] = {}
        self._rounded: set[str] = set()  # metrics a value was rounded in since the last flush
        self._thread = threading.Thread(target=self._flush_loop, name="launchbay-flush", daemon=True)
        self._thread.start()
        if not self._at_exit:
            atexit.register(self.flush)
            self._at_exit = True
        _install_sigterm_flush()
        _flush_in_multiprocessing_children(self)

    def _after_fork(self) -> None:
        """A forked child logs into a journal file of its own."""
        self._points.clear()  # the parent's points are the parent's to write
        self._warned = set()
        self._busy = threading.local()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._start()

    @property
    def input_datasets(self) -> dict[str, str]:
        """The run's data inputs by name: each one's path here (``--input NAME=SOURCE``), also in
        ``$LAUNCHBAY_INPUT_<NAME>``. Empty for an offline run or a run without inputs."""
        try:
            found = json.loads(os.environ.get("LAUNCHBAY_INPUTS") or "{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    # -- the hot path ------------------------------------------------------
    def log(self, name: str, value: Any, step: int | None = None, description: str = "") -> None:
        """Log one value of a scalar metric (a float, int, NumPy scalar or 0-d tensor).

        A live run replaces this method by ``_fast_log``'s closure (see ``_start``)."""
        if self.offline:
            print(f"[launchbay offline] {name} = {_plain(value)}" + (f" (step {step})" if step is not None else ""))
            return
        self._points.append((name, value, step, time.time()))

    # -- the rest of the API -------------------------------------------------
    def log_list(self, name: str, value: list[Any], description: str = "") -> None:
        """Log a list of values (kept as one list, like Azure ML's ``log_list``)."""
        self._record("list", name, [_plain(v) for v in value])

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Append one row to a table metric."""
        self._record("row", name, {str(k): _plain(v) for k, v in kwargs.items()})

    def log_table(self, name: str, value: dict[str, list[Any]], description: str = "") -> None:
        """Log a table given as columns: ``{"col": [..], ...}``."""
        self._record("table", name, {str(k): [_plain(x) for x in v] for k, v in value.items()})

    def log_image(self, name: str, path: str | None = None, plot: Any = None, description: str = "") -> None:
        """Log an image from a file ``path`` (PNG, JPEG, GIF, SVG, WebP, BMP or TIFF) or a matplotlib
        figure/pyplot ``plot``."""
        if (path is None) == (plot is None):
            raise ValueError("log_image needs exactly one of path= or plot=")
        source = "" if path is None else os.fspath(path)
        if plot is not None:
            figure = plot.gcf() if hasattr(plot, "gcf") else plot
            if not hasattr(figure, "savefig"):
                raise TypeError(
                    f"log_image({name!r}, plot=...) takes a matplotlib Figure or matplotlib.pyplot, not "
                    f"{type(plot).__name__}; to log an image file, pass path=."
                )
            extension = "png"
        else:
            extension = _image_kind(source)
        if self._muted:
            return
        self._image_counter += 1
        target = f"images/{_safe_name(name)}_{self._image_counter}.{extension}"
        if self.offline:
            print(f"[launchbay offline] image {name}")
            return
        dest = self._file_dest(target)
        if plot is not None:
            figure.savefig(dest, format="png")
        else:
            shutil.copyfile(source, dest)
        self._record("image", name, target)

    def tag(self, key: str, value: Any = None) -> None:
        """Set a tag on the run (shown and filterable everywhere)."""
        self._record("tag", str(key), "" if value is None else str(_plain(value)))

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def upload_file(self, name: str, path_or_stream: Any) -> None:
        """Keep a file with the run under ``name`` (./outputs and ./logs are kept anyway).

        ``user_logs/`` is the run's own output, which the runner writes: no name may lead there."""
        rel = _safe_relpath(name)
        if rel.split("/", 1)[0] == rf.USER_LOGS:
            raise ValueError(
                f"upload_file name {name!r} is reserved: {rf.USER_LOGS}/ holds the run's own output, written by "
                "launchbay; pick another name, e.g. outputs/" + rel.rsplit("/", 1)[-1]
            )
        if self.offline:
            print(f"[launchbay offline] upload {name}")
            return
        dest = self._file_dest(rel)
        if hasattr(path_or_stream, "read"):
            with open(dest, "wb") as out:
                shutil.copyfileobj(path_or_stream, out)
        else:
            shutil.copyfile(os.fspath(path_or_stream), dest)
        self._record("file", name, name)

    def register_model(
        self, name: str, path: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> None:
        """Register ``path`` (a file or folder the run wrote, e.g. ``outputs/model.pt``) as the
        next version of model ``name``. Done when the run ends and its files are kept."""
        rel = _safe_relpath(path)
        if self.offline:
            print(f"[launchbay offline] register model {name} from {rel}")
            return
        kept = rel.split("/", 1)[0] in rf.KEPT
        in_files = os.path.exists(os.path.join(self._files_dir or "", rel))
        if not in_files and not os.path.exists(rel):
            raise FileNotFoundError(
                f"register_model({name!r}): the run has not written {rel!r} (paths are relative to the "
                "run's working folder, e.g. outputs/model.pt); write the file first."
            )
        if not kept and not in_files:  # a file outside ./outputs and ./logs: keep a copy now
            dest = self._file_dest(rel)
            if os.path.isdir(rel):
                shutil.copytree(rel, dest, dirs_exist_ok=True)
            else:
                shutil.copyfile(rel, dest)
        self.flush()  # the metrics logged so far are the version's metrics
        plain_tags = {str(k): str(_plain(v)) for k, v in (tags or {}).items()}
        self._record("model", str(name), {"path": rel, "tags": plain_tags, "description": description})

    def register_dataset(self, name: str, path: str, description: str | None = None) -> None:
        """Make ``path`` (a file or folder the run wrote, e.g. ``outputs/features``) the next version of
        dataset ``name`` once the run has completed and its files are kept (``launchbay data show NAME``)."""
        rel = _safe_relpath(path)
        if self.offline:
            print(f"[launchbay offline] register dataset {name} from {rel}")
            return
        in_files = os.path.exists(os.path.join(self._files_dir or "", rel))
        if not in_files and not os.path.exists(rel):
            raise FileNotFoundError(
                f"register_dataset({name!r}): the run has not written {rel!r} (paths are relative to the "
                "run's working folder, e.g. outputs/features); write it first."
            )
        if rel.split("/", 1)[0] not in rf.KEPT and not in_files:  # outside ./outputs and ./logs: a copy now
            dest = self._file_dest(rel)
            if os.path.isdir(rel):
                shutil.copytree(rel, dest, dirs_exist_ok=True)
            else:
                shutil.copyfile(rel, dest)
        self._record("dataset_output", str(name), {"path": rel, "description": description})

    def flush(self) -> None:
        """Write everything logged so far to the journal (also runs at exit)."""
        if self.offline or self._journal is None or self._busy_here():
            return  # called again from a signal handler inside a flush of this thread: it is under way
        with self._writing(), _signals_held(), self._flush_lock:
            points = self._points
            taken = len(points)
            if not taken:
                return
            batch = points[:taken]
            del points[:taken]  # appends made meanwhile sit after ``taken`` and stay
            if not plain_batch(batch):
                batch = self._checked(batch)
            for i in range(0, len(batch), MAX_POINTS_PER_RECORD):
                part = batch[i : i + MAX_POINTS_PER_RECORD]
                self._journal.write(marshal.dumps(("m", part)), len(part))
            if self._refused:
                refused, self._refused = self._refused, {}
                self._journal.write(marshal.dumps(("refused", (refused, time.time()))), 0)
            if self._rounded:  # after the points: the store marks their series rounded
                rounded, self._rounded = sorted(self._rounded), set()
                self._journal.write(marshal.dumps(("rounded", (rounded, time.time()))), 0)

    def _busy_here(self) -> bool:
        return int(getattr(self._busy, "depth", 0)) > 0

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Mark this thread as writing; a SIGTERM landing meanwhile ends the process right after.

        A signal that arrived just before ``_signals_held`` still runs its Python handler at
        the next bytecode; it must neither wait for a lock this thread holds nor cut a write."""
        busy = self._busy
        busy.depth = getattr(busy, "depth", 0) + 1
        try:
            yield
        finally:
            busy.depth -= 1
        if not busy.depth and self._deferred is not None and threading.current_thread() is threading.main_thread():
            deferred, self._deferred = self._deferred, None
            raise deferred

    def _checked(self, batch: list[tuple[Any, Any, Any, float]]) -> list[tuple[str, Any, Any, float]]:
        """The points as numbers (an int64 exact, anything else a float) with int64 steps; the others refused."""
        values = list(map(_value_of, batch))
        resolve_tensors(values)
        out = []
        for (name, _, step, ts), value in zip(batch, values):
            name = name if type(name) is str else str(name)
            try:
                stored, rounded = number(value)
                out.append((name, stored, exact_step(step), ts))
                if rounded:
                    self._rounded.add(name)
            except Exception as exc:  # whatever an odd object raises refuses that point only
                self._refuse(name, str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")
        return out

    def _refuse(self, name: str, reason: str) -> None:
        """Count a refused point; warn once per metric (the count goes to the run)."""
        entry = self._refused.setdefault(name, [0, reason])
        entry[0] += 1
        if name not in self._warned:
            self._warned.add(name)
            message = f"metric {name!r}: {reason}; such points are not stored (warned once per metric)"
            try:
                warnings.warn_explicit(message, RuntimeWarning, "launchbay", 0)
            except Exception:  # warnings turned into errors (-W error): say it, lose nothing else
                print(f"launchbay: RuntimeWarning: {message}", file=sys.stderr)

    def complete(self) -> None:
        """Flush now; the runner records the end itself when the process exits."""
        self.flush()

    # -- internals ---------------------------------------------------------------
    def _flush_loop(self) -> None:
        # Signals go to the main thread, never here: a signal taken by this thread would not
        # wake a main thread blocked in a system call (a Pool worker waiting for its next
        # task never saw the SIGTERM of Pool.terminate(), and the pool hung).
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        while not self._stop.wait(FLUSH_INTERVAL_S):
            try:
                self.flush()
            except Exception as exc:  # never kill the user's process over logging
                print(f"launchbay: could not write metrics: {exc}", file=sys.stderr)

    def _record(self, kind: str, name: str, payload: Any) -> None:
        if self.offline:
            print(f"[launchbay offline] {kind} {name} = {payload}")
            return
        if kind != "file":  # files are not series: every rank may keep its own
            if self._muted:
                return
            name = self._prefix + str(name)
        if self._journal is None:
            return
        data = marshal.dumps((kind, (str(name), payload, time.time())))
        with self._writing(), _signals_held():
            self._journal.write(data, 1)

    def _file_dest(self, relpath: str) -> str:
        base = self._files_dir or os.getcwd()
        dest = os.path.join(base, relpath)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        return dest

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, offline={self.offline})"


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "image"


#: the first bytes of each image format log_image takes (BMP, WebP and SVG are checked apart)
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
#: an SVG file: an <svg> element first, after an optional BOM, XML declaration, comments and doctype
_SVG_START = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s+|<\?xml[^>]*>|<!--.*?-->|<!DOCTYPE[^>]*>)*<svg[\s>]", re.DOTALL)


def _image_kind(path: str) -> str:
    """The file extension of the image at ``path``, told by its first bytes; a ValueError if it is none."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    for magic, extension in _IMAGE_MAGIC:
        if head.startswith(magic):
            return extension
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and head[6:10] == bytes(4):  # the size, then four reserved zero bytes
        return "bmp"
    if _SVG_START.match(head):
        return "svg"
    raise ValueError(
        f"log_image(path={path!r}): not an image file (PNG, JPEG, GIF, SVG, WebP, BMP or TIFF, told by its first "
        "bytes); to keep another kind of file with the run, use upload_file."
    )


def _safe_relpath(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"upload_file name {name!r} must be a relative path inside the run")
    return "/".join(parts)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Keep every point logged so far, then end the way Python ends on an exception."""
    _WAKEUP["handled"] += 1
    run = Run._context
    if run is not None:
        if run._busy_here():  # inside a write of this thread: it exits when done
            run._deferred = SystemExit(128 + signum)
            return
        try:
            run.flush()
        except Exception as exc:
            print(f"launchbay: could not write metrics: {exc}", file=sys.stderr)
    raise SystemExit(128 + signum)


def _on_sigint(signum: int, frame: Any) -> None:
    """Python's KeyboardInterrupt, but never in the middle of a journal write."""
    run = Run._context
    if run is not None and run._busy_here():
        run._deferred = KeyboardInterrupt()
        return
    raise KeyboardInterrupt


def _install_sigterm_flush() -> None:
    """Flush on SIGTERM, hold SIGINT's KeyboardInterrupt until a write is done.

    Installed only from the main thread, and only over the defaults."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
    except (ValueError, OSError):
        return
    _watch_signals()


def _watch_signals() -> None:
    """(Main thread) a watchdog for SIGTERM, fed by Python's wakeup fd.

    CPython runs a handler only when the main thread next executes bytecode: a SIGTERM that
    lands just before the main thread blocks in C (a Pool worker waiting on its queue's lock
    at Pool.terminate()) leaves the process hanging for good, where the default action would
    have ended it. The watchdog gives the handler SIGTERM_GRACE_S, then flushes and ends the
    process as SIGTERM would. Only while nobody else uses the wakeup fd (asyncio may)."""
    if signal.getsignal(signal.SIGTERM) is not _on_sigterm or _WAKEUP["pid"] == os.getpid():
        return  # not ours, or watched already
    try:
        read, write = os.pipe()
        os.set_blocking(write, False)
        old = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except (ValueError, OSError):
        return
    if old not in (-1, _WAKEUP["write"]):  # someone else's: give it back
        signal.set_wakeup_fd(old)
        os.close(read)
        os.close(write)
        return
    _close_wakeup_pipe()
    _WAKEUP.update(read=read, write=write, seen=0, handled=0, pid=os.getpid())
    threading.Thread(target=_sigterm_watchdog, args=(read,), name="launchbay-sigterm", daemon=True).start()


def _close_wakeup_pipe() -> None:
    for key in ("read", "write"):
        fd, _WAKEUP[key] = _WAKEUP[key], None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _sigterm_watchdog(read: int) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())  # signals stay the main thread's
    while True:
        try:
            data = os.read(read, 512)
        except OSError:
            return  # the pipe was closed (a fork replaced it)
        if not data:
            return
        if signal.SIGTERM not in data or signal.getsignal(signal.SIGTERM) is not _on_sigterm:
            continue  # the user's own SIGTERM handler decides what SIGTERM does
        _WAKEUP["seen"] += 1
        deadline = time.time() + SIGTERM_GRACE_S
        while _WAKEUP["handled"] < _WAKEUP["seen"] and time.time() < deadline:
            time.sleep(0.02)
        if _WAKEUP["handled"] < _WAKEUP["seen"]:
            run = Run._context
            try:
                if run is not None:
                    run.flush()
            finally:
                os._exit(128 + signal.SIGTERM)


def _after_fork_in_child() -> None:
    """A forked child logs into its own journal; one that has no run yet gets the defaults back."""
    run = Run._context
    if run is not None and not run.offline:
        run._after_fork()  # its _start gives it a watchdog of its own (_watch_signals)
        return
    if _WAKEUP["write"] is None or threading.current_thread() is not threading.main_thread():
        return
    try:  # nothing to flush here: the default actions are exactly right (and race-free)
        signal.set_wakeup_fd(-1)
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if signal.getsignal(signal.SIGINT) is _on_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except (ValueError, OSError):
        pass
    _close_wakeup_pipe()


def _flush_in_multiprocessing_children(run: Run) -> None:
    """A ``multiprocessing`` worker ends with ``os._exit`` (no atexit): flush in its exit hook.

    ``Process._bootstrap`` clears finalizers after a fork, then runs the after-fork hooks,
    so the finalizer is registered again from one."""
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    util.Finalize(run, run.flush, exitpriority=100)
    util.register_after_fork(run, _flush_in_multiprocessing_children)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
if os.environ.get(ENV_RUN_ID) and os.environ.get(ENV_JOURNAL_DIR):
    _install_sigterm_flush()  # now, in case Run.get_context() is first called in a thread
