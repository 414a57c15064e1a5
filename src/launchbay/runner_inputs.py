"""A run's data inputs on the compute side (stdlib only, shipped with the runner).

runner.json's ``inputs`` lists each input as the target delivered it: ``name``, ``env``
(``LAUNCHBAY_INPUT_<NAME>``), ``path`` (the file or folder on this side: the source itself locally,
a read-only mount in a container, a verified cache on a host) and ``mode``. A ``download`` input
gets a private writable copy in ``RUN_DIR/inputs/NAME`` first (removed when the run ends): what
the run writes there never reaches the data another run reads. The run sees each path in its
``$LAUNCHBAY_INPUT_<NAME>`` and all of them in ``$LAUNCHBAY_INPUTS`` (JSON: name -> path), which
``run.input_datasets`` reads.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

INPUTS_DIR = "inputs"
INPUTS_VAR = "LAUNCHBAY_INPUTS"


def prepare_inputs(config: dict[str, Any], run_dir: str) -> dict[str, str]:
    """The variables that tell the run where its inputs are (after making the private copies)."""
    entries = config.get("inputs") or []
    env: dict[str, str] = {}
    paths: dict[str, str] = {}
    for entry in entries:
        path = str(entry["path"])
        if not os.path.exists(path):
            raise OSError(f"input {entry['name']!r}: {path} is not there on {os.uname().nodename}")
        if entry.get("mode") == "download":
            path = _private_copy(path, os.path.join(run_dir, INPUTS_DIR, str(entry["name"])))
        env[str(entry["env"])] = path
        paths[str(entry["name"])] = path
    if entries:
        env[INPUTS_VAR] = json.dumps(paths)
    return env


def _private_copy(source: str, dest: str) -> str:
    """A writable copy of a file (``dest/<its name>``) or a folder (``dest``); its path."""
    shutil.rmtree(dest, ignore_errors=True)
    if os.path.isdir(source):
        shutil.copytree(source, dest, copy_function=shutil.copyfile)
        for folder, dirs, files in os.walk(dest):
            for name in dirs + files:
                os.chmod(os.path.join(folder, name), 0o755 if name in dirs else 0o644)
        return dest
    os.makedirs(dest, exist_ok=True)
    target = os.path.join(dest, os.path.basename(source))
    shutil.copyfile(source, target)
    os.chmod(target, 0o644)
    return target


def remove_copies(run_dir: str) -> None:
    shutil.rmtree(os.path.join(run_dir, INPUTS_DIR), ignore_errors=True)


#: what an Azure ML v1 run's arguments say for a dataset input (``ds.as_named_input("x").as_mount()``)
PLACEHOLDER = "DatasetConsumptionConfig:"


def substitute(command: list[str], env: dict[str, str]) -> list[str]:
    """Each ``DatasetConsumptionConfig:NAME`` argument replaced by that input's path."""
    paths = json.loads(env.get(INPUTS_VAR) or "{}")
    out = []
    for arg in command:
        if arg.startswith(PLACEHOLDER) and arg[len(PLACEHOLDER) :] in paths:
            arg = paths[arg[len(PLACEHOLDER) :]]
        out.append(arg)
    return out
