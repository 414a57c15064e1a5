"""The in-run API outside and inside a run, and the public names users import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import launchbay
from conftest import write


def test_outside_a_run_the_context_is_offline_and_prints(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "offline.py",
        """
        from launchbay import Run
        run = Run.get_context()
        run.log("loss", 0.5, step=3)
        run.tag("stage", "dev")
        print("offline:", run.offline, run.id)
    """,
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    assert "[launchbay offline] loss = 0.5 (step 3)" in out
    assert "offline: True offline" in out


def test_public_names_are_pinned() -> None:
    assert sorted(launchbay.__all__) == [
        "LaunchbayError",
        "Model",
        "Mpi",
        "PyTorch",
        "Run",
        "RunHandle",
        "RunSpec",
        "RunStatus",
        "TensorFlow",
        "get_model",
        "get_run",
        "get_sweep",
        "load_ipython_extension",
        "models",
        "runs",
        "submit",
        "sweep",
        "unload_ipython_extension",
    ]
    for name in launchbay.__all__:
        assert getattr(launchbay, name) is not None
    assert launchbay.RunStatus.CANCELED.is_terminal() and not launchbay.RunStatus.RUNNING.is_terminal()


def test_a_forked_child_logs_into_the_same_run(project: Path) -> None:
    write(
        project,
        "forked.py",
        """
        import os
        from launchbay import Run
        run = Run.get_context()
        run.log("parent", 1.0)
        pid = os.fork()
        if pid == 0:
            Run.get_context().log("child", 2.0)
            Run.get_context().flush()
            os._exit(0)
        os.waitpid(pid, 0)
    """,
    )
    handle = launchbay.submit("forked.py")
    assert handle.wait() == "Completed"
    assert handle.get_metrics() == {"parent": 1.0, "child": 2.0}


def test_images_and_uploaded_files_are_kept(project: Path) -> None:
    write(
        project,
        "art.py",
        """
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from launchbay import Run
        run = Run.get_context()
        plt.plot([1, 2, 3])
        run.log_image("curve", plot=plt)
        with open("notes.txt", "w") as fh:
            fh.write("hello")
        run.upload_file("extra/notes.txt", "notes.txt")
    """,
    )
    handle = launchbay.submit("art.py")
    assert handle.wait() == "Completed"
    names = handle.get_file_names()
    assert "images/curve_1.png" in names and "extra/notes.txt" in names
    assert handle.get_metrics()["curve"] == "images/curve_1.png"
