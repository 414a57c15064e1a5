"""The in-run API: ``Run.get_context()`` and its logging methods.

Standard library only: this module is shipped next to the runner into containers,
remote hosts and cluster nodes where launchbay itself is not installed.

Why it is fast: ``log`` only appends a tuple to a list. A daemon thread swaps the
list out every 0.2 s and writes it, marshalled in one C call, as one record of an
append-only per-process journal file. The store ingests those files. Values that
marshal cannot take (NumPy scalars, PyTorch tensors, even on a GPU) are resolved
there, in the background and in batches, so the training step never waits for a
device synchronisation. A final flush runs at exit, on exceptions and on SIGTERM.
"""

from __future__ import annotations

import atexit
import marshal
import operator
import os
import shutil
import signal
import struct
import sys
import threading
import time
from typing import Any

ENV_RUN_ID = "LAUNCHBAY_RUN_ID"
ENV_JOURNAL_DIR = "LAUNCHBAY_JOURNAL_DIR"
ENV_FILES_DIR = "LAUNCHBAY_FILES_DIR"
ENV_EXPERIMENT = "LAUNCHBAY_EXPERIMENT"
ENV_RANK = "LAUNCHBAY_RANK"  # set by distlaunch.py in each rank of a distributed run
ENV_LOG_ALL_RANKS = "LAUNCHBAY_LOG_ALL_RANKS"
FLUSH_INTERVAL_S = 0.2
_HEADER = struct.Struct("<I")
_NUMBER_TYPES = (int, float)
_PLAIN_VALUES = frozenset({int, float})
_PLAIN_STEPS = frozenset({int, type(None)})
_value_of, _step_of = operator.itemgetter(1), operator.itemgetter(2)


def _is_plain(batch: list[tuple[Any, Any, Any, float]]) -> bool:
    """All values are int/float and all steps int/None (checked at C speed with map/set).

    marshal would store a NumPy scalar as raw bytes, so anything else is resolved first."""
    return (
        set(map(type, map(_value_of, batch))) <= _PLAIN_VALUES and set(map(type, map(_step_of, batch))) <= _PLAIN_STEPS
    )


def _plain(value: Any) -> Any:
    """A value marshal can store: numbers and strings as they are, anything else as text."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def _resolve_points(batch: list[tuple[Any, Any, Any, float]]) -> list[tuple[str, Any, Any, float]]:
    """Turn tensors and NumPy scalars into floats, one device transfer per device."""
    values: list[Any] = [p[1] for p in batch]
    torch = sys.modules.get("torch")
    tensor_type = getattr(torch, "Tensor", None)  # None while torch is still importing
    if tensor_type is not None:
        try:
            _resolve_tensors(torch, tensor_type, values)
        except Exception:  # odd tensors: fall back to one .item() each below
            pass
    out = []
    for (name, _, step, ts), value in zip(batch, values):
        if type(value) not in _NUMBER_TYPES:
            value = _plain(value)
            if not isinstance(value, (int, float)):
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    continue  # not a number: a scalar metric cannot hold it
        if step is not None and type(step) is not int:
            step = int(_plain(step))
        out.append((str(name), value, step, ts))
    return out


def _resolve_tensors(torch: Any, tensor_type: Any, values: list[Any]) -> None:
    """Replace 0-d tensors by floats in place: one stacked transfer per device."""
    by_device: dict[Any, list[int]] = {}
    for i, v in enumerate(values):
        if isinstance(v, tensor_type):
            by_device.setdefault(v.device, []).append(i)
    for indices in by_device.values():
        stacked = torch.stack([values[i].detach().reshape(()).double() for i in indices])
        for i, resolved in zip(indices, stacked.cpu().tolist()):
            values[i] = resolved


class _Journal:
    """One append-only file per process: length-prefixed marshal records."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        name = f"p{os.getpid()}-{time.time_ns()}.bin"
        self.path = os.path.join(directory, name)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()

    def write(self, kind: str, payload: Any) -> None:
        data = marshal.dumps((kind, payload))
        with self._lock:
            os.write(self._fd, _HEADER.pack(len(data)) + data)


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
        self._journal = _Journal(self._journal_dir)
        self.log = _fast_log(self._points, self._prefix, self._muted)  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._flush_loop, name="launchbay-flush", daemon=True)
        self._thread.start()
        atexit.register(self.flush)
        self._install_sigterm_flush()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """A forked child logs into a journal file of its own."""
        self._points.clear()  # the parent's points are the parent's to write
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._start()

    def _install_sigterm_flush(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: Any) -> None:
            self.flush()
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)

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
        """Log an image from a file ``path`` or a matplotlib figure/pyplot ``plot``."""
        if (path is None) == (plot is None):
            raise ValueError("log_image needs exactly one of path= or plot=")
        if self._muted:
            return
        self._image_counter += 1
        target = f"images/{_safe_name(name)}_{self._image_counter}.png"
        if self.offline:
            print(f"[launchbay offline] image {name}")
            return
        dest = self._file_dest(target)
        if plot is not None:
            figure = plot.gcf() if hasattr(plot, "gcf") else plot
            figure.savefig(dest, format="png")
        else:
            shutil.copyfile(str(path), dest)
        self._record("image", name, target)

    def tag(self, key: str, value: Any = None) -> None:
        """Set a tag on the run (shown and filterable everywhere)."""
        self._record("tag", str(key), "" if value is None else str(_plain(value)))

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def upload_file(self, name: str, path_or_stream: Any) -> None:
        """Keep a file with the run under ``name`` (./outputs and ./logs are kept anyway)."""
        if self.offline:
            print(f"[launchbay offline] upload {name}")
            return
        dest = self._file_dest(_safe_relpath(name))
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
        kept = rel.split("/", 1)[0] in ("outputs", "logs")
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

    def flush(self) -> None:
        """Write everything logged so far to the journal (also runs at exit)."""
        if self.offline or self._journal is None:
            return
        with self._flush_lock:
            points = self._points
            taken = len(points)
            batch = points[:taken]
            del points[:taken]  # appends made meanwhile sit after ``taken`` and stay
            if batch:
                self._journal.write("m", batch if _is_plain(batch) else _resolve_points(batch))

    def complete(self) -> None:
        """Flush now; the runner records the end itself when the process exits."""
        self.flush()

    # -- internals ---------------------------------------------------------------
    def _flush_loop(self) -> None:
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
        assert self._journal is not None
        self._journal.write(kind, (str(name), payload, time.time()))

    def _file_dest(self, relpath: str) -> str:
        base = self._files_dir or os.getcwd()
        dest = os.path.join(base, relpath)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        return dest

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, offline={self.offline})"


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "image"


def _safe_relpath(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"upload_file name {name!r} must be a relative path inside the run")
    return "/".join(parts)
