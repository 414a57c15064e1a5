"""``--input NAME=s3://bucket/prefix``: the objects under a prefix reach the run as a folder, downloaded once
into the store's cache and re-used while S3 reports them unchanged; bad credentials or an empty prefix are
one line and write no run; the keys reach no file of the store.

The S3 service here is moto's standalone server, an S3 emulator over real HTTP (the only S3 server that
installs on these machines); boto3 talks to it as to any S3-compatible endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI, write

SECRET = "s3-secret-key-7f3a9c"  # the emulator takes any key; this one must end up in no file

READ = """
    import hashlib, json, os
    from launchbay import Run
    path = Run.get_context().input_datasets["train"]
    assert os.environ["LAUNCHBAY_INPUT_TRAIN"] == path
    files = sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)
    print("SEEN", json.dumps({f: hashlib.sha256(open(os.path.join(path, f), "rb").read()).hexdigest() for f in files}))
"""

OBJECTS = {"a.txt": b"alpha\n", "sub/b.csv": b"x,y\n" + b"1,2\n" * 5000, "sub/deeper/c.bin": bytes(range(256)) * 40}


@pytest.fixture
def bucket(team_s3: tuple[str, dict[str, str]]) -> tuple[str, Any]:
    """A fresh prefix holding OBJECTS, and a boto3 client on it."""
    import boto3

    url, settings = team_s3
    client = boto3.client(
        "s3",
        endpoint_url=settings["endpoint"],
        region_name=settings["region"],
        aws_access_key_id=settings["access_key_id"],
        aws_secret_access_key=settings["secret_access_key"],
    )
    name, _, prefix = url[len("s3://") :].partition("/")
    for key, data in OBJECTS.items():
        client.put_object(Bucket=name, Key=f"{prefix}/{key}", Body=data)
    return url, client


@pytest.fixture
def s3_project(project: Path, team_s3: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose launchbay.toml names the endpoint and takes the keys from ${ENV} references."""
    _, settings = team_s3
    write(project, "read.py", READ)
    toml = (project / "launchbay.toml").read_text() if (project / "launchbay.toml").exists() else ""
    toml += (
        f'\n[s3]\nendpoint = "{settings["endpoint"]}"\nregion = "us-east-1"\n'
        'access_key_id = "${LB_S3_KEY}"\nsecret_access_key = "${LB_S3_SECRET}"\n'
    )
    (project / "launchbay.toml").write_text(toml)
    monkeypatch.setenv("LB_S3_KEY", "lb-test-key")
    monkeypatch.setenv("LB_S3_SECRET", SECRET)
    return project


def submit(cli: CLI, url: str) -> str:
    """``launchbay submit --input train=URL read.py``, waited for; the run's id."""
    proc = cli("submit", "--json", "--input", f"train={url}", "read.py", check=True)
    run_id: str = json.loads(proc.stdout)["run_id"]
    return run_id


def show(cli: CLI, run_id: str) -> dict[str, Any]:
    details = cli.json("show", run_id)
    assert isinstance(details, dict)
    return details


def seen(log: str) -> dict[str, str]:
    line = next(line for line in log.splitlines() if line.startswith("SEEN "))
    found: dict[str, str] = json.loads(line[len("SEEN ") :])
    return found


def cached_files(store: Path) -> dict[str, int]:
    root = store / "cache" / "data-s3"
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_an_s3_prefix_reaches_the_run_whole_and_is_downloaded_once(
    s3_project: Path, cli: CLI, bucket: tuple[str, Any]
) -> None:
    url, _ = bucket
    first = submit(cli, url)
    assert show(cli, first)["status"] == "Completed"
    expected = {k: hashlib.sha256(v).hexdigest() for k, v in OBJECTS.items()}
    assert seen(cli("logs", first).stdout) == expected
    store = s3_project / ".launchbay"
    before = cached_files(store)
    second = submit(cli, url)
    assert seen(cli("logs", second).stdout) == expected
    assert cached_files(store) == before  # nothing downloaded again: S3 reports the same ETags
    inputs = show(cli, second)["inputs"]
    assert [(i["name"], i["source"], i["files"]) for i in inputs] == [("train", url, 3)]
    assert inputs[0]["version"] == show(cli, first)["inputs"][0]["version"]


def test_a_changed_object_is_downloaded_again_and_is_a_new_version(
    s3_project: Path, cli: CLI, bucket: tuple[str, Any]
) -> None:
    url, client = bucket
    first = submit(cli, url)
    name, _, prefix = url[len("s3://") :].partition("/")
    client.put_object(Bucket=name, Key=f"{prefix}/a.txt", Body=b"changed\n")
    second = submit(cli, url)
    assert seen(cli("logs", second).stdout)["a.txt"] == hashlib.sha256(b"changed\n").hexdigest()
    assert show(cli, second)["inputs"][0]["version"] != show(cli, first)["inputs"][0]["version"]


def test_a_bad_s3_input_is_one_line_and_writes_no_run(s3_project: Path, cli: CLI, bucket: tuple[str, Any]) -> None:
    url, _ = bucket
    name = url[len("s3://") :].partition("/")[0]
    cases = {
        f"train=s3://{name}/no-such-prefix": "holds no objects",
        "train=s3://no-such-bucket-lb/x": "no such bucket",
    }
    for value, message in cases.items():
        proc = cli("submit", "--input", value, "read.py")
        assert proc.returncode != 0 and message in proc.stderr, (value, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert cli.json("runs") == []


def test_the_s3_keys_reach_no_file_of_the_store(s3_project: Path, cli: CLI, bucket: tuple[str, Any]) -> None:
    url, _ = bucket
    run_id = submit(cli, url)
    assert show(cli, run_id)["status"] == "Completed"
    leaks = [
        str(p)
        for p in (s3_project / ".launchbay").rglob("*")
        if p.is_file() and not p.is_symlink() and SECRET.encode() in p.read_bytes()
    ]
    assert leaks == []
    assert os.environ["LB_S3_SECRET"] == SECRET  # the key was there, in the submitter's environment
