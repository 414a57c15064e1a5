"""Runs a notebook cell inside a run: ``python -m launchbay_cell CELL_FILE``.

Standard library only (cloudpickle is used when the target has it). The cell's
file holds exactly the cell body, so tracebacks point at the cell's own lines.
Pushed variables (``--push``) are loaded into the namespace first; the names to
pull (``--pull``) are pickled into the run's files when the cell completes.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any

PUSH_FILE = ".launchbay/push.pkl"
PULL_FILE = ".launchbay/pull.pkl"


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
        code = compile(fh.read(), cell_file, "exec")
    sys.argv = [cell_file, *argv[1:]]
    try:
        exec(code, namespace)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        _print_cell_traceback(exc, cell_file)
        raise SystemExit(1) from None
    if pull:
        save_pulled(namespace, pull, os.environ.get("LAUNCHBAY_FILES_DIR", cell_dir))


def _print_cell_traceback(exc: BaseException, cell_file: str) -> None:
    """The traceback from the cell's first line on, without this bootstrap's frames."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != cell_file:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
    sys.stderr.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
