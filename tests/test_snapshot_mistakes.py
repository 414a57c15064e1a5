"""Snapshot mistakes teach: each one gets one message that says what to change, and where."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI, write
from ipython_driver import run_cells
from launchbay.errors import SnapshotTooLargeError
from launchbay.snapshot import explain, take_snapshot
from launchbay.store import open_store


def included(root: Path) -> list[str]:
    return [f["path"] for f in explain(root)["included"]]


def big(folder: Path, name: str, size: int) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"0" * size)


def test_over_budget_never_suggests_the_notebooks_own_folder_and_gives_the_line_and_file(
    project: Path, tmp_path: Path
) -> None:
    big(project, "notebooks/train.ipynb", 3000)  # the biggest folder is the notebook's own
    big(project, "notebooks/helper.py", 2000)
    big(project, "web/node_modules/react/index.js", 1500)
    big(project, "web/node_modules/vue/index.js", 1500)
    big(project, "web/app.js", 10)
    big(project, "data.csv", 400)
    with pytest.raises(SnapshotTooLargeError) as err:
        take_snapshot(open_store(tmp_path / "s"), project, max_bytes=6000, max_files=100, entry="notebooks/")
    message = str(err.value)
    assert "Biggest outside notebooks/ (where the run starts): web/node_modules/ (3.0 KB in 2 files)" in message
    assert "/notebooks/" not in message.split("add this line")[1]
    assert f"add this line to {project / '.launchbayignore'}:\n    /web/node_modules/\n" in message
    assert "(then it is 5.4 KB in 4 files;" in message


def test_a_submit_over_budget_names_what_lies_outside_the_scripts_folder(project: Path) -> None:
    write(project, "launchbay.toml", "[snapshot]\nmax_bytes = 4000\n")
    write(project, "jobs/train.py", "print(1)\n")
    big(project, "jobs/weights.bin", 3000)
    big(project, "checkpoints/last.pt", 2000)
    result = CLI(project)("submit", "jobs/train.py")
    assert result.returncode == 2
    assert "Biggest outside jobs/ (where the run starts): checkpoints/ (2.0 KB in 1 file)." in result.stderr
    assert f"add this line to {project / '.launchbayignore'}:\n    /checkpoints/\n" in result.stderr
    assert CLI(project)("runs", "--json").stdout.strip() == "[]"


def test_over_budget_by_file_count_ranks_by_files_and_lists_every_line_needed(project: Path, tmp_path: Path) -> None:
    write(project, "train.py", "x")
    for i in range(6):
        write(project, f"cache/a/{i}.json", "{}")
    for i in range(4):
        write(project, f"tmp/{i}.txt", "x")
    big(project, "model.bin", 5000)
    with pytest.raises(SnapshotTooLargeError) as err:
        take_snapshot(open_store(tmp_path / "s"), project, max_bytes=10**6, max_files=3, entry="train.py")
    message = str(err.value)
    assert "add these lines to" in message and "\n    /cache/\n    /tmp/\n" in message
    assert "/train.py" not in message


def test_a_launchbayignore_adds_to_the_gitignore_of_its_folder(project: Path) -> None:
    write(project, ".gitignore", "node_modules/\n")
    write(project, "node_modules/x/index.js", "x")
    write(project, "data/big.npy", "x")
    write(project, "train.py", "x")
    write(project, ".launchbayignore", "/data/\n")
    assert included(project) == [".gitignore", ".launchbayignore", "train.py"]
    reasons = {e["path"]: e["rule"] for e in explain(project)["excluded"]}
    assert reasons == {"node_modules/": ".gitignore: node_modules/", "data/": ".launchbayignore: /data/"}


def test_a_launchbayignore_can_re_include_what_gitignore_leaves_out(project: Path) -> None:
    write(project, ".gitignore", "*.csv\n")
    write(project, ".launchbayignore", "!labels.csv\n")
    write(project, "labels.csv", "x")
    write(project, "raw.csv", "x")
    assert included(project) == [".gitignore", ".launchbayignore", "labels.csv"]


def test_a_launchbayignore_starting_with_the_replace_line_is_used_alone(project: Path) -> None:
    write(project, ".gitignore", "*.csv\n")
    write(project, ".launchbayignore", "# launchbay: replace\n*.tmp\n")
    write(project, "labels.csv", "x")
    write(project, "scratch.tmp", "x")
    assert included(project) == [".gitignore", ".launchbayignore", "labels.csv"]


def test_an_amlignore_keeps_v1s_rule_and_replaces_the_gitignore(project: Path) -> None:
    write(project, ".gitignore", "*.csv\n")
    write(project, ".amlignore", "*.tmp\n")
    write(project, "labels.csv", "x")
    write(project, "scratch.tmp", "x")
    assert included(project) == [".amlignore", ".gitignore", "labels.csv"]


def test_editing_a_launchbayignore_next_to_a_gitignore_is_seen_by_the_next_snapshot(
    project: Path, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "s")
    write(project, ".gitignore", "*.log\n")
    write(project, "a.py", "x")
    write(project, "b.log", "x")
    write(project, "c.tmp", "x")
    first = take_snapshot(store, project, max_bytes=10**6, max_files=100)
    assert [f["path"] for f in first.manifest["files"]] == [".gitignore", "a.py", "c.tmp"]
    write(project, ".launchbayignore", "*.tmp\n")
    second = take_snapshot(store, project, max_bytes=10**6, max_files=100)
    assert [f["path"] for f in second.manifest["files"]] == [".gitignore", ".launchbayignore", "a.py"]


def test_dry_run_within_budget_says_so_and_exits_zero(project: Path) -> None:
    write(project, "train.py", "x")
    result = CLI(project)("snapshot", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "1 file, 1 B would be snapshotted: within the budget of 314.6 MB / 2,000 files." in result.stdout


def test_dry_run_over_budget_marks_what_to_leave_out_and_exits_non_zero(project: Path) -> None:
    write(project, "launchbay.toml", "[snapshot]\nmax_bytes = 2000\n")
    write(project, "notebooks/explore.ipynb", "{}")
    big(project, "notebooks/cache.bin", 1000)
    big(project, "data/train.npy", 3000)
    cli = CLI(project / "notebooks")
    result = cli("snapshot", "--dry-run", "..")
    assert result.returncode == 1
    assert "+ data/train.npy  (3.0 KB; included)\n" in result.stdout
    assert "3.0 KB      1 files   <- over budget: leave out with /data/" in result.stdout
    assert "OVER the budget of 2.0 KB / 2,000 files; a submit would be refused." in result.stdout
    assert f"add this line to {project / '.launchbayignore'}:\n    /data/\n" in result.stdout
    as_json = cli("snapshot", "--dry-run", "..", "--json")
    assert as_json.returncode == 1
    budget = json.loads(as_json.stdout)["budget"]
    assert budget["over"] is True and [o["line"] for o in budget["leave_out"]] == ["/data/"]


def test_dry_run_leaves_out_a_store_kept_inside_the_project_as_a_submit_does(project: Path) -> None:
    write(project, "launchbay.toml", "[snapshot]\nmax_bytes = 2000\n")
    write(project, "train.py", "print(1)\n")
    big(project, "run-history/blobs/ab/cdef", 5000)
    result = CLI(project)("--store", str(project / "run-history"), "snapshot", "--dry-run")
    assert result.returncode == 0, result.stdout
    assert "- run-history/  (the launchbay store)" in result.stdout


def test_a_cell_submitted_from_a_notebook_folder_never_hears_to_leave_that_folder_out(project: Path) -> None:
    from launchbay.config import load_config
    from launchbay.models import RunSpec
    from launchbay.session import Session
    from launchbay.store import open_store

    write(project, "launchbay.toml", "[snapshot]\nmax_bytes = 4000\n")
    big(project, "notebooks/explore.ipynb", 3500)  # the biggest folder is the notebook's own
    big(project, "data/raw.csv", 1000)
    spec = RunSpec(script=".launchbay/cell.py", code="print(1)", working_dir="notebooks")
    with pytest.raises(SnapshotTooLargeError) as err:
        Session(open_store(), load_config(project)).submit(
            spec, project, extra_files={"notebooks/.launchbay/cell.py": "print(1)"}
        )
    message = str(err.value)
    assert "Biggest outside notebooks/ (where the run starts): data/ (1.0 KB in 1 file)." in message
    assert "add this line to" in message and "\n    /data/\n" in message


def _without_root_file_access() -> None:
    """(In the child, before exec) drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so a file of mode 000
    is unreadable even to root: PR_CAPBSET_DROP, then exec leaves them out of the new program's set."""
    if os.geteuid() != 0:
        return  # mode 000 holds for anyone else as it is
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def links_a_snapshot_skips(project: Path, outside: Path) -> None:
    os.symlink("loop_b", project / "loop_a")
    os.symlink("loop_a", project / "loop_b")
    outside.write_text("beyond the project\n")
    os.symlink(outside, project / "elsewhere.txt")


def test_files_the_snapshot_skips_are_named_in_one_line_at_submit(project: Path, tmp_path: Path) -> None:
    write(project, "train.py", "print('trained')\n")
    write(project, "secret.txt", "no one may read this\n").chmod(0)
    links_a_snapshot_skips(project, tmp_path / "outside.txt")
    reading = subprocess.run(
        ["cat", "secret.txt"], cwd=project, capture_output=True, preexec_fn=_without_root_file_access
    )
    assert reading.returncode != 0, "the submit below must find secret.txt unreadable"
    proc = subprocess.run(
        [sys.executable, "-m", "launchbay", "submit", "train.py"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LAUNCHBAY_FORKSERVER": "0"},  # no warm server may outlive this without its rights
        preexec_fn=_without_root_file_access,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "not in the snapshot" in line]
    assert lines == [
        "launchbay: 4 files not in the snapshot, so not in the run: "
        f"elsewhere.txt (symlink to {tmp_path / 'outside.txt'}, outside the project); "
        "loop_a (symlink loop through loop_b); loop_b (symlink loop through loop_a); "
        "secret.txt (unreadable: Permission denied) (`launchbay snapshot --dry-run` lists every file and why)"
    ]


def test_a_notebook_cell_names_the_files_its_snapshot_skips(project: Path, tmp_path: Path) -> None:
    links_a_snapshot_skips(project, tmp_path / "outside.txt")
    out = run_cells(project, "%%submit\nprint('from the cell')")
    assert "from the cell" in out
    assert (
        "launchbay: 3 files not in the snapshot, so not in the run: "
        f"elsewhere.txt (symlink to {tmp_path / 'outside.txt'}, outside the project); "
        "loop_a (symlink loop through loop_b); loop_b (symlink loop through loop_a) "
        "(`launchbay snapshot --dry-run` lists every file and why)\n" in out
    ), out
