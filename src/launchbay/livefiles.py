"""Keep the run's ``./outputs`` and ``./logs`` in its files folder while it runs.

Standard library only (Python 3.9+): shipped next to the runner as
``runtime/launchbay_livefiles.py``. Every second a thread makes ``files/outputs``
and ``files/logs`` match the run's working folders, so every target's sync
(which brings the run folder's ``files/`` back) returns them during the run,
TensorBoard event files included. A file is a hard link to the run's own file
where possible (same filesystem: no copy, and appends show at once); otherwise
its new bytes are appended, or it is copied whole when it was rewritten. The
last pass, when the run has ended, is the same.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import threading

try:  # shipped next to the runner (runtime/launchbay_runfolder.py)
    import launchbay_runfolder as rf  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # launchbay's own source tree
    from launchbay import runfolder as rf

FOLDERS = rf.KEPT
INTERVAL_S = 1.0
_PROBE = 4096  # bytes compared at the end of what was copied, to tell an append from a rewrite


class LiveFiles:
    """Mirror ``cwd/outputs`` and ``cwd/logs`` into ``files_dir``; ``stop`` does the last pass."""

    def __init__(self, cwd: str, files_dir: str, interval: float = INTERVAL_S) -> None:
        self.cwd, self.files_dir, self.interval = cwd, files_dir, interval
        self.seen: dict[str, tuple[int, int, int]] = {}  # rel → (inode, size, mtime_ns) of the source
        self.linked: dict[str, int] = {}  # rel → inode shared with the source
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="launchbay-livefiles", daemon=True)

    def start(self) -> LiveFiles:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and bring the folders up to date one last time."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        self.sync()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # never harm the run; the last pass tries again
                print(f"launchbay runner: live outputs paused: {exc}", file=sys.stderr)

    def sync(self) -> None:
        for folder in FOLDERS:
            base = os.path.join(self.cwd, folder)
            if not os.path.isdir(base):
                continue
            for parent, dirs, names in os.walk(base):
                dirs.sort()
                for name in sorted(names):
                    source = os.path.join(parent, name)
                    rel = os.path.relpath(source, self.cwd)
                    try:
                        self._one(rel, source)
                    except OSError:
                        continue  # vanished or unreadable right now: next pass

    def _one(self, rel: str, source: str) -> None:
        st = os.lstat(source)
        if not stat.S_ISREG(st.st_mode):
            return  # a symlink is never followed (it may lead out of the run: /etc/passwd), nor copied
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self.seen.get(rel) == key:
            return
        dest = os.path.join(self.files_dir, rel)
        if self.linked.get(rel) == st.st_ino and _same_inode(dest, st):
            self.seen[rel] = key  # the same file: its new bytes are already there
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if st.st_mode & 0o200 and self._link(source, dest):
            self.linked[rel] = st.st_ino
        else:  # read-only (a snapshot blob) or another filesystem: copy
            self.linked.pop(rel, None)
            _copy_new_bytes(source, dest, st.st_size)
        self.seen[rel] = key

    @staticmethod
    def _link(source: str, dest: str) -> bool:
        tmp = dest + ".link.tmp"
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.link(source, tmp)
            os.replace(tmp, dest)
            return True
        except OSError:
            return False


def _same_inode(path: str, st: os.stat_result) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_ino, other.st_dev) == (st.st_ino, st.st_dev)


def _copy_new_bytes(source: str, dest: str, size: int) -> None:
    """Append what ``source`` gained since ``dest`` was copied, or copy it whole if it was rewritten."""
    try:
        have = os.path.getsize(dest)
    except OSError:
        have = -1
    if 0 <= have <= size and _same_probe(source, dest, have):
        with open(source, "rb") as fin, open(dest, "ab") as fout:
            fin.seek(have)
            remaining = size - have
            while remaining > 0:
                chunk = fin.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                fout.write(chunk)
                remaining -= len(chunk)
        return
    tmp = dest + ".tmp"
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def _same_probe(source: str, dest: str, upto: int) -> bool:
    """Do both files hold the same bytes just before ``upto`` (the part copied already)?"""
    start = max(0, upto - _PROBE)
    try:
        with open(source, "rb") as a, open(dest, "rb") as b:
            a.seek(start)
            b.seek(start)
            return a.read(upto - start) == b.read(upto - start)
    except OSError:
        return False
