"""``launchbay submit --runconfig .azureml/NAME.runconfig``: a v1 run configuration from the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def submit_runconfig(args: argparse.Namespace) -> Any:
    """Submit the file's script, arguments, target, environment and distribution; returns the RunHandle.

    ``-t``, ``-e``, ``--max-duration`` and arguments after ``--`` override the file."""
    from .runconfig_file import script_run_config
    from .workspace import Experiment, Workspace

    config = script_run_config(args.runconfig)
    extra = list(args.arguments)
    if extra and extra[0] == "--":
        extra = extra[1:]
    if args.script:
        config.script = args.script
    if extra:
        config.arguments = extra
    if args.target:
        config.run_config.target = args.target
    if args.max_duration:
        config.run_config.max_run_duration_seconds = int(args.max_duration)
    source = Path(config.source_directory).resolve()
    experiment = Experiment(Workspace(store=args.store), args.experiment or source.name or "default")
    tags = dict(t.split("=", 1) if "=" in t else (t, "") for t in args.tag or [])
    kwargs = config.launchbay_arguments(experiment, tags)
    kwargs["name"] = args.name or Path(args.runconfig).stem
    from ...api import submit

    return submit(**kwargs)
