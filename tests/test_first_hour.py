"""What a new user meets in the first hour: one project root, names everywhere, readable text, help."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import CLI, write
from ipython_driver import run_cells
from launchbay.cli import build_parser
from launchbay.ipython.magics import LAUNCHBAY_COMMANDS, LAUNCHBAY_USAGE, LaunchbayMagics
from launchbay.ipython.textwatch import Elapsed
from launchbay.ipython.widgets import STALE_S, header_html
from launchbay.sweeps import choice

SCRIPT = "from launchbay import Run\nRun.get_context().log('loss', 0.5)\nprint('ran', flush=True)\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git work tree `repo/` with the notebook and the script in `repo/notebooks/`, the cwd."""
    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write(root, "src/helpers.py", "VALUE = 42\n")
    write(root, "notebooks/train.py", SCRIPT)
    monkeypatch.chdir(root / "notebooks")
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    return root


def test_magic_cli_api_and_sweeps_snapshot_the_same_project_root(repo: Path) -> None:
    import launchbay

    cli = CLI(repo / "notebooks")
    cli_run = cli.json("submit", "--detach", "train.py")["run_id"]  # type: ignore[index]
    api_run = launchbay.submit("train.py").run_id
    sweep = launchbay.sweep("train.py", {"x": choice(1)}, primary_metric="loss", max_total_runs=1)
    sweep_run = sweep.run_id
    out = run_cells(repo / "notebooks", "%%submit\nimport sys\nsys.path.insert(0, '../src')\nimport helpers")
    cell_run = out.split("launchbay: run ", 1)[1].split()[0]
    for run_id in (cli_run, api_run, sweep_run, cell_run):
        details = cli.json("show", run_id)
        assert isinstance(details, dict)
        assert details["properties"]["launchbay.source_dir"] == str(repo), run_id
        assert details["experiment"] == "repo", run_id
    cli("logs", cli_run, "-f", check=True)
    assert "ran" in cli("logs", cli_run).stdout  # the script ran from notebooks/, inside the repo's snapshot
    assert "Completed after" in out and f"(project {repo})" in out
    assert sweep.wait() == "Completed"


def test_the_repositorys_notebooks_folder_is_its_own_project_not_the_whole_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quickstart opens notebooks/ of this repository: its runs snapshot that folder, not the repo."""
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    report = json.loads(CLI(notebooks)("snapshot", "--dry-run", "--json", check=True).stdout)
    taken = sorted(f["path"] for f in report["included"])
    assert "quickstart.ipynb" in taken and "migrating-from-azureml-v1.ipynb" in taken, taken
    assert len(taken) < 20 and not any(p.startswith(("src/", "tests/", "notebooks/")) for p in taken), taken


def test_every_cli_option_has_help() -> None:
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "launchbay")
    assert missing == []


def test_launchbay_magic_offers_the_clis_commands_in_one_list() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(LAUNCHBAY_COMMANDS) == set(sub.choices) - {"submit"} | {"compare"}  # compare draws: notebook only
    assert LaunchbayMagics.launchbay.__doc__ == LAUNCHBAY_USAGE
    for name in LAUNCHBAY_COMMANDS:
        assert f"\n  {name}" in LAUNCHBAY_USAGE


def test_show_is_readable_text_and_names_are_listed(project: Path, cli: CLI) -> None:
    write(project, "train.py", SCRIPT)
    run_id = cli.json("submit", "--detach", "--name", "baseline lr", "train.py", "--", "--lr", "0.1")["run_id"]  # type: ignore[index]
    cli("logs", run_id, "-f", check=True)
    shown = cli("show", run_id, check=True).stdout
    assert "None" not in shown and "[" not in shown and "{'" not in shown, shown
    assert "name         baseline lr\n" in shown
    assert "command      train.py --lr 0.1\n" in shown
    assert "status       Completed (exit code 0)\n" in shown
    listed = cli("runs", check=True).stdout
    assert listed.splitlines()[0].split()[:2] == ["RUN", "NAME"]
    assert "baseline lr" in listed
    out = run_cells(project, "%launchbay runs")
    assert "baseline lr" in out

    write(project, "fail.py", "raise SystemExit('no data here')\n")
    failed = cli.json("submit", "--detach", "fail.py")["run_id"]  # type: ignore[index]
    cli("logs", failed, "-f")
    shown = cli("show", failed).stdout
    assert "status       Failed (exit code 1)\nexperiment" in shown
    assert f"  (the full output: launchbay logs {failed})" in shown


def test_elapsed_time_never_goes_backwards_at_completion() -> None:
    elapsed, started = Elapsed(), time.time() - 15.3
    running = SimpleNamespace(duration_s=time.time() - started)  # the notebook's clock, while running
    done = SimpleNamespace(duration_s=15.1)  # the runner's end time, read a moment later
    first = elapsed(running)
    assert elapsed(done) == first >= 15.3


def test_a_live_widget_tells_when_its_kernel_went_quiet_and_how_to_reattach(project: Path) -> None:
    from launchbay.models import RunStatus

    record = SimpleNamespace(
        run_id="proj_1_abc",
        name="first",
        experiment="proj",
        target="local",
        status=RunStatus.RUNNING,
        properties={"launchbay.source_dir": "/work/repo"},
        spec={"working_dir": "notebooks"},
    )
    live = header_html(record, 3.0, tick=7)  # type: ignore[arg-type]
    assert "%launchbay show proj_1_abc" in live and f"animation:lb-stale 0s linear {STALE_S}s forwards" in live
    assert "<b>first</b>" in live and "project <code>/work/repo</code>, runs in <code>notebooks</code>" in live
    record.status = RunStatus.COMPLETED
    assert "lb-stale" not in header_html(record, 3.0)  # type: ignore[arg-type]


def test_where_the_widget_cannot_render_its_text_says_how_to_reattach(project: Path, cli: CLI) -> None:
    import launchbay
    from launchbay.ipython.widgets import RunWidget

    write(project, "train.py", SCRIPT)
    run_id = cli.json("submit", "--detach", "train.py")["run_id"]  # type: ignore[index]
    widget = RunWidget(launchbay.get_run(run_id))
    try:
        assert widget.wait_until_done(30)
        plain = widget._repr_mimebundle_()["text/plain"]  # what a viewer or a stateless notebook shows
        assert plain == f"launchbay run {run_id}: %launchbay show {run_id} re-attaches"
    finally:
        widget.close()
