"""``launchbay sweep SCRIPT --param lr=loguniform(1e-4,1e-1) --metric loss ... -- script args``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def _parse_param(text: str) -> tuple[str, Any]:
    from .space import parse_expression

    name, sep, expr = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise ConfigError(f"--param {text!r}: write NAME=EXPRESSION, e.g. --param lr=loguniform(1e-4,1e-1).")
    return name.strip(), parse_expression(expr)


def cmd_sweep(args: argparse.Namespace) -> int:
    from . import GridSampling, RandomSampling, sweep
    from .policy import parse_policy

    _split_rest(args)
    space = dict(_parse_param(p) for p in args.param or [])
    if not space:
        raise ConfigError("Give at least one --param NAME=EXPRESSION, e.g. --param lr=loguniform(1e-4,1e-1).")
    arguments = list(args.arguments)
    source = Path(args.source_dir or os.getcwd()).resolve()
    handle = sweep(
        args.script,
        None,
        primary_metric=args.metric,
        goal=args.goal,
        max_total_runs=args.runs,
        max_concurrent_runs=args.concurrent,
        policy=parse_policy(args.policy),
        sampling=GridSampling(space) if args.grid else RandomSampling(space, seed=args.seed),
        args=arguments,
        target=args.target or "local",
        environment=args.env,
        experiment=args.experiment,
        source_dir=source,
        max_duration_s=args.max_duration,
        store=args.store,
    )
    if args.detach:
        if args.json:
            json.dump({"run_id": handle.run_id}, sys.stdout)
            sys.stdout.write("\n")
        else:
            print(handle.run_id)
        return 0
    if not args.json:
        print(f"launchbay: sweep {handle.run_id} started", file=sys.stderr)
    seen: set[str] = set()
    try:
        while True:
            status = handle.status
            for row in reversed(handle.table()):
                if row["run_id"] in seen or row["status"] not in ("Completed", "Failed", "Canceled"):
                    continue
                seen.add(row["run_id"])
                if not args.json:
                    reason = f"  ({row['early_termination']})" if row["early_termination"] else ""
                    metric = "-" if row["metric"] is None else f"{row['metric']:.4g}"
                    print(f"{row['run_id']}  {row['status']:9}  {args.metric}={metric}  {row['params']}{reason}")
            if status in ("Completed", "Failed", "Canceled"):
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        print(f"\nlaunchbay: stopped watching; sweep {handle.run_id} goes on.", file=sys.stderr)
        return 130
    best = handle.best_run()
    if args.json:
        json.dump({"run_id": handle.run_id, "status": status, "best_run_id": best and best.run_id}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"launchbay: sweep {handle.run_id} {status}; best run: {best.run_id if best else 'none'}")
    return 0 if status == "Completed" else 1


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", metavar="NAME=EXPR", help="e.g. lr=loguniform(1e-4,1e-1)")
    p.add_argument("--metric", help="the primary metric the script logs (required)")
    p.add_argument("--goal", choices=("minimize", "maximize"), default="minimize")
    p.add_argument("--runs", type=int, default=8, help="max total runs")
    p.add_argument("--concurrent", type=int, default=2, help="max concurrent runs")
    p.add_argument("--policy", default="none", help="bandit:0.1, bandit:amount=0.5, median, median:3 or none")
    p.add_argument("--grid", action="store_true", help="grid sampling (choice params only)")
    p.add_argument("--seed", type=int, help="random sampling seed (recorded either way)")
    p.add_argument("-t", "--target")
    p.add_argument("-e", "--experiment")
    p.add_argument("--env", help="environment name from launchbay.toml, for every child")
    p.add_argument("--source-dir")
    p.add_argument("--max-duration", type=float, metavar="SECONDS", help="stop the sweep after this long")
    p.add_argument("--detach", action="store_true", help="return at once with the sweep id")


def _split_rest(args: argparse.Namespace) -> None:
    """Options may follow the script: parse them here; what follows ``--`` goes to the script."""
    rest = list(args.rest)
    arguments: list[str] = []
    if "--" in rest:
        cut = rest.index("--")
        rest, arguments = rest[:cut], rest[cut + 1 :]
    inner = argparse.ArgumentParser(prog="launchbay sweep", add_help=False)
    _add_options(inner)
    inner.add_argument("--json", action="store_true")
    inner.add_argument("--store", default=argparse.SUPPRESS)
    inner.add_argument("script", nargs="?")
    try:
        inner.parse_args(rest, namespace=args)
    except SystemExit:
        raise ConfigError(
            f"Cannot read `launchbay sweep {' '.join(args.rest)}`; put the script's own arguments after --."
        ) from None
    args.arguments = arguments
    if not args.script:
        raise ConfigError("Name the script to sweep, e.g. `launchbay sweep train.py --param lr=uniform(0,1) ...`.")
    if not args.metric:
        raise ConfigError("Give the primary metric with --metric NAME (what the script logs, e.g. loss).")


def register(sub: Any, add: Any) -> None:
    p = add("sweep", cmd_sweep, "start a hyperparameter sweep of a script")
    _add_options(p)
    p.add_argument("rest", nargs=argparse.REMAINDER, metavar="SCRIPT [OPTIONS] [-- SCRIPT ARGS]")
