"""The open target registry: a target type is a row of the ``launchbay.targets`` entry-point group.

A throwaway package, installed as a dist-info folder on ``sys.path`` (what pip leaves behind),
adds a type; a run goes to it without any change to launchbay."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

import launchbay
from conftest import write
from launchbay import plugins
from launchbay.errors import ConfigError
from launchbay.targets import control_kinds, target_types

REPO = Path(__file__).resolve().parents[1]

THROWAWAY = '''
from dataclasses import dataclass

from launchbay.targets.base import TargetState
from launchbay.targets.local import LocalTarget


@dataclass
class ThrowawayState(TargetState):
    started_by: str | None = None


class ThrowawayTarget(LocalTarget):
    """The local target under another name, which says it started the run."""

    type_name = "throwaway"
    state_type = ThrowawayState

    def start(self, launch):
        launch.state.started_by = "throwaway"
        super().start(launch)
'''


@pytest.fixture
def throwaway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package ``throwaway-target`` that declares ``throwaway = "throwaway_target:ThrowawayTarget"``."""
    site = tmp_path / "site"
    info = site / "throwaway_target-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: throwaway-target\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{plugins.TARGETS}]\n"
        "throwaway = throwaway_target:ThrowawayTarget\n"
        "local = throwaway_target:ThrowawayTarget\n"  # a name launchbay has stays launchbay's
    )
    (site / "throwaway_target.py").write_text(THROWAWAY)
    monkeypatch.syspath_prepend(str(site))
    yield "throwaway"
    sys.modules.pop("throwaway_target", None)


def test_pyproject_declares_launchbays_own_rows_of_every_group() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    assert {group: declared.get(group) for group in plugins.OWN} == plugins.OWN
    assert target_types() == ["local", "docker", "ssh", "ray", "slurm"]
    assert control_kinds() == ["sweep", "pipeline", "automl"]


def test_a_target_type_from_another_package_takes_runs(project: Path, throwaway: str) -> None:
    assert target_types() == ["local", "docker", "ssh", "ray", "slurm", "throwaway"]
    assert plugins.rows(plugins.TARGETS)["local"] == "launchbay.targets.local:LocalTarget"
    write(project, "launchbay.toml", '[targets.elsewhere]\ntype = "throwaway"\n')
    write(project, "hello.py", "from launchbay import Run\nRun.get_context().log('x', 1)\nprint('hello')\n")
    handle = launchbay.submit("hello.py", target="elsewhere")
    assert handle.wait(show_output=False) == "Completed"
    details = handle.get_details()
    assert details["target_type"] == "throwaway" and details["target_state"]["started_by"] == "throwaway"
    assert handle.get_metrics() == {"x": 1}


def test_an_unknown_type_names_every_known_one(project: Path, throwaway: str) -> None:
    write(project, "launchbay.toml", '[targets.box]\ntype = "kubernetes"\n')
    write(project, "hello.py", "print('never')\n")
    with pytest.raises(ConfigError) as caught:
        launchbay.submit("hello.py", target="box")
    assert "has type 'kubernetes'; launchbay knows local, docker, ssh, ray, slurm, throwaway." in str(caught.value)
    write(project, "launchbay.toml", "[targets.box]\nimage = 'x'\n")
    with pytest.raises(ConfigError, match=textwrap.dedent("""set type = "local", .* or "throwaway".""")):
        launchbay.submit("hello.py", target="box")
