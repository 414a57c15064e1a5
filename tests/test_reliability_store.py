"""The store stays trustworthy: damaged index, full disk, concurrency, isolation, paths, secrets, processes.

Real processes throughout (the CLI in subprocesses, local runners, a real tmpfs); no mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, need_service, pid_alive, wait_for, write

TRAIN = """
    from launchbay import Run
    run = Run.get_context()
    for i in range(50):
        run.log("loss", 1.0 / (i + 1), step=i)
    run.log_row("pr", p=0.5, r=0.25)
    run.tag("stage", "done")
    print("trained")
"""


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
    assert len(lines) == 1 and lines[0].startswith("launchbay: error: "), proc.stderr
    return lines[0]


def _submit_and_wait(cli: CLI, *args: str) -> str:
    out = cli.json("submit", *args)
    assert isinstance(out, dict) and out["status"] == "Completed", out
    return str(out["run_id"])


# -- a damaged index: refused in one line, rebuilt by `launchbay store repair` ----------------------


def test_a_zero_byte_index_is_refused_and_store_repair_rebuilds_it_from_the_run_folders(
    cli: CLI, project: Path, tmp_path: Path
) -> None:
    write(project, "train.py", TRAIN)
    first = _submit_and_wait(cli, "--tag", "team=vision", "train.py", "--", "--lr", "0.1")
    second = _submit_and_wait(cli, "train.py")
    index = tmp_path / "store" / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    index.write_bytes(b"")  # what a crash on a full disk can leave

    for command in (("runs",), ("show", first), ("submit", "--detach", "train.py")):
        line = _one_line_error(cli(*command))
        assert "launchbay store repair" in line and "2 run folder" in line
    assert len(list((tmp_path / "store" / "runs").iterdir())) == 2  # no new run written on top

    (tmp_path / "store" / "runs" / second / "run.json").unlink()  # a run folder from before run.json existed

    report = json.loads(cli("store", "repair", "--json", check=True).stdout)
    assert isinstance(report, dict)
    assert report["runs"] == 2 and report["points"] == 100 and report["old_index"].startswith("empty")
    runs = {r["run_id"]: r for r in cli.json("runs")}  # type: ignore[union-attr]
    assert set(runs) == {first, second}
    assert all(r["status"] == "Completed" for r in runs.values())
    shown = cli.json("show", first)
    assert isinstance(shown, dict)
    assert shown["tags"]["team"] == "vision" and shown["tags"]["stage"] == "done"
    assert shown["arguments"] == ["--lr", "0.1"] and shown["snapshot"]["files"] == 1
    metrics = cli.json("metrics", first)
    assert isinstance(metrics, dict) and len(metrics["loss"]["points"]) == 50
    old_style = cli.json("show", second)  # rebuilt from runner.json and its journal
    assert isinstance(old_style, dict) and old_style["experiment"] == "proj" and old_style["snapshot"]["files"] == 1
    assert old_style["tags"]["stage"] == "done"
    assert _submit_and_wait(cli, "train.py")  # and the store works again


def test_a_deleted_index_is_refused_too_and_rebuilt(cli: CLI, project: Path, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    run_id = _submit_and_wait(cli, "train.py")
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (tmp_path / "store" / name).unlink(missing_ok=True)
    assert "launchbay store repair" in _one_line_error(cli("runs"))
    report = json.loads(cli("store", "repair", "--json", check=True).stdout)
    assert report["old_index"] == "missing" and report["runs"] == 1
    assert [r["run_id"] for r in cli.json("runs")] == [run_id]  # type: ignore[index]


def test_an_index_with_bad_pages_gives_one_line_saying_to_repair(cli: CLI, project: Path, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    run_id = _submit_and_wait(cli, "train.py")
    index = tmp_path / "store" / "index.sqlite"
    checkpoint = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')"
    subprocess.run([sys.executable, "-c", checkpoint, str(index)], check=True)  # everything into the main file
    data = bytearray(index.read_bytes())
    for page in range(1, len(data) // 4096):  # every page but the header's
        data[page * 4096 : page * 4096 + 64] = os.urandom(64)
    index.write_bytes(bytes(data))

    for command in (("runs",), ("show", run_id), ("metrics", run_id), ("submit", "--detach", "train.py")):
        line = _one_line_error(cli(*command))
        assert "launchbay store repair" in line and ("damaged" in line or "incomplete" in line), line

    report = json.loads(cli("store", "repair", "--json", check=True).stdout)
    assert isinstance(report, dict) and report["runs"] == 1 and report["old_index"].startswith("damaged")
    assert Path(report["moved_to"]).is_file()  # the damaged index is kept aside, not deleted
    assert [r["status"] for r in cli.json("runs")] == ["Completed"]  # type: ignore[union-attr]


# -- disk full on the store's side --------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs (mount needs root: CI runs as root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    need_service(done.returncode == 0, f"mounting a tmpfs ({done.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_named_nothing_is_half_written_and_the_store_works_once_space_is_freed(
    cli: CLI, project: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAUNCHBAY_STORE", str(small_disk / "store"))
    write(project, "train.py", TRAIN)
    write(project, "data.bin", "x" * 200_000)
    first = _submit_and_wait(cli, "train.py")
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the disk to the last byte (unbuffered: close has nothing left)
        chunk = 65536
        while chunk:
            try:
                fh.write(b"\0" * chunk)
            except OSError:
                chunk //= 2
    # unchanged folder: the snapshot writes nothing, recording the run fails; then a new blob fails
    for change in (False, True):
        if change:
            write(project, "data.bin", "y" * 200_000)
        line = _one_line_error(cli("submit", "--detach", "train.py"))
        assert "disk holding the store" in line and "is full" in line, line
        assert "I/O error" not in line
    listing = cli("runs")  # reading may need a little space too (SQLite's WAL index): then it says so
    assert listing.returncode == 0 or "is full" in _one_line_error(listing)
    store = small_disk / "store"
    assert not list(store.rglob(".tmp-*")) and not list(store.rglob(".*.marshal.*"))
    assert [p.name for p in (store / "runs").iterdir()] == [first]

    from launchbay.errors import DiskFullError
    from launchbay.store import open_store

    with pytest.raises(DiskFullError, match="is full"):  # SQLite's own "database or disk is full" too
        with open_store(store).transaction() as db:
            db.execute("INSERT INTO records(run_pk, kind, name, payload) VALUES (0, 'x', 'y', ?)", ("z" * 10**6,))

    filler.unlink()
    assert [r["run_id"] for r in cli.json("runs")] == [first]  # type: ignore[index]
    second = _submit_and_wait(cli, "train.py")
    assert {r["run_id"] for r in cli.json("runs")} == {first, second}  # type: ignore[union-attr]
    assert len(cli.json("metrics", second)["loss"]["points"]) == 50  # type: ignore[index]


# -- concurrency and lost blobs -----------------------------------------------------------------------


def test_concurrent_first_submits_to_a_new_store_never_collide(project: Path, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    for i in range(50):
        write(project, f"pkg/m{i}.py", f"X = {i}\n")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "launchbay", "submit", "--detach", "--json", "train.py"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    run_ids = [json.loads(out)["run_id"] for out, _ in results]
    handles = [launchbay.get_run(r) for r in run_ids]
    assert [h.wait() for h in handles] == ["Completed"] * 8
    assert len({h.get_details()["snapshot"]["id"] for h in handles}) == 1


SNAPSHOTTER = """
import sys
from pathlib import Path
from launchbay.snapshot import take_snapshot
from launchbay.store import open_store
me, root = sys.argv[1], Path(sys.argv[2])
for i in range(15):
    (root / f"own-{me}.txt").write_text(f"{me} {i}")  # a change: each snapshot rewrites the folder's index
    take_snapshot(open_store(), root, max_bytes=10**9, max_files=10**6)
"""


def test_concurrent_processes_opening_and_snapshotting_one_store_never_collide(project: Path, tmp_path: Path) -> None:
    for i in range(30):
        write(project, f"pkg/m{i}.py", f"X = {i}\n")
    procs = [
        subprocess.Popen([sys.executable, "-c", SNAPSHOTTER, str(n), str(project)], stderr=subprocess.PIPE, text=True)
        for n in range(6)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors


def test_a_blob_deleted_from_the_store_is_stored_again_at_the_next_snapshot(project: Path, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    first = launchbay.submit("train.py")
    assert first.wait() == "Completed"
    digest = hashlib.sha256((project / "train.py").read_bytes()).hexdigest()
    blob = tmp_path / "store" / "blobs" / digest[:2] / digest[2:]
    blob.unlink()
    again = launchbay.submit("train.py")
    assert again.wait() == "Completed", again.get_details()["error"]
    assert blob.is_file()


# -- isolation: a run never changes another run's files -----------------------------------------------


def test_a_run_writing_into_its_snapshot_files_does_not_change_what_another_run_reads(project: Path) -> None:
    write(project, "data.txt", "original\n")
    write(
        project,
        "writer.py",
        """
        import time
        with open("data.txt", "r+") as fh:   # in place: same inode if it were shared
            fh.write("CHANGED!\\n")
        print("written", flush=True)
        time.sleep(3)
    """,
    )
    write(project, "reader.py", "print('read', open('data.txt').read().strip())\n")
    writer = launchbay.submit("writer.py")
    wait_for(lambda: "written" in writer.get_log())
    reader = launchbay.submit("reader.py")
    assert reader.wait() == "Completed"
    assert "read original" in reader.get_log()
    assert writer.wait() == "Completed"
    third = launchbay.submit("reader.py")
    assert third.wait() == "Completed" and "read original" in third.get_log()
    assert (project / "data.txt").read_text() == "original\n"


def test_a_recycled_work_tree_never_carries_what_a_run_changed(project: Path, tmp_path: Path) -> None:
    """Runs of one folder reuse a finished run's untouched copies; anything it touched is copied afresh."""
    write(project, "keep.txt", "pristine\n")
    write(project, "edit.txt", "pristine\n")
    write(project, "gone.txt", "pristine\n")
    write(
        project,
        "meddle.py",
        """
        import os
        with open("edit.txt", "r+") as fh:   # in place
            fh.write("MEDDLED!\\n")
        os.remove("gone.txt")
        os.makedirs("cache", exist_ok=True)
        open("cache/new.bin", "w").write("x")
        os.symlink("/etc/passwd", "keep-link")
        os.link("keep.txt", "hard.txt")          # keep.txt's inode now has two names
        os.makedirs("outputs", exist_ok=True)
        os.link("keep.txt", "outputs/kept.txt")  # and one in the run's outputs
    """,
    )
    write(
        project,
        "check.py",
        """
        import os
        print(sorted(os.listdir(".")))
        print("files", *[open(name).read().strip() for name in ("keep.txt", "edit.txt", "gone.txt")])
        print("links", os.stat("keep.txt").st_nlink)
        open("keep.txt", "a").write("appended by check\\n")
    """,
    )
    first = launchbay.submit("meddle.py")
    assert first.wait() == "Completed", first.get_log()
    spares = list((tmp_path / "store" / "cache" / "stage").iterdir())
    assert len(spares) == 1  # the finished tree was recycled
    for _ in range(2):
        check = launchbay.submit("check.py")
        assert check.wait() == "Completed", check.get_log()
        log = check.get_log()
        assert "['check.py', 'edit.txt', 'gone.txt', 'keep.txt', 'meddle.py']" in log
        assert "files pristine pristine pristine" in log and "links 1" in log
    kept = open_store_file(first, "outputs/kept.txt")
    assert kept == "pristine\n"  # later runs wrote into their own copies, never into this output


def open_store_file(handle: launchbay.RunHandle, name: str) -> str:
    from launchbay.store import open_store

    return open_store().file_path(handle.record(), name).read_text()


# -- paths never leave their folder ------------------------------------------------------------------


def test_the_snapshot_records_links_inside_and_skips_links_to_outside(cli: CLI, project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("do not copy me\n")
    write(project, "conf/real.yaml", "lr: 1\n")
    os.symlink("conf/real.yaml", project / "config.yaml")  # inside: kept as a link
    os.symlink(str(outside), project / "leak.txt")  # outside: skipped
    os.symlink("/etc", project / "etc")  # a folder outside: skipped
    write(
        project,
        "show.py",
        """
        import os
        print("link", os.readlink("config.yaml"), open("config.yaml").read())
        print("leak", os.path.exists("leak.txt"))
    """,
    )

    dry = cli("snapshot", "--dry-run", check=True).stdout
    assert "- leak.txt  (symlink to " in dry and "outside the project" in dry
    assert "- etc  (symlink to /etc, outside the project" in dry
    handle = launchbay.submit("show.py")
    assert handle.wait() == "Completed"
    log = handle.get_log()
    assert "link conf/real.yaml lr: 1" in log and "leak False" in log
    store_files = [p for p in (tmp_path / "store").rglob("*") if p.is_file() and not p.is_symlink()]
    assert not [p for p in store_files if b"do not copy me" in p.read_bytes()]
    skipped = json.loads(handle.get_details()["properties"]["launchbay.snapshot.skipped"])
    assert {p for p, _ in skipped} == {"leak.txt", "etc"}


def test_logs_and_files_are_served_only_from_inside_the_run_folder(cli: CLI, project: Path) -> None:
    write(
        project,
        "plant.py",
        """
        import os
        files = os.environ["LAUNCHBAY_FILES_DIR"]
        log = os.path.join(files, "user_logs", "std_log.txt")
        os.makedirs("outputs", exist_ok=True)
        os.symlink("/etc/passwd", "outputs/passwd")
        os.symlink("/etc", "outputs/etc")
        with open("outputs/ok.txt", "w") as fh:
            fh.write("fine")
        os.remove(log)
        os.symlink("/etc/passwd", log)
    """,
    )
    handle = launchbay.submit("plant.py")
    assert handle.wait() == "Completed"
    run_id = handle.run_id
    passwd = Path("/etc/passwd").read_text()[:20]
    line = _one_line_error(cli("logs", run_id))
    assert "outside" in line
    names = cli.json("files", run_id)
    assert [f["name"] for f in names] == ["outputs/ok.txt"]  # type: ignore[index]
    for name in ("outputs/passwd", "outputs/etc/passwd", "user_logs/std_log.txt", "../../../../etc/passwd"):
        refused = cli("download", run_id, name, "-o", str(project / "got"))
        assert refused.returncode == 2 and not (project / "got").exists(), name

    from launchbay.errors import LaunchbayError
    from launchbay.server.service import LaunchbayService

    service = LaunchbayService.open(None, str(project))
    with pytest.raises(LaunchbayError):
        service.log(run_id)
    with pytest.raises(LaunchbayError):
        service.file_path(run_id, "outputs/passwd")
    assert [f["name"] for f in service.files(run_id)["files"]] == ["outputs/ok.txt"]
    assert passwd not in json.dumps(service.run(run_id))


# -- secrets ----------------------------------------------------------------------------------------


def test_secrets_in_names_urls_arguments_git_remotes_and_target_settings_never_reach_the_store(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOX_PASSPHRASE", "pp-secret-7")
    write(project, "launchbay.toml", '[targets.box]\ntype = "local"\npassphrase = "${BOX_PASSPHRASE}"\n')
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    remote = "https://ghp_tok-secret-6@github.com/a/b.git"
    subprocess.run(["git", "-C", str(project), "remote", "add", "origin", remote], check=True)
    write(
        project,
        "env.py",
        """
        import hashlib, os, sys
        seen = [os.environ[k] for k in ("MY_APP_KEY", "SIGNING_KEY", "SSH_PASSPHRASE", "DATABASE_URL")] + sys.argv[1:]
        print("sha", hashlib.sha256("|".join(seen).encode()).hexdigest())
    """,
    )
    env = {
        "MY_APP_KEY": "key-secret-1",
        "SIGNING_KEY": "key-secret-2",
        "SSH_PASSPHRASE": "pass-secret-3",
        "DATABASE_URL": "postgres://u:pw-secret-4@db/x",
    }
    args = ["--api-key=arg-secret-5", "--password", "arg-secret-8", "--lr", "0.1"]
    handle = launchbay.submit("env.py", args=args, env_vars=env, target="box")
    assert handle.wait() == "Completed", handle.get_log()
    expected = hashlib.sha256("|".join([*env.values(), *args]).encode()).hexdigest()
    assert f"sha {expected}" in handle.get_log()  # the real values reached the run

    secrets = [b"key-secret-1", b"key-secret-2", b"pass-secret-3", b"pw-secret-4", b"arg-secret-5", b"tok-secret-6"]
    secrets += [b"pp-secret-7", b"arg-secret-8"]
    store_files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    leaks = [(p.name, s) for p in store_files for s in secrets if s in p.read_bytes()]
    assert not leaks
    details = handle.get_details()
    assert details["arguments"] == ["--api-key=***", "--password", "***", "--lr", "0.1"]
    assert details["properties"]["launchbay.git.repository_uri"] == "https://***@github.com/a/b.git"
    assert details["target_state"]["target_settings"]["passphrase"] == "***"


def test_a_missing_variable_in_launchbay_toml_is_one_clear_error(cli: CLI, project: Path) -> None:
    write(project, "launchbay.toml", '[targets.box]\ntype = "ssh"\nhost = "${LB_TEST_UNSET_HOST}"\n')
    write(project, "t.py", "print(1)\n")
    line = _one_line_error(cli("submit", "-t", "box", "t.py"))
    assert "targets.box.host" in line and "LB_TEST_UNSET_HOST is not set" in line


# -- every descendant stops ---------------------------------------------------------------------------
# (at the run's end and on cancel, on every target: test_target_contract.py)

ESCAPER = """
    import os, subprocess, sys, time
    # a grandchild in a new session, double-forked away: not in the run's process group
    code = (
        "import os, time\\n"
        "if os.fork() == 0:\\n"
        "    os.setsid()\\n"
        "    open('escaped.tmp', 'w').write(str(os.getpid()))\\n"
        "    os.rename('escaped.tmp', 'escaped.pid')\\n"
        "    time.sleep(300)\\n"
    )
    subprocess.run([sys.executable, "-c", code])
    while not os.path.exists("escaped.pid"):
        time.sleep(0.05)
    print("escaped", open("escaped.pid").read(), flush=True)
    time.sleep(float(sys.argv[1]))
"""


def _escaped_pid(handle: launchbay.RunHandle) -> int:
    line = wait_for(lambda: next((ln for ln in handle.get_log().splitlines() if ln.startswith("escaped")), None))
    return int(line.split()[1])


def test_staging_copies_1000_files_quickly(project: Path) -> None:
    """Private copies instead of hard links: measured, it stays a few ms per 1,000 files."""
    from launchbay.runner import stage_snapshot
    from launchbay.snapshot import take_snapshot
    from launchbay.store import open_store

    for i in range(1000):
        write(project, f"pkg/sub{i % 20}/m{i}.py", f"X = {i}\n" * 20)
    store = open_store()
    snap = take_snapshot(store, project, max_bytes=10**9, max_files=10**6)
    config = {"snapshot": {"manifest": str(store.blobs.path(snap.id)), "blobs": str(store.blobs.root)}}
    work = project.parent / "work"
    best = 1e9
    for _ in range(3):
        shutil.rmtree(work, ignore_errors=True)
        started = time.perf_counter()
        stage_snapshot(config, str(work))
        best = min(best, time.perf_counter() - started)
    print(f"staging 1,000 files: {best * 1000:.1f} ms")
    assert best < 1.0
    assert (work / "pkg/sub3/m3.py").read_text().startswith("X = 3")
    assert os.stat(work / "pkg/sub3/m3.py").st_nlink == 1  # a copy of its own, not a link to a blob


def test_a_rerun_whose_snapshot_lost_a_blob_is_one_clear_error_before_a_run_exists(cli: CLI, project: Path) -> None:
    write(project, "train.py", TRAIN)
    run_id = _submit_and_wait(cli, "train.py")
    digest = hashlib.sha256((project / "train.py").read_bytes()).hexdigest()
    blobs = Path(os.environ["LAUNCHBAY_STORE"]) / "blobs"
    (blobs / digest[:2] / digest[2:]).unlink()
    from launchbay.errors import SubmitError
    from launchbay.session import Session

    with pytest.raises(SubmitError, match="train.py"):
        Session().rerun(run_id)
    assert [r["run_id"] for r in cli.json("runs")] == [run_id]  # type: ignore[index]


def test_a_sweeps_secret_arguments_reach_its_runs_but_never_the_store(project: Path, tmp_path: Path) -> None:
    from launchbay.sweeps import choice, sweep

    write(
        project,
        "train.py",
        """
        import hashlib, sys
        from launchbay import Run
        assert hashlib.sha256(sys.argv[1].encode()).hexdigest() == "%s", sys.argv
        Run.get_context().log("loss", float(sys.argv[-1]))
    """,
    )
    (project / "train.py").write_text(
        (project / "train.py").read_text() % hashlib.sha256(b"--api-key=sw-secret-1").hexdigest()
    )
    handle = sweep(
        "train.py",
        {"lr": choice(0.1, 0.2)},
        primary_metric="loss",
        max_total_runs=2,
        max_concurrent_runs=2,
        args=["--api-key=sw-secret-1"],
    )
    assert handle.wait(timeout=90) == "Completed"
    assert [c.status for c in handle.children()] == ["Completed", "Completed"]
    store_files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert not [p for p in store_files if b"sw-secret-1" in p.read_bytes()]


def test_when_the_runner_itself_is_killed_its_escaped_descendants_are_stopped_too(project: Path) -> None:
    write(project, "escape.py", ESCAPER)
    handle = launchbay.submit("escape.py", args=["300"])
    pid = _escaped_pid(handle)
    runner_pid = handle.record().target_state["runner_pid"]
    time.sleep(1.5)  # the runner notes its descendants every second
    os.kill(runner_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(runner_pid))
    assert handle.record().status.value == "Failed"  # the next look at the store finds the runner dead
    wait_for(lambda: not pid_alive(pid), timeout=5)


def test_a_terminal_status_is_never_overwritten(project: Path) -> None:
    """A run that ended (here: Completed) stays so, whatever a late cancel or failure check says."""
    from launchbay.models import RunStatus
    from launchbay.store import open_store

    write(project, "train.py", "print('done')\n")
    handle = launchbay.submit("train.py")
    assert handle.wait(timeout=60) == "Completed"
    store = open_store()
    record = store.get_run(handle.run_id)
    assert store.end_run(record.pk, RunStatus.CANCELED, {"message": "late cancel", "traceback": ""}) is False
    assert store.end_run(record.pk, RunStatus.FAILED, {"message": "late heartbeat check", "traceback": ""}) is False
    assert store.get_run(handle.run_id).status is RunStatus.COMPLETED
    assert handle.cancel() == "Completed"
