"""The target contract's data scenarios, on every target that delivers data inputs (the ``target`` fixture).

A run reads its input and gets the same bytes (checked by hash); the input cannot be changed through a
read-only view where the target gives one (Docker's read-only bind mount); a host cache that a run
changed (an SSH host, where the login may be root) is detected and mended before the next run; a
second run of an unchanged input sends nothing; one changed file sends that file only; a missing
source is refused before any run is written. The local target reads the source where it is, so it
never sends anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import launchbay
from conftest import TargetUnderTest, target_params, toml_table, write

pytestmark = pytest.mark.parametrize(
    "target", target_params("local", "docker", "docker-tcp", "ssh", "slurm", "ray"), indirect=True
)

#: targets that copy data to their side (and so count bytes sent); the others read it in place
SENDS = ("docker-tcp", "ssh", "slurm", "ray")
#: targets whose runs see the input through a read-only view
READ_ONLY = ("docker", "docker-tcp")
#: targets whose cache a run may change, mended before the next run uses it
MENDED = ("ssh", "slurm", "ray")  # docker-tcp's volumes are mounted read-only: nothing to mend

READ = """
    import hashlib, json, os, sys
    path = os.environ["LAUNCHBAY_INPUT_TRAIN"]
    sums = {}
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            sums[os.path.relpath(full, path)] = hashlib.sha256(open(full, "rb").read()).hexdigest()
    print("SUMS", json.dumps(sums, sort_keys=True), flush=True)
    if "--write" in sys.argv:
        try:
            with open(os.path.join(path, "a.bin"), "ab") as fh:
                fh.write(b"changed by the run")
            print("WRITE OK", flush=True)
        except OSError as exc:
            print("WRITE FAILED", exc, flush=True)
"""


@pytest.fixture(scope="module")
def folder(target: TargetUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project (with its store beside it) and its data: three files, one in a folder with a hostile name."""
    root = tmp_path_factory.mktemp("data-contract") / "proj"
    root.mkdir()
    if target.kind in SENDS:  # a host cache of this module's own, so the first run sends everything
        assert target.settings is not None
        settings = {**target.settings, "data_cache": str(root.parent / "host cache")}
        (root / "launchbay.toml").write_text(toml_table(target.name, settings))
    else:
        target.configure(root)
    write(root, "read.py", READ)
    data = root.parent / "data"
    (data / 'it\'s a "sub" folder').mkdir(parents=True)
    (data / "a.bin").write_bytes(os.urandom(200_000))
    (data / "b.txt").write_text("bee\n")
    (data / 'it\'s a "sub" folder' / "c.csv").write_text("x,y\n1,2\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("LAUNCHBAY_STORE", str(root.parent / "store"))
        yield root
    if target.kind == "docker-tcp":  # the daemon's data volumes this module's store made
        import docker

        client = docker.from_env()
        for volume in client.volumes.list(filters={"label": f"launchbay.store={(root.parent / 'store').resolve()}"}):
            volume.remove(force=True)


def run_with_data(target: TargetUnderTest, folder: Path, *args: str) -> launchbay.RunHandle:
    handle = launchbay.submit(
        "read.py", list(args), target=target.name, source_dir=folder, inputs={"train": str(folder.parent / "data")}
    )
    assert handle.wait(timeout=180) == "Completed", handle.record().error
    return handle


def sums_seen(handle: launchbay.RunHandle) -> dict[str, str]:
    line = next(line for line in handle.get_log().splitlines() if line.startswith("SUMS "))
    found: dict[str, str] = json.loads(line[5:])
    return found


def sums_of(data: Path) -> dict[str, str]:
    return {
        p.relative_to(data).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data.rglob("*"))
        if p.is_file()
    }


def bytes_sent(handle: launchbay.RunHandle) -> int:
    [item] = handle.get_details()["inputs"]
    return int(item["bytes_sent"])


def test_the_run_reads_the_same_bytes(target: TargetUnderTest, folder: Path) -> None:
    handle = run_with_data(target, folder)
    assert sums_seen(handle) == sums_of(folder.parent / "data")
    expected = 200_000 + 4 + 8 if target.kind in SENDS else 0
    assert bytes_sent(handle) == expected


def test_a_second_run_of_unchanged_data_sends_nothing(target: TargetUnderTest, folder: Path) -> None:
    run_with_data(target, folder)
    again = run_with_data(target, folder)
    assert bytes_sent(again) == 0
    assert sums_seen(again) == sums_of(folder.parent / "data")


def test_one_changed_file_sends_that_file_only(target: TargetUnderTest, folder: Path) -> None:
    data = folder.parent / "data"
    run_with_data(target, folder)
    (data / "b.txt").write_text("bee, changed\n")
    past = os.stat(data / "a.bin").st_mtime - 5  # not just written: the size/mtime cache may trust it
    os.utime(data / "b.txt", (past, past))
    handle = run_with_data(target, folder)
    assert sums_seen(handle) == sums_of(data)
    assert bytes_sent(handle) == (len("bee, changed\n") if target.kind in SENDS else 0)


def test_the_input_cannot_be_changed_through_a_read_only_view(target: TargetUnderTest, folder: Path) -> None:
    if target.kind not in READ_ONLY:
        why = (
            "its cache is mended instead (see the next test)"
            if target.kind in MENDED
            else "it reads the source in place"
        )
        pytest.skip(f"{target.kind} gives no read-only view: {why}")
    before = sums_of(folder.parent / "data")
    handle = run_with_data(target, folder, "--write")
    assert "WRITE FAILED" in handle.get_log() and "Read-only file system" in handle.get_log()
    assert sums_of(folder.parent / "data") == before


def test_a_changed_cache_is_mended_before_the_next_run(target: TargetUnderTest, folder: Path) -> None:
    if target.kind not in MENDED:
        why = "its volumes are mounted read-only" if target.kind in READ_ONLY else "it keeps no cache of its own"
        pytest.skip(f"{target.kind}: nothing to mend, {why}")
    data = folder.parent / "data"
    run_with_data(target, folder)
    changed = run_with_data(target, folder, "--write")
    assert "WRITE OK" in changed.get_log()  # the test host's login is root: read-only files do not stop it
    after = run_with_data(target, folder)
    assert sums_seen(after) == sums_of(data)  # never served changed
    assert bytes_sent(after) == (data / "a.bin").stat().st_size  # only the changed file is sent again


def test_a_missing_source_is_refused_before_any_run_is_written(target: TargetUnderTest, folder: Path) -> None:
    before = len(launchbay.runs(limit=None))
    with pytest.raises(launchbay.LaunchbayError, match="does not exist"):
        launchbay.submit("read.py", target=target.name, source_dir=folder, inputs={"train": "/no/such/data"})
    assert len(launchbay.runs(limit=None)) == before


def test_a_large_input_arrives_whole(target: TargetUnderTest, folder: Path, tmp_path: Path) -> None:
    """Past 64 MB an SSH send also goes over a second connection: every file still arrives once, intact."""
    if target.kind not in SENDS:
        pytest.skip(f"{target.kind} reads the source in place")
    big = tmp_path / "big"
    for i in range(3):
        path = big / f"part{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(30 << 20))
        os.utime(path, (os.stat(path).st_mtime - 5, os.stat(path).st_mtime - 5))
    handle = launchbay.submit(
        "read.py", target=target.name, source_dir=folder, inputs={"train": str(big)}, system_metrics_interval_s=0
    )
    assert handle.wait(timeout=300) == "Completed", handle.record().error
    assert sums_seen(handle) == sums_of(big)
    assert bytes_sent(handle) == 3 * (30 << 20)


def data_gc(folder: Path, *args: str) -> dict[str, object]:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "launchbay", "data", "gc", "--json", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, object] = json.loads(proc.stdout)
    return found


def test_data_gc_frees_a_host_cache_but_never_what_recent_runs_read(target: TargetUnderTest, folder: Path) -> None:
    if target.kind not in SENDS:
        pytest.skip(f"{target.kind} keeps no cache of its own")
    run_with_data(target, folder)
    kept = data_gc(folder, "--target", target.name)  # every run here is recent: nothing goes
    assert kept["versions"] == [] and kept["objects"] == 0
    would = data_gc(folder, "--target", target.name, "--keep-days", "0", "--dry-run")
    assert isinstance(would["versions"], list) and would["versions"] and int(would["bytes"]) > 0  # type: ignore[call-overload]
    freed = data_gc(folder, "--target", target.name, "--keep-days", "0")
    assert freed["versions"] == would["versions"] and freed["bytes"] == would["bytes"]
    again = run_with_data(target, folder)  # the next run sends the data again, whole
    assert sums_seen(again) == sums_of(folder.parent / "data")
    assert bytes_sent(again) == sum(p.stat().st_size for p in (folder.parent / "data").rglob("*") if p.is_file())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs as the host's data cache (mount needs root: CI runs as root; the test sshd is this machine)."""
    import subprocess

    from conftest import need_service

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    need_service(done.returncode == 0, f"mounting a tmpfs ({done.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_cache_disk_is_one_line_naming_host_and_path_and_leaves_nothing_half_sent(
    target: TargetUnderTest, folder: Path, small_disk: Path, tmp_path: Path
) -> None:
    if target.kind != "ssh":
        pytest.skip("the SSH host's cache")
    assert target.settings is not None
    project = tmp_path / "full"
    project.mkdir()
    write(project, "read.py", READ)
    (project / "launchbay.toml").write_text(toml_table(target.name, {**target.settings, "data_cache": str(small_disk)}))
    big = tmp_path / "big"
    big.mkdir()
    for i in range(4):
        (big / f"part{i}.bin").write_bytes(os.urandom(3 << 20))
    before = len(launchbay.runs(limit=None))
    with pytest.raises(launchbay.LaunchbayError) as caught:
        launchbay.submit("read.py", target=target.name, source_dir=project, inputs={"train": str(big)})
    message = str(caught.value)
    assert f"The data cache {small_disk} on" in message and "is full" in message and "\n" not in message
    assert len(launchbay.runs(limit=None)) == before  # no run is left behind
    assert not [p for p in small_disk.rglob("*") if ".tmp-" in p.name]  # the half-sent files are gone


def test_a_send_cut_short_resumes_and_a_partial_version_is_never_used(target: TargetUnderTest, folder: Path) -> None:
    """What a dropped connection leaves: some objects arrived, the version's stamp was never written."""
    if target.kind not in ("ssh", "slurm", "ray"):
        pytest.skip(f"{target.kind} keeps no host cache")
    data = folder.parent / "data"
    run_with_data(target, folder)
    cache = folder.parent / "host cache"
    stamps = list((cache / "versions").glob("*.complete"))
    assert stamps
    for stamp in stamps:
        stamp.unlink()  # the send "was cut" before the version was complete
    big = data / "a.bin"
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    (cache / "objects" / digest[:2] / digest[2:]).unlink()  # and its largest file never arrived
    again = run_with_data(target, folder)
    assert sums_seen(again) == sums_of(data)
    assert bytes_sent(again) == big.stat().st_size  # only what was missing
