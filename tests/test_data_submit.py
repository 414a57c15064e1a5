"""Submitting with data inputs, as a user does it: ``launchbay submit --input NAME=SOURCE``,
``launchbay.submit(inputs=...)`` and ``[inputs.NAME]`` in launchbay.toml, on the local target.

The run finds each input in ``$LAUNCHBAY_INPUT_<NAME>`` and ``run.input_datasets``; a ``:mount`` input
is the source itself (no copy), a ``:download`` input a private writable copy; ``show --json`` lists
the inputs with their versions; the data is not part of the snapshot; a bad input is one line and
writes no run; a URL's credentials reach no file of the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import launchbay
from conftest import CLI, DataServer, write

READ = """
    import hashlib, json, os, sys
    from launchbay import Run
    run = Run.get_context()
    found = {}
    for name, path in sorted(run.input_datasets.items()):
        assert os.environ["LAUNCHBAY_INPUT_" + name.upper()] == path
        files = [path] if os.path.isfile(path) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
        found[name] = {"path": path, "sha": {os.path.relpath(f, path) if f != path else os.path.basename(f):
                       hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files}}
    print("INPUTS", json.dumps(found), flush=True)
    if len(sys.argv) > 1:  # write into the input
        path = run.input_datasets[sys.argv[1]]
        with open(os.path.join(path, "a.txt"), "w") as fh:
            fh.write("changed by the run")
        print("WROTE", flush=True)
"""


def data_folder(root: Path) -> Path:
    write(root, "a.txt", "alpha\n")
    write(root, "sub/b.csv", "x,y\n1,2\n")
    return root


def inputs_seen(log: str) -> dict[str, dict[str, object]]:
    line = next(line for line in log.splitlines() if line.startswith("INPUTS "))
    found: dict[str, dict[str, object]] = json.loads(line[len("INPUTS ") :])
    return found


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_folder_input_reaches_the_run_in_place_and_is_recorded(project: Path, cli: CLI) -> None:
    write(project, "read.py", READ)
    data = data_folder(project / "data" / "train")
    proc = cli("submit", "--json", "--input", "train=./data/train", "read.py", check=True)
    run_id = json.loads(proc.stdout)["run_id"]
    log = cli("logs", run_id, check=True).stdout
    seen = inputs_seen(log)["train"]
    assert seen["path"] == str(data)  # a mount on the local target is the folder itself: no copy
    assert seen["sha"] == {"a.txt": sha(data / "a.txt"), "sub/b.csv": sha(data / "sub/b.csv")}
    details = cli.json("show", run_id)
    assert isinstance(details, dict)
    [item] = details["inputs"]
    assert item["name"] == "train" and item["source"] == str(data) and item["mode"] == "mount"
    assert item["files"] == 2 and item["bytes"] == 14 and item["bytes_sent"] == 0 and len(item["version"]) == 64
    assert details["snapshot"]["files"] == 1  # read.py only: the data travels outside the snapshot


def test_a_download_input_is_a_private_copy_the_run_may_change(project: Path) -> None:
    write(project, "read.py", READ)
    data = data_folder(project / "data")
    handle = launchbay.submit("read.py", ["train"], inputs={"train": "data:download"})
    assert handle.wait(timeout=60) == "Completed", handle.record().error
    assert "WROTE" in handle.get_log()
    assert inputs_seen(handle.get_log())["train"]["path"] != str(data)
    assert (data / "a.txt").read_text() == "alpha\n"  # the source is untouched
    assert not (handle.record().run_dir / "inputs").exists()  # the copy went with the run's end
    assert handle.get_details()["inputs"][0]["mode"] == "download"


def test_a_single_file_and_a_url_are_inputs_too(project: Path, data_server: DataServer) -> None:
    write(project, "read.py", READ)
    write(project, "labels.txt", "cat\ndog\n")
    handle = launchbay.submit("read.py", inputs={"labels": "labels.txt", "ref": f"{data_server.url}/ref.csv"})
    assert handle.wait(timeout=60) == "Completed", handle.record().error
    seen = inputs_seen(handle.get_log())
    assert seen["labels"]["sha"] == {"labels.txt": sha(project / "labels.txt")}
    assert seen["ref"]["sha"] == {"ref.csv": hashlib.sha256(b"a,b\n1,2\n" * 1000).hexdigest()}
    inputs = {i["name"]: i for i in handle.get_details()["inputs"]}
    assert inputs["ref"]["source"] == f"{data_server.url}/ref.csv" and inputs["ref"]["bytes"] == 8000


def test_launchbay_toml_inputs_reach_every_run_unless_it_names_its_own(project: Path, cli: CLI) -> None:
    write(project, "read.py", READ)
    data_folder(project / "data" / "train")
    write(project, "other/x.txt", "other\n")
    write(project, "launchbay.toml", '[inputs.train]\npath = "data/train"\n')
    first = json.loads(cli("submit", "--json", "read.py", check=True).stdout)["run_id"]
    assert set(inputs_seen(cli("logs", first).stdout)["train"]["sha"]) == {"a.txt", "sub/b.csv"}  # type: ignore[arg-type]
    second = json.loads(cli("submit", "--json", "--input", "train=other", "read.py", check=True).stdout)["run_id"]
    assert set(inputs_seen(cli("logs", second).stdout)["train"]["sha"]) == {"x.txt"}  # type: ignore[arg-type]


def test_a_bad_input_is_one_line_and_writes_no_run(project: Path, cli: CLI, data_server: DataServer) -> None:
    write(project, "read.py", READ)
    data_folder(project / "data")
    os.mkfifo(project / "pipe")
    cases = {
        "train=./nowhere": "Input 'train': " + str(project / "nowhere") + " does not exist",
        "train=pipe": "neither a file nor a folder",
        f"ref={data_server.url}/gone.csv": "gone.csv answered 404",
        "train=dataset:mnist": "No dataset named 'mnist'",
    }
    for value, message in cases.items():
        proc = cli("submit", "--input", value, "read.py")
        assert proc.returncode != 0 and message in proc.stderr, (value, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = cli("submit", "--input", "train=data", "--input", "train=data/a.txt", "read.py")
    assert proc.returncode != 0 and "Two inputs are named 'train'" in proc.stderr
    assert cli.json("runs") == []


def test_url_credentials_reach_the_run_but_no_file_of_the_store(
    project: Path, data_server: DataServer, tmp_path: Path
) -> None:
    write(project, "read.py", READ)
    url = data_server.url.replace("http://", "http://reader:pa55-secret@") + "/ref.csv?token=tok-secret-9"
    handle = launchbay.submit("read.py", inputs={"ref": url})
    assert handle.wait(timeout=60) == "Completed", handle.record().error
    assert handle.get_details()["inputs"][0]["source"].startswith("http://reader:***@")
    store = tmp_path / "store"
    for path in store.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"pa55-secret" not in data and b"tok-secret-9" not in data, path


def test_submit_magics_take_the_same_inputs(project: Path) -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    write(project, "read.py", READ)
    data = data_folder(project / "data")
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "launchbay")
        cell = shell.run_cell_magic(
            "submit",
            "--no-widget --no-wait --input train=data",
            "import os\nprint(os.listdir(os.environ['LAUNCHBAY_INPUT_TRAIN']))\n",
        )
        line = shell.run_line_magic("submit", "--no-widget --no-wait --input 'train=data/a.txt:download' read.py")
        try:
            shell.run_line_magic("submit", "--no-widget --no-wait --input train=missing read.py")
            raise AssertionError("a missing input was taken")
        except UsageError as exc:
            assert "does not exist" in str(exc)
    finally:
        InteractiveShell.clear_instance()
    assert cell.wait(timeout=60) == "Completed" and "'a.txt'" in cell.get_log() and "'sub'" in cell.get_log()
    assert line.wait(timeout=60) == "Completed"
    assert inputs_seen(line.get_log())["train"]["sha"] == {"a.txt": sha(data / "a.txt")}
    assert line.get_details()["inputs"][0]["mode"] == "download"


def test_a_rerun_reads_the_same_data_version_or_says_it_changed(project: Path, cli: CLI) -> None:
    write(project, "read.py", READ)
    data = data_folder(project / "data")
    first = launchbay.submit("read.py", inputs={"train": "data"})
    assert first.wait(timeout=60) == "Completed"
    again = first.rerun()
    assert again.wait(timeout=60) == "Completed"
    assert inputs_seen(again.get_log()) == inputs_seen(first.get_log())
    assert again.get_details()["inputs"][0]["version"] == first.get_details()["inputs"][0]["version"]
    (data / "a.txt").write_text("changed\n")
    proc = cli("rerun", first.run_id)
    assert (
        proc.returncode != 0
        and "Input 'train' of run" in proc.stderr
        and "changed since that run read it" in proc.stderr
    )


def test_store_repair_rebuilds_a_runs_data_lineage(project: Path, cli: CLI, tmp_path: Path) -> None:
    write(project, "read.py", READ)
    data_folder(project / "data")
    handle = launchbay.submit("read.py", inputs={"train": "data"})
    assert handle.wait(timeout=60) == "Completed"
    before = handle.get_details()["inputs"]
    (tmp_path / "store" / "index.sqlite").unlink()  # the index is lost; the run folders are the truth
    for extra in ("index.sqlite-wal", "index.sqlite-shm"):
        (tmp_path / "store" / extra).unlink(missing_ok=True)
    cli("store", "repair", check=True)
    details = cli.json("show", handle.run_id)
    assert isinstance(details, dict) and details["inputs"] == before


def test_the_run_widget_shows_the_data_a_run_read_and_made(project: Path) -> None:
    from launchbay.ipython.widgets import RunWidget

    write(project, "make.py", "import os\nos.makedirs('outputs/sums')\nopen('outputs/sums/x', 'w').write('1')\n")
    data_folder(project / "data")
    handle = launchbay.submit("make.py", inputs={"train": "data"}, outputs={"sums": "outputs/sums"})
    widget = RunWidget(handle)
    try:
        assert widget.wait_until_done(60)
        header = widget._header.value
    finally:
        widget.close()
    assert handle.status == "Completed", handle.get_log()
    version = handle.get_details()["inputs"][0]["version"]
    assert "data: <b>train</b>" in header and version[:12] in header and "2 files, 14 B" in header
    assert "&rarr; <b>sums</b> (sums:1)" in header  # what it made, once it completed
