"""``%%submit --step NAME --pipeline P`` keeps the cell as a step (nothing runs yet);
``%launchbay pipeline submit P [--param k=v] [--no-reuse] [--no-wait]`` runs the kept cells as one pipeline."""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError


def _unquote(text: str | None) -> str:
    text = text or ""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        name, eq, source = _unquote(value).partition("=")
        if not eq or not name:
            raise UsageError(f"{flag} {value!r}: write NAME=VALUE, e.g. {flag} data=prep.clean.")
        out[name] = source
    return out


def keep_step(args: argparse.Namespace, cell: str | None, place: Any, target: str | None, defaults: Any) -> None:
    """Keep the cell under its pipeline and say what the pipeline has now (and how to run it)."""
    import shlex

    from ..data.outputs import outputs_argument
    from ..pipelines.cells import keep_cell_step
    from ..pipelines.definition import parse_param

    if cell is None:
        raise UsageError("--step keeps a cell as a pipeline step: use it on %%submit, not %submit.")
    if not (args.step and args.pipeline):
        raise UsageError("A pipeline step needs both: %%submit --step NAME --pipeline PIPELINE.")
    if args.push or args.pull or args.sweep or args.command or args.distributed:
        raise UsageError(
            "A --step cell gets data from other steps with --input NAME=STEP.OUTPUT and gives it with --output; "
            "leave out --push/--pull/--sweep/--command/--distributed."
        )
    if not cell.strip():
        raise UsageError("The cell is empty: put the step's code below %%submit.")
    from .cells import check_syntax

    check_syntax(cell)
    outputs = outputs_argument([_unquote(v) for v in args.output or []])
    params = dict(parse_param(_unquote(p)) for p in args.param or [])
    pipeline, step = _unquote(args.pipeline), _unquote(args.step)
    steps = keep_cell_step(
        pipeline,
        step,
        cell,
        root=place.root,
        working_dir=place.working_dir,
        args=shlex.split(_unquote(args.args)),
        params=params,
        inputs=_pairs(args.input, "--input"),
        outputs=outputs,
        target=target,
        environment=args.env or defaults.environment or None,
        experiment=args.experiment or defaults.experiment or None,
        allow_reuse=not args.no_reuse,
    )
    print(
        f"launchbay: step {step!r} kept in pipeline {pipeline!r} (steps: {', '.join(steps)}); "
        f"`%launchbay pipeline submit {pipeline}` runs it."
    )


def submit_cells(words: list[str], user_ns: dict[str, Any]) -> Any:
    """Submit the cells kept under a pipeline name and show the pipeline (its DAG, or one line per step change)."""
    from ..pipelines.cells import pipeline_from_cells
    from ..pipelines.definition import parse_param

    parser = _Parser(prog="%launchbay pipeline submit", add_help=False)
    parser.add_argument("name")
    parser.add_argument("--param", action="append")
    parser.add_argument("--no-reuse", action="store_true")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("-e", "--experiment")
    parsed = parser.parse_args(words)
    params = dict(parse_param(p) for p in parsed.param or [])
    lb = pipeline_from_cells(parsed.name, experiment=parsed.experiment, params=params)
    handle = lb.submit(no_reuse=lb.definition.names() if parsed.no_reuse else ())
    from .display import display_pipeline, mark_shown

    display_pipeline(handle, follow=not parsed.no_wait)
    mark_shown(handle)
    return handle


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(f"%launchbay pipeline submit NAME [--param k=v] [--no-reuse] [--no-wait]: {message}")
