"""``launchbay submit``: start a run, then follow its log (or ``--detach``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import LaunchbayError
from .common import print_json
from .common import session as session_for

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("submit",)


def cmd_submit(args: argparse.Namespace) -> int:
    from ..data.outputs import outputs_argument
    from ..data.runs import inputs_argument
    from ..handle import RunHandle
    from ..models import RunSpec
    from ..project import locate

    if args.runconfig:
        from ..compat.azureml.cli import submit_runconfig

        return follow_submitted(args, submit_runconfig(args))
    if not args.script:
        raise LaunchbayError(
            "Name the script to run, e.g. `launchbay submit train.py -- --lr 0.1`, or a command: "
            "`launchbay submit -- bash run.sh`."
        )
    place = locate(args.source_dir)
    session = session_for(args, str(place.root))
    arguments = script_arguments(args.script, list(args.arguments), getattr(args, "typed_argv", None))
    spec = RunSpec(
        script=args.script,
        command=not args.script.endswith(".py"),  # a .py name that is no file stays a script: "No script ..."
        arguments=tuple(arguments),
        target=session.default_target(args.target),
        experiment=args.experiment or place.experiment,
        name=args.name,
        working_dir=place.working_dir,
        environment=args.env,
        max_duration_s=args.max_duration,
        system_metrics_interval_s=args.system_metrics_interval,
        tags=dict(t.split("=", 1) if "=" in t else (t, "") for t in args.tag or []),
        distributed=_distributed(args.distributed),
        inputs=inputs_argument(args.input),
        outputs=outputs_argument(args.output),
    )
    progress = None if args.json else (lambda msg: print(f"launchbay: {msg}", file=sys.stderr))
    handle: RunHandle = session.submit(spec, place.root, on_progress=progress, priority=args.priority)
    return follow_submitted(args, handle)


#: submit's own option strings, filled in by ``register``
OWN_OPTIONS: set[str] = set()


def script_arguments(script: str, arguments: list[str], typed: list[str] | None = None) -> list[str]:
    """What goes to the script: everything after it, less a leading ``--``.

    An option of submit's own written after the script (``launchbay submit train.py -t gpu-box``) would
    reach the script while the run went to the default target; that is refused in one line rather than
    run somewhere the user did not ask for. After ``--`` every word is the script's (``typed``: the
    command line as typed, since argparse drops that ``--``)."""
    if arguments and arguments[0] == "--":
        return arguments[1:]
    after = typed[typed.index(script) + 1 :] if typed and script in typed else arguments
    before_dashes = after[: after.index("--")] if "--" in after else after
    own = [a for a in before_dashes if a.split("=", 1)[0] in OWN_OPTIONS]
    if own:
        said = ", ".join(dict.fromkeys(a.split("=", 1)[0] for a in own))
        raise LaunchbayError(
            f"{said} came after {script}, so it would go to {script}, not to launchbay: put launchbay's options "
            f"before the script (launchbay submit -t gpu-box {script} ...), or give them to the script after -- "
            f"(launchbay submit {script} -- {own[0]} ...)."
        )
    return arguments


def follow_submitted(args: argparse.Namespace, handle: Any) -> int:
    """After a submit: print the id (``--detach``) or stream the log; exit with the run's status."""
    if args.json and args.detach:
        print_json({"run_id": handle.run_id})
        return 0
    if not args.json:
        record = handle.record()
        entry = handle.session.store.queue_positions([handle.run_id]).get(handle.run_id)
        if entry is not None:
            from ..queueing import queued_text

            print(f"launchbay: run {handle.run_id} {queued_text(entry)}", file=sys.stderr)
        else:
            print(f"launchbay: run {handle.run_id} submitted to {record.target}", file=sys.stderr)
    if args.detach:
        print(handle.run_id)
        return 0
    try:
        status = handle.wait(show_output=not args.json)
    except KeyboardInterrupt:
        print(
            f"\nlaunchbay: stopped watching; run {handle.run_id} goes on (launchbay cancel {handle.run_id} stops it).",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print_json({"run_id": handle.run_id, "status": status})
    else:
        print(f"launchbay: run {handle.run_id} {status}", file=sys.stderr)
    return 0 if status == "Completed" else 1


def _distributed(text: str | None) -> dict[str, Any] | None:
    from ..distributed import parse

    parsed = parse(text)
    return parsed.to_dict() if parsed else None


def register(sub: Any, add: Any) -> None:
    p = add("submit", cmd_submit, "submit a script (or any command: launchbay submit -- bash run.sh) as a run")
    p.add_argument(
        "script",
        nargs="?",
        help="the script to run, relative to the current folder; a first word that is not a .py file is a "
        "command (bash, ./run.sh, torchrun), run as it is with the run's python first on PATH",
    )
    p.add_argument("arguments", nargs=argparse.REMAINDER, help="arguments for the script or command (after --)")
    p.add_argument("--runconfig", metavar="FILE", help="submit what an Azure ML v1 .runconfig YAML file describes")
    p.add_argument(
        "-t",
        "--target",
        help="compute target: a [targets.NAME] of launchbay.toml (default: its [defaults] target, else local)",
    )
    p.add_argument("-e", "--experiment", help="experiment to file the run under (default: the project folder's name)")
    p.add_argument("--name", help="display name of the run, shown wherever runs are listed")
    p.add_argument("--env", help="environment name from launchbay.toml")
    p.add_argument(
        "--source-dir",
        help="folder to snapshot (default: the project root: launchbay.toml's folder, else the git root, else here)",
    )
    p.add_argument("--max-duration", type=float, metavar="SECONDS", help="cancel the run after this many seconds")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag the run (repeatable)")
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")
    p.add_argument(
        "--priority",
        type=int,
        default=0,
        metavar="N",
        help="on a target with max_concurrent_runs: higher goes first in its queue (default 0)",
    )
    p.add_argument(
        "--system-metrics-interval", type=float, metavar="SECONDS", help="seconds between CPU/GPU samples; 0 = off"
    )
    p.add_argument("--distributed", metavar="KIND:N", help="several ranks: pytorch:2, pytorch:2x2, mpi:4, tf:2+1")
    p.add_argument(
        "--input",
        action="append",
        metavar="NAME=SOURCE",
        help="data for the run (repeatable): a path, http(s) URL or dataset:NAME[:VERSION], then :mount "
        "(read-only, the default) or :download (a private copy); the run finds it in $LAUNCHBAY_INPUT_<NAME>",
    )
    p.add_argument(
        "--output",
        action="append",
        metavar="NAME=PATH",
        help="make what the run writes at PATH (inside outputs/) the next version of dataset NAME once it completes",
    )
    OWN_OPTIONS.update(s for s in p._option_string_actions if s not in ("-h", "--help"))
