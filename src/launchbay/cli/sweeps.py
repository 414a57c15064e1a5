"""``launchbay sweep sweep.yaml -- train.py ARGS``, ``launchbay sweep train.py --param lr=... --metric loss``,
``launchbay sweep --resume SWEEP``, and ``launchbay runs --parent SWEEP``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import ConfigError
from ..sweeps.watch import watch

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("sweep",)


def _parse_param(text: str) -> tuple[str, Any]:
    from ..sweeps.space import parse_expression

    name, sep, expr = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise ConfigError(f"--param {text!r}: write NAME=EXPRESSION, e.g. --param lr=loguniform(1e-4,1e-1).")
    return name.strip(), parse_expression(expr)


def _space_options(args: argparse.Namespace) -> dict[str, Any]:
    """sweep() keyword arguments from the YAML file and/or the --param flags (flags win)."""
    from ..sweeps.policy import parse_policy
    from ..sweeps.sampling import make_sampling
    from ..sweeps.yamlconfig import load_sweep_yaml

    options: dict[str, Any] = load_sweep_yaml(args.config) if args.config else {}
    space = dict(_parse_param(p) for p in args.param or [])
    if space:
        kind = "grid" if args.grid else (args.sampling or "random")
        options["sampling"] = make_sampling(kind, space, seed=args.seed)
    elif "sampling" not in options:
        raise ConfigError(
            "Give a sweep file (launchbay sweep sweep.yaml -- train.py) or at least one --param NAME=EXPRESSION,"
            " e.g. --param lr=loguniform(1e-4,1e-1)."
        )
    if args.policy:
        options["policy"] = parse_policy(args.policy)
    for flag, key in (
        ("metric", "primary_metric"),
        ("goal", "goal"),
        ("runs", "max_total_runs"),
        ("concurrent", "max_concurrent_runs"),
        ("max_duration", "max_duration_s"),
        ("target", "target"),
        ("experiment", "experiment"),
        ("env", "environment"),
    ):
        if getattr(args, flag) is not None:
            options[key] = getattr(args, flag)
    if not options.get("primary_metric"):
        raise ConfigError("Give the primary metric with --metric NAME (what the script logs, e.g. loss).")
    return options


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..sweeps import sweep
    from ..sweeps.handle import resume_sweep

    _split_rest(args)
    if args.resume:
        handle = resume_sweep(args.resume, store=args.store)
        if not args.json:
            print(f"launchbay: sweep {handle.run_id} resumed", file=sys.stderr)
    else:
        options = _space_options(args)
        handle = sweep(
            args.script,
            None,
            args=list(args.arguments),
            source_dir=args.source_dir,
            store=args.store,
            warm_start=args.warm_start or (),
            resume_children=args.resume_child or (),
            **options,
        )
    if args.detach:
        _print_json_or_id(args, handle.run_id)
        return 0
    if args.json:
        _print_json_or_id(args, handle.run_id)
    else:
        print(f"launchbay: sweep {handle.run_id} started: {handle.total_runs()} runs", file=sys.stderr)
    try:
        status = watch(handle, quiet=args.json)
    except KeyboardInterrupt:
        print(f"\nlaunchbay: stopped watching; sweep {handle.run_id} goes on.", file=sys.stderr)
        return 130
    record = handle.record()
    best = handle.best_run()
    if not args.json:
        error = f" ({record.error['message']})" if record.error else ""
        print(f"launchbay: sweep {handle.run_id} {status}{error}; best run: {best.run_id if best else 'none'}")
    return 0 if status == "Completed" else 1


def _print_json_or_id(args: argparse.Namespace, run_id: str) -> None:
    if args.json:
        json.dump({"run_id": run_id}, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
    else:
        print(run_id)


def print_children(session: Any, parent: str, as_json: bool) -> int:
    """``launchbay runs --parent SWEEP``: its children, best primary metric first."""
    from ..sweeps.handle import SweepHandle

    handle = SweepHandle(session.store.resolve_run_id(parent), session)
    if session.store.get_run(handle.run_id).target_type != "sweep":
        raise ConfigError(f"Run {handle.run_id} is not a sweep; --parent takes a sweep's run id.")
    table = handle.table()
    if as_json:
        json.dump(
            [
                {
                    "run_id": r["run_id"],
                    "status": r["status"],
                    "run_status": r["run_status"],
                    "stopped_early": r["stopped_early"],
                    "parameters": r["params"],
                    "primary_metric": {"name": table.metric, "value": r["metric"]},
                    "early_termination": r["early_termination"],
                }
                for r in table
            ],
            sys.stdout,
            indent=1,
        )
        sys.stdout.write("\n")
        return 0
    print(table if len(table) else f"Sweep {handle.run_id} has no runs yet.")
    return 0


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", metavar="NAME=EXPR", help="e.g. lr=loguniform(1e-4,1e-1)")
    p.add_argument("--metric", help="the primary metric the script logs (required without a sweep file)")
    p.add_argument("--goal", choices=("minimize", "maximize"), help="which way is better (default minimize)")
    p.add_argument("--runs", type=int, help="max total runs (default 8)")
    p.add_argument("--concurrent", type=int, help="max concurrent runs (default 2)")
    p.add_argument("--policy", help="bandit:0.1, bandit:amount=0.5, median, truncation:20 or none")
    p.add_argument("--sampling", help="random (default), grid, bayesian or sobol")
    p.add_argument("--grid", action="store_true", help="grid sampling (choice params only)")
    p.add_argument("--seed", type=int, help="random sampling seed (recorded either way)")
    p.add_argument("-t", "--target", help="compute target of every child (default: [defaults] target, else local)")
    p.add_argument("-e", "--experiment", help="experiment name (default: the project folder's name)")
    p.add_argument("--env", help="environment name from launchbay.toml, for every child")
    p.add_argument("--source-dir", help="folder to snapshot (default: the project root)")
    p.add_argument("--max-duration", type=float, metavar="SECONDS", help="stop the sweep after this long")
    p.add_argument("--detach", action="store_true", help="return at once with the sweep id")
    p.add_argument(
        "--resume", metavar="SWEEP", help="continue a sweep whose controller died (adopts its running trials)"
    )
    p.add_argument(
        "--warm-start",
        action="append",
        metavar="SWEEP",
        help="an earlier sweep whose trials a bayesian sampler learns from (repeatable; v1's resume_from)",
    )
    p.add_argument(
        "--resume-child",
        action="append",
        metavar="RUN",
        help="an earlier trial stopped part way: run it first, same params, from its outputs/ (repeatable)",
    )


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
    args.config = None
    if args.script and args.script.endswith((".yml", ".yaml")):  # launchbay sweep sweep.yaml -- train.py ARGS
        args.config, args.script = args.script, (arguments[0] if arguments else None)
        arguments = arguments[1:]
    args.arguments = arguments
    if args.resume:
        return
    if not args.script:
        raise ConfigError(
            "Name the script to sweep: `launchbay sweep sweep.yaml -- train.py [ARGS]` or"
            " `launchbay sweep train.py --param lr=uniform(0,1) --metric loss`."
        )


def register(sub: Any, add: Any) -> None:
    p = add("sweep", cmd_sweep, "start a hyperparameter sweep of a script")
    _add_options(p)
    p.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="SCRIPT [OPTIONS] [-- SCRIPT ARGS]",
        help="the script, more options, then -- and the script's own arguments",
    )
