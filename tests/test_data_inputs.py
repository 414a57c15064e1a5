"""Data inputs before any run: what ``NAME=SOURCE`` means, how a version is made, and how sources fail.

A version is the hash of a manifest (paths, sizes, SHA-256s), so the same content is the same version
from any folder; an unchanged 20,000-file folder is re-checked from its size/mtime cache in well under a
second; a file that keeps changing while it is hashed is refused rather than given a wrong version.
URLs are downloaded once into the store's cache and re-used while the server's ETag says the same;
a 404 or a server that never answers is one line naming the URL. The HTTP server is a real one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DataServer
from launchbay.data import parse_input
from launchbay.data.hashing import hash_source
from launchbay.data.manifest import differences
from launchbay.data.spec import InputSpec, merge
from launchbay.data.urls import fetch_url, redact_url
from launchbay.errors import DataInputError


def old(path: Path) -> None:
    """Give a file an mtime in the past, as files that were not just written have."""
    past = time.time() - 60
    os.utime(path, (past, past))


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        old(path)
    return root


def test_name_source_and_mode_are_read_from_one_argument() -> None:
    assert parse_input("train=./data/train") == InputSpec("train", "./data/train", "mount")
    assert parse_input("ref=https://example.org/a:b/ref.csv:download") == InputSpec(
        "ref", "https://example.org/a:b/ref.csv", "download"
    )
    assert parse_input("m=dataset:mnist:3").kind == "dataset" and parse_input("m=dataset:mnist:3").source.endswith(":3")
    assert parse_input("my-set=s3://bucket/prefix").env_var == "LAUNCHBAY_INPUT_MY_SET"
    for bad in ("train", "=./data", "1x=./data", "train=", "train=:download"):
        with pytest.raises(DataInputError, match="--input"):
            parse_input(bad)


def test_two_inputs_with_one_name_are_refused() -> None:
    with pytest.raises(DataInputError, match="Two inputs are named 'train'"):
        merge([], [InputSpec("train", "a"), InputSpec("train", "b")])
    with pytest.raises(DataInputError, match="LAUNCHBAY_INPUT_TRAIN"):
        merge([], [InputSpec("train", "a"), InputSpec("TRAIN", "b")])
    project = [InputSpec("train", "project"), InputSpec("ref", "r")]
    assert {s.name: s.source for s in merge(project, [InputSpec("train", "mine")])} == {"train": "mine", "ref": "r"}


def test_the_same_content_is_the_same_version_wherever_it_lies(tmp_path: Path) -> None:
    files = {"a.txt": b"alpha", "sub/b.bin": os.urandom(1000), ".hidden": b"kept too"}
    one = hash_source(tmp_path / "cache", make_folder(tmp_path / "one", files), "train")
    two = hash_source(tmp_path / "cache", make_folder(tmp_path / "two", files), "train")
    assert one.version == two.version and len(one.files) == 3 and one.total_bytes == 1013
    assert {f.path: f.sha256 for f in one.files}["a.txt"] == hashlib.sha256(b"alpha").hexdigest()


def test_one_changed_file_is_a_new_version_that_names_it(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", {f"f{i}.txt": b"x" * 100 for i in range(50)})
    before = hash_source(tmp_path / "cache", folder, "train")
    (folder / "f7.txt").write_bytes(b"y" * 100)  # same size
    old(folder / "f7.txt")
    after = hash_source(tmp_path / "cache", folder, "train")
    assert after.version != before.version
    assert differences(before, after) == ["f7.txt"]


def test_an_unchanged_20000_file_folder_is_re_checked_in_well_under_a_second(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    for i in range(200):
        (folder / f"d{i:03}").mkdir(parents=True)
    for i in range(20_000):
        path = folder / f"d{i % 200:03}" / f"f{i}.bin"
        path.write_bytes(i.to_bytes(4, "little") * 16)
        old(path)
    first = hash_source(tmp_path / "cache", folder, "train")
    started = time.perf_counter()
    again = hash_source(tmp_path / "cache", folder, "train")
    took = time.perf_counter() - started
    assert again.version == first.version and len(again.files) == 20_000
    assert took < 1.0, f"re-checking 20,000 unchanged files took {took:.2f} s"


def test_a_file_that_keeps_changing_while_it_is_hashed_never_gets_a_version(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", {"growing.log": b"0" * (32 << 20)})
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "with open(sys.argv[1], 'ab', buffering=0) as fh:\n"
            "    while True:\n"
            "        fh.write(b'more'); time.sleep(0.001)\n",
            str(folder / "growing.log"),
        ]
    )
    try:
        time.sleep(0.2)
        with pytest.raises(DataInputError, match="kept changing while it was hashed"):
            hash_source(tmp_path / "cache", folder, "logs")
    finally:
        writer.kill()
        writer.wait()


def test_a_missing_or_unreadable_source_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataInputError, match=r"Input 'train': .*nowhere does not exist"):
        hash_source(tmp_path / "cache", tmp_path / "nowhere", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataInputError, match="holds no files"):
        hash_source(tmp_path / "cache", tmp_path / "empty", "train")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DataInputError, match="neither a file nor a folder"):
        hash_source(tmp_path / "cache", tmp_path / "pipe", "train")


def test_a_url_is_downloaded_once_and_verified(tmp_path: Path, data_server: DataServer) -> None:
    before = data_server.gets()
    first = fetch_url(tmp_path, f"{data_server.url}/ref.csv", "ref")
    assert first.path.read_bytes() == b"a,b\n1,2\n" * 1000 and first.downloaded == 8000
    assert first.manifest.files[0].sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    again = fetch_url(tmp_path, f"{data_server.url}/ref.csv", "ref")
    assert again.downloaded == 0 and again.manifest.version == first.manifest.version
    assert data_server.gets() == before + 1  # the second time only asked whether it changed
    first.path.write_bytes(b"tampered")  # a cached copy changed on disk is downloaded again
    assert fetch_url(tmp_path, f"{data_server.url}/ref.csv", "ref").downloaded == 8000


def test_a_url_that_answers_404_or_never_answers_is_one_line_naming_it(tmp_path: Path, data_server: DataServer) -> None:
    with pytest.raises(DataInputError, match=r"Input 'ref': http://127\.0\.0\.1:\d+/missing\.csv answered 404"):
        fetch_url(tmp_path, f"{data_server.url}/missing.csv", "ref")
    started = time.monotonic()
    with pytest.raises(DataInputError, match=r"/slow\.csv did not answer within 1 s.*LAUNCHBAY_DATA_TIMEOUT"):
        fetch_url(tmp_path, f"{data_server.url}/slow.csv", "ref", timeout=1)
    assert time.monotonic() - started < 10
    assert not list((tmp_path / "cache" / "data-urls").rglob("*.part"))  # nothing half-written is left


def test_url_credentials_are_masked_wherever_a_url_is_shown() -> None:
    assert redact_url("https://user:hunter2@host/a.csv") == "https://user:***@host/a.csv"
    shown = redact_url("https://host/a.csv?X-Amz-Signature=abc123&token=t0k&part=1")
    assert "abc123" not in shown and "t0k" not in shown and "part=1" in shown


def test_progress_tells_files_bytes_and_rate_at_most_once_a_second() -> None:
    from launchbay.data.progress import Progress

    heard: list[tuple[float, str]] = []
    progress = Progress(lambda line: heard.append((time.monotonic(), line)), "hashing input 'train'")
    started = time.monotonic()
    while time.monotonic() - started < 2.5:
        progress.add(1, 1_000_000)
        time.sleep(0.001)
    progress.done()
    assert 2 <= len(heard) <= 4
    assert all(b[0] - a[0] >= 0.99 for a, b in zip(heard, heard[1:-1]))  # the closing line may follow at once
    assert "hashing input 'train':" in heard[0][1] and " files, " in heard[0][1] and "MB/s)" in heard[0][1]
    assert heard[-1][1].endswith(", done")
    quiet: list[str] = []
    short = Progress(quiet.append, "hashing")
    short.add(5, 500)
    short.done()
    assert quiet == []  # work that ends within the first second says nothing
