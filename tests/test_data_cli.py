"""``launchbay data``: named datasets whose versions are their content, and the lineage that ties them to runs.

``data add`` makes a version (the same content again is the same version; a changed file is the next
one); a run reads ``dataset:NAME`` (the latest) or ``dataset:NAME:N``; ``data show``/``lineage`` name
the runs that read a version and the models registered from them; ``rm`` is refused while they exist;
a version whose files changed since it was added is refused, never served changed; ``models show``
lists the data behind a model; ``data gc`` frees cached downloads no recent run used.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conftest import CLI, DataServer, write

READ = """
    import os
    from launchbay import Run
    run = Run.get_context()
    path = run.input_datasets["train"]
    print("READ", sorted(os.listdir(path)), open(os.path.join(path, "a.txt")).read().strip(), flush=True)
    os.makedirs("outputs", exist_ok=True)
    open("outputs/model.pkl", "w").write("weights")
    run.register_model("clf", "outputs/model.pkl")
"""


def settle(folder: Path) -> None:
    past = time.time() - 60
    for path in folder.rglob("*"):
        os.utime(path, (past, past))


def test_versions_are_content_and_runs_read_them_by_name(project: Path, cli: CLI) -> None:
    data = project / "data"
    write(data, "a.txt", "first\n")
    write(data, "b.txt", "bee\n")
    settle(data)
    one = cli.json("data", "add", "mnist", "data", "--description", "digits")
    assert isinstance(one, dict) and one["version"] == 1 and one["new"] and one["files"] == 2
    again = cli.json("data", "add", "mnist", str(data))
    assert isinstance(again, dict) and again["version"] == 1 and not again["new"]  # same content, same version
    write(data, "a.txt", "second\n")
    os.utime(data / "a.txt", (time.time() - 30, time.time() - 30))
    two = cli.json("data", "add", "mnist", "data")
    assert isinstance(two, dict) and two["version"] == 2 and two["hash"] != one["hash"]
    listed = cli.json("data", "list")
    assert isinstance(listed, list) and [(r["name"], r["latest_version"], r["versions"]) for r in listed] == [
        ("mnist", 2, 2)
    ]

    write(project, "read.py", READ)
    latest = cli("submit", "--input", "train=dataset:mnist", "read.py", check=True)
    assert "READ ['a.txt', 'b.txt'] second" in latest.stdout
    # version 1's files changed since it was added: refused, never served changed, and no run is written
    runs_before = len(cli.json("runs"))  # type: ignore[arg-type]
    first = cli("submit", "--input", "train=dataset:mnist:1", "read.py")
    assert first.returncode != 0 and "Dataset mnist:1: its files in" in first.stderr and "a.txt" in first.stderr
    assert len(cli.json("runs")) == runs_before  # type: ignore[arg-type]
    missing = cli("submit", "--input", "train=dataset:mnist:7", "read.py")
    assert missing.returncode != 0 and "Dataset 'mnist' has no version 7 (it has 1, 2)" in missing.stderr

    [run] = cli.json("runs")  # type: ignore[misc]
    shown = cli.json("data", "show", "mnist:2")
    assert isinstance(shown, dict) and shown["runs"] == [run["run_id"]] and shown["description"] is None
    lineage = cli.json("data", "lineage", "mnist")
    assert lineage == {
        "dataset": "mnist",
        "version": 2,
        "hash": two["hash"],
        "runs": [run["run_id"]],
        "models": ["clf:1"],
    }
    details = cli.json("show", run["run_id"])
    assert isinstance(details, dict)
    assert details["inputs"][0]["dataset"] == "mnist" and details["inputs"][0]["dataset_version"] == 2
    model = cli.json("models", "show", "clf:1")
    assert isinstance(model, dict) and model["inputs"][0]["version"] == two["hash"]

    refused = cli("data", "rm", "mnist", "--version", "2")
    assert refused.returncode != 0 and run["run_id"] in refused.stderr and "clf:1" in refused.stderr
    assert cli.json("data", "rm", "mnist:1") == {"removed": "mnist:1", "hash": one["hash"]}
    unknown = cli("data", "show", "cifar")
    assert unknown.returncode != 0 and "No dataset named 'cifar'" in unknown.stderr


def test_a_url_dataset_is_downloaded_once_and_gc_frees_what_no_recent_run_used(
    project: Path, cli: CLI, data_server: DataServer
) -> None:
    added = cli.json("data", "add", "ref", f"{data_server.url}/other.bin")
    assert isinstance(added, dict) and added["bytes"] == 256 * 64 and added["kind"] == "file"
    cli.json("data", "add", "tmp", f"{data_server.url}/ref.csv")
    usage = cli.json("du")
    assert isinstance(usage, dict) and usage["data"]["versions"] == 2 and usage["data"]["cached_downloads"] == 2
    assert cli.json("data", "gc", "--dry-run") == {"entries": 0, "bytes": 0, "kept": 2, "freed": []}
    cli.json("data", "rm", "tmp:1")
    freed = cli.json("data", "gc")
    assert isinstance(freed, dict) and freed["entries"] == 1 and freed["bytes"] > 8000 and freed["kept"] == 1
    text = cli("data", "list", check=True).stdout
    assert "ref" in text and "16.4 KB" in text and "tmp" not in text


MAKE = """
    import json, os
    from launchbay import Run
    run = Run.get_context()
    os.makedirs("outputs/features", exist_ok=True)
    for i in range(3):
        open(f"outputs/features/part{i}.txt", "w").write(f"feature {i}\\n")
    os.makedirs("scratch", exist_ok=True)
    json.dump({"rows": 3}, open("scratch/stats.json", "w"))
    run.register_dataset("stats", "scratch/stats.json", description="row counts")
"""


def test_what_a_run_writes_becomes_a_dataset_version_with_its_lineage(project: Path, cli: CLI) -> None:
    write(project, "make.py", MAKE)
    refused = cli("submit", "--output", "features=elsewhere", "make.py")
    assert refused.returncode != 0 and "must be inside outputs/" in refused.stderr
    made = cli("submit", "--json", "--output", "features=outputs/features", "make.py", check=True)
    run_id = json.loads(made.stdout)["run_id"]
    features = cli.json("data", "show", "features:1")
    assert isinstance(features, dict) and features["files"] == 3 and features["run_id"] == run_id
    stats = cli.json("data", "show", "stats:1")
    assert isinstance(stats, dict) and stats["kind"] == "file" and stats["description"] == "row counts"
    assert cli.json("data", "lineage", "features") == {
        "dataset": "features",
        "version": 1,
        "hash": features["hash"],
        "runs": [run_id],
        "models": [],
    }
    details = cli.json("show", run_id)
    assert isinstance(details, dict) and details["inputs"] == []
    assert sorted((o["name"], o["mode"], o["files"]) for o in details["outputs"]) == [
        ("features", "output", 3),
        ("stats", "output", 1),
    ]
    write(project, "read.py", "import os\nprint(sorted(os.listdir(os.environ['LAUNCHBAY_INPUT_F'])))\n")
    again = cli("submit", "--input", "f=dataset:features", "read.py", check=True)  # the next step reads it
    assert "['part0.txt', 'part1.txt', 'part2.txt']" in again.stdout
