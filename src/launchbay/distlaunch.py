"""Start a distributed run's ranks and keep them together (stdlib only, shipped with the runner).

The runner starts this in place of the entry point when ``runner.json`` has a
``distributed`` entry: ``python distlaunch.py RUN_DIR -- COMMAND...``. It

- starts the ranks: as child processes (``procs``: local, Docker, SSH, Ray with
  ``ranks = "job"``), under ``srun`` across a Slurm allocation (``srun``), as Ray
  workers in a placement group (``ray``, see rayranks.py), or under ``mpirun`` (MPI runs);
- gives each the variables its framework reads (torchrun's ``MASTER_ADDR``,
  ``RANK``, ``LOCAL_RANK``..., ``TF_CONFIG``; mpirun sets ``OMPI_COMM_WORLD_*``);
- keeps each rank's output in ``files/user_logs/rank_N.txt`` and echoes rank 0's
  to its own output (the run's main log);
- when a rank fails, records which (``journal/failed_rank.json``, read by the
  runner for the run's error) and stops the other ranks: SIGTERM, then SIGKILL.

Under srun and mpirun each task runs ``distlaunch.py --rank RUN_DIR -- COMMAND``,
which sets the same variables from the task's ``SLURM_*``/``OMPI_*`` ones, keeps
its log and writes its exit under ``journal/ranks/``. All ranks stay in the
runner's process group, so a cancel or the maximum duration stops every one.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any


def _sibling(name: str) -> Any:
    """Another runner-side module beside this file (``launchbay_<name>.py`` in a shipped runtime)."""
    import importlib.util

    shipped = os.path.basename(__file__).startswith("launchbay_")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), ("launchbay_" if shipped else "") + name + ".py")
    spec = importlib.util.spec_from_file_location(f"launchbay_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rf = _sibling("runfolder")  # the run folder's layout (stdlib only, like this file)
RANK_LOG = rf.RANK_LOG
FAILED_RANK = rf.FAILED_RANK
STOP_GRACE_S = 2.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _pdeathsig() -> None:
    """Linux: a rank gets SIGKILL if its launcher dies, so none is left behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def rank_env(dist: dict[str, Any], rank: int, world: int, per_node: int, hosts: list[str], port: int) -> dict[str, str]:
    """What one rank sees: torchrun's variables, TF_CONFIG for TensorFlow, and launchbay's own."""
    node_rank = rank // per_node
    env = {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank % per_node),
        "NODE_RANK": str(node_rank),
        "GROUP_RANK": str(node_rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(per_node),
        "MASTER_ADDR": hosts[0],
        "MASTER_PORT": str(port),
        "LAUNCHBAY_RANK": str(rank),
        "LAUNCHBAY_WORLD_SIZE": str(world),
        "LAUNCHBAY_LOG_ALL_RANKS": "1" if dist.get("log_all_ranks") else "0",
    }
    if dist.get("kind") == "tensorflow":
        workers = int(dist.get("worker_count") or world)

        def address(r: int) -> str:  # each process serves on its own port, after MASTER_PORT
            return f"{hosts[min(r // per_node, len(hosts) - 1)]}:{port + 1 + r}"

        cluster: dict[str, list[str]] = {"worker": [address(r) for r in range(workers)]}
        if world > workers:
            cluster["ps"] = [address(r) for r in range(workers, world)]
        task = {"type": "worker", "index": rank} if rank < workers else {"type": "ps", "index": rank - workers}
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": task})
    return env


class _Rank:
    """One rank's process and the thread that copies its output into its log."""

    def __init__(self, rank: int, command: list[str], env: dict[str, str], files_dir: str) -> None:
        self.rank = rank
        path = os.path.join(files_dir, RANK_LOG.format(rank))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_pdeathsig,
        )
        self.tee = threading.Thread(target=_tee, args=(self.proc.stdout, path, rank == 0), daemon=True)
        self.tee.start()

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass


def _tee(stream: Any, path: str, echo: bool) -> None:
    with open(path, "ab") as log:
        for chunk in iter(lambda: stream.read1(65536), b""):
            log.write(chunk)
            log.flush()
            if echo:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()


def _code(returncode: int) -> int:
    """A shell-style exit code: a rank killed by signal N is 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _record_failure(journal_dir: str, rank: int, returncode: int) -> None:
    data = {"rank": rank, "exit_code": returncode, "log": RANK_LOG.format(rank), "reason": _describe(returncode)}
    tmp = os.path.join(journal_dir, FAILED_RANK + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, os.path.join(journal_dir, FAILED_RANK))
    print(f"launchbay: rank {rank} {data['reason']}; stopping the other ranks.", flush=True)


class Coordinator:
    """Starts the ranks and ends them together; see the module docstring."""

    def __init__(self, run_dir: str, command: list[str]) -> None:
        self.run_dir = run_dir
        with open(os.path.join(run_dir, rf.RUNNER_CONFIG), encoding="utf-8") as fh:
            self.dist: dict[str, Any] = json.load(fh)["distributed"]
        self.command = command
        self.per_node = int(self.dist.get("process_count_per_node") or 1)
        self.nodes = int(self.dist.get("node_count") or 1)
        self.world = self.per_node * self.nodes
        self.files_dir = os.environ.get("LAUNCHBAY_FILES_DIR") or os.path.join(run_dir, rf.FILES)
        self.journal_dir = os.environ.get("LAUNCHBAY_JOURNAL_DIR") or os.path.join(run_dir, rf.JOURNAL)
        self.stopping = False

    def rank_log(self, rank: int) -> str:
        """Where rank ``rank``'s output goes."""
        return os.path.join(self.files_dir, RANK_LOG.format(rank))

    def run(self) -> int:
        mode = self.dist.get("launcher") or "procs"
        if self.dist.get("kind") == "mpi":
            mode = "mpirun"
        if mode == "procs":
            return self._run_procs()
        if mode == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                print("launchbay: `ray` is not importable by this run's python; the ranks run in the job.", flush=True)
                return self._run_procs()
            rayranks = _sibling("rayranks")
            return int(rayranks.run_ray_ranks(self, rank_env, _record_failure, STOP_GRACE_S))
        return self._run_launcher(mode)

    # -- ranks as our own children -------------------------------------------------------------
    def _run_procs(self) -> int:
        port = _free_port()
        base = dict(os.environ)
        ranks: list[_Rank] = []
        ended: queue.Queue[tuple[int, int]] = queue.Queue()

        def on_signal(signum: int, _frame: Any) -> None:
            self.stopping = True
            for r in ranks:
                r.signal(signum)

        for sig in _SIGNALS:
            signal.signal(sig, on_signal)
        for rank in range(self.world):
            if self.stopping:  # canceled while the ranks were being started
                break
            env = {**base, **rank_env(self.dist, rank, self.world, self.per_node, ["127.0.0.1"], port)}
            ranks.append(_Rank(rank, self.command, env, self.files_dir))
            threading.Thread(target=lambda r=ranks[-1]: ended.put((r.rank, r.proc.wait())), daemon=True).start()
        workers = int(self.dist.get("worker_count") or self.world)
        failure: tuple[int, int] | None = None
        kill_at: float | None = None
        done: set[int] = set()
        while len(done) < len(ranks):
            try:
                rank, code = ended.get(timeout=0.1)
            except queue.Empty:
                if kill_at is not None and time.time() > kill_at:
                    for r in ranks:
                        r.signal(signal.SIGKILL)
                    kill_at = None
                continue
            done.add(rank)
            if code != 0 and failure is None and not self.stopping:
                failure = (rank, code)
                _record_failure(self.journal_dir, rank, code)
                self._stop(ranks)
                kill_at = time.time() + STOP_GRACE_S
            elif failure is None and all(r in done for r in range(workers)) and len(done) < len(ranks):
                self._stop(ranks)  # TensorFlow: every worker ended, the parameter servers are not needed
                kill_at = time.time() + STOP_GRACE_S
        for r in ranks:
            r.tee.join(timeout=5)
        return _code(failure[1]) if failure else 0

    def _stop(self, ranks: list[_Rank]) -> None:
        self.stopping = True
        for r in ranks:
            r.signal(signal.SIGTERM)

    # -- ranks under srun or mpirun ----------------------------------------------------------
    def _run_launcher(self, mode: str) -> int:
        hosts = _slurm_hosts() if os.environ.get("SLURM_JOB_ID") else []
        hosts = hosts or [socket.gethostname()]
        env = dict(os.environ)
        env.update(
            LAUNCHBAY_DIST_HOSTS=",".join(hosts),
            LAUNCHBAY_DIST_PORT=str(_free_port()),
            LAUNCHBAY_DIST_PER_NODE=str(self.per_node),
        )
        wrapper = [sys.executable, os.path.abspath(__file__), "--rank", self.run_dir, "--", *self.command]
        if mode == "srun":
            argv = ["srun", "--kill-on-bad-exit=1", "--export=ALL", f"--nodes={self.nodes}"]
            argv += [f"--ntasks={self.world}", f"--ntasks-per-node={self.per_node}", *wrapper]
        else:
            argv = ["mpirun", "-np", str(self.world), "--bind-to", "none"]
            if not os.environ.get("SLURM_JOB_ID"):
                argv.append("--oversubscribe")  # we checked the CPU count before the run
            if os.geteuid() == 0:
                argv.append("--allow-run-as-root")
            env.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")  # containers forbid CMA
            argv += wrapper
        if shutil.which(argv[0], path=env.get("PATH")) is None:
            print(f"launchbay: `{argv[0]}` is not installed where this run executes.", flush=True)
            return 127
        print("launchbay: " + " ".join(argv[: argv.index(sys.executable)]), flush=True)
        ranks_dir = os.path.join(self.journal_dir, rf.RANKS)
        os.makedirs(ranks_dir, exist_ok=True)
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)

        def on_signal(signum: int, _frame: Any) -> None:
            self.stopping = True
            if proc.poll() is None:
                proc.send_signal(signum)

        for sig in _SIGNALS:
            signal.signal(sig, on_signal)
        workers = int(self.dist.get("worker_count") or self.world)
        workers_done = False
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if workers < self.world and not self.stopping and _all_succeeded(ranks_dir, workers):
                    workers_done = self.stopping = True  # TensorFlow: the parameter servers are not needed
                    proc.send_signal(signal.SIGTERM)
        if workers_done:
            return 0
        if code != 0 and not self.stopping:
            first = _first_failure(ranks_dir)
            if first:
                _record_failure(self.journal_dir, *first)
        return _code(code)


def _slurm_hosts() -> list[str]:
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST") or ""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30)
        return out.stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []


def _first_failure(ranks_dir: str) -> tuple[int, int] | None:
    """The rank that failed first, from the exit records the rank wrappers wrote."""
    failures = []
    for name in os.listdir(ranks_dir):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(ranks_dir, name), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        if data.get("exit_code"):
            failures.append((data["ts"], data["rank"], data["exit_code"]))
    return (failures and min(failures)[1:]) or None  # type: ignore[return-value]


def _all_succeeded(ranks_dir: str, count: int) -> bool:
    """Have ranks 0..count-1 all ended with exit code 0 (from the rank wrappers' records)?"""
    for rank in range(count):
        try:
            with open(os.path.join(ranks_dir, rf.RANK_RECORD.format(rank)), encoding="utf-8") as fh:
                if json.load(fh).get("exit_code") != 0:
                    return False
        except (OSError, ValueError):
            return False
    return True


def _first_int(*names: str, default: int = 0) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(str(value).split("(")[0].split(",")[0])
    return default


def run_rank(run_dir: str, command: list[str]) -> int:
    """One task under srun or mpirun: its variables, its log, its exit record."""
    with open(os.path.join(run_dir, rf.RUNNER_CONFIG), encoding="utf-8") as fh:
        dist = json.load(fh)["distributed"]
    rank = _first_int("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
    world = _first_int("OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", default=1)
    per_node = _first_int("LAUNCHBAY_DIST_PER_NODE", default=world)
    hosts = (os.environ.get("LAUNCHBAY_DIST_HOSTS") or socket.gethostname()).split(",")
    env = {**os.environ, **rank_env(dist, rank, world, per_node, hosts, _first_int("LAUNCHBAY_DIST_PORT"))}
    env["LOCAL_RANK"] = str(_first_int("OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", default=rank % per_node))
    env["NODE_RANK"] = env["GROUP_RANK"] = str(_first_int("OMPI_COMM_WORLD_NODE_RANK", "SLURM_NODEID"))
    files_dir = os.environ.get("LAUNCHBAY_FILES_DIR") or os.path.join(run_dir, rf.FILES)
    journal_dir = os.environ.get("LAUNCHBAY_JOURNAL_DIR") or os.path.join(run_dir, rf.JOURNAL)
    child = _Rank(rank, command, env, files_dir)

    def on_signal(signum: int, _frame: Any) -> None:
        """Pass the signal on; a rank still there STOP_GRACE_S later gets SIGKILL (srun and mpirun
        would wait for Slurm's KillWait, 30 s by default, or not at all)."""
        child.signal(signum)
        timer = threading.Timer(STOP_GRACE_S, child.signal, args=(signal.SIGKILL,))
        timer.daemon = True
        timer.start()

    for sig in _SIGNALS:
        signal.signal(sig, on_signal)
    code = child.proc.wait()
    child.tee.join(timeout=5)
    record = os.path.join(journal_dir, rf.RANKS, rf.RANK_RECORD.format(rank))
    with open(record + ".tmp", "w", encoding="utf-8") as fh:
        json.dump({"rank": rank, "exit_code": code, "ts": time.time()}, fh)
    os.replace(record + ".tmp", record)
    return _code(code)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    as_rank = bool(args) and args[0] == "--rank"
    if as_rank:
        args = args[1:]
    if len(args) < 3 or args[1] != "--":
        print("usage: distlaunch.py [--rank] RUN_DIR -- COMMAND...", file=sys.stderr)
        return 2
    run_dir, command = os.path.abspath(args[0]), args[2:]
    if as_rank:
        return run_rank(run_dir, command)
    return Coordinator(run_dir, command).run()


if __name__ == "__main__":
    sys.exit(main())
