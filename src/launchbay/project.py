"""The one rule for what a run snapshots, shared by ``%%submit``, the CLI, the API and sweeps.

The project root is the nearest folder at or above the current one holding
``launchbay.toml`` (or ``[tool.launchbay]`` in pyproject.toml), else the git work
tree's root, else the current folder. The run starts in the current folder's place
inside the snapshot, so relative paths mean what they mean here; the experiment
defaults to the root's name. ``--source-dir`` (``source_dir=``) names the root instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import find_project_root
from .gitinfo import git_root


def project_root(start: Path) -> Path:
    """launchbay.toml's folder, else the git work tree's root, else ``start`` itself."""
    start = start.resolve()
    configured = find_project_root(start)
    if configured is not None:
        return configured
    top = git_root(start)
    if top is not None and start.is_relative_to(top.resolve()):
        return top.resolve()
    return start


@dataclass(frozen=True)
class Place:
    """Where a submit from ``cwd`` lands: the folder to snapshot and the run's folder inside it."""

    root: Path
    working_dir: str

    @property
    def experiment(self) -> str:
        return self.root.name or "default"


def locate(source_dir: str | os.PathLike[str] | None = None, cwd: str | os.PathLike[str] | None = None) -> Place:
    """The project root for a submit from ``cwd`` (default: the current folder)."""
    here = Path(cwd or os.getcwd()).resolve()
    root = Path(source_dir).resolve() if source_dir else project_root(here)
    working_dir = os.path.relpath(here, root) if here.is_relative_to(root) else "."
    return Place(root, working_dir)
