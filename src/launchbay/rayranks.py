"""A distributed run's ranks as Ray workers in one placement group (Ray target, ``ranks = "workers"``).

Runs inside the run's Ray job, called by ``distlaunch.py``: one actor per rank,
each holding one bundle (``{"CPU": 1}``, or ``cpus_per_rank``) of a placement
group, and starting the rank's command as its child. Rank 0's bundle is pinned to
the job's own node, so its metrics and files land in the run folder; the
coordinator polls every actor for its output and writes ``rank_N.txt``. The actors
are owned by this process: when it ends (or is killed), Ray kills them, and each
rank has PDEATHSIG set against its actor. Needs ``ray`` importable by the job's
interpreter (it is, wherever a Ray job runs).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Any

POLL_S = 0.25
READY_TIMEOUT_S = 300.0


def _rank_worker_class(ray: Any) -> Any:
    """The actor class, made here so Ray pickles it by value (this file is no module on the workers)."""

    @ray.remote
    class RankWorker:
        def __init__(self) -> None:
            self.proc: Any = None
            self.out: Any = None

        def where(self) -> tuple[str, int]:
            import socket

            with socket.socket() as sock:
                sock.bind(("", 0))
                port = int(sock.getsockname()[1])
            return ray.util.get_node_ip_address(), port

        def start(self, command: list[str], env: dict[str, str], cwd: str, rel_cwd: str) -> int:
            import subprocess
            import tempfile

            def pdeathsig() -> None:
                try:
                    import ctypes

                    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
                except OSError:
                    pass

            self.out = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(
                command,
                cwd=cwd if os.path.isdir(cwd) else os.path.join(os.getcwd(), rel_cwd),  # another node: its copy
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=self.out,
                stderr=subprocess.STDOUT,
                preexec_fn=pdeathsig,
            )
            return int(self.proc.pid)

        def read(self, offset: int) -> tuple[bytes, int | None]:
            """Output after ``offset``, and the exit code once the rank has ended."""
            code = self.proc.poll()
            self.out.seek(offset)
            return self.out.read(1 << 20), code

        def signal(self, sig: int) -> None:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)

    return RankWorker


def run_ray_ranks(coordinator: Any, rank_env: Any, record_failure: Any, grace_s: float) -> int:
    """Start every rank in a Ray worker, relay their output, end them together; the exit code."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    dist, world, per_node = coordinator.dist, coordinator.world, coordinator.per_node
    ray.init(address="auto", log_to_driver=False, logging_level=logging.ERROR)
    here = ray.util.get_node_ip_address()
    cpus = float(dist.get("cpus_per_rank") or 1)
    bundles = [{"CPU": cpus} for _ in range(world)]
    bundles[0][f"node:{here}"] = 0.001  # rank 0 on this node: its metrics and files reach the run folder
    group = placement_group(bundles, strategy="PACK")
    print(f"launchbay: placement group of {world} bundles of {cpus:g} CPU for the ranks", flush=True)
    ready, _ = ray.wait([group.ready()], timeout=READY_TIMEOUT_S)
    if not ready:
        print(f"launchbay: Ray could not place {world} ranks in {READY_TIMEOUT_S:.0f} s.", flush=True)
        return 1
    worker_class = _rank_worker_class(ray)
    workers = [
        worker_class.options(
            num_cpus=cpus,
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=rank),
        ).remote()
        for rank in range(world)
    ]
    places = ray.get([w.where.remote() for w in workers])
    hosts, port = [places[0][0]], places[0][1]
    cwd = os.getcwd()
    rel_cwd = os.path.relpath(cwd, coordinator.run_dir)  # work/<working_dir> inside the job's package
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    pids = []
    for rank, worker in enumerate(workers):
        env = {**base, **rank_env(dist, rank, world, per_node, hosts, port)}
        pids.append(ray.get(worker.start.remote(coordinator.command, env, cwd, rel_cwd)))
    print(f"launchbay: ranks in Ray workers on {', '.join(p[0] for p in places)} (pids {pids})", flush=True)
    return _watch(coordinator, ray, workers, record_failure, grace_s, remove=lambda: remove_placement_group(group))


def _watch(coordinator: Any, ray: Any, workers: list[Any], record_failure: Any, grace_s: float, remove: Any) -> int:
    world = len(workers)
    offsets = [0] * world
    codes: list[int | None] = [None] * world
    logs = [open(coordinator.rank_log(r), "ab") for r in range(world)]
    failure: tuple[int, int] | None = None
    kill_at: float | None = None

    def stop(sig: int) -> None:
        for rank, worker in enumerate(workers):
            if codes[rank] is None:
                worker.signal.remote(sig)

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal kill_at
        coordinator.stopping = True
        stop(signal.SIGTERM)
        kill_at = time.time() + grace_s

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        while any(c is None for c in codes):
            answers = ray.get([w.read.remote(offsets[r]) for r, w in enumerate(workers)])
            for rank, (data, code) in enumerate(answers):
                if data:
                    logs[rank].write(data)
                    logs[rank].flush()
                    offsets[rank] += len(data)
                    if rank == 0:
                        sys.stdout.buffer.write(data)
                        sys.stdout.flush()
                if code is not None and codes[rank] is None and len(data) < (1 << 20):
                    codes[rank] = code
                    if code != 0 and failure is None and not coordinator.stopping:
                        failure = (rank, code)
                        record_failure(coordinator.journal_dir, rank, code)
                        coordinator.stopping = True
                        stop(signal.SIGTERM)
                        kill_at = time.time() + grace_s
            if kill_at is not None and time.time() > kill_at:
                stop(signal.SIGKILL)
                kill_at = None
            time.sleep(POLL_S)
    finally:
        for log in logs:
            log.close()
        for worker in workers:
            ray.kill(worker)
        remove()
    if failure:
        return failure[1] if failure[1] >= 0 else 128 - failure[1]
    return 0
