"""The runner's hold on every process a run starts (stdlib only, shipped with the runner).

A run's code may start children that leave its process group and session (``setsid``,
a double fork, a daemon). Linux re-parents such orphans to the nearest *child
subreaper* above them, so the runner declares itself one: every descendant stays
its descendant, and cancel and the run's end can find and stop all of them by
walking ``/proc``. Elsewhere (no prctl) only the process group is stopped.
"""

from __future__ import annotations

import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants this process's children (Linux ≥ 3.4); False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _children_supported() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` from /proc/PID/task/*/children (cheap: no scan of every process)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out.extend(int(x) for x in fh.read().split())
        except OSError:
            continue
    return out


def _state(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return b"X"


def _parents() -> dict[int, int]:
    """pid → parent pid of every live process we can see (where /proc has no children files)."""
    out: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and fields[0] not in (b"Z", b"X"):
            out[int(name)] = int(fields[1])
    return out


def descendants(root: int | None = None) -> list[int]:
    """Live descendants of ``root`` (default: this process), children first."""
    root = os.getpid() if root is None else root
    if _children_supported():
        children_of = _children
    else:
        table: dict[int, list[int]] = {}
        for pid, ppid in _parents().items():
            table.setdefault(ppid, []).append(pid)

        def children_of(pid: int) -> list[int]:
            return table.get(pid, [])

    found: list[int] = []
    todo = [root]
    while todo:
        for child in children_of(todo.pop()):
            if child not in found and _state(child) not in (b"Z", b"X"):
                found.append(child)
                todo.append(child)
    return found


def signal_all(sig: int, pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def reap(exclude: int | None = None) -> None:
    """Collect the exit status of finished children (orphans the subreaper inherited).

    ``exclude`` (the run's main child, which ``Popen.wait`` collects) is never reaped here."""
    me = os.getpid()
    if _children_supported():
        mine = _children(me)
    else:
        mine = [pid for pid, ppid in _parents().items() if ppid == me]
        mine += _zombies_of(me)
    for pid in mine:
        if pid != exclude and _state(pid) == b"Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _zombies_of(me: int) -> list[int]:
    out: list[int] = []
    try:
        names = os.listdir("/proc")
    except OSError:  # no /proc (macOS): nothing to collect this way
        return out
    for name in names:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] == b"Z" and int(fields[1]) == me:
                out.append(int(name))
    return out


def stop_all(grace_s: float, exclude: int | None = None) -> int:
    """SIGTERM every descendant, SIGKILL those left after ``grace_s``; how many were found."""
    pids = [p for p in descendants() if p != exclude]
    found = len(pids)
    if not pids:
        return 0
    signal_all(signal.SIGTERM, pids)
    deadline = time.time() + grace_s
    while time.time() < deadline:
        reap(exclude)
        pids = [p for p in descendants() if p != exclude]
        if not pids:
            return found
        time.sleep(0.05)
    for _ in range(20):  # a process may fork while we kill: repeat until none is left
        pids = [p for p in descendants() if p != exclude]
        if not pids:
            break
        found += len(set(pids))
        signal_all(signal.SIGKILL, pids)
        time.sleep(0.02)
        reap(exclude)
    return found


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks after boot): with the pid, names it uniquely."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def record_tree(path: str, previous: list[list[int]]) -> list[list[int]]:
    """Write [[pid, start time], ...] of every descendant to ``path`` when it changed.

    If the runner itself is killed (SIGKILL), its orphans lose their subreaper; whoever
    notices the dead runner stops them from this list (``kill_recorded``)."""
    tree = [[pid, start] for pid in descendants() if (start := start_time(pid)) is not None]
    if tree != previous:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            fh.write(repr(tree))
        os.replace(tmp, path)
    return tree


def kill_recorded(path: str) -> int:
    """SIGKILL the processes ``record_tree`` listed that still run (same pid and start time)."""
    import ast

    try:
        with open(path) as fh:
            tree = ast.literal_eval(fh.read())
    except (OSError, ValueError, SyntaxError):
        return 0
    killed = 0
    for pid, start in tree:
        if start_time(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed
