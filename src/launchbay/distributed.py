"""Distributed launches: ``PyTorch``, ``Mpi`` and ``TensorFlow`` configurations.

A distributed run starts its entry point as several cooperating processes (ranks).
The configuration travels with the run as a plain dict (``RunSpec.distributed``,
recorded with the run, kept on a re-run); the compute side reads it in
``distlaunch.py``. Everything a target cannot give (more processes than it has
CPUs, a node count on a single-machine target, no ``mpirun``) is refused in one
line, before a run exists: each target's ``check_distributed`` hook asks the
checks here for what applies to it (targets/base.py).

Written forms: ``PyTorch(process_count_per_node=2, node_count=1)`` in Python,
``pytorch:2`` / ``pytorch:2x2`` (nodes x processes) / ``mpi:4`` / ``tensorflow:2+1``
(workers + parameter servers) on the command line and in magics, and a string or
a table under ``distributed`` on a target or environment in launchbay.toml.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from . import runfolder as rf
from .errors import ConfigError

if TYPE_CHECKING:
    from .config import ProjectConfig
    from .models import RunSpec

_FORM = re.compile(r"^\s*(pytorch|torch|mpi|tensorflow|tf)\s*(?::\s*(.*))?$", re.IGNORECASE)
_EXAMPLES = "pytorch:2, pytorch:2x2 (nodes x processes), mpi:4 or tensorflow:2+1 (workers + parameter servers)"


@dataclass(frozen=True)
class _Distributed:
    kind: ClassVar[str]
    #: other ranks' ``Run.get_context()`` log too, under ``rank<N>/<name>`` (rank 0 keeps plain names)
    log_all_ranks: bool = False

    @property
    def process_count_per_node(self) -> int:
        raise NotImplementedError

    @property
    def node_count(self) -> int:
        return 1

    @property
    def world_size(self) -> int:
        return self.process_count_per_node * self.node_count

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind, **asdict(self)}
        data.update(process_count_per_node=self.process_count_per_node, node_count=self.node_count)
        return data

    def describe(self) -> str:
        nodes = f"{self.node_count} nodes x " if self.node_count > 1 else ""
        every = ", every rank logs" if self.log_all_ranks else ""
        return f"{self.kind}: {nodes}{self.process_count_per_node} processes{every}"

    def _check(self) -> None:
        for name, value in asdict(self).items():
            if name != "log_all_ranks" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ConfigError(f"{type(self).__name__}: {name} must be a whole number, not {value!r}.")
        if self.process_count_per_node < 1 or self.node_count < 1:
            raise ConfigError(f"{type(self).__name__} needs at least one process on at least one node.")


@dataclass(frozen=True)
class PyTorch(_Distributed):
    """``torch.distributed`` / DDP: each process gets MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,
    LOCAL_RANK, NODE_RANK and LOCAL_WORLD_SIZE, as torchrun sets them."""

    kind: ClassVar[str] = "pytorch"
    process_count_per_node: int = 1  # type: ignore[assignment]
    node_count: int = 1  # type: ignore[assignment]
    log_all_ranks: bool = False

    def __post_init__(self) -> None:
        self._check()


@dataclass(frozen=True)
class Mpi(_Distributed):
    """The entry point runs under ``mpirun`` (Open MPI: ``OMPI_COMM_WORLD_*`` in every process)."""

    kind: ClassVar[str] = "mpi"
    process_count_per_node: int = 1  # type: ignore[assignment]
    node_count: int = 1  # type: ignore[assignment]
    log_all_ranks: bool = False

    def __post_init__(self) -> None:
        self._check()


@dataclass(frozen=True)
class TensorFlow(_Distributed):
    """``TF_CONFIG`` for each process: workers first (worker 0 is the chief), then parameter servers.

    The run ends when every worker has ended; parameter servers are then stopped."""

    kind: ClassVar[str] = "tensorflow"
    worker_count: int = 1
    parameter_server_count: int = 0
    log_all_ranks: bool = False

    def __post_init__(self) -> None:
        self._check()
        if self.worker_count < 1:
            raise ConfigError("TensorFlow needs worker_count >= 1.")

    @property
    def process_count_per_node(self) -> int:
        return self.worker_count + self.parameter_server_count

    def describe(self) -> str:
        every = ", every rank logs" if self.log_all_ranks else ""
        return f"tensorflow: {self.worker_count} workers + {self.parameter_server_count} parameter servers{every}"


Distributed = PyTorch | Mpi | TensorFlow
DistributedLike = Distributed | str | dict[str, Any] | None


def parse(value: DistributedLike) -> Distributed | None:
    """A configuration from an object, ``"pytorch:2x2"``-style text or a launchbay.toml table."""
    if isinstance(value, (PyTorch, Mpi, TensorFlow)):
        return value
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return _from_dict(value)
    if not isinstance(value, str):
        raise ConfigError(f"distributed = {value!r} is not understood; write e.g. {_EXAMPLES}.")
    match = _FORM.match(value)
    if not match:
        raise ConfigError(f"distributed = {value!r} is not understood; write e.g. {_EXAMPLES}.")
    kind, rest = match.group(1).lower(), (match.group(2) or "1").strip()
    try:
        if kind in ("tensorflow", "tf"):
            workers, _, ps = rest.partition("+")
            return TensorFlow(worker_count=int(workers), parameter_server_count=int(ps or 0))
        nodes, sep, per_node = rest.lower().partition("x")
        counts = (int(nodes), int(per_node)) if sep else (1, int(nodes))
    except ValueError:
        raise ConfigError(f"distributed = {value!r} is not understood; write e.g. {_EXAMPLES}.") from None
    cls = Mpi if kind == "mpi" else PyTorch
    return cls(process_count_per_node=counts[1], node_count=counts[0])


def _from_dict(data: dict[str, Any]) -> Distributed:
    data = dict(data)
    kind = str(data.pop("kind", data.pop("type", ""))).lower()
    if kind in ("tensorflow", "tf"):  # derived values, as to_dict() writes them
        data.pop("process_count_per_node", None)
        data.pop("node_count", None)
    classes: dict[str, type[Distributed]] = {"pytorch": PyTorch, "torch": PyTorch, "mpi": Mpi}
    classes.update(tensorflow=TensorFlow, tf=TensorFlow)
    cls = classes.get(kind)
    if cls is None:
        raise ConfigError(f'distributed needs kind = "pytorch", "mpi" or "tensorflow" (got {kind or "none"!r}).')
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"distributed ({kind}) has unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}.")
    return cls(**data)


def from_spec(spec: RunSpec) -> Distributed | None:
    return parse(spec.distributed) if spec.distributed else None


def resolve(spec: RunSpec, config: ProjectConfig) -> RunSpec:
    """The spec with its distributed configuration as a dict: the run's own, else its
    environment's, else its target's ``distributed`` entry in launchbay.toml."""
    from dataclasses import replace

    value: DistributedLike = spec.distributed
    if not value:
        settings = config.targets.get(spec.target) or {}
        env_name = spec.environment or settings.get("environment")
        env = config.environments.get(env_name) if isinstance(env_name, str) else None
        value = (env or {}).get("distributed") or settings.get("distributed")
    parsed = parse(value)
    return replace(spec, distributed=parsed.to_dict() if parsed else None)


def check_node_count(dist: Distributed, target: str, target_type: str, places_ranks: str) -> None:
    """A node count is for targets that give a run several machines; ``target`` (of ``target_type``)
    is not one: it ``places_ranks`` (a target's words for how it does)."""
    if dist.node_count > 1:
        raise ConfigError(
            f"Target {target!r} ({target_type}) {places_ranks}; node_count = {dist.node_count} is "
            f"for Slurm targets. Use e.g. {dist.kind}:{dist.world_size} for {dist.world_size} processes."
        )


def check_local_cpus(dist: Distributed) -> None:
    """Ranks on this machine: no more processes than it has CPUs."""
    cpus = os.cpu_count() or 1
    if dist.world_size > cpus:
        raise ConfigError(
            f"{dist.describe()} asks for {dist.world_size} processes, more than the {cpus} CPUs of this machine; "
            f"use at most {cpus}."
        )


def check_mpirun(dist: Distributed) -> None:
    """An MPI run started from this machine needs ``mpirun`` here."""
    if dist.kind == "mpi" and shutil.which("mpirun") is None:
        raise ConfigError(
            "An MPI run needs `mpirun` and it is not installed here; install Open MPI "
            "(Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) and retry."
        )


def check_slurm_capacity(dist: Distributed, nodes: list[tuple[str, int]], target: str) -> None:
    """Slurm: refuse more nodes, or more tasks on a node, than the partition has (from sinfo)."""
    if not nodes:
        return
    if dist.node_count > len(nodes):
        raise ConfigError(
            f"{dist.describe()} needs {dist.node_count} nodes; Slurm target {target!r} has {len(nodes)}. "
            f"Lower node_count to at most {len(nodes)}."
        )
    best = sorted((cpus for _, cpus in nodes), reverse=True)[dist.node_count - 1]
    if dist.process_count_per_node > best:
        raise ConfigError(
            f"{dist.describe()} needs {dist.process_count_per_node} tasks on each of {dist.node_count} node(s); "
            f"Slurm target {target!r} has at most {best} CPUs there. Lower process_count_per_node to {best}."
        )


def check_cluster_cpus(dist: Distributed, cpus: float | None, how: str, where: str, address: str) -> None:
    """Ray: refuse more processes than the CPUs where they would run (None: the dashboard did not say)."""
    if cpus is not None and dist.world_size > cpus:
        raise ConfigError(
            f"{dist.describe()} runs {dist.world_size} processes {how}; {where} at {address} has "
            f"{cpus:g} CPUs. Use at most {cpus:g} processes."
        )


def prepare(spec: RunSpec, target: Any, config: ProjectConfig) -> RunSpec:
    """Resolve the spec's distributed configuration and check the target (``targets.base.Target``) can give it."""
    spec = resolve(spec, config)
    dist = from_spec(spec)
    if dist is not None:
        target.check_distributed(dist)
    return spec


def runner_entry(dist: Distributed, launcher: str, **extra: Any) -> dict[str, Any]:
    """What the compute side (distlaunch.py) reads from runner.json: the config, how to start ranks
    (``launcher``: a target's ``rank_launcher``) and what that launcher needs besides (``extra``)."""
    return {**dist.to_dict(), "launcher": launcher, **extra}


def slurm_settings(settings: dict[str, Any], entry: dict[str, Any] | None) -> dict[str, Any]:
    """The Slurm target's sbatch settings with the allocation a distributed run needs."""
    if not entry:
        return settings
    return {**settings, "nodes": entry["node_count"], "ntasks_per_node": entry["process_count_per_node"]}


def world_size(record: Any) -> int:
    """How many ranks a run has (1 for a run that is not distributed)."""
    entry = (record.spec or {}).get("distributed")
    return int(entry["process_count_per_node"]) * int(entry["node_count"]) if entry else 1


def read_rank_chunk(record: Any, rank: int, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
    """Bytes of one rank's own log after ``offset``, and the next offset (like ``RunStore.read_log``)."""
    path = record.run_dir / rf.FILES / rf.RANK_LOG.format(rank)
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(max_bytes)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


def check_rank(record: Any, rank: int) -> None:
    world = world_size(record)
    if not (record.spec or {}).get("distributed"):
        raise ConfigError(f"Run {record.run_id} is not distributed; `launchbay logs {record.run_id}` shows its log.")
    if not 0 <= rank < world:
        raise ConfigError(f"Run {record.run_id} has ranks 0 to {world - 1}; rank {rank} is not one of them.")


def read_rank_log(session: Any, run_id: str, rank: int) -> str:
    """``launchbay logs RUN --rank N``: that rank's own output (caught up from the target first)."""
    record = session.refresh(run_id)
    check_rank(record, rank)
    return read_rank_chunk(record, rank, 0, 1 << 31)[0].decode("utf-8", "replace")
