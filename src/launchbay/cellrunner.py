"""Runs a notebook cell inside a run: ``python -m launchbay_cell CELL_FILE``.

Standard library only (cloudpickle is used when the target has it). The cell's
file holds exactly the cell body; it is compiled one line down, so tracebacks
show the cell's line numbers as the notebook shows them (``%%submit`` is line 1).
Pushed variables (``--push``) are loaded into the namespace first; the names to
pull (``--pull``) are pickled into the run's files when the cell completes.
"""

from __future__ import annotations

import json
import linecache
import os
import pickle
import re
import sys
import traceback
from typing import Any

PUSH_FILE = ".launchbay/push.pkl"
PULL_FILE = ".launchbay/pull.pkl"
#: the notebook's names the cell uses (name → "module" or "value"), for the --push hint
NOTEBOOK_NAMES_FILE = ".launchbay/notebook_names.json"
#: how tracebacks name the cell; its line numbers are those of the cell as shown
CELL_NAME = "<%%submit cell>"


def _pickler() -> Any:
    try:
        import cloudpickle

        return cloudpickle
    except ImportError:
        return pickle


def load_pushed(namespace: dict[str, Any], cell_dir: str) -> None:
    path = os.path.join(cell_dir, PUSH_FILE)
    if not os.path.exists(path):
        return
    with open(path, "rb") as fh:
        payload = pickle.load(fh)
    made_with = tuple(payload.get("python", ())[:2])
    if made_with and made_with != tuple(sys.version_info[:2]):
        raise SystemExit(
            f"launchbay: pushed variables were pickled with Python {'.'.join(map(str, made_with))} but this "
            f"target runs Python {sys.version_info[0]}.{sys.version_info[1]}; use the same version on both sides."
        )
    for name, blob in payload["variables"].items():
        namespace[name] = pickle.loads(blob)


def load_sweep_params(namespace: dict[str, Any]) -> None:
    """A sweep's child: its sampled values become variables (``batch-size`` as ``batch_size``)."""
    import json

    params = json.loads(os.environ.get("LAUNCHBAY_SWEEP_PARAMS") or "{}")
    for name, value in params.items():
        namespace[name.replace("-", "_").replace(".", "_")] = value


def save_pulled(namespace: dict[str, Any], names: list[str], files_dir: str) -> None:
    found = {name: namespace[name] for name in names if name in namespace}
    missing = [name for name in names if name not in namespace]
    dest = os.path.join(files_dir, PULL_FILE)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    data: dict[str, Any] = {"python": list(sys.version_info[:3]), "variables": {}, "missing": missing, "errors": {}}
    pickler = _pickler()
    for name, value in found.items():
        try:
            data["variables"][name] = pickler.dumps(value)
        except Exception as exc:  # one unpicklable value must not lose the others
            data["errors"][name] = f"{type(exc).__name__}: {exc}"
    with open(dest, "wb") as fh:
        pickle.dump(data, fh)


def main(argv: list[str]) -> None:
    cell_file = os.path.abspath(argv[0])
    cell_dir = os.getcwd()
    pull = [n for n in os.environ.get("LAUNCHBAY_PULL", "").split(",") if n]
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": cell_file, "__builtins__": __builtins__}
    load_pushed(namespace, cell_dir)
    load_sweep_params(namespace)
    with open(cell_file, encoding="utf-8") as fh:
        # Line 1 of the cell as shown is the %%submit line: the body starts on line 2.
        source = "\n" + fh.read()
    linecache.cache[CELL_NAME] = (len(source), None, source.splitlines(True), CELL_NAME)
    code = compile(source, CELL_NAME, "exec")
    sys.argv = [cell_file, *argv[1:]]
    try:
        exec(code, namespace)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        if isinstance(exc, NameError):
            _add_notebook_hint(exc, cell_dir)
        print_cell_traceback(exc)
        raise SystemExit(1) from None
    if pull and os.environ.get("LAUNCHBAY_RANK", "0") == "0":  # a distributed cell: rank 0's values
        save_pulled(namespace, pull, os.environ.get("LAUNCHBAY_FILES_DIR", cell_dir))


def _add_notebook_hint(exc: NameError, cell_dir: str) -> None:
    """A name the notebook has but the run doesn't: say how to send it (or that it is an import)."""
    name = getattr(exc, "name", None)
    if name is None and exc.args:
        found = re.match(r"name '(\w+)' is not defined", str(exc.args[0]))
        name = found.group(1) if found else None
    try:
        with open(os.path.join(cell_dir, NOTEBOOK_NAMES_FILE), encoding="utf-8") as fh:
            notebook = json.load(fh)
    except (OSError, ValueError):
        return
    kind = notebook.get(name) if name else None
    if kind is None:
        return
    if kind == "module":
        hint = f"{name!r} is a module imported in the notebook: import it inside the cell too"
    else:
        hint = f"{name!r} is defined in the notebook: add `--push {name}` to the %%submit line to send it"
    exc.args = (f"{exc.args[0] if exc.args else ''}. {hint}",)


def _hidden_prefixes() -> tuple[str, ...]:
    """launchbay's own files: the package when installed, the shipped runtime next to this file otherwise."""
    here = os.path.dirname(os.path.abspath(__file__))
    if __package__:  # python -m launchbay.cellrunner: the whole installed package
        return (here + os.sep,)
    return (os.path.abspath(__file__), os.path.join(here, "launchbay") + os.sep)


def _tidy(te: traceback.TracebackException, hidden: tuple[str, ...], snapshot: str) -> None:
    """Drop launchbay's frames and show the project's files by their path inside the project."""
    frames = [f for f in te.stack if not f.filename.startswith(hidden)]
    for frame in frames:
        if snapshot and frame.filename.startswith(snapshot):
            frame.filename = frame.filename[len(snapshot) :]
    te.stack = traceback.StackSummary.from_list(frames)
    for inner in (te.__cause__, te.__context__):
        if inner is not None:
            _tidy(inner, hidden, snapshot)


def print_cell_traceback(exc: BaseException) -> None:
    """The traceback as the cell shows it: line numbers of the cell, no launchbay frames, project paths."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != CELL_NAME:
        tb = tb.tb_next
    te = traceback.TracebackException(type(exc), exc, tb or exc.__traceback__)
    snapshot = os.environ.get("LAUNCHBAY_SNAPSHOT_DIR", "")
    _tidy(te, _hidden_prefixes(), os.path.join(snapshot, "") if snapshot else "")
    sys.stderr.write("".join(te.format()))
    sys.stderr.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
