"""Queues and the supervisor (issue 29), on the local target and the embedded store.

    .venv/bin/python bench/bench_queue.py [--rounds 5] [--queued 1000] [--idle-s 10]

Figures:
- freed slot -> next start: a target with max_concurrent_runs = 1 runs a gated run with one queued
  behind it; the gate opens; the time from the gated run's recorded end to the queued run's recorded
  start (both the runner's clock, the store's ``ended``/``started``), median and worst of --rounds;
- ``launchbay queue --json`` as a whole process over --queued queued runs (best of 5), and the
  store's ``queue_entries()`` in process;
- the supervisor's own CPU (utime + stime from /proc) while it waits: a run holding the one slot and
  one queued behind it (the 0.1 s poll), and with only a schedule due in an hour (the 1 s poll).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

PY = sys.executable
GATED = """
import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
"""


def launchbay(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PY, "-m", "launchbay", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def project(root: Path, limit: int = 1) -> tuple[Path, dict[str, str]]:
    folder = root / "proj"
    folder.mkdir(parents=True)
    (folder / "launchbay.toml").write_text(f'[targets.box]\ntype = "local"\nmax_concurrent_runs = {limit}\n')
    (folder / "gated.py").write_text(GATED)
    (folder / "quick.py").write_text("print('hi')\n")
    env = {**os.environ, "LAUNCHBAY_STORE": str(root / "store")}
    return folder, env


def wait_status(cwd: Path, env: dict[str, str], run_id: str, want: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        shown = json.loads(launchbay(cwd, env, "show", "--json", run_id))
        if shown["status"] in want:
            return shown
        time.sleep(0.2)
    raise SystemExit(f"{run_id} not {want} after {timeout} s")


def slot_latency(root: Path, rounds: int) -> list[float]:
    cwd, env = project(root)
    gaps = []
    for n in range(rounds):
        gate = root / f"gate-{n}"
        first = launchbay(cwd, env, "submit", "-t", "box", "--detach", "gated.py", "--", str(gate)).strip()
        second = launchbay(cwd, env, "submit", "-t", "box", "--detach", "quick.py").strip()
        wait_status(cwd, env, first, ("Running",))
        gate.touch()
        ended = wait_status(cwd, env, first, ("Completed",))
        started = wait_status(cwd, env, second, ("Running", "Completed"))
        gaps.append(stamp(started["started"]) - stamp(ended["ended"]))
        wait_status(cwd, env, second, ("Completed",))
    return gaps


def listing(root: Path, queued: int) -> tuple[float, float, float]:
    from launchbay.models import RunSpec
    from launchbay.store import open_store

    cwd, env = project(root)
    store = open_store(env["LAUNCHBAY_STORE"])
    spec = RunSpec(script="quick.py", target="box", experiment="bench")
    kw = {"target": "box", "experiment": "bench", "target_limit": 1, "experiment_limit": None}
    holder = store.create_run(spec, target_type="local", snapshot_id=None, properties={})
    store.enqueue(holder.pk, claimer="bench", **kw)  # type: ignore[arg-type]
    store.queue_started(holder.pk)
    for _ in range(queued):
        run = store.create_run(spec, target_type="local", snapshot_id=None, properties={})
        store.enqueue(run.pk, claimer="bench", **kw)  # type: ignore[arg-type]
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        out = launchbay(cwd, env, "queue", "--json")
        best = min(best, time.perf_counter() - t0)
        assert len(json.loads(out)) == queued
    t0 = time.perf_counter()
    assert len(store.queue_entries()) == queued
    inproc = time.perf_counter() - t0
    store.close()
    bare = float("inf")  # the same CLI's start on its own: `launchbay runs --limit 1`
    for _ in range(5):
        t0 = time.perf_counter()
        launchbay(cwd, env, "runs", "--limit", "1", "--json")
        bare = min(bare, time.perf_counter() - t0)
    return best, inproc, bare


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def supervisor_pid(env: dict[str, str]) -> int:
    lock = Path(env["LAUNCHBAY_STORE"]) / "supervisor.lock"
    deadline = time.time() + 30
    while time.time() < deadline:
        if lock.is_file() and lock.read_text().strip():
            return int(lock.read_text().split()[0])
        time.sleep(0.1)
    raise SystemExit("no supervisor started")


def idle_cpu(root: Path, seconds: float) -> tuple[float, float]:
    cwd, env = project(root)
    gate = root / "gate"
    first = launchbay(cwd, env, "submit", "-t", "box", "--detach", "gated.py", "--", str(gate)).strip()
    launchbay(cwd, env, "submit", "-t", "box", "--detach", "quick.py")
    wait_status(cwd, env, first, ("Running",))
    pid = supervisor_pid(env)
    c0, t0 = cpu_s(pid), time.time()
    time.sleep(seconds)
    waiting = (cpu_s(pid) - c0) / (time.time() - t0)
    gate.touch()
    launchbay(cwd, env, "schedule", "add", "hourly", "--every", "1h", "--", "submit", "quick.py")
    time.sleep(3)  # the queue runs dry; the schedule keeps the supervisor
    pid = supervisor_pid(env)
    c0, t0 = cpu_s(pid), time.time()
    time.sleep(seconds)
    scheduled = (cpu_s(pid) - c0) / (time.time() - t0)
    os.kill(pid, 9)
    return waiting, scheduled


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gaps = slot_latency(Path(tmp) / "latency", args.rounds)
        print(f"freed slot -> next start: median {statistics.median(gaps):.3f} s, worst {max(gaps):.3f} s")
        whole, inproc, bare = listing(Path(tmp) / "listing", args.queued)
        print(f"`launchbay queue --json`, {args.queued} queued: {whole * 1000:.0f} ms (process)")
        print(f"  queue_entries() in process: {inproc * 1000:.1f} ms; `launchbay runs --limit 1`: {bare * 1000:.0f} ms")
        waiting, scheduled = idle_cpu(Path(tmp) / "idle", args.idle_s)
        print(f"supervisor CPU waiting on a held slot: {waiting * 100:.2f}% of a core")
        print(f"  with only a schedule: {scheduled * 100:.2f}% of a core")


if __name__ == "__main__":
    main()
