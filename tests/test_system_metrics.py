"""System metrics and host facts: sampled by the runner next to the run, stored under ``system/``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, wait_for, write
from launchbay.errors import ConfigError

BURN = """
    import sys, time
    start = time.time()
    n = 0
    while time.time() < start + float(sys.argv[1]):
        n += 1
    print("own cpu percent", 100 * time.process_time() / (time.time() - start))
"""


def test_a_run_that_burns_cpu_records_its_cpu_percent_and_memory(project: Path) -> None:
    write(project, "burn.py", BURN)
    handle = launchbay.submit("burn.py", ["3"], system_metrics_interval_s=0.5)
    assert handle.wait() == "Completed", handle.get_log()
    metrics = handle.get_metrics()
    cpu = metrics["system/cpu_percent"]
    assert len(cpu) >= 3
    # one busy core is 100 (less on a shared machine: the run measured its own share); idle is ~0
    own = float(handle.get_log().split("own cpu percent")[1].split()[0])
    assert own > 10 and sum(cpu) / len(cpu) == pytest.approx(own, rel=0.5), (own, cpu)
    assert min(metrics["system/memory_rss_mb"]) > 1
    for name in ("system/disk_read_mb", "system/disk_write_mb", "system/memory_percent"):
        assert name in metrics
    assert not any(name.startswith("system/gpu") for name in metrics)


def test_an_idle_run_shows_cpu_near_zero(project: Path) -> None:
    write(project, "idle.py", "import time\ntime.sleep(2)\n")
    handle = launchbay.submit("idle.py", system_metrics_interval_s=0.4)
    assert handle.wait() == "Completed"
    cpu = handle.get_metrics()["system/cpu_percent"]
    assert cpu and sorted(cpu)[len(cpu) // 2] < 5, cpu


def test_sampling_can_be_turned_off_per_run_or_per_target(project: Path, cli: CLI) -> None:
    write(project, "quick.py", "import time\ntime.sleep(1.2)\n")
    write(project, "launchbay.toml", '[targets.quiet]\ntype = "local"\nsystem_metrics_interval = 0\n')
    off = launchbay.submit("quick.py", system_metrics_interval_s=0)
    quiet = launchbay.submit("quick.py", target="quiet")
    on = launchbay.submit("quick.py", target="quiet", system_metrics_interval_s=0.3)  # the run's own value wins
    for handle in (off, quiet, on):
        assert handle.wait() == "Completed"
    assert not any(n.startswith("system/") for n in off.get_metrics())
    assert not any(n.startswith("system/") for n in quiet.get_metrics())
    assert "system/cpu_percent" in on.get_metrics()
    # the host facts are recorded even with sampling off
    assert off.record().properties["launchbay.host.cpu_count"] >= 1
    proc = cli("submit", "--system-metrics-interval", "-1", "quick.py")
    assert proc.returncode != 0 and "system_metrics_interval must be a number of seconds >= 0" in proc.stderr


def test_host_facts_are_recorded_and_shown(project: Path, cli: CLI) -> None:
    write(project, "quick.py", "print('hi')\n")
    handle = launchbay.submit("quick.py", system_metrics_interval_s=0)
    assert handle.wait() == "Completed"
    props = handle.record().properties
    assert props["launchbay.host.hostname"]
    assert props["launchbay.host.cpu_count"] >= 1 and props["launchbay.host.memory_mb"] > 0
    assert props["launchbay.host.python"].count(".") == 2
    shown = cli("show", handle.run_id, check=True).stdout
    assert "launchbay.host.hostname" in shown and "launchbay.host.python" in shown


@pytest.mark.skipif(bool(shutil.which("nvidia-smi")), reason="this machine has nvidia-smi")
def test_a_machine_without_gpus_records_no_gpu_metrics_and_no_error(project: Path) -> None:
    write(project, "quick.py", "import time\ntime.sleep(1)\n")
    handle = launchbay.submit("quick.py", system_metrics_interval_s=0.3)
    assert handle.wait() == "Completed"
    assert not [n for n in handle.get_metrics() if "gpu" in n]
    assert handle.record().properties["launchbay.host.gpu_count"] == 0
    runner_log = handle.record().run_dir / "journal" / "runner.log"
    assert "system metrics" not in (runner_log.read_text() if runner_log.exists() else "")


def test_a_bad_interval_in_the_target_is_refused_clearly(project: Path) -> None:
    write(project, "quick.py", "print(1)\n")
    write(project, "launchbay.toml", '[targets.odd]\ntype = "local"\nsystem_metrics_interval = "often"\n')
    with pytest.raises(ConfigError, match="system_metrics_interval must be a number"):
        launchbay.submit("quick.py", target="odd")


def test_the_widget_puts_system_metrics_in_their_own_closed_group_and_offers_tensorboard(project: Path) -> None:
    from launchbay.ipython.widgets import RunWidget

    write(
        project,
        "both.py",
        """
        import os, time
        from launchbay import Run
        Run.get_context().log("loss", 0.5)
        os.makedirs("logs", exist_ok=True)
        open("logs/events.out.tfevents.1.host", "wb").close()
        time.sleep(1.5)
    """,
    )
    handle = launchbay.submit("both.py", system_metrics_interval_s=0.3)
    assert handle.wait() == "Completed"
    widget = RunWidget(handle)
    assert widget.wait_until_done(30)
    system = widget._system
    assert len(system.plots.children) >= 3 and system.selected_index is None  # closed at first
    assert len(widget._plots.children) == 1  # only "loss" among the run's own plots
    assert widget._tensorboard.layout.display is None  # the TensorBoard button is shown
    assert not any(image.value for image in system.plots.children)  # closed: not drawn (kernel time saved)
    system.selected_index = 0  # opened after the run ended: drawn then
    wait_for(lambda: all(image.value for image in system.plots.children), timeout=30)
    widget.close()


def test_system_metrics_are_never_the_runs_headline_metric(project: Path, cli: CLI) -> None:
    write(
        project,
        "late.py",
        "import time\nfrom launchbay import Run\ntime.sleep(1.2)\nRun.get_context().log('acc', 0.9)\n",
    )
    handle = launchbay.submit("late.py", system_metrics_interval_s=0.2)
    assert handle.wait() == "Completed"
    assert "system/cpu_percent" in handle.get_metrics()  # sampled before "acc" was logged
    assert handle.record().primary_metric["name"] == "acc"
    rows = cli.json("runs")
    assert rows[0]["primary_metric"]["name"] == "acc"  # type: ignore[index]


FAKE_SMI = """#!/bin/sh
# a stand-in for nvidia-smi (no GPU here): two boards, the second without a power reading
case "$1" in
  --query-gpu=*) printf '0, NVIDIA H100 80GB HBM3, 87, 40960, 81559, 61, 312.45, 550.54.15\\n'
                 printf '1, NVIDIA H100 80GB HBM3, 3, 1024, 81559, 35, [N/A], 550.54.15\\n' ;;
  *) echo "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4 |" ;;
esac
"""


def test_gpus_are_read_through_nvidia_smi_when_nvml_is_missing(project: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The one stand-in of this file: no GPU can run here, so a script answers as nvidia-smi would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(FAKE_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    write(project, "quick.py", "import time\ntime.sleep(1.5)\n")
    handle = launchbay.submit("quick.py", system_metrics_interval_s=0.4)
    assert handle.wait() == "Completed"
    metrics = handle.get_metrics()
    assert set(metrics["system/gpu0/utilization_percent"]) == {87.0}
    assert set(metrics["system/gpu0/memory_used_mb"]) == {40960.0}
    assert set(metrics["system/gpu0/power_w"]) == {312.45} and "system/gpu1/power_w" not in metrics
    assert set(metrics["system/gpu1/temperature_c"]) == {35.0}
    props = handle.record().properties
    assert props["launchbay.host.gpu_count"] == 2 and props["launchbay.host.gpu_source"] == "nvidia-smi"
    assert (
        props["launchbay.host.gpu0_name"] == "NVIDIA H100 80GB HBM3" and props["launchbay.host.gpu0_memory_mb"] == 81559
    )
    assert props["launchbay.host.gpu_driver"] == "550.54.15" and props["launchbay.host.cuda_version"] == "12.4"


FAKE_NVML = """
# a stand-in for nvidia-ml-py's pynvml (no GPU here): one board without a power reading
NVML_TEMPERATURE_GPU = 0


class _Memory:
    total, used = 80 * 1024**3, 10 * 1024**3


class _Rates:
    gpu = 55


def nvmlInit(): pass
def nvmlDeviceGetCount(): return 1
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlSystemGetDriverVersion(): return b"550.54.15"
def nvmlSystemGetCudaDriverVersion_v2(): return 12040
def nvmlDeviceGetName(h): return b"NVIDIA H200"
def nvmlDeviceGetMemoryInfo(h): return _Memory
def nvmlDeviceGetUtilizationRates(h): return _Rates
def nvmlDeviceGetTemperature(h, kind): return 48
def nvmlDeviceGetPowerUsage(h): raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
"""


def test_gpus_are_read_through_nvml_when_the_runner_can_import_it(project: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A stand-in pynvml module (no GPU can run here) on the runner's path."""
    import os

    fake = tmp_path / "fake-nvml"
    fake.mkdir()
    (fake / "pynvml.py").write_text(FAKE_NVML)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]))
    write(project, "quick.py", "import time\ntime.sleep(1.5)\n")
    handle = launchbay.submit("quick.py", system_metrics_interval_s=0.4)
    assert handle.wait() == "Completed"
    metrics = handle.get_metrics()
    assert set(metrics["system/gpu0/utilization_percent"]) == {55.0}
    assert set(metrics["system/gpu0/memory_used_mb"]) == {10240.0}
    assert set(metrics["system/gpu0/temperature_c"]) == {48.0} and "system/gpu0/power_w" not in metrics
    props = handle.record().properties
    assert props["launchbay.host.gpu_source"] == "nvml" and props["launchbay.host.gpu0_name"] == "NVIDIA H200"
    assert props["launchbay.host.gpu0_memory_mb"] == 81920 and props["launchbay.host.cuda_version"] == "12.4"
    assert props["launchbay.host.gpu_driver"] == "550.54.15"
