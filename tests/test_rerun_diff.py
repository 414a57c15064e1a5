"""Re-run a run from its stored snapshot, restore a snapshot as files, diff two runs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, docker_ready, need_service, write
from launchbay.store import open_store

BASE = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE", "")

TRAIN = """
import sys
from launchbay import Run
VERSION = 1
run = Run.get_context()
for step in range(5):
    run.log("loss", VERSION / (step + 1), step=step)
print("code version", VERSION, "args", " ".join(sys.argv[1:]), flush=True)
"""


@pytest.mark.parametrize("target", ["local", pytest.param("box", marks=pytest.mark.docker)])
def test_a_rerun_uses_the_stored_snapshot_not_the_changed_folder(project: Path, cli: CLI, target: str) -> None:
    if target == "box":
        need_service(docker_ready(BASE), "A Docker daemon with the test base image")
        write(project, "launchbay.toml", f'[targets.box]\ntype = "docker"\nimage = "{BASE}"\n')
    write(project, "train.py", TRAIN)
    first = launchbay.submit("train.py", ["--lr", "0.1"], target=target, experiment="rr")
    assert first.wait(timeout=120) == "Completed", first.get_log()
    write(project, "train.py", TRAIN.replace("VERSION = 1", "VERSION = 2"))

    again = first.rerun()
    assert again.wait(timeout=120) == "Completed", again.get_log()
    assert "code version 1 args --lr 0.1" in again.get_log()
    record = again.record()
    assert record.target == target and record.snapshot_id == first.record().snapshot_id
    assert record.to_dict()["rerun_of"] == first.run_id
    assert f"re-run of    {first.run_id}" in cli("show", again.run_id, check=True).stdout
    if target == "local":
        from launchbay.ipython.widgets import RunWidget

        widget = RunWidget(again)
        try:
            assert widget.wait_until_done(timeout=30)
            assert f"re-run of <code>{first.run_id}</code>" in widget._header.value
        finally:
            widget.close()

    fresh = launchbay.submit("train.py", ["--lr", "0.1"], target=target, experiment="rr")
    assert fresh.wait(timeout=120) == "Completed"
    assert "code version 2" in fresh.get_log()  # the folder did change


def test_rerun_from_the_cli_takes_new_arguments_and_refuses_bad_input_before_recording(project: Path, cli: CLI) -> None:
    write(project, "train.py", TRAIN)
    first = cli.json("submit", "train.py", "--", "--lr", "0.1")["run_id"]  # type: ignore[index]
    write(project, "train.py", "raise SystemExit('the new code must not run')\n")
    proc = cli("rerun", first, "--", "--lr", "0.5", check=True)
    assert "code version 1 args --lr 0.5" in proc.stdout
    runs_before = len(cli.json("runs"))  # type: ignore[arg-type]

    bad = cli("rerun", "-t", "gpu-box", first)
    assert bad.returncode == 2 and "Unknown target 'gpu-box'" in bad.stderr and bad.stderr.count("\n") == 1
    store = open_store()
    manifest = store.snapshot_manifest(str(store.get_run(first).snapshot_id))
    lost = next(f for f in manifest["files"] if f["path"] == "train.py")
    store.blobs.path(lost["sha256"]).unlink()  # as if something removed it behind launchbay's back
    proc = cli("rerun", first)
    assert proc.returncode == 2 and "1 of its files are gone from the store's blobs: train.py" in proc.stderr
    assert len(cli.json("runs")) == runs_before  # type: ignore[arg-type]  # no run was recorded


def test_rerun_options_mean_the_same_after_the_run_id_and_script_arguments_come_after_the_double_dash(
    project: Path, cli: CLI
) -> None:
    write(project, "launchbay.toml", '[targets.second]\ntype = "local"\n')
    write(project, "train.py", TRAIN)
    first = cli.json("submit", "train.py", "--", "--lr", "0.1")["run_id"]  # type: ignore[index]

    proc = cli("rerun", first, "-t", "second", "--", "--lr", "0.5", check=True)  # the README's order
    assert "code version 1 args --lr 0.5" in proc.stdout
    assert f"re-runs {first} on second" in proc.stderr
    detached = json.loads(cli("rerun", first, "--detach", "--json", "-t", "second", check=True).stdout)
    again = launchbay.get_run(detached["run_id"])
    assert again.wait(timeout=120) == "Completed", again.get_log()
    assert again.record().target == "second" and "args --lr 0.1" in again.get_log()  # the old arguments kept
    runs_before = len(cli.json("runs"))  # type: ignore[arg-type]

    typo = cli("rerun", first, "-t", "gpu-box")
    assert typo.returncode == 2 and "Unknown target 'gpu-box'" in typo.stderr
    loose = cli("rerun", first, "--lr", "0.5")
    assert loose.returncode == 2 and f"launchbay rerun {first} -- --lr 0.5" in loose.stderr
    assert len(cli.json("runs")) == runs_before  # type: ignore[arg-type]  # neither recorded a run


def test_restore_writes_the_snapshot_files_exactly(project: Path, cli: CLI, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    write(project, "pkg/data.bin", "")
    (project / "pkg" / "data.bin").write_bytes(os.urandom(4096))
    (project / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (project / "run.sh").chmod(0o755)
    originals = {
        p: hashlib.sha256((project / p).read_bytes()).hexdigest() for p in ("train.py", "pkg/data.bin", "run.sh")
    }
    run_id = cli.json("submit", "train.py")["run_id"]  # type: ignore[index]
    write(project, "train.py", "changed afterwards\n")

    out = tmp_path / "restored"
    result = cli.json("restore", run_id, "-o", str(out))
    assert len(result["files"]) == 3  # type: ignore[index,arg-type]
    assert {p: hashlib.sha256((out / p).read_bytes()).hexdigest() for p in originals} == originals
    assert os.access(out / "run.sh", os.X_OK)
    again = cli("restore", run_id, "-o", str(out))
    assert again.returncode == 2 and "is not an empty folder" in again.stderr


def test_diff_of_two_runs_marks_the_param_and_shows_the_one_line_change(project: Path, cli: CLI) -> None:
    write(project, "train.py", TRAIN)
    (project / "weights.bin").write_bytes(b"\x00\x01" * 100)
    a = launchbay.submit("train.py", params={"lr": 0.1, "bs": 32}, experiment="d")
    assert a.wait(timeout=60) == "Completed"
    write(project, "train.py", TRAIN.replace("VERSION = 1", "VERSION = 3"))
    (project / "weights.bin").write_bytes(b"\x00\x02" * 100)
    b = launchbay.submit("train.py", params={"lr": 0.2, "bs": 32}, experiment="d")
    assert b.wait(timeout=60) == "Completed"

    diff = cli.json("diff", a.run_id, b.run_id)
    rows = {r["key"]: r for r in diff["settings"]}  # type: ignore[index]
    assert rows["param:lr"]["differs"] and (rows["param:lr"]["a"], rows["param:lr"]["b"]) == (0.1, 0.2)
    assert not rows["param:bs"]["differs"] and not rows["arguments"]["differs"]
    files = {f["path"]: f for f in diff["files"]}  # type: ignore[index]
    assert set(files) == {"train.py", "weights.bin"}
    changed = [
        ln for ln in files["train.py"]["unified"].splitlines() if ln[:1] in "+-" and ln[:3] not in ("---", "+++")
    ]
    assert changed == ["-VERSION = 1", "+VERSION = 3"]
    assert files["weights.bin"]["binary"] and "200 bytes, sha256" in files["weights.bin"]["note"]
    (loss,) = diff["metrics"]  # type: ignore[index]
    assert loss["a"] == {"final": 0.2, "best": 0.2} and loss["b"]["final"] == pytest.approx(0.6)

    text = cli("diff", a.run_id, b.run_id, check=True).stdout
    assert "* param:lr" in text and "  param:bs" in text and "+VERSION = 3" in text
    assert "loss (best = min)" in text


def test_the_notebook_diff_overlays_metrics_and_returns_the_table(project: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    write(project, "train.py", TRAIN)
    a = launchbay.submit("train.py", params={"lr": 0.1})
    b = launchbay.submit("train.py", params={"lr": 0.3})
    assert a.wait(timeout=60) == "Completed" and b.wait(timeout=60) == "Completed"
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "launchbay")
        table = shell.run_line_magic("launchbay", f"diff {a.run_id} {b.run_id}")
        keys = [row[0] for i, row in enumerate(table.rows) if i in table.highlight]
        assert keys == ["* param:lr"]
        assert "<table" in table._repr_html_()
        models = shell.run_line_magic("launchbay", "models")
        assert models.rows == []
    finally:
        InteractiveShell.clear_instance()
    assert json.loads(json.dumps(table.header))[1:] == [a.run_id, b.run_id]


def test_a_rerun_keeps_its_environment_by_hash_and_names_a_lost_one(project: Path, cli: CLI) -> None:
    """The environment is re-created from the definition stored with its build, not from
    launchbay.toml as it reads now; when that definition is gone too, the re-run says so."""
    write(project, "launchbay.toml", "[environments.plain]\nuser_managed = false\n")  # a venv, nothing in it
    write(project, "train.py", "import sys\nprint('python', sys.prefix)\n")
    first = launchbay.submit("train.py", environment="plain")
    assert first.wait(timeout=120) == "Completed", first.get_log()
    old_hash = first.record().target_state["environment"]["hash"]
    write(project, "launchbay.toml", '[environments.plain]\npip = ["launchbay-no-such-package-xyz"]\n')

    again = first.rerun()
    assert again.wait(timeout=120) == "Completed", again.get_log()
    assert again.record().target_state["environment"]["hash"] == old_hash
    assert first.get_log().split()[-1] == again.get_log().split()[-1]  # the same venv

    (open_store().root / "envs" / old_hash / "spec.json").unlink()
    runs_before = len(cli.json("runs"))  # type: ignore[arg-type]
    proc = cli("rerun", first.run_id)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"environment plain ({old_hash[:16]})" in proc.stderr and "nothing was submitted" in proc.stderr
    assert len(cli.json("runs")) == runs_before  # type: ignore[arg-type]
