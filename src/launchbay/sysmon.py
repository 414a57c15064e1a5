"""System metrics and host facts, sampled by the runner (never in the run's own process).

Standard library only (Python 3.9+): shipped next to the runner as
``runtime/launchbay_sysmon.py``. Every ``interval`` seconds a thread reads the
run's process tree from ``/proc`` (CPU %, resident memory, disk I/O), the network
counters of its namespace, and each visible NVIDIA GPU (NVML through
``nvidia-ml-py`` when the runner's Python can import it, ``nvidia-smi`` otherwise)
and appends them as one batch to ``journal/system.bin`` in the in-run API's
format, so the store ingests them like any metric. Names start with ``system/``.
No GPU, no ``/proc`` (not Linux) or no permission: those metrics are left out,
never an error in the run.
"""

from __future__ import annotations

import marshal
import os
import platform
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

try:  # shipped next to the runner (runtime/launchbay_runfolder.py)
    import launchbay_runfolder as rf  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # launchbay's own source tree
    from launchbay import runfolder as rf

DEFAULT_INTERVAL_S = 5.0
PREFIX = "system/"
_HEADER = struct.Struct("<I")
_MB = 1024.0 * 1024.0
_SMI_FIELDS = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,driver_version"


# -- GPUs -------------------------------------------------------------------------------------
class _NVML:
    """GPUs through NVML (``import pynvml`` from nvidia-ml-py)."""

    def __init__(self) -> None:
        import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]

        pynvml.nvmlInit()
        self.nv = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]

    def facts(self) -> dict[str, Any]:
        nv = self.nv
        out: dict[str, Any] = {"gpu_count": len(self.handles), "gpu_source": "nvml"}
        out["gpu_driver"] = _text(nv.nvmlSystemGetDriverVersion())
        try:
            cuda = int(nv.nvmlSystemGetCudaDriverVersion_v2())
            out["cuda_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        except Exception:
            pass
        for i, h in enumerate(self.handles):
            out[f"gpu{i}_name"] = _text(nv.nvmlDeviceGetName(h))
            out[f"gpu{i}_memory_mb"] = round(nv.nvmlDeviceGetMemoryInfo(h).total / _MB)
        return out

    def sample(self) -> dict[str, float]:
        nv, out = self.nv, {}
        for i, h in enumerate(self.handles):
            reads = (
                ("utilization_percent", lambda h=h: nv.nvmlDeviceGetUtilizationRates(h).gpu),
                ("memory_used_mb", lambda h=h: nv.nvmlDeviceGetMemoryInfo(h).used / _MB),
                ("temperature_c", lambda h=h: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
                ("power_w", lambda h=h: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
            )
            for name, read in reads:
                try:
                    out[f"gpu{i}/{name}"] = float(read())
                except Exception:  # not supported on this board (power on some models)
                    pass
        return out


class _SMI:
    """GPUs through ``nvidia-smi --query-gpu`` (one short process a sample)."""

    def __init__(self) -> None:
        self.rows = self._query()  # raises OSError when there is no nvidia-smi
        if not self.rows:
            raise OSError("nvidia-smi lists no GPU")

    @staticmethod
    def _query() -> list[list[str]]:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={_SMI_FIELDS}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        return [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]

    def facts(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gpu_count": len(self.rows), "gpu_source": "nvidia-smi", "gpu_driver": self.rows[0][7]}
        for row in self.rows:
            out[f"gpu{row[0]}_name"] = row[1]
            out[f"gpu{row[0]}_memory_mb"] = _number(row[4])
        try:  # the CUDA version is only in the banner
            banner = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout
            if "CUDA Version:" in banner:
                out["cuda_version"] = banner.split("CUDA Version:", 1)[1].split()[0]
        except (OSError, subprocess.SubprocessError):
            pass
        return out

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        try:
            rows = self._query()
        except (OSError, subprocess.SubprocessError):
            return out
        for row in rows:
            fields = zip(("utilization_percent", "memory_used_mb", "", "temperature_c", "power_w"), row[2:7])
            for name, text in fields:
                value = _number(text)
                if name and value is not None:
                    out[f"gpu{row[0]}/{name}"] = float(value)
        return out


def open_gpus() -> _NVML | _SMI | None:
    """NVML when importable and working, else nvidia-smi, else None (no GPU here)."""
    for kind in (_NVML, _SMI):
        try:
            gpus = kind()
        except Exception:
            continue
        if isinstance(gpus, _SMI) or gpus.handles:
            return gpus
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


# -- host facts ---------------------------------------------------------------------------------
def host_facts(gpus: _NVML | _SMI | None, python: str | None = None) -> dict[str, Any]:
    """What the run ran on: recorded as the run's ``launchbay.host.*`` properties."""
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": _python_version(python),
    }
    memory = _meminfo().get("MemTotal")
    if memory:
        facts["memory_mb"] = round(memory / 1024)
    if gpus is not None:
        try:
            facts.update(gpus.facts())
        except Exception as exc:  # a broken driver must not fail the run
            facts["gpu_error"] = str(exc)[:200]
    else:
        facts["gpu_count"] = 0
    return facts


def _python_version(python: str | None) -> str:
    """The run's interpreter version (it may be a venv or another Python than the runner's)."""
    if python and os.path.realpath(python) != os.path.realpath(sys.executable):
        try:
            out = subprocess.run(
                [python, "-c", "import sys; print(sys.version.split()[0])"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.python_version()


def _meminfo() -> dict[str, int]:
    """``/proc/meminfo`` in KiB."""
    out = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


# -- the process tree ------------------------------------------------------------------------------
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _proc_table() -> dict[int, tuple[int, int, float, int]]:
    """pid → (ppid, pgid, cpu seconds incl. reaped children, rss bytes), for every process we can read."""
    table: dict[int, tuple[int, int, float, int]] = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return table
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0] is the state (stat field 3): ppid 4, pgrp 5, utime 14, stime 15, cutime 16, cstime 17, rss 24
        if fields[0] in (b"Z", b"X"):
            continue  # exited, not reaped yet: nothing left to measure
        cpu = sum(int(f) for f in fields[11:15]) / _TICKS
        table[pid] = (int(fields[1]), int(fields[2]), cpu, int(fields[21]) * _PAGE)
    return table


def process_tree(root: int, table: dict[int, tuple[int, int, float, int]]) -> list[int]:
    """``root``, its descendants, and anything left in its process group."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _pgid, _cpu, _rss) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [root] if root in table else []
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, ()))
    found.update(pid for pid, row in table.items() if row[1] == root)
    return sorted(found)


def _io_bytes(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/io") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        return int(fields.get("read_bytes", 0)), int(fields.get("write_bytes", 0))
    except (OSError, ValueError):
        return 0, 0


def _net_bytes(pid: int) -> tuple[int, int] | None:
    """Received and sent bytes of the process's network namespace (loopback left out)."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as fh:
            lines = fh.readlines()[2:]
    except OSError:
        return None
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            continue
        cols = data.split()
        if len(cols) >= 9:
            rx, tx = rx + int(cols[0]), tx + int(cols[8])
    return rx, tx


class Sampler:
    """The sampling thread; ``start`` once the run's process exists, ``stop`` when it ended."""

    def __init__(self, journal_dir: str, root_pid: int, interval: float, gpus: _NVML | _SMI | None) -> None:
        self.path = os.path.join(journal_dir, rf.SYSTEM_JOURNAL)
        self.root, self.interval, self.gpus = root_pid, interval, gpus
        self.step = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="launchbay-sysmon", daemon=True)
        self._last: tuple[float, float] | None = None  # (wall time, cpu seconds of the tree)
        self._io_seen: dict[int, tuple[int, int]] = {}  # pid → its last read/write counters
        self._io_done = [0, 0]  # bytes of processes that have exited since
        self._net_start: tuple[int, int] | None = None

    def start(self) -> None:
        self._net_start = _net_bytes(self.root)
        now, cpu, _tree, _table = self._cpu_now()
        self._last = (now, cpu)  # the baseline: CPU % is the difference between two samples
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                values = self.sample()
            except Exception as exc:  # a sampling bug must never harm the run
                print(f"launchbay runner: system metrics stopped: {exc}", file=sys.stderr)
                return
            if values:
                self.write(values)

    def _cpu_now(self) -> tuple[float, float, list[int], dict[int, tuple[int, int, float, int]]]:
        table = _proc_table()
        tree = process_tree(self.root, table)
        return time.time(), sum(table[p][2] for p in tree), tree, table

    def sample(self) -> dict[str, float]:
        """One reading of every metric this machine offers."""
        now, cpu, tree, table = self._cpu_now()
        values: dict[str, float] = {}
        if not tree:  # the run's processes have ended (the runner stops the sampler next)
            return values
        if self._last is not None and now > self._last[0]:
            values["cpu_percent"] = max(0.0, (cpu - self._last[1]) / (now - self._last[0]) * 100.0)
        self._last = (now, cpu)
        rss = sum(table[p][3] for p in tree)
        values["memory_rss_mb"] = rss / _MB
        total = _meminfo().get("MemTotal")
        if total:
            values["memory_percent"] = rss / (total * 1024.0) * 100.0
        read, write = self._disk(tree)
        values["disk_read_mb"], values["disk_write_mb"] = read / _MB, write / _MB
        net = _net_bytes(self.root)
        if net is not None and self._net_start is not None:
            values["network_receive_mb"] = max(0, net[0] - self._net_start[0]) / _MB
            values["network_transmit_mb"] = max(0, net[1] - self._net_start[1]) / _MB
        if self.gpus is not None:
            values.update(self.gpus.sample())
        return values

    def _disk(self, tree: list[int]) -> tuple[int, int]:
        """Bytes read and written from storage by the tree since the start, counting exited processes."""
        seen = {pid: _io_bytes(pid) for pid in tree}
        for pid, (r, w) in self._io_seen.items():
            if pid not in seen:
                self._io_done[0] += r
                self._io_done[1] += w
        self._io_seen = seen
        return (
            self._io_done[0] + sum(r for r, _ in seen.values()),
            self._io_done[1] + sum(w for _, w in seen.values()),
        )

    def write(self, values: dict[str, float]) -> None:
        ts = time.time()
        batch = [(PREFIX + name, float(value), self.step, ts) for name, value in sorted(values.items())]
        self.step += 1
        data = marshal.dumps(("m", batch))
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            return
        try:  # a record whole or not at all: a full disk loses this sample, never the ones after it
            start, record = os.lseek(fd, 0, os.SEEK_END), _HEADER.pack(len(data)) + data
            try:
                whole = os.write(fd, record) == len(record)
            except OSError:
                whole = False
            if not whole:
                os.ftruncate(fd, start)
        except OSError:
            pass
        finally:
            os.close(fd)


def interval_of(config: dict[str, Any]) -> float:
    """The sampling interval from runner.json (``system_metrics_interval_s``; 0 or less = off)."""
    value = config.get("system_metrics_interval_s")
    try:
        return DEFAULT_INTERVAL_S if value is None else float(value)
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL_S


class Monitor:
    """What the runner starts next to the run: host facts once, then the sampler."""

    def __init__(self, config: dict[str, Any], journal: Any, root_pid: int) -> None:
        self.interval = interval_of(config)
        self.sampler: Sampler | None = None
        self.config, self.journal, self.root = config, journal, root_pid
        self._thread = threading.Thread(target=self._begin, name="launchbay-host", daemon=True)
        self._thread.start()  # GPU discovery can take a second: never delay the run's start

    def _begin(self) -> None:
        gpus = open_gpus()
        try:
            self.journal.event(type="host", facts=host_facts(gpus, self.config.get("python")))
        except Exception as exc:
            print(f"launchbay runner: host facts not recorded: {exc}", file=sys.stderr)
        if self.interval > 0:
            self.sampler = Sampler(self.journal.dir, self.root, self.interval, gpus)
            self.sampler.start()

    def stop(self) -> None:
        self._thread.join(timeout=30)
        if self.sampler is not None:
            self.sampler.stop()
