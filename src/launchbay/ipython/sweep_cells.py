"""``%%submit --sweep``: the cell becomes a sweep whose children get the sampled values as variables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError


def submit_sweep(
    args: argparse.Namespace,
    text: str,
    root: Path,
    working_dir: str,
    target: str,
    script: str,
    arguments: tuple[str, ...],
    cell: str | None,
    extra: dict[str, str | bytes],
) -> Any:
    """Start the sweep from the cell (a YAML file is looked up from the notebook's folder) and show it."""
    from ..sweeps import sweep
    from ..sweeps.inline import sweep_from_text

    if cell is None:
        raise UsageError("--sweep works on a %%submit cell; for a script use `launchbay sweep` or sweep().")
    if args.pull:
        raise UsageError("--pull brings back one run's variables; a sweep has many runs. Use sweep.best_run().")
    options = sweep_from_text(text, root / working_dir)
    if args.target or "target" not in options:
        options["target"] = target
    handle = sweep(
        script,
        None,
        args=arguments,
        environment=args.env or None,
        experiment=args.experiment,
        source_dir=root,
        working_dir=working_dir,
        code=cell,
        extra_files=extra,
        **options,
    )
    print(f"Sweep {handle.run_id}: {handle.total_runs()} runs on {options['target']}.")
    if args.wait:
        handle.wait()
    return handle
