"""Environments: one hash per spec on any machine, a venv built once per hash and reused, clear failures."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, write
from launchbay.config import load_config
from launchbay.environments.conda import read_conda_file
from launchbay.environments.spec import parse_environment, resolve_environment
from launchbay.environments.venv import ensure_venv
from launchbay.errors import ConfigError, UnknownEnvironmentError
from launchbay.models import RunSpec
from launchbay.session import Session
from launchbay.store import open_store

SIX_HASH = "e270cf16a62aa27bfc8459efa70af5d0ab7c54bc33ffb83e2947cbc7d06bdcb8"

TRAIN = """
    import os, sys
    import six
    from launchbay import Run
    run = Run.get_context()
    for i in range(5):
        run.log("loss", 1.0 / (i + 1), step=i)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/result.txt", "w") as fh:
        fh.write("done")
    print("python", sys.executable)
    print("six", six.__version__, "greeting", os.environ.get("GREETING"))
"""


def toml(project: Path, text: str) -> None:
    write(project, "launchbay.toml", text)


def test_the_hash_covers_packages_image_and_python_only(tmp_path: Path) -> None:
    write(tmp_path, "requirements.txt", "# pinned\nSix  # the one package\n\n")
    write(
        tmp_path,
        "env.yml",
        """
        name: demo
        channels: [conda-forge]
        dependencies:
          - pip  # the installer itself: nothing to install
          - pip:
            - six
    """,
    )
    forms = [
        {"pip": ["six"]},
        {"pip": ["Six"], "env": {"A": "1"}},
        {"requirements": "requirements.txt"},
        {"pip": "requirements.txt", "installer": "pip"},
        {"conda": "env.yml"},
    ]
    hashes = {parse_environment(f"e{i}", form, tmp_path).hash for i, form in enumerate(forms)}
    # the same value on every machine: nothing from this machine goes into it
    assert hashes == {SIX_HASH}
    base = parse_environment("x", {"pip": ["six"]}, tmp_path)
    assert parse_environment("x", {"pip": ["six", "tqdm"]}, tmp_path).hash != base.hash
    assert parse_environment("x", {"pip": ["six"], "python": "3.12"}, tmp_path).hash != base.hash
    assert parse_environment("x", {"pip": ["six"], "image": "debian:12"}, tmp_path).hash != base.hash
    assert (
        parse_environment("x", {"pip": ["tqdm", "six"]}, tmp_path).hash
        == parse_environment("y", {"pip": ["six", "tqdm"]}, tmp_path).hash
    )


def test_a_conda_file_is_read_whole_with_conda_names_mapped_to_pypi(tmp_path: Path) -> None:
    conda = read_conda_file(
        "name: x\nchannels:\n  - pytorch\ndependencies:\n  - python=3.11\n  - pytorch::pytorch=2.1\n"
        "  - numpy>=1.24\n  - scikit-learn==1.3.2\n  - pip\n  - pip:\n      - 'requests>=2'\n      - six\n"
    )
    assert conda.python == "3.11"
    assert conda.pip == ["torch==2.1.*", "numpy>=1.24", "scikit-learn==1.3.2", "requests>=2", "six"]
    assert "conda pytorch::pytorch=2.1 -> pip torch==2.1.*" in conda.notes
    write(tmp_path, "env.yml", "dependencies:\n  - pytorch\n  - torchvision\n")
    spec = parse_environment("tutorial", {"conda": "env.yml"}, tmp_path)
    assert spec.pip == ("torch", "torchvision")  # never silently emptied
    assert not spec.user_managed


def test_conda_packages_that_pip_cannot_install_are_refused_by_name(tmp_path: Path) -> None:
    write(tmp_path, "env.yml", "dependencies:\n  - pytorch\n  - cudatoolkit=11.3\n  - r-base\n")
    with pytest.raises(ConfigError) as err:
        parse_environment("gpu", {"conda": "env.yml"}, tmp_path)
    message = str(err.value)
    assert "cudatoolkit=11.3 (PyPI's torch/tensorflow wheels bring their own CUDA libraries; remove it)" in message
    assert "r-base" in message and "user_managed = true" in message


def test_mistakes_in_an_environment_say_what_to_fix(project: Path) -> None:
    toml(project, '[environments.bad]\npackages = ["six"]\n')
    with pytest.raises(ConfigError, match="unknown key.*packages.*known keys: pip"):
        resolve_environment("bad", load_config(project), project)
    with pytest.raises(UnknownEnvironmentError, match="Unknown environment 'nope'.*known environments: bad"):
        resolve_environment("nope", load_config(project), project)
    toml(project, '[environments.bad]\nrequirements = "missing.txt"\n')
    with pytest.raises(ConfigError, match="cannot read its requirements file"):
        resolve_environment("bad", load_config(project), project)


def test_a_run_gets_its_environment_built_once_and_reused(project: Path) -> None:
    toml(project, '[environments.six]\npip = ["six"]\nenv = { GREETING = "hello" }\n')
    write(project, "train.py", TRAIN)
    messages: list[str] = []
    session = Session(open_store(), load_config(project))
    first = session.submit(RunSpec("train.py", environment="six"), project, on_progress=messages.append)
    assert first.wait() == "Completed", first.get_log()
    log = first.get_log()
    venv_python = f"envs/{SIX_HASH}/venv/bin/python"
    assert venv_python in log and "greeting hello" in log
    # launchbay is not installed in the venv: the shipped in-run API logged the metrics
    assert first.get_metrics()["loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert "outputs/result.txt" in first.get_file_names()
    assert "user_logs/env_build.log" in first.get_file_names()
    assert first.record().target_state["environment"]["built"] is True
    # the build belonged to the run: the submit returned at once, the build's lines are in the run's log
    assert any("Preparing" in m for m in messages) and "installing 1 package" in log

    messages.clear()
    # the same packages given as a requirements file: same hash, so no build at all
    write(project, "requirements.txt", "six\n")
    second = session.submit(RunSpec("train.py", environment="requirements.txt"), project, on_progress=messages.append)
    assert second.wait() == "Completed", second.get_log()
    assert venv_python in second.get_log()
    state = second.record().target_state["environment"]
    assert state["built"] is False and state["hash"] == SIX_HASH
    assert not any("environment" in m for m in messages)


def test_a_notebook_cell_runs_in_an_environment_without_launchbay(project: Path) -> None:
    toml(project, '[environments.six]\npip = ["six"]\n')
    code = "import six, sys\nfrom launchbay import Run\nRun.get_context().log('v', 2.0)\nprint('on', sys.executable)\n"
    session = Session(open_store(), load_config(project))
    spec = RunSpec(".launchbay/cell.py", code=code, environment="six")
    handle = session.submit(spec, project, extra_files={".launchbay/cell.py": code})
    assert handle.wait() == "Completed", handle.get_log()
    assert f"envs/{SIX_HASH}/venv/bin/python" in handle.get_log()
    assert handle.get_metrics()["v"] == 2.0


def test_a_package_that_fails_to_install_ends_the_run_failed_with_the_failing_lines(project: Path) -> None:
    """The build is the run's: the submit returns, and the run ends Failed with the build's lines as its
    reason and in its log (what `launchbay logs`, the widget and the sidebar show)."""
    toml(project, '[environments.broken]\npip = ["launchbay-no-such-package-xyz"]\n')
    write(project, "train.py", "print('never')\n")
    handle = launchbay.submit("train.py", environment="broken")
    assert handle.wait(timeout=120) == "Failed"
    message = handle.record().error["message"]  # type: ignore[index]
    assert "failed to build" in message and "launchbay-no-such-package-xyz" in message and "build.log" in message
    assert "launchbay-no-such-package-xyz" in handle.get_log() and "never" not in handle.get_log()
    cli = CLI(project)
    proc = cli("submit", "--env", "broken", "--wait", "train.py")
    assert proc.returncode != 0
    run_id = cli.json("runs")[0]["run_id"]  # type: ignore[index]
    assert "launchbay-no-such-package-xyz" in cli("logs", run_id, check=True).stdout


def test_concurrent_builds_of_one_environment_build_it_once(project: Path) -> None:
    spec = parse_environment("six", {"pip": ["six"]}, project)
    store = open_store()
    results: list[bool] = []

    def build() -> None:
        results.append(ensure_venv(store.root, spec).built)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [False, False, True]
    log = (store.root / "envs" / spec.hash / "build.log").read_text()
    assert log.count("# environment six") == 1


def test_pip_builds_the_venv_when_asked_instead_of_uv(project: Path) -> None:
    toml(project, '[environments.viapip]\npip = ["six"]\ninstaller = "pip"\n')
    write(project, "train.py", "import six; print('six ok', six.__version__)\n")
    handle = launchbay.submit("train.py", environment="viapip")
    assert handle.wait() == "Completed", handle.get_log()
    assert "six ok" in handle.get_log()
    build_log = Path(handle.download_file("user_logs/env_build.log", project / "build.log")).read_text()
    assert "-m venv" in build_log and "-m pip install" in build_log
    assert "uv venv" not in build_log and "uv pip" not in build_log


def test_a_build_longer_than_the_heartbeat_timeout_is_not_taken_for_a_dead_runner(
    project: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAUNCHBAY_HEARTBEAT_TIMEOUT", "2")  # a pip venv build takes longer than this
    toml(project, '[environments.slowbuild]\npip = ["six"]\ninstaller = "pip"\n')
    write(project, "train.py", "import six; print('built and ran')\n")
    handle = launchbay.submit("train.py", environment="slowbuild")  # returns while the venv is built
    seen: list[str] = []
    while not seen or seen[-1] not in ("Completed", "Failed", "Canceled"):  # `launchbay runs` from another terminal
        seen.append(str(cli.json("runs")[0]["status"]))  # type: ignore[index]
    assert handle.wait() == "Completed", handle.get_details().get("error")
    assert "built and ran" in handle.get_log()
    assert "Preparing" in seen and "Failed" not in seen, seen


def test_a_user_managed_environment_uses_this_interpreter_and_sets_variables(project: Path) -> None:
    toml(project, f'[environments.mine]\npython = "{sys.executable}"\nenv = {{ GREETING = "as is" }}\n')
    write(project, "show.py", "import os, sys\nprint(sys.executable, os.environ['GREETING'])\n")
    handle = launchbay.submit("show.py", environment="mine")
    assert handle.wait() == "Completed"
    assert f"{sys.executable} as is" in handle.get_log()
    assert handle.record().target_state["environment"]["user_managed"] is True
    assert not (Path(open_store().root) / "envs").exists()


def test_env_cli_lists_shows_builds_and_prunes(project: Path, cli: CLI) -> None:
    toml(project, '[environments.six]\npip = ["six"]\n\n[environments.plain]\nuser_managed = true\n')
    rows = {r["name"]: r for r in cli.json("env", "list")}  # type: ignore[union-attr]
    assert rows["six"]["venv"] == "-" and rows["plain"]["venv"] == "user-managed"
    assert rows["six"]["hash"] == SIX_HASH
    built = cli("env", "build", "six", check=True)
    assert "six" in built.stdout and "built" in built.stdout
    again = cli("env", "build", "six", check=True)
    assert "already built" in again.stdout
    shown = cli.json("env", "show", "six")
    assert shown["venv"] == "built" and shown["pip"] == ["six"]  # type: ignore[index]
    assert "built" in cli("env", "list", check=True).stdout
    # undeclare it: prune removes the venv (a dry run first only says so)
    toml(project, "[environments.plain]\nuser_managed = true\n")
    dry = cli("env", "prune", "--dry-run", check=True)
    assert "would remove venv" in dry.stdout and SIX_HASH[:16] in dry.stdout
    assert (Path(open_store().root) / "envs" / SIX_HASH).is_dir()
    gone = json.loads(cli("env", "prune", "--json", check=True).stdout)
    assert [g["hash"] for g in gone] == [SIX_HASH]
    assert not (Path(open_store().root) / "envs" / SIX_HASH).exists()
    assert "Nothing to prune" in cli("env", "prune", check=True).stdout
    unknown = cli("env", "show", "nope")
    assert unknown.returncode == 2 and "Unknown environment 'nope'" in unknown.stderr
