"""`pip install launchbay` is the product: what a user needs, no test toolchain, no Node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOT_IN_THE_PRODUCT = {"torch", "ray", "playwright", "pytest"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_wheel_installs_the_product_without_node_and_submits(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("launchbay-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    lab = [n for n in names if "/share/jupyter/labextensions/launchbay-labextension/" in n]
    assert any(n.endswith("/package.json") for n in lab) and any("/static/remoteEntry." in n for n in lab), lab

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LAUNCHBAY_STORE")}
    env["PATH"] = str(bin_dir)  # nothing else: no node, no npm, no jlpm
    assert shutil.which("node", path=env["PATH"]) is None
    # pip's own cache (~/.cache/pip) is kept: a second run installs from it
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True, env=env, timeout=480
    )
    listed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--format=json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not installed & NOT_IN_THE_PRODUCT, installed & NOT_IN_THE_PRODUCT
    assert {"ipython", "ipywidgets", "matplotlib", "docker", "asyncssh"} <= installed
    assert (venv / "share/jupyter/labextensions/launchbay-labextension/package.json").is_file()

    launchbay = str(bin_dir / "launchbay")
    usage = subprocess.run([launchbay, "--help"], env=env, capture_output=True, text=True, check=True)
    assert "submit" in usage.stdout
    project = tmp_path / "proj"
    project.mkdir()
    (project / "train.py").write_text("from launchbay import Run\nRun.get_context().log('loss', 0.25)\nprint('hi')\n")
    try:
        run = subprocess.run(
            [launchbay, "submit", "train.py"], cwd=project, env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "hi" in run.stdout and "Completed" in run.stderr
        metrics = subprocess.run(
            [launchbay, "metrics", run.stderr.split("run ")[1].split()[0], "loss", "--json"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "0.25" in metrics.stdout
    finally:  # the submit started this interpreter's warm runner server (launchbay/forkserver.py)
        stop = "from launchbay import forkserver; forkserver.stop_server()"
        subprocess.run([str(bin_dir / "python"), "-c", stop], env=env, capture_output=True, timeout=60)
