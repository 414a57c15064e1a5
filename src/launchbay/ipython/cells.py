"""Turning a notebook cell into a run: project root, working folder, pushed and pulled variables."""

from __future__ import annotations

import ast
import pickle
import sys
import types
from typing import Any

from ..cellrunner import NOTEBOOK_NAMES_FILE, PULL_FILE, PUSH_FILE
from ..errors import SubmitError

CELL_FILE = ".launchbay/cell.py"


def check_syntax(cell: str) -> ast.Module:
    """Parse the cell here, so a typo is reported before any run exists (lines as the cell shows them)."""
    try:
        return ast.parse(cell, "<%%submit cell>")
    except SyntaxError as exc:
        line = (exc.lineno or 0) + 1  # line 1 is the %%submit line
        text = (exc.text or "").rstrip("\n")
        where = f"\n    {text.strip()}" if text.strip() else ""
        hint = ""
        if text.strip()[:1] in ("!", "%"):
            hint = " The cell runs as plain Python there: IPython's ! and % lines don't work in it."
        raise SubmitError(
            f"SyntaxError in the cell, line {line}: {exc.msg}{where}\nNothing was submitted.{hint}"
        ) from None


def notebook_names(
    tree: ast.Module, namespace: dict[str, Any], pushed: tuple[str, ...], hidden: Any = ()
) -> dict[str, str]:
    """Names the cell reads that the notebook has but the run won't: name → "module" or "value"."""
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    out = {}
    for name in sorted(used - set(pushed) - set(hidden)):
        if name in namespace and not name.startswith("_"):
            out[name] = "module" if isinstance(namespace[name], types.ModuleType) else "value"
    return out


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


__all__ = [
    "CELL_FILE",
    "NOTEBOOK_NAMES_FILE",
    "check_syntax",
    "notebook_names",
    "PULL_FILE",
    "PUSH_FILE",
    "check_python_version",
    "pickle_pushed",
]
