"""The seams every front end (CLI, magics, widgets, server, sweeps) uses: one way to open a session,
one default-target rule, a handle that streams its log and series, displays registered by the extension."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, write
from launchbay.handle import RunHandle
from launchbay.session import open_session

TOML = """
[targets.here]
type = "local"

[defaults]
target = "here"
"""

COUNTING = """
from launchbay import Run
run = Run.get_context()
for i in range(6):
    run.log("loss", 1.0 / (i + 1), step=i)
    print(f"line {i}")
"""


@pytest.fixture
def finished(project: Path) -> RunHandle:
    """A completed run that printed six lines and logged six points."""
    write(project, "count.py", COUNTING)
    handle = launchbay.submit("count.py", target="local")
    assert handle.wait() == "Completed"
    return handle


def test_a_run_that_names_no_target_goes_to_the_projects_default_from_the_api_and_the_cli(
    project: Path, cli: CLI
) -> None:
    write(project, "launchbay.toml", TOML)
    write(project, "hello.py", "print('hi')\n")
    handle = launchbay.submit("hello.py")
    assert handle.wait() == "Completed"
    assert handle.record().target == "here"
    submitted = cli.json("submit", "hello.py")
    assert launchbay.get_run(submitted["run_id"]).record().target == "here"  # type: ignore[index]
    assert open_session().default_target("local") == "local"  # a target named always wins


def test_without_a_default_the_target_is_local(project: Path) -> None:
    assert open_session().default_target() == "local"


def test_a_session_opens_the_store_named_else_the_environments_else_the_nearest(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert open_session().store.root == (tmp_path / "store").resolve()  # LAUNCHBAY_STORE
    assert open_session(tmp_path / "other").store.root == (tmp_path / "other").resolve()
    monkeypatch.delenv("LAUNCHBAY_STORE")
    (project / ".launchbay").mkdir()
    inner = project / "src"
    inner.mkdir()
    assert open_session(start=inner).store.root == (project / ".launchbay").resolve()


def test_a_handle_streams_its_log_from_an_offset_and_its_series_after_a_step(finished: RunHandle) -> None:
    record = finished.record()
    head, offset = finished.read_log(0, max_bytes=7, record=record)
    assert head == b"line 0\n" and offset == 7
    rest, end = finished.read_log(offset, record=record)
    assert rest.decode().splitlines() == [f"line {i}" for i in range(1, 6)]
    assert finished.read_log(end, record=record) == (b"", end)  # nothing new: same offset
    newer = finished.series_since("loss", after_step=3, record=record)
    assert newer.steps.tolist() == [4, 5]
    assert finished.series_since("loss").steps.tolist() == list(range(6))
    (summary,) = finished.metric_summaries(record=record)
    assert summary["name"] == "loss" and summary["count"] == 6


def test_a_handle_re_attaches_from_its_dict(finished: RunHandle) -> None:
    again = RunHandle.from_dict(json.loads(json.dumps(finished.to_dict())))
    assert again.run_id == finished.run_id and again.status == "Completed"
    assert again.session.store.root == finished.session.store.root


SHOW = """
import os
os.environ["LAUNCHBAY_WIDGETS"] = "0"  # no widget front end: a handle shows as text
from IPython.display import display
from IPython.testing.globalipapp import start_ipython
{before}
ip = start_ipython()
{after}
from launchbay.ipython.display import mark_shown
handle = launchbay.get_run({run_id!r})
display(handle)
print("--")
ip.run_line_magic("load_ext", "launchbay")
display(handle)
print("--")
mark_shown(handle)  # what %%submit does after showing the run itself
display(handle)
print("--")
"""


def _shown(run_id: str, imported_first: bool) -> list[str]:
    lines = {
        "before": "import launchbay" if imported_first else "",
        "after": "" if imported_first else "import launchbay",
    }
    code = SHOW.format(run_id=run_id, **lines)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return [part.strip() for part in out.stdout.split("--")[:3]]


def test_in_ipython_the_extension_makes_a_handle_show_as_its_run(finished: RunHandle) -> None:
    plain, registered, suppressed = _shown(finished.run_id, imported_first=True)
    assert plain.startswith("RunHandle(run_id=")  # the core alone knows nothing of notebooks
    assert registered.startswith(f"Run {finished.run_id} ")
    assert "loss: last 0.166667 (step 5, 6 points)" in registered
    assert suppressed == ""  # shown once by the magic, not again as the cell's value


def test_imported_into_a_running_kernel_launchbay_shows_handles_without_load_ext(finished: RunHandle) -> None:
    shown, _, _ = _shown(finished.run_id, imported_first=False)
    assert shown.startswith(f"Run {finished.run_id} ")


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def test_the_cli_builds_only_the_command_group_a_command_line_needs() -> None:
    """Each group declares the commands it registers; a command line gets that group's parser alone."""
    from launchbay.cli import GROUPS, build_parser, command_of

    every = _commands(build_parser())
    assert every == {name for group in GROUPS for name in group.COMMANDS}
    for group in GROUPS:
        assert _commands(build_parser(command=group.COMMANDS[0])) == set(group.COMMANDS)
    assert _commands(build_parser(command="no-such-command")) == every  # argparse then lists them all
    assert command_of(["--store", "/s", "runs", "--limit", "5"]) == "runs"
    assert command_of(["--store=/s", "show", "abc"]) == "show"
    assert command_of(["--help"]) is None and command_of([]) is None
