"""Runs survive, stop and keep every point: the local target with real processes.

What every target does (log, metrics, outputs, failure, cancel, re-attach, hostile paths) is in
test_target_contract.py."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import launchbay
from conftest import pid_alive, wait_for, write


def test_python_api_submit_wait_and_read_back(project: Path) -> None:
    write(
        project,
        "train.py",
        """
        from launchbay import Run
        run = Run.get_context()
        for i in range(10):
            run.log("loss", 10 - i, step=i)
        run.log_list("lrs", [0.1, 0.01])
        run.log_row("pr", p=0.9, r=0.8)
        run.log_row("pr", p=0.8, r=0.9)
        run.log_table("t", {"a": [1, 2], "b": [3, 4]})
        print("hello")
    """,
    )
    handle = launchbay.submit("train.py", args=["--x", "1"], experiment="api")
    assert handle.wait(show_output=False) == "Completed"
    metrics = handle.get_metrics()
    assert metrics["loss"] == [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    assert metrics["lrs"] == [0.1, 0.01]
    assert metrics["pr"] == {"p": [0.9, 0.8], "r": [0.8, 0.9]}
    assert metrics["t"] == {"a": [1, 2], "b": [3, 4]}
    assert "user_logs/std_log.txt" in handle.get_file_names()
    assert handle.get_details()["arguments"] == ["--x", "1"]
    again = launchbay.get_run(handle.run_id[:-2])
    assert again.run_id == handle.run_id and again.status == "Completed"
    assert [r.run_id for r in launchbay.runs(experiment="api")] == [handle.run_id]


LOGS_A_LONG_SERIES = """
import math
from launchbay import Run
run = Run.get_context()
for i in range(300_000):
    run.log("loss", math.exp(-i / 50_000) + math.sin(i) / 7, step=i)
run.log("loss", float("nan"), step=300_000)
run.log("loss", -math.inf, step=300_001)
for i in range(1_000):
    run.log("seen", 3 * i, step=i)
run.log("final", 0.125)
"""


def test_get_metrics_gives_every_logged_value_of_a_long_series_exactly_in_the_v1_shape(project: Path) -> None:
    import math

    import numpy as np

    write(project, "long.py", LOGS_A_LONG_SERIES)
    handle = launchbay.submit("long.py", system_metrics_interval_s=0)
    assert handle.wait(show_output=False) == "Completed"
    metrics = handle.get_metrics()
    logged = [math.exp(-i / 50_000) + math.sin(i) / 7 for i in range(300_000)] + [math.nan, -math.inf]
    loss = metrics["loss"]
    assert type(loss) is list and len(loss) == len(logged) and all(type(v) is float for v in loss)
    assert np.array_equal(np.array(loss), np.array(logged), equal_nan=True)  # every bit, NaN and -inf too
    assert metrics["seen"] == [3 * i for i in range(1_000)] and all(type(v) is int for v in metrics["seen"])
    assert metrics["final"] == 0.125  # one point: the value itself, as in Azure ML v1
    assert np.array_equal(handle.get_metric_series("loss").values, np.array(loss), equal_nan=True)
    assert handle.get_metrics("seen") == {"seen": metrics["seen"]}


def test_a_runner_killed_with_sigkill_becomes_failed_with_a_reason(project: Path) -> None:
    write(project, "slow.py", "import time\nprint('up', flush=True)\ntime.sleep(120)\n")
    handle = launchbay.submit("slow.py")
    wait_for(lambda: "up" in handle.get_log())
    record = handle.record()
    runner_pid, child_pgid = record.target_state["runner_pid"], record.target_state["child_pgid"]
    os.kill(runner_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(runner_pid))
    record = handle.record()
    assert record.status.value == "Failed"
    assert "runner process died" in record.error["message"]  # type: ignore[index]
    wait_for(lambda: not pid_alive(child_pgid), timeout=10)


def test_points_logged_before_sigterm_are_kept(project: Path) -> None:
    write(
        project,
        "term.py",
        """
        import time
        from launchbay import Run
        run = Run.get_context()
        for i in range(1000):
            run.log("x", i)
        print("logged", flush=True)
        time.sleep(300)
    """,
    )
    handle = launchbay.submit("term.py")
    wait_for(lambda: "logged" in handle.get_log())
    assert handle.cancel() == "Canceled"
    assert handle.get_metric_series("x").values.tolist() == [float(i) for i in range(1000)]


@pytest.mark.slow
def test_eight_concurrent_runs_lose_no_metric_point(project: Path) -> None:
    write(
        project,
        "many.py",
        """
        from launchbay import Run
        run = Run.get_context()
        for i in range(50_000):
            run.log("loss", i * 0.5, step=i)
            if i % 10_000 == 0:
                run.log("marker", i)
    """,
    )
    handles = [launchbay.submit("many.py", experiment="concurrent") for _ in range(8)]
    readers_saw = []
    while not all(h.record().status.is_terminal() for h in handles):
        readers_saw.append(sum(len(h.get_metric_series("loss")) for h in handles))
        time.sleep(0.2)
    for handle in handles:
        assert handle.status == "Completed"
        series = handle.get_metric_series("loss")
        assert len(series) == 50_000
        assert series.steps.tolist() == list(range(50_000))
        assert series.values[-1] == 49_999 * 0.5
        assert len(handle.get_metric_series("marker")) == 5
    assert readers_saw == sorted(readers_saw)


def test_a_run_that_rewrites_its_source_files_cannot_corrupt_the_snapshot(project: Path) -> None:
    write(project, "data.txt", "original\n")
    write(project, "rewrite.py", "open('data.txt', 'w').write('changed by the run\\n')\n")
    first = launchbay.submit("rewrite.py")
    assert first.wait() == "Completed"
    again = launchbay.submit("rewrite.py")  # the folder itself never changed
    assert again.wait() == "Completed"
    store = again._session.store
    manifest = store.snapshot_manifest(again.record().snapshot_id)  # type: ignore[arg-type]
    digest = next(f["sha256"] for f in manifest["files"] if f["path"] == "data.txt")
    assert store.blobs.read_bytes(digest) == b"original\n"


def test_numpy_and_torch_scalars_are_logged_as_numbers(project: Path) -> None:
    write(
        project,
        "scalars.py",
        """
        import numpy as np
        from launchbay import Run
        run = Run.get_context()
        for i in range(5):
            run.log("np", np.float32(i) / 2, step=np.int64(i))
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            for i in range(5):
                run.log("torch", torch.tensor(float(i)) * 3, step=i)
        print("torch: logged" if torch is not None else "torch: not installed")
    """,
    )
    handle = launchbay.submit("scalars.py")
    assert handle.wait() == "Completed"
    metrics = handle.get_metrics()
    assert metrics["np"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    if "torch: logged" in handle.get_log():
        assert metrics["torch"] == [0.0, 3.0, 6.0, 9.0, 12.0]


def test_a_local_run_keeps_the_store_caught_up_while_it_runs_with_nobody_looking(project: Path) -> None:
    """The runner indexes its own journal as the run goes: what reads the index without catching
    up itself (another tool on the store, a server) sees the points within about a second."""
    from launchbay.store import open_store

    write(
        project,
        "steady.py",
        """
        import time
        from launchbay import Run
        run = Run.get_context()
        for i in range(1000):
            run.log("loss", 1.0 / (i + 1), step=i)
        time.sleep(120)
    """,
    )
    handle = launchbay.submit("steady.py")
    with open_store(handle.record().run_dir.parent.parent) as store:  # reads only, never ingests
        wait_for(lambda: store.series_count(handle.run_id, "loss") == 1000, timeout=15)
        assert store.get_run(handle.run_id).status.value == "Running"
    assert handle.cancel() == "Canceled"
