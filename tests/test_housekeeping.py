"""Removing runs, collecting unreferenced blobs and store sizes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import launchbay
from conftest import CLI, wait_for, write
from launchbay.store import open_store
from launchbay.store.manifests import referenced_blobs

MAKE_MODEL = """
import os, sys
from launchbay import Run
os.makedirs("outputs", exist_ok=True)
open("outputs/model.bin", "wb").write(sys.argv[1].encode() * 1000)
Run.get_context().register_model("m", path="outputs/model.bin")
"""


def blobs_of(run_id: str) -> set[str]:
    store = open_store()
    return referenced_blobs(store, str(store.get_run(run_id).snapshot_id))


def submit(script: str, *args: str, experiment: str = "hk") -> str:
    handle = launchbay.submit(script, list(args), experiment=experiment)
    assert handle.wait(timeout=60) in ("Completed", "Failed")
    return handle.run_id


def test_gc_after_rm_frees_the_removed_runs_unique_blobs_and_keeps_what_others_need(
    project: Path, cli: CLI, tmp_path: Path
) -> None:
    write(project, "train.py", MAKE_MODEL)
    write(project, "shared.txt", "kept by every snapshot\n")
    (project / "big.bin").write_bytes(os.urandom(50_000))
    doomed = submit("train.py", "a")  # its snapshot has big.bin; it registers model m:1
    (project / "big.bin").unlink()
    kept = submit("train.py", "b")
    doomed_only = blobs_of(doomed) - blobs_of(kept)
    assert len(doomed_only) == 2  # big.bin and the snapshot's manifest
    model_blobs = referenced_blobs(open_store(), launchbay.get_model("m", 1)._version.manifest)

    preview = cli.json("gc", "--dry-run")
    assert preview["blobs"] == 0  # type: ignore[index]  # every blob is still needed
    cli("rm", doomed, check=True)
    preview = cli.json("gc", "--dry-run")
    assert set(preview["removed"]) == doomed_only and preview["bytes"] >= 50_000  # type: ignore[index]
    text = cli("gc", "--dry-run", check=True).stdout
    assert "Would remove 2 blob(s)" in text and ": big.bin" in text and ": its manifest" in text
    store = open_store()
    assert all(store.blobs.has(d) for d in doomed_only)  # a dry run deletes nothing

    report = cli.json("gc")
    assert set(report["removed"]) == doomed_only  # type: ignore[index]
    assert not any(store.blobs.has(d) for d in doomed_only)
    assert all(store.blobs.has(d) for d in blobs_of(kept) | model_blobs)
    assert launchbay.get_model("m", 1).download(tmp_path / "m").read_bytes() == b"a" * 1000
    again = launchbay.get_run(kept).rerun()
    assert again.wait(timeout=60) == "Completed", again.get_log()
    assert cli.json("gc")["blobs"] == 0  # type: ignore[index]

    # the folder still has big.bin gone; bring it back: the next snapshot must store it again
    (project / "big.bin").write_bytes(os.urandom(50_000))
    fresh = submit("train.py", "c")
    assert all(store.blobs.has(d) for d in blobs_of(fresh))


def test_rm_refuses_a_running_run_and_filters_many(project: Path, cli: CLI) -> None:
    write(project, "ok.py", "print('ok')\n")
    write(project, "bad.py", "raise SystemExit(1)\n")
    write(project, "slow.py", "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    failed = [submit("bad.py", experiment="old") for _ in range(2)]
    done = submit("ok.py", experiment="old")
    running = launchbay.submit("slow.py", experiment="old")
    wait_for(lambda: "started" in running.get_log(), timeout=30)

    proc = cli("rm", done, running.run_id)
    assert proc.returncode == 2 and f"Run {running.run_id} is Running; cancel it first" in proc.stderr
    assert "Nothing was removed" in proc.stderr and proc.stderr.count("\n") == 1
    assert len(cli.json("runs")) == 4  # type: ignore[arg-type]

    assert cli.json("rm", "--experiment", "old", "--older-than", "30d")["removed"] == []  # type: ignore[index]
    time.sleep(1.1)
    result = cli.json("rm", "--experiment", "old", "--older-than", "1s", "--status", "Failed")
    assert sorted(result["removed"]) == sorted(failed)  # type: ignore[index]
    assert not (open_store().runs_dir / failed[0]).exists()
    result = cli.json("rm", "--experiment", "old", "--older-than", "1s")
    assert result["removed"] == [done] and result["left_running"] == [running.run_id]  # type: ignore[index]
    assert [r["run_id"] for r in cli.json("runs")] == [running.run_id]  # type: ignore[union-attr,index]
    running.cancel()
    bad = cli("rm", "--older-than", "soon")
    assert bad.returncode == 2 and "e.g. 30d, 12h" in bad.stderr
    assert "Say which runs to remove" in cli("rm").stderr


def test_du_reports_sizes_by_experiment_and_kind(project: Path, cli: CLI) -> None:
    write(project, "train.py", MAKE_MODEL)
    submit("train.py", "x", experiment="alpha")
    submit("train.py", "y", experiment="beta")
    usage = cli.json("du")
    by_name = {e["name"]: e for e in usage["experiments"]}  # type: ignore[index]
    assert set(by_name) == {"alpha", "beta"} and by_name["alpha"]["runs"] == 1 and by_name["alpha"]["bytes"] > 1000
    assert usage["runs"]["count"] == 2 and usage["snapshots"]["count"] == 1  # type: ignore[index]
    assert usage["models"]["versions"] == 2 and usage["models"]["bytes"] >= 2000  # type: ignore[index]
    assert usage["blobs"]["unreferenced_bytes"] == 0  # type: ignore[index]
    text = cli("du", check=True).stdout
    assert "snapshots" in text and "environments" in text and "alpha" in text


GC_LOOP = """
import os, sys, time
from launchbay.housekeeping import collect_garbage
from launchbay.store import open_store
store = open_store()
passes = 0
while not os.path.exists(sys.argv[1]):
    collect_garbage(store)
    passes += 1
print(passes)
"""


def test_gc_running_beside_submits_and_removals_never_takes_a_blob_a_run_needs(project: Path, tmp_path: Path) -> None:
    """Each round submits the same folder again right after its previous run was removed, so
    every snapshot reuses blobs that are garbage until the new run row exists."""
    import subprocess
    import sys

    write(project, "train.py", "print(open('data.txt').read())\n")
    write(project, "data.txt", "the same data every time\n")
    stop = tmp_path / "stop"
    collector = subprocess.Popen(
        [sys.executable, "-c", GC_LOOP, str(stop)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        store = open_store()
        for i in range(8):
            handle = launchbay.submit("train.py", experiment="race")
            assert handle.wait(timeout=60) == "Completed", handle.get_log()
            assert "the same data every time" in handle.get_log()
            if i % 2:
                write(project, f"extra{i}.txt", f"new file {i}\n")
            from launchbay.housekeeping import remove_run

            assert remove_run(store, handle.record())
    finally:
        stop.write_text("")
        passes = int(collector.communicate(timeout=60)[0])
    assert passes > 0
    last = launchbay.submit("train.py", experiment="race")
    assert last.wait(timeout=60) == "Completed"
    assert all(store.blobs.has(d) for d in blobs_of(last.run_id))
