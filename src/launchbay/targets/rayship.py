"""The Ray job's entry point: run the runner, and ship the run folder back through the job's log.

Standard library only (Python 3.9+): it travels in the job's working_dir next to
the runner. A Ray job runs on some node that shares no filesystem with the
notebook; the one channel the Jobs API gives back is the job's log. So this
script prints every new byte of the run folder (journal, live log, outputs) as
tagged lines, and the notebook side (``ray.py``) writes them back into the local
run folder at the same offsets. Line format, one chunk a line::

    @lb1 OFFSET PATH t "JSON string"     text (the live log), readable on Ray's dashboard
    @lb1 OFFSET PATH b BASE64            anything else (metrics journal)
    @lb1 end EXIT_CODE                   nothing follows

A chunk at offset 0 replaces the file (the heartbeat, rewritten files).
Lines without the tag (the runner's own messages) are kept as ``journal/runner.log``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO
from urllib.parse import quote

try:  # shipped next to this file (runtime/launchbay_runfolder.py)
    import launchbay_runfolder as rf  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # launchbay's own source tree
    from launchbay import runfolder as rf

PREFIX = "@lb1 "
CHUNK = 48 * 1024
INTERVAL_S = 0.25
TEXT_FILES = (rf.STD_LOG_PATH,)
#: in runtime/: {name in the zip: real name} of the files ray.py shipped under another name
RENAMED = "renamed.json"


def encode_chunk(offset: int, rel: str, data: bytes) -> str:
    if rel in TEXT_FILES:
        payload = "t " + json.dumps(data.decode("utf-8", "surrogateescape"))
    else:
        payload = "b " + base64.b64encode(data).decode("ascii")
    return f"{PREFIX}{offset} {quote(rel, safe='/')} {payload}\n"


class Shipper:
    """Remembers how much of each file went out; ``ship`` prints what is new."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.sent: dict[str, tuple[int, int]] = {}  # rel -> (bytes sent, mtime_ns)
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def ship(self) -> None:
        """Print what is new, as the mirror's scan finds it: append-only files by their new
        bytes, others whole when they changed; events last, cut where they stood before the
        rest was read, so a reader that sees "Completed" already has the outputs."""
        known = {rel: list(sent) for rel, sent in self.sent.items()}
        result, payload = rf.scan(self.run_dir, known, [rf.FILES, rf.JOURNAL], 1 << 62)
        pos = 0
        for rel, start, length, _size, mtime_ns in result["files"]:
            data = payload[pos : pos + length]
            pos += length
            lines = [encode_chunk(start + i, rel, data[i : i + CHUNK]) for i in range(0, len(data), CHUNK)]
            self.say("".join(lines) or encode_chunk(start, rel, b""))
            self.sent[rel] = (start + length, mtime_ns)


def _forward(stream: IO[str], shipper: Shipper) -> None:
    for line in iter(stream.readline, ""):
        shipper.say(line if line.endswith("\n") else line + "\n")


def restore_names(run_dir: str) -> None:
    """Ray's unpacker skips zip entries whose name has a backslash; ray.py ships those under other names."""
    try:
        with open(os.path.join(run_dir, rf.RUNTIME, RENAMED)) as fh:
            renamed = json.load(fh)
    except (OSError, ValueError):
        return
    for shipped, real in renamed.items():
        target = os.path.join(run_dir, real)
        if os.path.exists(os.path.join(run_dir, shipped)):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(os.path.join(run_dir, shipped), target)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    run_dir = os.path.abspath(args[0] if args else ".")
    restore_names(run_dir)
    runner = os.path.join(run_dir, rf.RUNTIME, rf.RUNNER_ENTRY)
    shipper = Shipper(run_dir)
    proc = subprocess.Popen(
        [sys.executable, runner, run_dir],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )

    def stop(signum: int, _frame: object) -> None:
        # Ray's stop_job signals every process of the job; make sure the runner
        # hears it, and stay alive to ship the Canceled record it writes.
        try:
            proc.send_signal(signal.SIGTERM)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    assert proc.stdout is not None
    reader = threading.Thread(target=_forward, args=(proc.stdout, shipper), daemon=True)
    reader.start()
    while proc.poll() is None:
        shipper.ship()
        time.sleep(INTERVAL_S)
    reader.join(timeout=5)
    shipper.ship()
    shipper.say(f"{PREFIX}end {proc.returncode}\n")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
