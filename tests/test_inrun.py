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
        "Param",
        "PyTorch",
        "Run",
        "RunHandle",
        "RunSpec",
        "RunStatus",
        "Step",
        "TensorFlow",
        "automl",
        "get_automl",
        "get_model",
        "get_pipeline",
        "get_run",
        "get_sweep",
        "load_ipython_extension",
        "models",
        "pipeline",
        "pipeline_from_cells",
        "runs",
        "schedule",
        "schedules",
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


def test_upload_file_cannot_overwrite_the_runs_own_log(project: Path) -> None:
    write(
        project,
        "clobber.py",
        """
        from launchbay import Run
        run = Run.get_context()
        print("the run's own line", flush=True)
        with open("fake.txt", "w") as fh:
            fh.write("a forged log")
        try:
            run.upload_file("./user_logs//rank_0.txt", "fake.txt")
        except ValueError as exc:
            print("refused:", exc, flush=True)
        run.upload_file("user_logs/std_log.txt", "fake.txt")
    """,
    )
    handle = launchbay.submit("clobber.py")
    assert handle.wait() == "Failed"
    assert handle.record().error["message"] == (
        "ValueError: upload_file name 'user_logs/std_log.txt' is reserved: user_logs/ holds the run's own output, "
        "written by launchbay; pick another name, e.g. outputs/std_log.txt"
    )
    log = handle.get_log()
    assert "the run's own line" in log and "a forged log" not in log
    assert "refused: upload_file name './user_logs//rank_0.txt' is reserved" in log
    assert "user_logs/rank_0.txt" not in handle.get_file_names()


def test_log_image_takes_image_files_and_figures_only(project: Path) -> None:
    write(
        project,
        "pictures.py",
        """
        from launchbay import Run
        run = Run.get_context()
        with open("notes.txt", "w") as fh:
            fh.write("not a picture")
        with open("photo.jpg", "wb") as fh:
            fh.write(bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + bytes(64))
        with open("diagram.svg", "w") as fh:
            fh.write('<?xml version="1.0"?>\\n<!-- drawn by hand -->\\n<svg xmlns="http://www.w3.org/2000/svg"/>')
        for call in (lambda: run.log_image("notes", path="notes.txt"), lambda: run.log_image("curve", plot="str")):
            try:
                call()
            except (TypeError, ValueError) as exc:
                print(f"refused: {type(exc).__name__}: {exc}", flush=True)
        run.log_image("photo", path="photo.jpg")
        run.log_image("diagram", path="diagram.svg")
    """,
    )
    handle = launchbay.submit("pictures.py")
    assert handle.wait() == "Completed"
    log = handle.get_log()
    assert (
        "refused: ValueError: log_image(path='notes.txt'): not an image file (PNG, JPEG, GIF, SVG, WebP, BMP or "
        "TIFF, told by its first bytes); to keep another kind of file with the run, use upload_file." in log
    )
    assert (
        "refused: TypeError: log_image('curve', plot=...) takes a matplotlib Figure or matplotlib.pyplot, not str; "
        "to log an image file, pass path=." in log
    )
    metrics = handle.get_metrics()
    assert metrics["photo"] == "images/photo_1.jpg" and metrics["diagram"] == "images/diagram_2.svg"
    assert "notes" not in metrics and "curve" not in metrics
