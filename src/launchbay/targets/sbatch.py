"""Render the sbatch script that starts a run's runner on a Slurm node.

Two kinds of text end up in it, quoted for what reads them:
- ``#SBATCH`` lines are read by sbatch, not by a shell: their values come from
  launchbay.toml and must be plain tokens (checked here, with an error naming
  the setting); paths never go there (the output file is relative to the
  submit folder, which is the run folder).
- The shell part is read by ``/bin/sh``: every path and word is ``shlex.quote``d,
  so spaces, quotes, ``$``, backticks and newlines stay literal.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from .. import runfolder as rf
from ..errors import ConfigError

#: launchbay.toml key -> sbatch option, in the order they are written
OPTIONS = (
    ("partition", "--partition"),
    ("account", "--account"),
    ("qos", "--qos"),
    ("nodes", "--nodes"),
    ("ntasks_per_node", "--ntasks-per-node"),
    ("cpus_per_task", "--cpus-per-task"),
    ("gpus_per_node", "--gpus-per-node"),
    ("mem", "--mem"),
    ("time", "--time"),
)
_TOKEN = re.compile(r"^[A-Za-z0-9_.:,=+/@\[\]-]+$")
OUTPUT_NAME = f"{rf.JOURNAL}/{rf.SLURM_OUTPUT.format('%j')}"
SCRIPT_NAME = rf.SBATCH_SCRIPT


def sbatch_lines(settings: Mapping[str, Any], target: str = "slurm") -> list[str]:
    """The ``#SBATCH`` lines for the target's settings (values checked, extra lines kept as given)."""
    lines = []
    for key, option in OPTIONS:
        value = settings.get(key)
        if value is None or value == "":
            continue
        text = str(value)
        if not _TOKEN.match(text):
            raise ConfigError(
                f"[targets.{target}] {key} = {value!r} is not a valid Slurm value (letters, digits and _.:,=+/@[]- "
                "only); fix it in launchbay.toml."
            )
        lines.append(f"#SBATCH {option}={text}")
    extra = settings.get("extra_sbatch") or []
    if isinstance(extra, str):
        extra = [extra]
    for line in extra:
        text = str(line).strip()
        if text.startswith("#SBATCH"):
            text = text[len("#SBATCH") :].strip()
        if not text or "\n" in text or "\r" in text:
            raise ConfigError(
                f"[targets.{target}] extra_sbatch has an empty or multi-line entry {line!r}; give one sbatch "
                'option per list item, e.g. extra_sbatch = ["--constraint=a100"].'
            )
        lines.append(f"#SBATCH {text}")
    return lines


def render_sbatch(
    *,
    run_id: str,
    run_dir: str,
    python: str,
    settings: Mapping[str, Any],
    target: str = "slurm",
) -> str:
    """The whole script: sbatch options, then ``exec`` of the runner on the run folder."""
    quoted_dir = shlex.quote(run_dir)
    header = [
        "#!/bin/sh",
        f"#SBATCH --job-name=launchbay-{run_id}",
        f"#SBATCH --output={OUTPUT_NAME}",
        *sbatch_lines(settings, target),
    ]
    body = [
        "",
        f"# launchbay run {run_id}, rendered by launchbay. The runner records status, log,",
        "# metrics and outputs in the run folder; with several nodes, start tasks with srun.",
        f"RUN_DIR={quoted_dir}",
        'cd "$RUN_DIR" || exit 1',
        f'exec {shlex.quote(python)} "$RUN_DIR/{rf.RUNTIME}/{rf.RUNNER_ENTRY}" "$RUN_DIR"',
        "",
    ]
    return "\n".join(header + body)
