"""``%%submit``, ``%submit`` and ``%launchbay``: parse options, delegate to the Session.

Examples::

    %load_ext launchbay
    %%submit -t gpu-box --push data --pull model
    model = train(data)

    %submit train.py --lr 0.1
    %%submit --input train=./data/train --input ref=https://example.org/ref.csv:download
    %launchbay data list
    %launchbay runs
    %launchbay show RUN_ID
    %config Submit.target = "docker"
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Unicode, observe
from traitlets.config import Configurable

from ..errors import LaunchbayError


class Submit(Configurable):
    """Defaults for ``%%submit`` (set with ``%config Submit.target = "docker"``)."""

    target = Unicode(
        "", help="Target to run on when -t is not given (empty: launchbay.toml's default, else local)."
    ).tag(config=True)
    experiment = Unicode("", help="Experiment name when -e is not given (empty: the project folder's name).").tag(
        config=True
    )
    environment = Unicode("", help="Environment when --env is not given (empty: the target's default).").tag(
        config=True
    )
    widget = Bool(True, help="Show the live run widget (False prints text instead).").tag(config=True)
    azureml_compat = Bool(
        False, help="Run Azure ML SDK v1 code on launchbay: `import azureml.core` resolves to launchbay."
    ).tag(config=True)

    @observe("azureml_compat")
    def _azureml_compat_changed(self, change: Any) -> None:
        from ..compat import azureml

        azureml.install() if change["new"] else azureml.uninstall()


#: ``%launchbay``'s commands: the CLI's, minus ``submit`` (``%submit``/``%%submit`` here), plus ``compare``.
LAUNCHBAY_COMMANDS = {
    "runs": ("[--experiment E] [--status S] [--limit N]", "runs, newest first (a table)"),
    "show": ("RUN", "the run's live widget (text where none renders: follows a live run)"),
    "logs": ("RUN [-f]", "the run's output (-f: until it ends)"),
    "metrics": ("RUN [NAME]", "the run's metrics (plots), or one metric"),
    "compare": ("RUN RUN...", "parameters side by side, metrics overlaid"),
    "cancel": ("RUN", "stop the run and its processes"),
    "files": ("RUN", "the run's files"),
    "download": ("RUN PATH [-o OUT]", "copy one of the run's files here"),
    "init": ("[--target TYPE --host H] [--force]", "write a starter launchbay.toml here"),
    "snapshot": ("[DIR] [--dry-run]", "what a run would get, and why"),
    "targets": ("", "targets and whether they are reachable"),
    "env": ("list|show|build|prune", "environments"),
    "data": ("add|list|show|rm|lineage|gc", "named datasets, their versions and the runs that read them"),
    "sweep": ("SCRIPT --param P --metric M", "start a sweep"),
    "diff": ("RUN_A RUN_B", "parameters, environments, metrics (overlaid) and code of two runs"),
    "models": ("[list|show|download|delete] ...", "registered models (a table)"),
    "rerun": ("RUN [-t TARGET] [-- ARGS]", "submit the run's exact snapshot again"),
    "resume": ("RUN [-t TARGET]", "go on from a stopped run: its outputs/ become the input checkpoint"),
    "pipeline": (
        "run FILE | submit NAME | show|rerun|cancel RUN",
        "pipelines: a DAG of runs, unchanged steps reused (submit: the %%submit --step cells of NAME)",
    ),
    "automl": (
        "--task T --data FILE --label COL | show|cancel RUN",
        "automated ML: every trial a run, best model kept",
    ),
    "restore": ("RUN -o DIR", "write the run's snapshot out as files"),
    "rm": ("RUN... | --experiment E --older-than 30d --status S", "remove finished runs"),
    "gc": ("[--dry-run]", "remove blobs nothing refers to"),
    "du": ("", "store sizes by experiment and kind"),
    "tensorboard": ("RUN [RUN...]", "TensorBoard over the runs' ./logs, live while they run"),
    "store": ("repair", "rebuild a damaged or lost index from the run folders"),
    "queue": ("[TARGET] | move RUN --top", "runs waiting for a slot (max_concurrent_runs), next first"),
    "schedule": ('add NAME --every 15m|--cron "0 3 * * *" -- COMMAND | list|show|pause|resume|rm', "schedules"),
    "supervise": ("[--install]", "start queued runs and fire schedules here (--install: a systemd unit)"),
}
_SYNOPSES = [(f"{name} {usage}".strip(), text) for name, (usage, text) in LAUNCHBAY_COMMANDS.items()]
LAUNCHBAY_USAGE = (
    "%launchbay COMMAND: the `launchbay` CLI's commands (submit is %submit / %%submit here) and compare\n\n"
    + ("\n".join(f"  {synopsis:{max(len(s) for s, _ in _SYNOPSES)}}  {text}" for synopsis, text in _SYNOPSES))
)


def _unquote(text: str | None) -> str:
    """IPython's magic argument parser keeps the quotes around a value: drop one pair."""
    text = text or ""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _progress(message: str) -> None:
    """Environment builds and uploads report here: one line each under the cell."""
    print(f"launchbay: {message}", flush=True)


def _distributed(text: str | None) -> dict[str, Any] | None:
    from ..distributed import parse

    parsed = parse(_unquote(text) or None)
    return parsed.to_dict() if parsed else None


def _split_names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in _unquote(text).split(",") if n.strip())


@magics_class
class LaunchbayMagics(Magics):
    def __init__(self, shell: Any, defaults: Submit) -> None:
        super().__init__(shell)
        self.defaults = defaults

    @property
    def user_ns(self) -> dict[str, Any]:
        assert self.shell is not None
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    # -- %%submit / %submit ---------------------------------------------------------------------
    @magic_arguments()
    @argument("-t", "--target", help="compute target (launchbay.toml [targets.NAME], or local)")
    @argument("-e", "--experiment", help="experiment name")
    @argument("--name", help="display name of the run")
    @argument("--env", help="environment name from launchbay.toml")
    @argument("--source-dir", help="folder to snapshot (default: the project around the notebook)")
    @argument("--push", help="comma-separated notebook variables to send to the run")
    @argument("--pull", help="comma-separated variables to bring back when the run completes")
    @argument("--wait", action="store_true", help="with the widget: block the notebook until the run ends")
    @argument("--no-wait", action="store_true", help="without a widget: return at once instead of following the run")
    @argument("--no-widget", action="store_true", help="print the log and status changes as text instead")
    @argument("--args", default="", help="arguments for the cell's sys.argv / the script, as one string")
    @argument("--max-duration", type=float, help="cancel the run after this many seconds")
    @argument("--sweep", help="run the cell as a sweep: sweep.yaml, or inline 'lr=loguniform(1e-4,1e-1) metric=loss'")
    @argument("--system-metrics-interval", type=float, help="seconds between CPU/GPU samples; 0 = off")
    @argument("--distributed", help="several ranks: pytorch:2, pytorch:2x2 (nodes x processes), mpi:4, tf:2+1")
    @argument(
        "--input",
        action="append",
        help="data for the run (repeatable): NAME=SOURCE[:mount|:download], SOURCE a path, URL or dataset:NAME[:V]",
    )
    @argument("--output", action="append", help="NAME=PATH (inside outputs/): a dataset version once the run completes")
    @argument(
        "--command",
        help='run a command (by /bin/sh) instead: --command "bash run.sh x"; on a cell, @cell is the cell as a '
        'script file: --command "torchrun --nproc-per-node 2 @cell"',
    )
    @argument("--step", help="keep the cell as this step of --pipeline (run by `%%launchbay pipeline submit NAME`)")
    @argument("--pipeline", help="the pipeline a --step cell belongs to (cells kept in this kernel, by name)")
    @argument(
        "--param",
        action="append",
        help="with --step: a pipeline parameter and its default, NAME=VALUE (a variable in the cell)",
    )
    @argument("--no-reuse", action="store_true", help="with --step: never reuse an earlier run of this step")
    @argument("script", nargs="?", help="(line magic) the script to run")
    @argument("script_args", nargs=argparse.REMAINDER, help="(line magic) arguments for the script")
    @line_cell_magic
    def submit(self, line: str, cell: str | None = None) -> Any:
        """Run this cell (``%%submit``) or a script (``%submit script.py ARGS``) as a tracked run."""
        args = parse_argstring(self.submit, line)
        if args.wait and args.no_wait:
            raise UsageError("--wait and --no-wait contradict each other: give one.")
        try:
            return self._submit(args, cell)
        except LaunchbayError as exc:
            raise UsageError(str(exc)) from None

    def _submit(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ..data.outputs import outputs_argument
        from ..data.runs import inputs_argument
        from ..models import RunSpec
        from ..project import locate
        from ..session import open_session
        from .cells import CELL_FILE, NOTEBOOK_NAMES_FILE, PUSH_FILE, check_syntax, notebook_names, pickle_pushed

        place = locate(args.source_dir)
        root, working_dir = place.root, place.working_dir
        session = open_session(project=root)
        target = session.default_target(args.target or self.defaults.target)
        push, pull = _split_names(args.push), _split_names(args.pull)
        extra: dict[str, str | bytes] = {}
        prefix = "" if working_dir == "." else working_dir + "/"
        if args.step or args.pipeline or args.param or args.no_reuse:
            from .pipeline_cells import keep_step

            return keep_step(args, cell, place, args.target or self.defaults.target or None, self.defaults)
        if args.command:
            return self._submit_command(args, cell, session, place, target, extra)
        if cell is not None:
            if args.script:
                raise UsageError("%%submit runs the cell; give a script only to the line magic %submit.")
            if not cell.strip():
                raise UsageError("The cell is empty: put the code to run below %%submit.")
            tree = check_syntax(cell)
            extra[prefix + CELL_FILE] = cell
            known = notebook_names(tree, self.user_ns, push, getattr(self.shell, "user_ns_hidden", ()))
            if known:
                extra[prefix + NOTEBOOK_NAMES_FILE] = json.dumps(known)
            script, arguments = CELL_FILE, tuple(shlex.split(_unquote(args.args)))
        else:
            if not args.script:
                raise UsageError("%submit needs a script: %submit train.py --lr 0.1 (or use %%submit on a cell).")
            if push or pull:
                raise UsageError("--push/--pull work with %%submit cells, not scripts.")
            script = args.script
            arguments = tuple(shlex.split(_unquote(args.args))) + tuple(args.script_args)
        if push or pull:
            self._check_versions(session, target)
        if push:
            extra[prefix + PUSH_FILE] = pickle_pushed(list(push), self.user_ns)
        if args.sweep:
            from .sweep_cells import submit_sweep

            return submit_sweep(args, _unquote(args.sweep), root, working_dir, target, script, arguments, cell, extra)
        spec = RunSpec(
            script=script,
            arguments=arguments,
            target=target,
            experiment=args.experiment or self.defaults.experiment or place.experiment,
            name=_unquote(args.name) or None,
            environment=args.env or self.defaults.environment or None,
            working_dir=working_dir,
            code=cell,
            push=push,
            pull=pull,
            max_duration_s=args.max_duration,
            system_metrics_interval_s=args.system_metrics_interval,
            distributed=_distributed(args.distributed),
            inputs=inputs_argument([_unquote(v) for v in args.input or []]),
            outputs=outputs_argument([_unquote(v) for v in args.output or []]),
        )
        handle = session.submit(spec, root, extra_files=extra, on_progress=_progress)
        return self._show_submitted(args, handle, target, root)

    def _show_submitted(self, args: argparse.Namespace, handle: Any, target: str, root: Any) -> Any:
        """The widget (or the text form) of a run just submitted; the handle is the cell's value."""
        from .display import display_run, mark_shown

        use_widget = self.defaults.widget and not args.no_widget
        if use_widget:
            from .display import widget_frontend_likely

            use_widget = widget_frontend_likely()
        if use_widget:
            widget = display_run(handle, pull_into=self.user_ns)
            if args.wait and widget is not None:
                widget.wait_until_done()
        elif args.no_wait:
            print(f"Run {handle.run_id} submitted to {target}; follow it with `%launchbay show {handle.run_id}`.")
        else:
            from .textwatch import follow_run

            print(f"launchbay: run {handle.run_id} submitted to {target} (project {root})", flush=True)
            follow_run(handle, pull_into=self.user_ns)
        mark_shown(handle)  # shown already; still `run = _`
        return handle

    def _submit_command(
        self, args: argparse.Namespace, cell: str | None, session: Any, place: Any, target: str, extra: dict[str, Any]
    ) -> Any:
        """``--command``: the command runs (by ``/bin/sh -c``); a cell becomes the script file ``@cell`` names
        (``@``, not ``{cell}``: IPython puts the value of ``{name}`` into a magic's line before it gets here)."""
        from ..models import RunSpec, as_command
        from .cells import CELL_FILE, check_syntax

        command = _unquote(args.command)
        if args.script or args.push or args.pull or args.sweep:
            raise UsageError("--command runs the command alone: leave out the script, --push/--pull and --sweep.")
        if cell is not None:
            if "@cell" not in command:
                raise UsageError(
                    "%%submit --command runs the cell as a file: put @cell where it goes, e.g. "
                    '%%submit --command "torchrun --nproc-per-node 2 @cell".'
                )
            check_syntax(cell)
            prefix = "" if place.working_dir == "." else place.working_dir + "/"
            extra[prefix + CELL_FILE] = cell
            command = command.replace("@cell", shlex.quote(CELL_FILE))
        words = as_command(command)
        spec = RunSpec(
            script=words[0],
            arguments=tuple(words[1:]),
            command=True,
            target=target,
            experiment=args.experiment or self.defaults.experiment or place.experiment,
            name=_unquote(args.name) or None,
            environment=args.env or self.defaults.environment or None,
            working_dir=place.working_dir,
            max_duration_s=args.max_duration,
            system_metrics_interval_s=args.system_metrics_interval,
            distributed=_distributed(args.distributed),
        )
        handle = session.submit(spec, place.root, extra_files=extra, on_progress=_progress)
        return self._show_submitted(args, handle, target, place.root)

    @staticmethod
    def _check_versions(session: Any, target_name: str) -> None:
        from .cells import check_python_version

        target = session.target(target_name)
        if target.type_name == "local":
            return
        info = target.check()
        check_python_version(info.get("version") or info.get("python_version"))

    # -- %launchbay ---------------------------------------------------------------------------------
    @line_magic
    def launchbay(self, line: str) -> Any:
        words = shlex.split(line)
        if not words or words[0] in ("help", "-h", "--help"):
            print(LAUNCHBAY_USAGE)
            return None
        command, rest = words[0], words[1:]
        try:
            if command == "show" and rest:
                return self._show(rest[0])
            if command == "runs" and "--json" not in rest:
                from .tables import display_runs

                return display_runs(rest)
            if command == "metrics" and rest and "--json" not in rest:
                from .tables import display_metrics

                return display_metrics(rest[0], rest[1:])
            if command == "models" and rest in ([], ["list"]):
                from .store_views import display_models

                return display_models()
            if command == "diff" and "--json" not in rest:
                from .store_views import display_diff

                return display_diff(rest)
            if command == "pipeline" and rest[:1] == ["submit"]:
                from .pipeline_cells import submit_cells

                return submit_cells(rest[1:], self.user_ns)
            if command == "pipeline" and rest[:1] == ["show"] and "--json" not in rest and len(rest) == 2:
                from .display import display_pipeline

                display_pipeline(rest[1], follow=True)  # text: follows a live pipeline, as `show` a run
                return None
            if command == "compare":
                from .tables import display_compare

                return display_compare(rest)
            return self._cli([command, *rest])
        except LaunchbayError as exc:
            raise UsageError(str(exc)) from None

    launchbay.__doc__ = LAUNCHBAY_USAGE

    def _show(self, ref: str) -> Any:
        from ..api import get_run
        from .display import display_run, mark_shown, widget_frontend_likely

        handle = get_run(ref)
        if not widget_frontend_likely() and not handle.record().status.is_terminal():
            from .textwatch import follow_run

            follow_run(handle, pull_into=self.user_ns)  # re-attach: the log so far, then live
        else:
            display_run(handle, pull_into=self.user_ns)
        mark_shown(handle)
        return handle

    @staticmethod
    def _cli(argv: list[str]) -> None:
        from ..cli import build_parser

        class _Parser(argparse.ArgumentParser):
            def error(self, message: str) -> Any:  # one line, no SystemExit in the kernel
                raise UsageError(f"%launchbay: {message}")

        parser = build_parser(parser_class=_Parser)
        parsed = parser.parse_args(argv)
        code = parsed.func(parsed)
        sys.stdout.flush()
        if code not in (0, None):
            print(f"(exit code {code})")


_DEFAULTS: dict[int, Submit] = {}


def register(shell: Any) -> None:
    """Register the magics, the ``Submit`` configurable and the handles' displays on ``shell`` (idempotent)."""
    from .display import register_displays

    defaults = _DEFAULTS.get(id(shell))
    if defaults is None:
        defaults = _DEFAULTS[id(shell)] = Submit(parent=shell)
        shell.configurables.append(defaults)
    shell.register_magics(LaunchbayMagics(shell, defaults))
    register_displays(shell)
    _azureml_compat_from_project(defaults)


def _azureml_compat_from_project(defaults: Submit) -> None:
    """``azureml_compat = true`` in the project's launchbay.toml turns the v1 layer on at %load_ext."""
    try:
        from ..config import load_config

        if load_config().azureml_compat:
            defaults.azureml_compat = True
    except LaunchbayError as exc:
        print(f"launchbay: {exc}")
