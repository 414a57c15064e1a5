"""``%%submit``, ``%submit`` and ``%launchbay``: parse options, delegate to the Session.

Examples::

    %load_ext launchbay
    %%submit -t gpu-box --push data --pull model
    model = train(data)

    %submit train.py --lr 0.1
    %launchbay runs
    %launchbay show RUN_ID
    %config Submit.target = "docker"
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Unicode
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


def _unquote(text: str | None) -> str:
    """IPython's magic argument parser keeps the quotes around a value: drop one pair."""
    text = text or ""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _progress(message: str) -> None:
    """Environment builds and uploads report here: one line each under the cell."""
    print(f"launchbay: {message}", flush=True)


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
    @argument("--wait", action="store_true", help="block until the run ends")
    @argument("--no-widget", action="store_true", help="print text instead of the live widget")
    @argument("--args", default="", help="arguments for the cell's sys.argv / the script, as one string")
    @argument("--max-duration", type=float, help="cancel the run after this many seconds")
    @argument("--sweep", help="run the cell as a sweep: sweep.yaml, or inline 'lr=loguniform(1e-4,1e-1) metric=loss'")
    @argument("--system-metrics-interval", type=float, help="seconds between CPU/GPU samples; 0 = off")
    @argument("script", nargs="?", help="(line magic) the script to run")
    @argument("script_args", nargs=argparse.REMAINDER, help="(line magic) arguments for the script")
    @line_cell_magic
    def submit(self, line: str, cell: str | None = None) -> Any:
        """Run this cell (``%%submit``) or a script (``%submit script.py ARGS``) as a tracked run."""
        args = parse_argstring(self.submit, line)
        try:
            return self._submit(args, cell)
        except LaunchbayError as exc:
            raise UsageError(str(exc)) from None

    def _submit(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ..config import load_config
        from ..models import RunSpec
        from ..session import Session
        from ..store import open_store
        from .cells import CELL_FILE, PUSH_FILE, pickle_pushed, project_root
        from .display import display_run

        notebook_dir = Path(os.getcwd()).resolve()
        root = Path(args.source_dir).resolve() if args.source_dir else project_root(notebook_dir)
        working_dir = os.path.relpath(notebook_dir, root) if notebook_dir.is_relative_to(root) else "."
        config = load_config(root)
        session = Session(open_store(), config)
        target = args.target or self.defaults.target or config.defaults.get("target") or "local"
        push, pull = _split_names(args.push), _split_names(args.pull)
        extra: dict[str, str | bytes] = {}
        prefix = "" if working_dir == "." else working_dir + "/"
        if cell is not None:
            if args.script:
                raise UsageError("%%submit runs the cell; give a script only to the line magic %submit.")
            if not cell.strip():
                raise UsageError("The cell is empty: put the code to run below %%submit.")
            extra[prefix + CELL_FILE] = cell
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
            experiment=args.experiment or self.defaults.experiment or root.name or "default",
            name=_unquote(args.name) or None,
            environment=args.env or self.defaults.environment or None,
            working_dir=working_dir,
            code=cell,
            push=push,
            pull=pull,
            max_duration_s=args.max_duration,
            system_metrics_interval_s=args.system_metrics_interval,
        )
        handle = session.submit(spec, root, extra_files=extra, on_progress=_progress)
        use_widget = self.defaults.widget and not args.no_widget
        if use_widget:
            from .display import widget_frontend_likely

            use_widget = widget_frontend_likely()
        if use_widget:
            widget = display_run(handle, pull_into=self.user_ns)
            if args.wait and widget is not None:
                widget.wait_until_done()
        elif args.wait:
            handle.wait(show_output=True)
            if pull and handle.status == "Completed":
                names = handle.pull(self.user_ns)
                print(f"Pulled into the notebook: {', '.join(names) or 'nothing'}")
            print(f"Run {handle.run_id} {handle.status}")
        else:
            print(f"Run {handle.run_id} submitted to {target}; status {handle.status}.")
        handle._suppress_display = True  # type: ignore[attr-defined]  # shown already; still `run = _`
        return handle

    @staticmethod
    def _check_versions(session: Any, target_name: str) -> None:
        from ..targets import make_target
        from .cells import check_python_version

        target = make_target(target_name, session.config, session.store)
        if target.type_name == "local":
            return
        info = target.check()
        check_python_version(info.get("version") or info.get("python_version"))

    # -- %launchbay ---------------------------------------------------------------------------------
    @line_magic
    def launchbay(self, line: str) -> Any:
        """``%launchbay runs|show|logs|metrics|compare|cancel|targets|files ...`` (mirrors the CLI)."""
        words = shlex.split(line)
        if not words:
            raise UsageError("Usage: %launchbay runs|show RUN|logs RUN|metrics RUN|compare A B|cancel RUN|targets")
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
            if command == "compare":
                from .tables import display_compare

                return display_compare(rest)
            return self._cli([command, *rest])
        except LaunchbayError as exc:
            raise UsageError(str(exc)) from None

    def _show(self, ref: str) -> Any:
        from ..api import get_run
        from .display import display_run

        handle = get_run(ref)
        display_run(handle, pull_into=self.user_ns)
        handle._suppress_display = True  # type: ignore[attr-defined]
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
    """Register the magics and the ``Submit`` configurable on ``shell`` (idempotent)."""
    defaults = _DEFAULTS.get(id(shell))
    if defaults is None:
        defaults = _DEFAULTS[id(shell)] = Submit(parent=shell)
        shell.configurables.append(defaults)
    shell.register_magics(LaunchbayMagics(shell, defaults))
