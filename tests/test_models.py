"""The model registry: versions from runs (inside a run and afterwards), downloads, errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, docker_ready, need_service, write
from launchbay.errors import ModelNotFoundError

TRAIN = """
import os, sys
from launchbay import Run
run = Run.get_context()
word = sys.argv[1]
os.makedirs("outputs/ckpt/sub", exist_ok=True)
open("outputs/model.pt", "w").write("weights " + word)
open("outputs/ckpt/a.bin", "wb").write(bytes(range(256)))
open("outputs/ckpt/sub/b.txt", "w").write("b " + word)
run.log("loss", 1.0, step=0)
run.register_model("mnist-cnn", path="outputs/model.pt", tags={"word": word}, description="from inside")
run.log("loss", 0.5, step=1)
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def submit(project: Path, *args: str) -> launchbay.RunHandle:
    handle = launchbay.submit("train.py", list(args), experiment="models")
    assert handle.wait(timeout=60) == "Completed", handle.get_log()
    return handle


def test_three_versions_from_two_runs_each_download_their_own_files(project: Path, cli: CLI, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    first = submit(project, "alpha")  # registers version 1 from inside the run
    folder = first.register_model("mnist-cnn", path="outputs/ckpt", tags={"kind": "folder"})  # version 2
    second = submit(project, "beta")  # version 3 from inside

    v1, v2, v3 = (launchbay.get_model("mnist-cnn", version=v) for v in (1, 2, 3))
    assert folder.version == 2 and launchbay.get_model("mnist-cnn").version == 3
    assert (v1.run_id, v2.run_id, v3.run_id) == (first.run_id, first.run_id, second.run_id)
    assert v1.metrics == {"loss": 1.0}  # what the run had logged when it registered
    assert v2.metrics == {"loss": 0.5}  # registered afterwards: the final values
    assert v1.tags == {"word": "alpha"} and v1.description == "from inside"
    details = v1.details
    assert details["snapshot_id"] == first.record().snapshot_id and details["kind"] == "file"

    assert v1.download(tmp_path / "d1").read_text() == "weights alpha"
    assert v3.download(tmp_path / "d3").read_text() == "weights beta"
    got = v2.download(tmp_path / "d2")
    assert got == tmp_path / "d2" / "ckpt"
    assert (got / "a.bin").read_bytes() == bytes(range(256)) and (got / "sub" / "b.txt").read_text() == "b alpha"
    assert v3.path.read_text() == "weights beta"  # a cached copy in the store
    other = launchbay.Model.register(second.run_id, "beta-only", "outputs/model.pt")
    assert (other.name, other.version, other.run_id) == ("beta-only", 1, second.run_id)

    listed = cli.json("models", "list")
    assert [(m["name"], m["latest_version"], m["versions"]) for m in listed] == [
        ("beta-only", 1, 1),
        ("mnist-cnn", 3, 3),
    ]  # type: ignore[union-attr,index]
    shown = cli.json("models", "show", "mnist-cnn:2")
    assert shown["path"] == "outputs/ckpt" and shown["files"] == 2  # type: ignore[index]
    out = cli.json("models", "download", "mnist-cnn:1", "-o", str(tmp_path / "cli"))
    assert Path(out["path"]).read_text() == "weights alpha"  # type: ignore[index]
    assert "mnist-cnn" in cli("models", "list", check=True).stdout


def test_versions_keep_their_files_after_the_run_is_removed(project: Path, cli: CLI, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    run = submit(project, "gamma")
    expected = sha(Path(run._session.store.files_dir(run.record())) / "outputs" / "model.pt")
    cli("rm", run.run_id, check=True)
    cli("gc", check=True)
    copy = launchbay.get_model("mnist-cnn:1").download(tmp_path / "after")
    assert sha(copy) == expected
    assert cli.json("models", "show", "mnist-cnn:1")["run_id"] == run.run_id  # type: ignore[index]


def test_unknown_model_version_or_path_each_get_one_clear_line(project: Path, cli: CLI) -> None:
    write(project, "train.py", TRAIN)
    run = submit(project, "delta")
    cases = {
        ("models", "show", "nope"): "No model 'nope' in the registry",
        ("models", "download", "mnist-cnn:7"): "Model 'mnist-cnn' has no version 7; its versions: 1",
        ("models", "delete", "mnist-cnn:9"): "has no version 9",
        ("models", "show", "bad name"): "is not a model name",
    }
    for args, expected in cases.items():
        proc = cli(*args)
        assert proc.returncode == 2 and expected in proc.stderr, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1
    with pytest.raises(ModelNotFoundError, match=r"never wrote 'outputs/missing.pt'.*outputs/model.pt") as info:
        run.register_model("mnist-cnn", path="outputs/missing.pt")
    assert "\n" not in str(info.value)
    assert launchbay.get_model("mnist-cnn").version == 1  # nothing was registered

    write(
        project,
        "gone.py",
        "import os\nfrom launchbay import Run\nos.makedirs('outputs')\nopen('outputs/tmp.pt', 'w').write('x')\n"
        "Run.get_context().register_model('m', path='outputs/tmp.pt')\nos.remove('outputs/tmp.pt')\n",
    )
    gone = launchbay.submit("gone.py", experiment="models")
    assert gone.wait(timeout=60) == "Completed"
    assert "never wrote 'outputs/tmp.pt'" in gone.tags["launchbay.model_error"]  # said with the run
    write(project, "bad.py", "from launchbay import Run\nRun.get_context().register_model('m', path='outputs/x.pt')\n")
    bad = launchbay.submit("bad.py", experiment="models")
    assert bad.wait(timeout=60) == "Failed"
    assert "has not written 'outputs/x.pt'" in bad.get_details()["error"]["message"]


def test_deleting_a_version_a_run_loaded_needs_force(project: Path, cli: CLI) -> None:
    write(project, "train.py", TRAIN)
    submit(project, "eps")
    write(project, "use.py", "import launchbay\nprint(launchbay.get_model('mnist-cnn').path.read_text())\n")
    user = launchbay.submit("use.py", experiment="models")
    assert user.wait(timeout=60) == "Completed", user.get_log()
    assert "weights eps" in user.get_log()
    proc = cli("models", "delete", "mnist-cnn:1")
    assert proc.returncode == 2 and f"used by run(s) {user.run_id}" in proc.stderr and "--force" in proc.stderr
    assert json.loads(cli("models", "delete", "mnist-cnn:1", "--force", "--json", check=True).stdout) == {
        "deleted": "mnist-cnn:1"
    }
    assert cli("models", "show", "mnist-cnn:1").returncode == 2


@pytest.mark.docker
def test_a_model_registered_inside_a_container_is_kept(project: Path, tmp_path: Path) -> None:
    """In a container the in-run API is the shipped copy; it only journals the request."""
    base = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE", "")
    need_service(docker_ready(base), "A Docker daemon with the test base image")
    write(project, "launchbay.toml", f'[targets.box]\ntype = "docker"\nimage = "{base}"\n')
    write(project, "train.py", TRAIN)
    handle = launchbay.submit("train.py", ["boxed"], target="box", experiment="models")
    assert handle.wait(timeout=120) == "Completed", handle.get_log()
    model = launchbay.get_model("mnist-cnn")
    assert model.run_id == handle.run_id and model.metrics == {"loss": 1.0}
    assert model.download(tmp_path).read_text() == "weights boxed"
