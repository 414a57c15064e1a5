"""``launchbay automl --task T --data FILE --label COL [--metric M] [--timeout 10m] [--target T] [--detach]``,
``launchbay automl show RUN`` and ``launchbay automl cancel RUN``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

#: the subcommands this module registers
COMMANDS = ("automl",)


def parse_timeout(text: str) -> float:
    """``10m``, ``90s``, ``1h`` or a number of minutes → seconds."""
    from ..errors import ConfigError

    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "m")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise ConfigError(f"--timeout {text!r}: write a duration such as 10m, 90s or 1h.") from None
    if seconds <= 0:
        raise ConfigError(f"--timeout {text!r}: the timeout must be positive.")
    return seconds


def cmd_automl(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    words = list(args.words or [])
    if words:
        if words[0] in ("show", "cancel") and len(words) == 2:
            return (cmd_show if words[0] == "show" else cmd_cancel)(args, words[1])
        raise ConfigError(f"launchbay automl {' '.join(words)}: write `automl show RUN`, `automl cancel RUN` or"
                          " `automl --task T --data FILE --label COL`.")  # fmt: skip
    if not args.data or not args.label:
        raise ConfigError("launchbay automl needs --data FILE and --label COLUMN (and --task, default classification).")
    from ..automated import automl

    handle = automl(
        task=args.task,
        training_data=args.data,
        label_column_name=args.label,
        primary_metric=args.metric,
        _experiment_timeout_s=parse_timeout(args.timeout),
        max_concurrent_iterations=args.concurrent,
        iterations=args.iterations,
        n_cross_validations=args.cv,
        validation_data=args.validation_data,
        experiment_exit_score=args.exit_score,
        allowed_models=args.allowed.split(",") if args.allowed else None,
        blocked_models=args.blocked.split(",") if args.blocked else None,
        time_column_name=args.time_column,
        forecast_horizon=args.horizon,
        target=args.target,
        experiment=args.experiment,
        seed=args.seed,
        store=getattr(args, "store", None),
    )
    if args.detach:
        print(json.dumps({"run_id": handle.run_id}) if args.json else handle.run_id, flush=True)
        return 0
    return _follow(args, handle)


def _follow(args: argparse.Namespace, handle: Any) -> int:
    """One line per trial as it ends, then the best; ``--json``: the summary at the end."""
    if not args.json:
        print(f"launchbay: AutoML run {handle.run_id} started", file=sys.stderr, flush=True)
    seen: set[str] = set()
    try:
        while True:
            status = handle.status
            for trial in handle.state()["trials"]:
                ended = trial["status"] in ("Completed", "Failed", "Canceled")
                if ended and trial["run_id"] not in seen and not args.json:
                    seen.add(trial["run_id"])
                    print("  " + _line(trial), flush=True)
            if status in ("Completed", "Failed", "Canceled"):
                break
            time.sleep(0.3)
    except KeyboardInterrupt:
        print(f"\nlaunchbay: stopped watching; AutoML run {handle.run_id} goes on.", file=sys.stderr)
        return 130
    summary = handle.summary()
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_summary(summary)
    return 0 if summary["status"] == "Completed" else 1


def _line(trial: dict[str, Any]) -> str:
    score = "-" if trial.get("score") is None else f"{trial['score']:.5g}"
    return f"{trial['run_id'] or '-'}  {trial['algorithm']:14} {trial['status']:9} {score}"


def _print_summary(summary: dict[str, Any]) -> None:
    print(f"automl {summary['run_id']}  {summary['status']}  {summary['task']}  {summary['primary_metric']}")
    if summary.get("imbalance"):
        print(f"  note: {summary['imbalance']}")
    for row in summary["leaderboard"]:
        print("  " + _line(row))
    if summary["best_run"]:
        model = summary.get("model") or {}
        where = f"; model {model['name']} version {model['version']}" if model else ""
        print(f"best: {summary['best_run']} {summary['best_score']:.5g}{where}")
    if summary.get("error"):
        print(f"error: {summary['error']}")


def cmd_show(args: argparse.Namespace, run: str) -> int:
    from ..automated import get_automl

    summary = get_automl(run, store=getattr(args, "store", None)).summary()
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_summary(summary)
    return 0


def cmd_cancel(args: argparse.Namespace, run: str) -> int:
    from ..automated import get_automl

    handle = get_automl(run, store=getattr(args, "store", None))
    handle.cancel()
    print(f"automl {handle.run_id} {handle.status}")
    return 0


def register(sub: Any, add: Any) -> None:
    p = add("automl", cmd_automl, "automated ML: try models and settings on a table (each trial a run); show, cancel")
    p.add_argument("words", nargs="*", metavar="show|cancel RUN", help="show or cancel an AutoML run")
    p.add_argument("--task", default="classification", help="classification, regression or forecasting")
    p.add_argument("--data", help="the training data: a CSV/TSV/Parquet file or dataset:NAME[:VERSION]")
    p.add_argument("--label", help="the label column")
    p.add_argument("--metric", help="the primary metric (Azure ML v1 names: accuracy, AUC_weighted, r2_score, ...)")
    p.add_argument("--timeout", default="15m", help="the whole run's time budget: 10m, 90s, 1h (default 15m)")
    p.add_argument("--iterations", type=int, help="at most this many trials")
    p.add_argument("--concurrent", type=int, default=1, help="trials at once (default 1)")
    p.add_argument("--cv", type=int, help="cross-validation folds (default: a 20%% holdout)")
    p.add_argument("--validation-data", help="score trials on this file instead of a holdout")
    p.add_argument("--exit-score", type=float, help="stop once a trial reaches this score")
    p.add_argument("--allowed", help="only these models, comma-separated (lgbm,rf,xgboost,...)")
    p.add_argument("--blocked", help="never these models, comma-separated")
    p.add_argument("--time-column", help="forecasting: the column with each row's time")
    p.add_argument("--horizon", type=int, help="forecasting: how many rows ahead")
    p.add_argument("--seed", type=int, default=0, help="the search's seed (default 0)")
    p.add_argument("-t", "--target", help="where the trials run (default: the active target)")
    p.add_argument("-e", "--experiment", help="experiment name (default: the project folder's name)")
    p.add_argument("--detach", action="store_true", help="return at once with the AutoML run's id")
