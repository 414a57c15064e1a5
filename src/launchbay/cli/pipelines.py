"""``launchbay pipeline run FILE [--param k=v] [--detach]``, ``pipeline show RUN``, ``pipeline rerun RUN
[--from STEP] [--no-reuse]`` and ``pipeline cancel RUN``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: the subcommands this module registers
COMMANDS = ("pipeline",)


def _params(values: list[str] | None) -> dict[str, Any]:
    from ..pipelines.definition import parse_param

    return dict(parse_param(v) for v in values or [])


def cmd_run(args: argparse.Namespace) -> int:
    from ..pipelines import Pipeline, load_yaml

    definition = load_yaml(args.file)
    handle = Pipeline(definition, args.experiment, args.source_dir, args.store).submit(_params(args.param))
    return _follow(args, handle)


def cmd_rerun(args: argparse.Namespace) -> int:
    from ..pipelines import rerun_pipeline

    handle = rerun_pipeline(
        args.run, from_step=args.from_step, no_reuse=args.no_reuse, params=_params(args.param), store=args.store
    )
    return _follow(args, handle)


def cmd_show(args: argparse.Namespace) -> int:
    from ..pipelines import get_pipeline
    from ..pipelines.watch import step_line

    summary = get_pipeline(args.run, store=args.store).summary()
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(f"pipeline {summary['run_id']}  {summary['status']}")
    for step in summary["steps"]:
        print("  " + step_line(step))
    return 0


def print_steps(session: Any, parent: str, as_json: bool) -> int:
    """``launchbay runs --parent PIPELINE``: its steps in order (a reused step names the run it reused)."""
    from ..pipelines.handle import PipelineHandle
    from ..pipelines.watch import step_line

    handle = PipelineHandle(session.store.resolve_run_id(parent), session)
    steps = handle.summary()["steps"]
    targets = {s["name"]: s.get("target") for s in handle.definition().steps}
    if as_json:
        rows = [{**s, "target": session.default_target(targets.get(s["name"]))} for s in steps]
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    for step in steps:
        print(step_line(step))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from ..pipelines import get_pipeline

    handle = get_pipeline(args.run, store=args.store)
    handle.cancel()
    print(f"pipeline {handle.run_id} {handle.status}")
    return 0


def _follow(args: argparse.Namespace, handle: Any) -> int:
    """--detach: the id (as JSON with --json); else one line per step change until the pipeline ends."""
    import io

    from ..pipelines.watch import follow_pipeline

    if args.detach:
        print(json.dumps({"run_id": handle.run_id}) if args.json else handle.run_id, flush=True)
        return 0
    if args.json:
        print(json.dumps({"run_id": handle.run_id}), flush=True)
    else:
        print(f"launchbay: pipeline {handle.run_id} started", file=sys.stderr, flush=True)
    try:
        status = follow_pipeline(handle, io.StringIO() if args.json else sys.stdout)
    except KeyboardInterrupt:
        print(f"\nlaunchbay: stopped watching; pipeline {handle.run_id} goes on.", file=sys.stderr)
        return 130
    if not args.json:
        error = (handle.record().error or {}).get("message")
        print(f"launchbay: pipeline {handle.run_id} {status}{f' ({error})' if error else ''}")
    return 0 if status == "Completed" else 1


def register(sub: Any, add: Any) -> None:
    p = add("pipeline", None, "run a pipeline of steps (a DAG of runs), show, re-run or cancel one", json_flag=False)
    inner = p.add_subparsers(dest="pipeline_command", required=True)

    def command(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        q = inner.add_parser(name, help=help)
        q.set_defaults(func=func)
        q.add_argument("--store", default=argparse.SUPPRESS, help="store folder")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        return q

    run = command("run", cmd_run, "run a pipeline file (pipeline.yaml)")
    run.add_argument("file", help="the pipeline YAML (name, params, steps)")
    run.add_argument("--param", action="append", metavar="NAME=VALUE", help="a pipeline parameter's value")
    run.add_argument("--detach", action="store_true", help="return at once with the pipeline's run id")
    run.add_argument("-e", "--experiment", help="experiment name (default: the project folder's name)")
    run.add_argument("--source-dir", help="folder to snapshot (default: the project root)")
    rerun = command("rerun", cmd_rerun, "run a pipeline again: unchanged steps are reused")
    rerun.add_argument("run", help="the pipeline run (id or unique prefix)")
    rerun.add_argument("--from", dest="from_step", metavar="STEP", help="run this step and those after it again")
    rerun.add_argument("--no-reuse", action="store_true", help="run every step again")
    rerun.add_argument("--param", action="append", metavar="NAME=VALUE", help="a new parameter value")
    rerun.add_argument("--detach", action="store_true", help="return at once with the new run id")
    show = command("show", cmd_show, "a pipeline's steps: status, run, reuse decision and its reason")
    show.add_argument("run", help="the pipeline run (id or unique prefix)")
    cancel = command("cancel", cmd_cancel, "stop every running step of a pipeline")
    cancel.add_argument("run", help="the pipeline run (id or unique prefix)")
