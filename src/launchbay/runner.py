"""The compute-side runner: the only code that executes a run.

Standard library only (Python 3.9+): it is shipped with the snapshot to
containers, SSH hosts and cluster nodes. Usage: ``python runner.py RUN_DIR``,
where ``RUN_DIR/runner.json`` says what to run. The runner

1. stages the snapshot into ``RUN_DIR/work`` as private copies (runner_stage.py), and
   tells the run where its data inputs are (runner_inputs.py),
2. starts the entry point as a child in its own process group, tees its output
   into ``RUN_DIR/files/user_logs/std_log.txt``,
3. appends status events to ``RUN_DIR/journal/events.jsonl`` and a heartbeat,
4. honours cancel (SIGTERM to the runner, or a ``RUN_DIR/cancel`` file) and a
   maximum duration by stopping the child's whole process group,
5. keeps ``./outputs`` and ``./logs`` under ``RUN_DIR/files`` while it runs
   (``livefiles``), samples system metrics (``sysmon``) and records the end.

The journal is the only protocol between a run and the store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

try:  # shipped next to the runner (runtime/launchbay_*.py)
    import launchbay_livefiles as livefiles  # type: ignore[import-not-found,unused-ignore]
    import launchbay_runfolder as rf  # type: ignore[import-not-found,unused-ignore]
    import launchbay_sysmon as sysmon  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # launchbay's own source tree
    from launchbay import livefiles, sysmon
    from launchbay import runfolder as rf

try:  # part of the launchbay package, or flat files shipped next to this one
    from . import runner_procs as procs
    from .runner_inputs import prepare_inputs, remove_copies, substitute
    from .runner_output import OutputLog
    from .runner_stage import Staged, recycle, stage_snapshot
except ImportError:
    from runner_inputs import prepare_inputs, remove_copies, substitute  # type: ignore[no-redef]
    from runner_output import OutputLog  # type: ignore[no-redef]
    from runner_stage import Staged, recycle, stage_snapshot  # type: ignore[no-redef]

    try:
        import runner_procs as procs  # type: ignore[no-redef]
    except ImportError:  # an old runtime folder: only the process group is stopped
        procs = None  # type: ignore[assignment]

__all__ = ["Journal", "Runner", "main", "stage_snapshot"]

HEARTBEAT_INTERVAL_S = 2.0
FINAL_EVENT_RETRY_S = 600.0  # how long a runner waits for space to record the run's end (its reserve used up)
LIVE_INGEST_VAR = "LAUNCHBAY_LIVE_INGEST_S"  # local runs: how often the runner indexes its journal (0: never)
LIVE_INGEST_S = 0.5
SECRET_ARGS_VAR = "LAUNCHBAY_SECRET_ARGS"
Journal = rf.Journal


def _set_parent_death_signal() -> None:
    """Linux: the child gets SIGKILL if the runner dies, so no orphan keeps running."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def error_from_log(log_path: str, exit_code: int) -> dict[str, str]:
    """The error message and traceback tail, read back from the run's own output."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        tail = ""
    start = tail.rfind("Traceback (most recent call last):")
    if start >= 0:
        lines = tail[start:].rstrip().splitlines()
        message, trace = (lines[-1] if lines else ""), "\n".join(lines[-40:])
    else:
        message = f"The run's process exited with code {exit_code}."
        trace = "\n".join([ln for ln in tail.strip().splitlines() if ln.strip()][-5:])
    if exit_code < 0:  # a signal ended the process, whatever it printed before
        message = f"The run's process was killed ({_signal_name(-exit_code)})."
    return {"message": message, "traceback": trace}


def _signal_name(number: int) -> str:
    """SIGKILL for 9; a number without a name as "signal 42"."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _distlaunch() -> str:
    """distlaunch.py beside this file (launchbay_distlaunch.py in a shipped runtime)."""
    here = os.path.dirname(os.path.abspath(__file__))
    name = "launchbay_distlaunch.py" if os.path.basename(__file__).startswith("launchbay_") else "distlaunch.py"
    return os.path.join(here, name)


def rank_error(run_dir: str) -> dict[str, str] | None:
    """A distributed run's error: the rank that failed first, and its own traceback."""
    try:
        with open(os.path.join(run_dir, rf.JOURNAL, rf.FAILED_RANK), encoding="utf-8") as fh:
            failed = json.load(fh)
    except (OSError, ValueError):
        return None
    error = error_from_log(os.path.join(run_dir, rf.FILES, failed["log"]), failed["exit_code"])
    if failed["exit_code"] < 0 or error["message"].startswith("The run's process exited"):
        error["message"] = f"Rank {failed['rank']} {failed['reason']}."
    else:
        error["message"] = f"Rank {failed['rank']} failed: {error['message']}"
    return error


class Runner:
    """Runs one run from its run dir; see the module docstring for the steps."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = os.path.abspath(run_dir)
        with open(os.path.join(self.run_dir, rf.RUNNER_CONFIG), encoding="utf-8") as fh:
            self.config: dict[str, Any] = json.load(fh)
        self.journal = Journal(self.run_dir, reserve=True)  # space held for the run's end, on a full disk too
        self.files_dir = os.path.join(self.run_dir, rf.FILES)
        self.work = os.path.join(self.run_dir, rf.WORK)
        self.child: subprocess.Popen[bytes] | None = None
        self.cancel_reason: str | None = None
        self._done = threading.Event()
        self.staged: Staged | None = None  # the snapshot copies in ``work``, for recycling
        self.subreaper = False
        self.shims: str | None = None  # a command's python shims (_put_python_first)

    def request_cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
            self.journal.event(type="cancel_requested", reason=reason)
            threading.Thread(target=self._stop_child, daemon=True).start()

    def _stop_child(self) -> None:
        child = self.child
        if child is None:
            return
        grace = float(self.config.get("cancel_grace_s", 3.0))
        _killpg(child.pid, signal.SIGTERM)
        if procs is not None:  # children that left the group (setsid, double fork) too
            procs.signal_all(signal.SIGTERM, [p for p in procs.descendants() if p != child.pid])
        deadline = time.time() + grace
        while time.time() < deadline and child.poll() is None:
            time.sleep(0.05)
        _killpg(child.pid, signal.SIGKILL)
        if procs is not None:
            procs.stop_all(0.0, exclude=child.pid)

    def _watch(self) -> None:
        """Heartbeat, cancel file and maximum duration, every few hundred ms."""
        cancel_file = os.path.join(self.run_dir, rf.CANCEL)
        max_duration = self.config.get("max_duration_s")
        started = time.time()
        next_beat = 0.0
        tree: list[list[int]] = []
        tree_path = os.path.join(self.run_dir, rf.DESCENDANTS)
        record_tree = bool(self.config.get("record_descendants"))
        next_tree = 0.0
        while not self._done.wait(0.2):
            now = time.time()
            if procs is not None:  # orphans re-parented to us: collect their exit status
                procs.reap(exclude=self.child.pid if self.child else None)
                if record_tree and self.subreaper and now >= next_tree:  # for whoever finds this runner killed
                    try:
                        tree = procs.record_tree(tree_path, tree)
                    except OSError:  # disk full: the next pass tries again; cancel checks go on
                        pass
                    next_tree = now + 1.0
            if now >= next_beat:
                self.journal.heartbeat()
                self.journal.flush()  # events that waited for space
                next_beat = now + HEARTBEAT_INTERVAL_S
            if os.path.exists(cancel_file):
                self.request_cancel("Canceled by request.")
            if max_duration and now - started > float(max_duration):
                self.request_cancel(f"Canceled: the run exceeded its maximum duration of {max_duration} s.")

    def _signalled_reason(self) -> str:
        """Why a SIGTERM stops the run: a cancel asked for here, or, under Slurm with no cancel file,
        Slurm itself (preemption, a requeue, the job's time limit), which leaves a run to resume."""
        job = os.environ.get("SLURM_JOB_ID")
        if job and not os.path.exists(os.path.join(self.run_dir, rf.CANCEL)):
            return (
                f"Stopped by Slurm (job {job} was preempted, requeued or reached its time limit). What the run "
                f"wrote in outputs/ is kept: launchbay resume {self.config['run_id']} goes on from it."
            )
        return "Canceled by request."

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.request_cancel(self._signalled_reason()))
        signal.signal(signal.SIGINT, lambda *_: self.request_cancel("Canceled by request."))
        # descendants that start a new session stay ours to stop (Linux; elsewhere the process group only)
        self.subreaper = procs is not None and procs.become_subreaper()
        me = os.getpid()  # with its start time: the runner's identity (a forked one's command line is the server's)
        started = procs.start_time(me) if procs is not None else None
        self.journal.event(type="runner", pid=me, pgid=os.getpgrp(), host=socket.gethostname(), start=started)
        self.journal.heartbeat()
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        self.journal.status("Preparing")
        try:
            self.staged = stage_snapshot(self.config, self.work)
        except Exception as exc:
            return self._finish("Failed", None, {"message": f"Could not stage the snapshot: {exc}", "traceback": ""})
        try:
            input_env = prepare_inputs(self.config, self.run_dir)
        except Exception as exc:
            return self._finish(
                "Failed", None, {"message": f"Could not prepare the data inputs: {exc}", "traceback": ""}
            )
        if self.cancel_reason:
            return self._finish("Canceled", None, {"message": self.cancel_reason, "traceback": ""})
        cwd = os.path.join(self.work, self.config.get("working_dir") or ".")
        log_path = os.path.join(self.files_dir, rf.STD_LOG)
        try:
            os.makedirs(os.path.join(self.files_dir, rf.USER_LOGS), exist_ok=True)
            log = OutputLog(log_path, self.journal)
        except OSError as exc:
            return self._finish("Failed", None, {"message": f"Could not create the run's log: {exc}", "traceback": ""})
        env = dict(os.environ)
        env.update(self.config.get("env") or {})
        env.update(input_env)
        env.update(
            LAUNCHBAY_RUN_ID=self.config["run_id"],
            LAUNCHBAY_EXPERIMENT=self.config.get("experiment", ""),
            LAUNCHBAY_JOURNAL_DIR=self.journal.dir,
            LAUNCHBAY_FILES_DIR=self.files_dir,
            LAUNCHBAY_SNAPSHOT_DIR=self.work,
            PYTHONUNBUFFERED="1",
        )
        extra_path = [os.path.join(self.run_dir, p) for p in self.config.get("pythonpath") or []]
        extra_path = _azureml_alias(self.run_dir, env) + extra_path
        if extra_path:
            env["PYTHONPATH"] = os.pathsep.join(extra_path + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        command = list(self.config["command"])
        hidden = env.pop(SECRET_ARGS_VAR, None)  # secret arguments: in our environment, never on disk
        os.environ.pop(SECRET_ARGS_VAR, None)
        if hidden:
            for index, value in json.loads(hidden).items():
                if int(index) < len(command):
                    command[int(index)] = value
        if input_env:
            command = substitute(command, input_env)  # an Azure ML v1 dataset argument: its input's path
        python = self.config.get("python") or sys.executable
        if command and command[0] == "{python}":
            command[0] = python
        elif command:  # a command (bash run.sh, torchrun ...): its `python` is the run's, as an activated venv's
            self.shims = _put_python_first(env, python)
        if self.config.get("distributed"):  # several ranks: distlaunch.py starts and watches them
            command = [self.config.get("python") or sys.executable, _distlaunch(), self.run_dir, "--", *command]
        try:
            self.child = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        except OSError as exc:
            return self._finish("Failed", None, {"message": f"Could not start {command[0]}: {exc}", "traceback": ""})
        self.journal.status("Running", child_pgid=self.child.pid)
        if self.cancel_reason:
            self._stop_child()
        tee = threading.Thread(target=log.tee, args=(self.child.stdout,), daemon=True)
        tee.start()
        monitor = sysmon.Monitor(self.config, self.journal, self.child.pid)
        live = livefiles.LiveFiles(cwd, self.files_dir).start()
        hook = self.config.get("finish_hook")
        if hook and _live_ingest_s() > 0:  # the store is on this machine: keep it caught up, not the readers
            threading.Thread(target=self._ingest_while_running, args=(hook,), daemon=True).start()
        code = self.child.wait()
        _killpg(self.child.pid, signal.SIGKILL)  # leftovers of the run's process group
        if procs is not None:  # and every other descendant (new sessions, double forks)
            left = procs.stop_all(0.5)
            if left:
                self.journal.event(type="descendants_stopped", count=left)
        tee.join(timeout=5)  # the pipe ends once no descendant holds it
        log.finish()
        monitor.stop()
        self.journal.status("Finalizing")
        live.stop()  # the last pass over ./outputs and ./logs
        if self.cancel_reason:
            return self._finish("Canceled", code, {"message": self.cancel_reason, "traceback": ""})
        v1_failure = _v1_fail_request(self.journal.dir)
        if code == 0 and v1_failure:
            return self._finish("Failed", code, {"message": v1_failure, "traceback": ""})
        if code == 0:
            return self._finish("Completed", code, None)
        return self._finish("Failed", code, rank_error(self.run_dir) or error_from_log(log_path, code))

    def _ingest_while_running(self, hook: dict[str, Any]) -> None:
        """Index the journal every ``LIVE_INGEST_S`` until the run ends (local target only).

        A widget or the sidebar then finds the run caught up instead of ingesting inside its
        look (a script logging ~0.5M points/s made each widget poll spend its whole 0.25 s
        reader budget ingesting); a reader that finds this ingesting skips. Never fatal."""
        try:
            from launchbay.errors import StoreUnavailableError  # type: ignore[import-not-found]
            from launchbay.ingest import READER_BUDGET_S, ingest_run, live_ingester  # type: ignore[import-not-found]
            from launchbay.store import open_store  # type: ignore[import-not-found]

            try:  # the run's own processes first when the CPUs are all busy (this thread only)
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except (AttributeError, OSError):
                pass
            with open_store(hook["store"]) as store, live_ingester(os.path.join(self.run_dir, rf.JOURNAL)):
                pause = _live_ingest_s()
                while not self._done.wait(pause):
                    began = time.monotonic()
                    try:
                        ingest_run(store, store.get_run(hook["run_id"]), wait=False, live=True)
                    except StoreUnavailableError:  # a team store's server is away: the journal keeps it all
                        pause = 1.0
                        continue
                    # a round that used its whole budget left more to read: go on at once
                    pause = 0.0 if time.monotonic() - began >= READER_BUDGET_S else _live_ingest_s()
        except Exception as exc:  # readers and the final ingest do it instead
            _say(f"launchbay runner: live ingest stopped: {exc}")

    def _finish(self, status: str, code: int | None, error: dict[str, str] | None) -> int:
        remove_copies(self.run_dir)  # the private copies of download inputs
        if self.shims:
            shutil.rmtree(self.shims, ignore_errors=True)
        spare = self.config.get("stage_spare")
        # recycled only once every process of the run is gone (the subreaper stopped them)
        if not (spare and self.subreaper and self.staged is not None and not procs.descendants()):
            shutil.rmtree(self.work, ignore_errors=True)
        elif not recycle(self.work, self.staged, spare):
            shutil.rmtree(self.work, ignore_errors=True)
        recorded = self.journal.status(status, exit_code=code, error=error, final=True)
        deadline = time.monotonic() + FINAL_EVENT_RETRY_S
        while not recorded and time.monotonic() < deadline:  # still no space, even the reserve's: wait for some
            time.sleep(1.0)
            recorded = self.journal.flush()
        self._done.set()
        hook = self.config.get("finish_hook")
        if hook:
            _run_finish_hook(hook)
        return 0 if status == "Completed" else 1


def _put_python_first(env: dict[str, str], python: str) -> str | None:
    """A command's ``python`` and ``python3`` are the run's interpreter (as in an activated virtual
    environment, also on an image that has only ``python3``): small shims in a folder put first on PATH,
    which is returned (to remove at the end). ``$LAUNCHBAY_PYTHON`` names the interpreter; the in-run API
    is on PYTHONPATH already, so ``from launchbay import Run`` works in every Python child."""
    import tempfile

    found = python if os.sep in python else shutil.which(python, path=env.get("PATH"))
    if not found:
        return None
    env["LAUNCHBAY_PYTHON"] = found
    try:
        folder = tempfile.mkdtemp(prefix="launchbay-python-")
        for name in ("python", "python3"):  # exec, not a link: a venv's python must be started by its own path
            shim = os.path.join(folder, name)
            with open(shim, "w") as fh:
                fh.write(f'#!/bin/sh\nexec {_sh_quote(found)} "$@"\n')
            os.chmod(shim, 0o755)
    except OSError:  # no temporary folder: the interpreter's own folder first
        folder, made = os.path.dirname(found), None
    else:
        made = folder
    env["PATH"] = os.pathsep.join([folder, *[p for p in env.get("PATH", "").split(os.pathsep) if p]])
    return made


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _live_ingest_s() -> float:
    try:
        return float(os.environ.get(LIVE_INGEST_VAR) or LIVE_INGEST_S)
    except ValueError:
        return LIVE_INGEST_S


def _azureml_alias(run_dir: str, env: dict[str, str]) -> list[str]:
    """Runs submitted through launchbay.compat.azureml get a small ``azureml`` package on their path."""
    if env.get("LAUNCHBAY_AZUREML_COMPAT") != "1":
        return []
    shipped = os.path.join(run_dir, rf.RUNTIME, "azureml_alias")  # the target ships it (runtime.extra_files)
    return [shipped] if os.path.isdir(shipped) else []


def _v1_fail_request(journal_dir: str) -> str | None:
    """The message of an Azure ML v1 ``run.fail()`` call made by the run, if any."""
    try:
        with open(os.path.join(journal_dir, rf.FAIL_REQUEST)) as fh:
            return str(json.load(fh).get("message") or "run.fail() was called")
    except (OSError, ValueError, AttributeError):
        return None


def _run_finish_hook(hook: dict[str, Any]) -> None:
    """Local target: ingest the journal into the store right away (launchbay is importable)."""
    try:
        from launchbay.ingest import ingest_after_runner  # type: ignore[import-not-found]

        ingest_after_runner(hook["store"], hook["run_id"])
    except Exception as exc:  # the journal stays; any reader of the store ingests it later
        _say(f"launchbay runner: final ingest deferred: {exc}")


def _say(message: str) -> None:
    """A line for runner.log, which may be on a full disk: never fatal."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def daemonize() -> None:
    """Detach from the submitter: double fork, new session, so no zombie is left behind."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    detach = "--detach" in args
    args = [a for a in args if a != "--detach"]
    if len(args) != 1:
        print("usage: runner.py [--detach] RUN_DIR", file=sys.stderr)
        return 2
    if ended_already(args[0]):
        return 0
    if detach:
        daemonize()
    return Runner(args[0]).run()


def ended_already(run_dir: str) -> bool:
    """A run whose journal holds its final status is never run again into the same folder: Slurm
    starts a requeued (preempted) job's script once more, and that must not write a second end."""
    try:
        with open(os.path.join(run_dir, rf.EVENTS_PATH), "rb") as fh:
            ended = b'"final": true' in fh.read()
    except OSError:
        return False
    if ended:
        print(
            f"launchbay runner: the run in {run_dir} has ended already; it is not started again "
            "(launchbay resume RUN starts a new run from its checkpoints).",
            file=sys.stderr,
        )
    return ended


if __name__ == "__main__":
    sys.exit(main())
