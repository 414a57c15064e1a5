"""Turning a notebook cell into a run: project root, working folder, pushed and pulled variables."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

from ..cellrunner import PULL_FILE, PUSH_FILE
from ..config import CONFIG_FILE
from ..errors import SubmitError
from ..gitinfo import git_root

CELL_FILE = ".launchbay/cell.py"


def project_root(notebook_dir: Path) -> Path:
    """The nearest folder above with launchbay.toml, else the git work tree's root, else the notebook's folder."""
    notebook_dir = notebook_dir.resolve()
    for folder in (notebook_dir, *notebook_dir.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    top = git_root(notebook_dir)
    if top is not None and notebook_dir.is_relative_to(top.resolve()):
        return top.resolve()
    return notebook_dir


def pickle_pushed(names: list[str], namespace: dict[str, Any]) -> bytes:
    """The pushed variables as one pickle; a name that is missing or can't be pickled stops the submit."""
    import cloudpickle

    missing = [n for n in names if n not in namespace]
    if missing:
        raise SubmitError(f"--push names {', '.join(missing)}, not defined in the notebook; define them or drop them.")
    variables: dict[str, bytes] = {}
    for name in names:
        try:
            variables[name] = cloudpickle.dumps(namespace[name])
        except Exception as exc:
            raise SubmitError(
                f"Variable {name!r} ({type(namespace[name]).__name__}) cannot be sent to the run: "
                f"{type(exc).__name__}: {exc}. Push plain data instead, or create it inside the cell."
            ) from None
    return pickle.dumps({"python": list(sys.version_info[:3]), "variables": variables})


def check_python_version(target_version: str | None) -> None:
    """Pickled variables only travel between equal Python versions (major.minor)."""
    if not target_version:
        return
    theirs = tuple(int(p) for p in target_version.split(".")[:2])
    if theirs != tuple(sys.version_info[:2]):
        raise SubmitError(
            f"The target runs Python {target_version} but this notebook runs "
            f"{sys.version_info[0]}.{sys.version_info[1]}; --push/--pull need the same version on both sides."
        )


def read_pulled(files_dir: Path) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """(variables, missing names, errors) written by the run for ``--pull``."""
    path = files_dir / PULL_FILE
    if not path.is_file():
        return {}, [], {}
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    variables = {name: pickle.loads(blob) for name, blob in data["variables"].items()}
    return variables, list(data.get("missing", [])), dict(data.get("errors", {}))


__all__ = [
    "CELL_FILE",
    "PULL_FILE",
    "PUSH_FILE",
    "check_python_version",
    "pickle_pushed",
    "project_root",
    "read_pulled",
]
