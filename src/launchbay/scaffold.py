"""``launchbay init``: the text of a starter launchbay.toml and .launchbayignore.

The file has the local target active and, commented out, one working example of every target type
and of environments: each example is a block of lines that starts with ``# [`` and, with its ``# ``
prefixes taken off, is a valid table of launchbay.toml (the tests parse each one with the config
loader). Secrets appear only as ``${NAME}`` references. ``--target TYPE`` writes that example
active, filled in from the command line, and makes it the default target.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

IGNORE_FILE = ".launchbayignore"

#: target type -> (the example's name, its settings as written, what the header comment says)
TARGET_EXAMPLES: dict[str, tuple[str, dict[str, Any], str]] = {
    "docker": (
        "box",
        {
            "type": "docker",
            "image": "python:3.11-slim",
            "network": "none",
            "mounts": ["~/data:/data:ro"],
            "shm_size": "2g",
        },
        'Docker on this machine (docker_host = "ssh://..." or "tcp://..." for another daemon); '
        'gpus = "all" gives the GPUs',
    ),
    "ssh": (
        "gpu-box",
        {
            "type": "ssh",
            "host": "gpu-box.lan",
            "user": "maya",
            "identity_file": "~/.ssh/id_ed25519",
            "python": "python3",
            "workdir": "~/.launchbay-remote",
        },
        "any machine you can ssh into (keys or the SSH agent; host keys checked against ~/.ssh/known_hosts)",
    ),
    "ray": (
        "ray",
        {"type": "ray", "address": "http://127.0.0.1:8265", "num_cpus": 2},
        "a Ray cluster's Jobs API; the snapshot becomes the job's working_dir",
    ),
    "slurm": (
        "cluster",
        {"type": "slurm", "partition": "debug", "cpus_per_task": 2, "time": "01:00:00"},
        'sbatch on this machine (host = "login-node" submits over SSH; shared_dir for a folder the nodes see)',
    ),
}

ENVIRONMENT_EXAMPLES: dict[str, tuple[dict[str, Any], str]] = {
    "torch": (
        {
            "pip": ["torch==2.5.1", "numpy"],
            "python": "3.11",
            "image": "python:3.11-slim",
            "env": {"WANDB_API_KEY": "${WANDB_API_KEY}"},
        },
        "built once per content hash: a venv (local, ssh) or an image (docker); a secret only as a ${NAME} reference",
    ),
    "from-files": (
        {"requirements": "requirements.txt"},
        'or conda = "environment.yml"; runs pick one with --env NAME, or a target with environment = "NAME"',
    ),
}

#: what ``--target TYPE`` needs from the command line: option -> the setting it fills
FILLED_BY = {
    "docker": {"image": "image"},
    "ssh": {"host": "host", "user": "user", "port": "port", "identity_file": "identity_file"},
    "ray": {"address": "address"},
    "slurm": {"host": "host", "partition": "partition"},
}
REQUIRED = {"ssh": ("host",)}

_HEADER = """\
# launchbay.toml: where runs go and what they need (written by `launchbay init`).
# A run goes to the target it names (-t NAME), else to [defaults] target, else to local.
# Values can come from the environment: password = "${DB_PASSWORD}" ($$ is a literal $);
# runs record the ${...} reference, never the value. Keep secrets out of this file.
# `launchbay targets` says whether each target answers; uncomment an example to use it.
"""

_SNAPSHOT = """\
# What a run takes: the project folder, less .gitignore's and .launchbayignore's patterns
# (gitignore syntax, nested files too; see .launchbayignore). Its budget, checked before anything is stored:

# [snapshot]
# max_bytes = 300_000_000
# max_files = 2000
"""

IGNORE_TEXT = """\
# .launchbayignore: what a run's snapshot leaves out (written by `launchbay init`).
# gitignore syntax, read after the folder's .gitignore, so `!pattern` takes a file back in;
# every folder may have its own. Make "# launchbay: replace" the first line to ignore .gitignore.
# Always left out: .git, .launchbay, __pycache__, virtual environments, top-level outputs/ and logs/.
# `launchbay snapshot --dry-run` lists every file a submit would take, and why.
#
# data/
# *.ckpt
# !data/small-sample.csv
"""


def _value(value: Any) -> str:
    """A TOML value: strings, numbers, booleans and lists as JSON writes them (TOML reads those), tables inline."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def table(section: str, settings: Mapping[str, Any], note: str = "") -> list[str]:
    """``[section]`` and its settings, one line each; ``note`` as a comment after the header."""
    header = f"[{section}]" + (f"  # {note}" if note else "")
    return [header, *(f"{_key(k)} = {_value(v)}" for k, v in settings.items())]


def _commented(lines: list[str]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def active_target(kind: str, options: Mapping[str, Any], name: str | None = None) -> tuple[str, dict[str, Any]]:
    """The target ``--target kind`` writes: the example's settings with the options given filled in."""
    if kind == "local":
        return "local", {"type": "local"}
    if kind not in TARGET_EXAMPLES:
        raise ConfigError(f"launchbay init --target {kind}: the types are local, {', '.join(TARGET_EXAMPLES)}.")
    missing = [o for o in REQUIRED.get(kind, ()) if not options.get(o)]
    if missing:
        flags = " ".join(f"--{m.replace('_', '-')} NAME" for m in missing)
        raise ConfigError(f"launchbay init --target {kind} needs {flags}, the machine its runs go to.")
    example_name, example, _note = TARGET_EXAMPLES[kind]
    settings: dict[str, Any] = {"type": kind}
    filled = {setting: options[option] for option, setting in FILLED_BY[kind].items() if options.get(option)}
    for key, value in example.items():
        if key == "type":
            continue
        if key in filled:
            settings[key] = filled.pop(key)
        elif kind != "ssh" or key not in ("user", "identity_file"):  # an ssh login is the user's own, or ssh's default
            settings[key] = value
    settings.update(filled)  # options the example did not have (an ssh port, a slurm login host)
    if "port" in settings:
        settings["port"] = int(settings["port"])
    host = str(options.get("host") or "")
    default_name = re.sub(r"[^A-Za-z0-9_-]+", "-", host.split(".")[0]).strip("-") if host else example_name
    return name or default_name or example_name, settings


def launchbay_toml(kind: str = "local", options: Mapping[str, Any] | None = None, name: str | None = None) -> str:
    """The text ``launchbay init`` writes: ``kind``'s target active and the default, every other example commented."""
    target_name, settings = active_target(kind, dict(options or {}), name)
    parts = [_HEADER, "\n".join(table("defaults", {"target": target_name})) + "\n"]
    if kind != "local":
        parts.append("\n".join(table(f"targets.{target_name}", settings, TARGET_EXAMPLES[kind][2])) + "\n")
    parts.append("# local: runs as a background process on this machine (always there, nothing to set).\n")
    for example_kind, (example_name, example, note) in TARGET_EXAMPLES.items():
        if example_kind != kind:
            parts.append(_commented(table(f"targets.{example_name}", example, note)))
    for env_name, (env, note) in ENVIRONMENT_EXAMPLES.items():
        parts.append(_commented(table(f"environments.{env_name}", env, note)))
    parts.append(_SNAPSHOT)
    return "\n".join(parts)
