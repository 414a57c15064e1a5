"""What goes into a snapshot, and what a too-large one tells the user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import write
from launchbay.errors import SnapshotTooLargeError
from launchbay.snapshot import explain, take_snapshot
from launchbay.store import open_store


def included(root: Path) -> list[str]:
    return [f["path"] for f in explain(root)["included"]]


def test_nested_gitignore_files_apply_to_their_own_folder(project: Path) -> None:
    write(project, ".gitignore", "*.log\n/build/\n")
    write(project, "app.log", "x")
    write(project, "build/out.bin", "x")
    write(project, "src/model.py", "x")
    write(project, "src/build/keep.py", "x")  # /build/ is anchored to the top
    write(project, "src/.gitignore", "secret_*.py\n!important.log\n")
    write(project, "src/secret_key.py", "x")
    write(project, "src/important.log", "x")
    write(project, "src/data/.gitignore", "*\n!.gitignore\n")
    write(project, "src/data/huge.npy", "x")
    assert included(project) == [
        ".gitignore",
        "src/.gitignore",
        "src/build/keep.py",
        "src/data/.gitignore",
        "src/important.log",
        "src/model.py",
    ]
    reasons = {e["path"]: e["rule"] for e in explain(project)["excluded"]}
    assert reasons["src/secret_key.py"] == "src/.gitignore: secret_*.py"
    assert reasons["app.log"] == ".gitignore: *.log"


def test_launchbayignore_wins_over_amlignore_and_gitignore(project: Path) -> None:
    write(project, ".gitignore", "a.txt\n")
    write(project, ".amlignore", "b.txt\n")
    write(project, "a.txt", "x")
    write(project, "b.txt", "x")
    assert "a.txt" in included(project) and "b.txt" not in included(project)
    write(project, ".launchbayignore", "a.txt\n")
    assert "a.txt" not in included(project) and "b.txt" in included(project)


def test_always_excluded_folders(project: Path) -> None:
    for folder in (".git", ".launchbay", ".ipynb_checkpoints", "__pycache__", "outputs", "logs"):
        write(project, f"{folder}/f.txt", "x")
    write(project, "venv-x/pyvenv.cfg", "home = /usr\n")
    write(project, "venv-x/lib/site.py", "x")
    write(project, "pkg/outputs/kept.txt", "outputs below the top are the user's data")
    write(project, "train.py", "x")
    assert included(project) == ["pkg/outputs/kept.txt", "train.py"]


def test_unchanged_folder_gives_the_same_id_and_stores_nothing_new(project: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    write(project, "a.py", "print(1)\n")
    write(project, "b.py", "print(2)\n")
    first = take_snapshot(store, project, max_bytes=10**6, max_files=100)
    assert first.new_blobs == 2
    second = take_snapshot(store, project, max_bytes=10**6, max_files=100)
    assert second.id == first.id and second.new_blobs == 0
    write(project, "b.py", "print(3)\n")
    third = take_snapshot(store, project, max_bytes=10**6, max_files=100)
    assert third.id != first.id and third.new_blobs == 1


def test_over_budget_names_the_biggest_offenders_and_how_to_exclude(project: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    write(project, "train.py", "x")
    (project / "data").mkdir()
    (project / "data" / "big.bin").write_bytes(b"0" * 5000)
    with pytest.raises(SnapshotTooLargeError) as err:
        take_snapshot(store, project, max_bytes=1000, max_files=100)
    message = str(err.value)
    assert "Biggest: data/ (5.0 KB in 1 file)" in message
    assert ".launchbayignore" in message
    assert not any((tmp_path / "s" / "blobs").rglob("*")), "nothing may be stored for a refused snapshot"


def test_unreadable_files_are_skipped_and_listed(project: Path, tmp_path: Path) -> None:
    write(project, "ok.py", "x")
    os.symlink(project / "gone.txt", project / "dangling.txt")
    snap = take_snapshot(open_store(tmp_path / "s"), project, max_bytes=10**6, max_files=100)
    assert [p for p, _ in snap.unreadable] == ["dangling.txt"]
    assert [f["path"] for f in snap.manifest["files"]] == ["ok.py"]


def test_resnapshot_sees_new_files_and_changed_ignore_rules(project: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    write(project, "src/a.py", "x")
    write(project, "src/b.log", "x")
    first = take_snapshot(store, project, max_bytes=10**6, max_files=100)
    assert [f["path"] for f in first.manifest["files"]] == ["src/a.py", "src/b.log"]
    write(project, "src/new.py", "y")
    write(project, ".gitignore", "*.log\n")
    second = take_snapshot(store, project, max_bytes=10**6, max_files=100)
    assert [f["path"] for f in second.manifest["files"]] == [".gitignore", "src/a.py", "src/new.py"]
    (project / ".gitignore").write_text("*.py\n")
    third = take_snapshot(store, project, max_bytes=10**6, max_files=100)
    assert [f["path"] for f in third.manifest["files"]] == [".gitignore", "src/b.log"]
