"""The remote half of an SSH connection: one long-lived Python per connection (the *agent*).

``SSHConnection`` (sshconn.py) starts ``AGENT`` with the host's interpreter and
talks to it over framed JSON on its stdin/stdout; ``Agent`` is the local side of
that stream. The other scripts here are the file helpers it runs (``MISSING``,
``UNPACK``): a call costs a few milliseconds, not a shell start.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

CHUNK = 256 * 1024

# -- the agent: one remote python per connection ---------------------------------------------
# Parses under old Pythons too (no f-strings), so a too-old interpreter is reported by version.
# Protocol, both ways: one JSON line whose "size" says how many raw bytes follow it.
# A request carries Python code (sent once, then named by its key) run with ``args`` and
# ``data`` (the raw bytes); the code sets ``result`` (JSON) and optionally ``payload`` (bytes).
AGENT = r"""
import json, os, sys
out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr
inp = getattr(sys.stdin, "buffer", sys.stdin)
def send(head, payload=b""):
    head["size"] = len(payload)
    out.write((json.dumps(head) + "\n").encode())
    out.write(payload)
    out.flush()
send({"version": "%d.%d.%d" % tuple(sys.version_info[:3]), "executable": sys.executable, "pid": os.getpid()})
if sys.version_info[:2] < (3, 9):
    sys.exit(0)
codes = {}
while True:
    line = inp.readline()
    if not line:
        break
    req = json.loads(line)
    data = inp.read(req["size"]) if req.get("size") else b""
    try:
        if req.get("code") is not None:
            codes[req["key"]] = compile(req["code"], "<launchbay:" + req["key"][:8] + ">", "exec")
        ns = {"args": req.get("args"), "data": data, "result": None, "payload": b""}
        exec(codes[req["key"]], ns)
        send({"ok": True, "result": ns["result"]}, ns["payload"])
    except Exception as exc:
        import traceback
        send({"ok": False, "error": "%s: %s" % (type(exc).__name__, exc), "trace": traceback.format_exc()[-3000:]})
"""

MISSING = r"""
import os
base = args["base"]
result = [name for name in args["names"] if not os.path.isfile(os.path.join(base, name))]
"""

# Each file lands through a temp name and a rename, so a transfer cut short never leaves a
# half-written file under its real name; blobs must hash to their own name (ab/cdef...).
UNPACK = r"""
import hashlib, os
base, pos = args["base"], 0
for name, size, mode in args["files"]:
    if name.startswith("/") or ".." in name.split("/"):
        raise ValueError("refusing path %r" % name)
    chunk = data[pos:pos + size]
    pos += size
    if args["blobs"] and hashlib.sha256(chunk).hexdigest() != name.replace("/", ""):
        raise ValueError("blob %s arrived corrupted" % name)
    dest = os.path.join(base, name)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = "%s.tmp-%d" % (dest, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(chunk)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)
result = len(args["files"])
"""


class Agent:
    """The remote python of one connection; requests are serialised by a lock (loop side)."""

    def __init__(self, process: Any, hello: dict[str, Any]) -> None:
        self.process, self.hello = process, hello
        self.lock = asyncio.Lock()
        self.known_codes: set[str] = set()
        self.broken = False
        self.stderr_tail = b""
        self._drain = asyncio.ensure_future(self._read_stderr())

    async def _read_stderr(self) -> None:
        """Keep reading stderr (a full window would stall the agent); keep its tail for errors."""
        while True:
            try:
                chunk = await self.process.stderr.read(65536)
            except Exception:  # noqa: BLE001 - the connection went: requests report that themselves
                return
            if not chunk:
                return
            self.stderr_tail = (self.stderr_tail + chunk)[-4000:]

    async def request(self, head: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes, int]:
        async with self.lock:
            if self.broken:
                raise ConnectionError("the remote helper stopped")
            try:
                key = head["key"]
                if key in self.known_codes:
                    head = {**head, "code": None}
                head["size"] = len(data)
                line = (json.dumps(head) + "\n").encode()
                self.process.stdin.write(line)
                for start in range(0, len(data), CHUNK):
                    self.process.stdin.write(data[start : start + CHUNK])
                    await self.process.stdin.drain()
                await self.process.stdin.drain()
                answer = await self.process.stdout.readline()
                if not answer:
                    why = self.stderr_tail.decode(errors="replace")[-300:]
                    raise ConnectionError(f"the remote helper exited: {why}")
                reply = json.loads(answer)
                payload = await self.process.stdout.readexactly(reply["size"]) if reply["size"] else b""
            except BaseException:
                self.broken = True  # the stream is out of step now: this agent is done
                self.process.close()
                raise
            self.known_codes.add(key)
            return reply, payload, len(line) + len(data)
