"""``launchbay store copy``: a team moves its runs from the embedded store to a team store, or back.

The team store is the test PostgreSQL (a schema per test) with blobs in moto's S3 *emulator*; under
CI=true a missing service fails these tests (conftest's ``need_service``), it never skips them. The
runs are real ones (``launchbay submit``), so their points lie sealed in their run folders, their
files are outputs and logs, their snapshot is a manifest and blobs, and one registers a model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_PASSFILE, write
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunStore, Store, open_store
from launchbay.store import copy as store_copy
from launchbay.store.manifests import missing_blobs
from launchbay.store.records import DatasetVersion, RunInput, Schedule

TRAIN = """
    import os
    from launchbay import Run

    run = Run.get_context()
    for step in range(20):
        run.log("loss", 1.0 / (step + 1), step=step)
        run.log("epoch", step)
    run.log_table("scores", {"a": [1, 2], "b": ["x", "y"]})
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/result.txt", "w") as fh:
        fh.write("made here\\n")
    run.register_model("clf", path="outputs/result.txt")
    print("trained")
"""


def launchbay(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launchbay", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=env or os.environ.copy(),
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: {done.stdout}{done.stderr}"
    return done.stdout


def s3_section(s3: dict[str, str]) -> str:
    return "\n[s3]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in s3.items())


def team_project(folder: Path, url: str, blobs: str, s3: dict[str, str]) -> Path:
    """A project of a teammate on another machine: the team store, and a local folder of its own."""
    folder.mkdir()
    (folder / "launchbay.toml").write_text(
        f"[store]\nurl = {json.dumps(url)}\nblobs = {json.dumps(blobs)}\n"
        f"cache = {json.dumps(str(folder / 'machine'))}\n" + s3_section(s3)
    )
    return folder


def with_history(project: Path) -> list[str]:
    """Two finished runs (one registers a model), a dataset version one of them read, a schedule."""
    write(project, "train.py", TRAIN)
    ok(launchbay(project, "submit", "-e", "mnist", "train.py"))
    ok(launchbay(project, "submit", "-e", "mnist", "--tag", "best=yes", "train.py"))
    with open_store() as store:
        ids = store.all_run_ids()
        manifest = store.blobs.put_bytes(b'{"files": [], "version": 1}')
        store.add_dataset_version(DatasetVersion("raw", 0, manifest, "folder", "/data/raw", "/data/raw", 0, 0))
        store.add_run_inputs(ids[0], [RunInput("train", "dataset:raw", manifest, "folder", "mount", 0, 0)])
        store.add_schedule(Schedule("nightly", "every 1h", ["submit", "train.py"], str(project), next_fire=1e10))
    return ids


def copy_json(folder: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return dict(json.loads(ok(launchbay(folder, "store", "copy", "--json", *args, env=env))))


def same_runs(a: Store, b: Store, run_ids: list[str]) -> None:
    """Run for run: the record a user sees, every point of every metric, every record, every file."""
    for run_id in run_ids:
        one, two = a.get_run(run_id), b.get_run(run_id)
        for field in ("name", "experiment", "status", "created", "started", "ended", "created_by", "exit_code"):
            assert getattr(one, field) == getattr(two, field), field
        for field in ("tags", "params", "parent_run_id", "snapshot_id", "spec", "arguments"):
            assert getattr(one, field) == getattr(two, field), field
        assert [m["name"] for m in a.metric_summaries(one)] == [m["name"] for m in b.metric_summaries(two)]
        for summary in a.metric_summaries(one):
            x, y = a.read_series(one, summary["name"]), b.read_series(two, summary["name"])
            assert x.steps.tolist() == y.steps.tolist() and x.values.tolist() == y.values.tolist()
            assert x.timestamps.tolist() == y.timestamps.tolist() and x.integer == y.integer
        assert a.read_records(one) == b.read_records(two)
        names = a.file_names(one)
        assert names == b.file_names(two) and "outputs/result.txt" in names
        for name in names:
            assert a.file_path(one, name).read_bytes() == b.file_path(two, name).read_bytes(), name


@pytest.fixture
def s3_env(team_s3: tuple[str, dict[str, str]], project: Path) -> tuple[str, dict[str, str]]:
    """The S3 emulator's prefix and keys, written as the project's ``[s3]`` (what ``--blobs s3://`` uses)."""
    blobs, s3 = team_s3
    (project / "launchbay.toml").write_text(s3_section(s3))
    return blobs, s3


def test_an_embedded_store_copied_into_a_team_store_reads_the_same_everywhere(
    project: Path, team_pg: str, s3_env: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """The copy lists the same runs, the same metrics point for point, the same files; the snapshot
    restores, the model resolves, lineage, the dataset and the schedule (paused) are there, read by a
    teammate on another machine whose local folder has none of it; a second copy skips everything."""
    blobs, s3 = s3_env
    ids = with_history(project)
    report = copy_json(project, "--to", team_pg, "--blobs", blobs)
    assert (report["copied"], report["skipped"], report["running"], report["problems"]) == (2, 0, [], [])

    teammate = team_project(tmp_path / "teammate", team_pg, blobs, s3)
    listed = json.loads(ok(launchbay(teammate, "runs", "--json", env={**os.environ, "LAUNCHBAY_STORE": ""})))
    assert sorted(r["run_id"] for r in listed) == sorted(ids)
    with open_store() as source, open_store(team_pg + f"&blobs={blobs}&cache={teammate / 'machine'}") as team:
        same_runs(source, team, ids)
        run = team.get_run(ids[-1])
        assert missing_blobs(team, str(run.snapshot_id)) == []
        model = team.model_version("clf")
        assert model is not None and model.version == 2 and model.run_id == ids[-1]
        assert missing_blobs(team, model.manifest) == []
        assert [i.dataset for i in team.run_inputs(ids[0])] == [None] and team.dataset_version("raw") is not None
        schedule = team.schedule("nightly")
        assert schedule is not None and schedule.paused  # the old store's supervisor may still fire it
    env = {**os.environ, "LAUNCHBAY_STORE": ""}
    ok(launchbay(teammate, "restore", ids[-1], "-o", str(tmp_path / "restored"), env=env))
    assert (tmp_path / "restored" / "train.py").read_text() == (project / "train.py").read_text()
    ok(launchbay(teammate, "models", "download", "clf:2", "-o", str(tmp_path / "model"), env=env))
    assert (tmp_path / "model" / "result.txt").read_text() == "made here\n"

    again = copy_json(project, "--to", team_pg, "--blobs", blobs)
    assert (again["copied"], again["skipped"], again["problems"]) == (0, 2, [])


def test_a_team_store_copies_back_into_an_embedded_store(
    project: Path, team_pg: str, s3_env: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Back, from a machine that has none of the run folders: files come out of the bucket, and the
    embedded copy verifies, restores and lists the model."""
    blobs, s3 = s3_env
    ids = with_history(project)
    copy_json(project, "--to", team_pg, "--blobs", blobs)
    teammate = team_project(tmp_path / "teammate", team_pg, blobs, s3)
    env = {**os.environ, "LAUNCHBAY_STORE": ""}
    back = tmp_path / "back" / ".launchbay"
    report = copy_json(teammate, "--to", str(back), env=env)
    assert (report["copied"], report["skipped"], report["problems"]) == (2, 0, [])
    with open_store(team_pg + f"&blobs={blobs}&cache={teammate / 'machine'}") as team, RunStore(back) as embedded:
        same_runs(team, embedded, ids)
        assert embedded.model_version("clf", 2) is not None
    assert "checked: the index (ok), 2 runs" in ok(launchbay(teammate, "store", "verify", "--store", str(back)))
    ok(launchbay(teammate, "--store", str(back), "restore", ids[0], "-o", str(tmp_path / "restored"), env=env))
    assert (tmp_path / "restored" / "train.py").is_file()


def test_a_run_still_running_is_copied_as_it_is_now_and_named(project: Path, tmp_path: Path) -> None:
    with open_store() as store:
        run = store.create_run(
            RunSpec(script="t.py", experiment="e"), target_type="local", snapshot_id=None, properties={}
        )
        store.update_run(run.pk, status=RunStatus.RUNNING.value, started=run.created)
        with store.write(run.pk) as writer:
            writer.append_points("loss", [(None, 0.5, 0, 1.0), (None, 0.25, 1, 2.0)])
    report = copy_json(project, "--to", str(tmp_path / "dest"))
    assert (report["copied"], report["running"]) == (1, [run.run_id])
    with RunStore(tmp_path / "dest") as dest:
        copied = dest.get_run(run.run_id)
        assert copied.status is RunStatus.RUNNING and dest.read_series(copied, "loss").values.tolist() == [0.5, 0.25]


def test_a_copy_cut_off_half_way_is_simply_run_again(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch is one transaction: a copy that dies mid-way leaves whole runs, and the next one copies the rest."""
    with open_store() as store:
        for i in range(7):
            spec = RunSpec(script="t.py", experiment="e", params={"i": i})
            store.create_run(spec, target_type="local", snapshot_id=None, properties={})
    monkeypatch.setattr(store_copy, "BATCH", 3)
    imported = RunStore.import_runs
    calls = []

    def dies_on_the_second_batch(self: RunStore, runs: Any) -> list[str]:
        calls.append(len(runs))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed ^C, the machine went away...
        return imported(self, runs)

    with open_store() as source, RunStore(tmp_path / "dest") as dest:
        monkeypatch.setattr(RunStore, "import_runs", dies_on_the_second_batch)
        with pytest.raises(KeyboardInterrupt):
            store_copy.copy_store(source, dest)
        assert len(dest.all_run_ids()) == 3
        monkeypatch.setattr(RunStore, "import_runs", imported)
        report = store_copy.copy_store(source, dest)
        assert (report.copied, report.skipped) == (4, 3)
        assert dest.all_run_ids() == source.all_run_ids()
        assert sorted(r.params["i"] for r in dest.list_runs(limit=None)) == list(range(7))


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("launchbay: error: "), done.stderr
    return lines[0]


def test_bad_input_is_one_line_and_nothing_is_written(project: Path, tmp_path: Path) -> None:
    with open_store() as store:
        store.create_run(RunSpec(script="t.py", experiment="e"), target_type="local", snapshot_id=None, properties={})
        source = str(store.runs_dir.parent)
    assert "No store backend for nosuch:" in one_line(launchbay(project, "store", "copy", "--to", "nosuch://x/y"))
    assert "--to names the store being copied" in one_line(launchbay(project, "store", "copy", "--to", source))
    unreachable = "postgresql://lb@127.0.0.1:1/launchbay"
    line = one_line(launchbay(project, "store", "copy", "--to", unreachable, "--blobs", str(tmp_path / "blobs")))
    assert "Cannot reach the team store" in line
    assert "no blobs named" in one_line(launchbay(project, "store", "copy", "--to", unreachable))
    assert not (tmp_path / "blobs").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["proj", "store"]


def test_no_password_is_written_by_a_copy(project: Path, team_pg: str, tmp_path: Path) -> None:
    """The password given in the URL logs in and is written nowhere: not in the copied runs, not in the
    destination's local folder."""
    password = next(line.split(":")[4] for line in Path(PG_PASSFILE).read_text().splitlines() if ":lb:" in line)
    with open_store() as store:
        store.create_run(RunSpec(script="t.py", experiment="e"), target_type="local", snapshot_id=None, properties={})
    env = {k: v for k, v in os.environ.items() if k != "PGPASSFILE"}
    url = team_pg.replace("lb@", f"lb:{password}@") + f"&cache={tmp_path / 'local'}"
    report = copy_json(project, "--to", url, "--blobs", str(tmp_path / "blobs"), env=env)
    assert report["copied"] == 1
    for path in [*(tmp_path / "local").rglob("*"), *(tmp_path / "blobs").rglob("*")]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
