"""Failures a user meets at the command line are one line that says what to do, and nothing is half-written.

A read-only store, a restore into a folder that cannot take the files, a snapshot manifest naming
paths outside the folder it is restored into: each through the real CLI, in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI, write
from launchbay.store import open_store

TRAIN = "print('trained')\n"


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("launchbay: error: "), proc.stderr
    return lines[0]


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and mtime: what 'nothing was written' compares."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _submitted(cli: CLI, script: str) -> str:
    run_id = str(cli.json("submit", script)["run_id"])  # type: ignore[index]
    return run_id


# -- a store this user cannot write ---------------------------------------------------------------------


def test_a_submit_to_a_read_only_store_is_one_line_and_writes_nothing(cli: CLI, project: Path, tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    if os.getuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run the CLI as a user the store is read-only for")
    write(project, "train.py", TRAIN)
    first = _submitted(cli, "train.py")
    store = tmp_path / "store"
    # root without the capabilities that bypass file permissions: a user for whom the store is read-only
    as_reader = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    reader = open_store(store)  # someone (a Jupyter server, a dashboard) reads the store meanwhile
    try:
        assert reader.get_run(first).run_id == first
        for path in [store, *store.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        probe = subprocess.run(
            [*as_reader, sys.executable, "-c", f"open({str(store / 'probe')!r}, 'w')"], capture_output=True
        )
        assert probe.returncode != 0  # the store really is read-only for that user
        before = _tree(store)
        proc = subprocess.run(
            [*as_reader, sys.executable, "-m", "launchbay", "submit", "train.py"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
        )
        line = _one_line_error(proc)
        assert f"Cannot write the store at {store}: it is read-only for you" in line
        assert "Nothing was written" in line and "--store" in line
        assert _tree(store) == before
    finally:
        for path in [store, *store.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        reader.close()
    runs = cli.json("runs")
    assert isinstance(runs, list) and [r["run_id"] for r in runs] == [first]  # no half-made run


# -- restore: all the files or none ------------------------------------------------------------------


def _project_with_a_big_file(cli: CLI, project: Path) -> str:
    write(project, "a_small.txt", "first in the manifest\n")
    (project / "big.bin").write_bytes(os.urandom(1 << 20))
    write(project, "train.py", TRAIN)
    return _submitted(cli, "train.py")


@pytest.mark.parametrize("case", ["a folder that cannot be made", "a file over the size limit"])
def test_a_restore_that_cannot_write_every_file_is_one_line_and_leaves_no_file(
    cli: CLI, project: Path, tmp_path: Path, case: str
) -> None:
    run_id = _project_with_a_big_file(cli, project)
    command = [sys.executable, "-m", "launchbay", "restore", run_id, "-o"]
    if case == "a folder that cannot be made":
        out = Path("/proc/launchbay-restore")
        command.append(str(out))
    else:  # the first file fits, big.bin does not: the write fails half-way through the restore
        out = tmp_path / "restored" / "here"
        command = ["bash", "-c", 'ulimit -f 64 && exec "$@"', "bash", *command, str(out)]
    proc = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)
    line = _one_line_error(proc)
    assert f"Cannot restore run {run_id}'s snapshot into {out}" in line and "Nothing was written" in line
    assert "-o NEW_DIR" in line
    assert not out.exists()
    if case == "a file over the size limit":
        assert not out.parent.exists()  # the folder the restore made for it is gone too


def test_a_restore_of_a_manifest_naming_paths_outside_the_folder_writes_nothing(
    cli: CLI, project: Path, tmp_path: Path
) -> None:
    write(project, "train.py", TRAIN)
    run_id = _submitted(cli, "train.py")
    store = open_store(tmp_path / "store")
    try:
        record = store.get_run(run_id)
        manifest = store.snapshot_manifest(str(record.snapshot_id))
        blob = manifest["files"][0]["sha256"]
        absolute = tmp_path / "absolute.txt"
        manifest["files"] += [
            {"path": "../escaped.txt", "sha256": blob, "size": 1, "mode": 0o644},
            {"path": str(absolute), "sha256": blob, "size": 1, "mode": 0o644},
        ]
        forged = store.blobs.put_bytes(json.dumps(manifest).encode())  # as a damaged or hostile store would hold
        with store.transaction() as db:
            db.execute("UPDATE runs SET snapshot_id=? WHERE run_id=?", (forged, run_id))
    finally:
        store.close()
    out = tmp_path / "restored"
    line = _one_line_error(cli("restore", run_id, "-o", str(out)))
    assert f"Run {run_id}'s snapshot names files outside the folder" in line
    assert "'../escaped.txt'" in line and repr(str(absolute)) in line and "nothing was written" in line
    assert not out.exists() and not (tmp_path / "escaped.txt").exists() and not absolute.exists()


# -- launchbay's options after the script -------------------------------------------------------------------


def test_launchbay_options_written_after_the_script_are_refused_not_given_to_it(cli: CLI, project: Path) -> None:
    """`launchbay submit train.py -t gpu-box` once ran train.py locally with `-t gpu-box` as its arguments."""
    write(project, "train.py", "import sys\nprint('ARGS', sys.argv[1:])\n")
    before = _tree(project)
    line = _one_line_error(cli("submit", "train.py", "-t", "gpu-box", "--detach"))
    assert "-t, --detach came after train.py" in line and "launchbay submit -t gpu-box train.py" in line
    assert _tree(project) == before and cli.json("runs") == []  # nothing was recorded
    ran = cli("submit", "train.py", "--", "-t", "x", check=True)  # after -- they are the script's
    assert "ARGS ['-t', 'x']" in ran.stdout
    ran = cli("submit", "train.py", "--lr", "0.1", check=True)  # the script's own options need no --
    assert "ARGS ['--lr', '0.1']" in ran.stdout
