"""``launchbay submit --runconfig .azureml/NAME.runconfig``: a v1 run configuration from the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def submit_runconfig(args: argparse.Namespace) -> Any:
    """Submit the file's script, arguments, target, environment and distribution; returns the RunHandle.

    ``-t``, ``-e``, ``--max-duration`` and arguments after ``--`` override the file."""
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


def script_run_config(path: str) -> Any:
    """What ``launchbay submit --runconfig FILE`` submits: the file's script, arguments, target, ..."""
    from .runconfig import RunConfiguration, ScriptRunConfig

    config = RunConfiguration.load(path)
    distributed: Any = None
    framework, communicator = config.framework.lower(), config.communicator.lower()
    if framework == "pytorch" or communicator in ("nccl", "gloo", "pytorch"):
        distributed = config.pytorch
    elif framework == "tensorflow" or communicator == "parameterserver":
        distributed = config.tensorflow
    elif communicator in ("intelmpi", "openmpi", "mpi"):
        distributed = config.mpi
    return ScriptRunConfig(
        source_directory=getattr(config, "_source_directory", "."),
        run_config=config,
        distributed_job_config=distributed,
        max_run_duration_seconds=config.max_run_duration_seconds,
    )
