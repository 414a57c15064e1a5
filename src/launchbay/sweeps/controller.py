"""The sweep controller: a detached process that keeps a sweep's child runs going.

A sweep is itself a run record (target ``sweep``) whose journal this process
writes exactly as a runner would (status events, heartbeat), so the store, the
CLI and the widgets treat it like any run. Usage:
``python -m launchbay.sweeps.controller [--detach] STORE RUN_ID``; the sweep's
configuration is ``RUN_DIR/sweep.json``. Cancel = SIGTERM or ``RUN_DIR/cancel``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..errors import LaunchbayError
from ..models import RunSpec, RunStatus
from ..runcontrol import ControllerRun, controller_main
from ..runner_inputs import PLACEHOLDER
from ..store import RunRecord, open_store
from ..targets.local import spawn_detached
from .names import INDEX_TAG, PARAMS_ENV, RESUME_OF, RETRY_TAG, SWEEP_FILE, SWEEP_TAG, TERMINATION_TAG
from .policy import policy_from_json
from .sampling import Trial, sampling_from_json

SECRET_ARGS_VAR = "LAUNCHBAY_SWEEP_SECRET_ARGS"
CHECKPOINT = "checkpoint"  # a resumed trial's input: the one ``launchbay resume`` gives (reproduce.CHECKPOINT)
POLL_S = 0.3  # children are caught up with their journals (and checked alive) this often
WAKE_S = 0.02  # between two looks at the store for a child that ended (one indexed query)


def snapshot_from_id(store: Any, snapshot_id: str, source_dir: str | None) -> Any:
    """A Snapshot for an id already in the store, so children reuse it without re-snapshotting."""
    from ..snapshot import Snapshot

    manifest = store.snapshot_manifest(snapshot_id)
    files = manifest["files"]
    size = sum(f["size"] for f in files)
    return Snapshot(snapshot_id, Path(source_dir or "."), len(files), size, 0, 0, [], manifest)


def start_controller(
    store_uri: str, record: RunRecord, resume: bool = False, secret_arguments: dict[str, str] | None = None
) -> None:
    """Start the controller detached (double fork, new session): it outlives the submitter.
    It opens the store from ``store_uri`` (``store.uri``).

    ``secret_arguments`` (index → real value of an argument sweep.json holds as ***) travel
    in its environment, never in the store."""
    command = [sys.executable, "-m", "launchbay.sweeps.controller", "--detach", store_uri, record.run_id]
    if resume:
        command.append("--resume")
    env = dict(os.environ)
    if secret_arguments:
        env[SECRET_ARGS_VAR] = json.dumps(secret_arguments)
    spawn_detached(command, record.run_dir, env, "the sweep controller")


class Controller(ControllerRun):
    kind = "sweep"

    """Samples parameters, launches children, applies the policy, records the end.

    With ``resume`` it first adopts the children already in the store: finished trials
    count as done (also those that ended while no controller ran), running ones are
    watched and judged by the policy as before (a dead controller leaves them running,
    see ``SweepControl.force_stop``), and only trials that died (Failed because their
    runner died or stopped beating, or Canceled without a policy's reason) run again
    with the same parameters."""

    def __init__(self, store_path: str, run_id: str, resume: bool = False) -> None:
        from ..config import load_config
        from ..session import Session

        self.store = open_store(store_path)
        self.record = self.store.get_run(run_id)
        super().__init__(self.store, self.record)
        self.config: dict[str, Any] = json.loads((self.record.run_dir / SWEEP_FILE).read_text())
        hidden = os.environ.pop(SECRET_ARGS_VAR, None)
        if hidden:  # the real values of secret arguments, which sweep.json holds as ***
            args = list(self.config.get("arguments") or [])
            for index, value in json.loads(hidden).items():
                args[int(index)] = value
            self.config["arguments"] = args
        source = self.record.properties.get("launchbay.source_dir")
        self.session = Session(self.store, load_config(Path(source)) if source else None)
        self.sampling = sampling_from_json(self.config["sampling"])
        self.policy = policy_from_json(self.config.get("policy"))
        self.goal = self.config["goal"]
        self.metric = self.config["primary_metric"]
        self.resume = resume
        self.active: list[str] = []
        self.trials: dict[int, str] = {}  # trial index -> its (latest) child run
        self.retry: list[int] = []  # trials to run again after a resume
        # earlier sweeps' trials (warm_start) and the trials this one goes on from (sweeps/warmstart.py)
        self.warm = [Trial(w["params"], w["value"], w["state"]) for w in self.config.get("warm_start") or []]
        self.resumed: dict[int, dict[str, Any]] = dict(enumerate(self.config.get("resume_children") or []))
        self.judged: dict[str, int] = {}
        self._snapshot: Any = None
        self._launcher: ThreadPoolExecutor | None = None  # starts the trials of freed slots at once
        self._ended_series: dict[str, list[float]] = {}
        self._events_read: dict[str, int] = {}  # child -> size of its events file at its last refresh

    @property
    def children(self) -> list[str]:
        return [self.trials[i] for i in sorted(self.trials)]

    # -- the journal, like a runner's -------------------------------------------------------
    # -- children ------------------------------------------------------------------------------
    def _launch(self, params: dict[str, Any], index: int, retry_of: str | None = None) -> str:
        args = list(self.config.get("arguments") or [])
        for name, value in params.items():
            args += [f"--{name}", str(value)]
        tags = {SWEEP_TAG: self.record.run_id, INDEX_TAG: str(index)}
        if retry_of:
            tags[RETRY_TAG] = retry_of
        resumed = self.resumed.get(index)
        if resumed is not None:
            tags[RESUME_OF] = resumed["run_id"]
            if self.config.get("resume_argument"):  # the runner puts the checkpoint's path there
                args += [str(self.config["resume_argument"]), f"{PLACEHOLDER}{CHECKPOINT}"]
        spec = RunSpec(
            script=self.record.spec.get("script"),
            arguments=tuple(args),
            target=self.config["target"],
            experiment=self.record.experiment,
            name=f"{self.record.run_id}_{index}",
            environment=self.record.spec.get("environment"),
            working_dir=self.record.spec.get("working_dir") or ".",
            code=self.record.spec.get("code"),
            tags=tags,
            params=dict(params),
            env_vars={**self.config.get("env_vars", {}), PARAMS_ENV: json.dumps(params)},
            parent_run_id=self.record.run_id,
            inputs={CHECKPOINT: resumed["checkpoint"]} if resumed is not None else {},
        )
        target = self.session.target(spec.target)
        inputs = None
        if resumed is not None:  # from the old trial's outputs/, as `launchbay resume` gives a run
            from ..data.resolve import resolve
            from ..data.spec import InputSpec

            inputs = [resolve(self.store, InputSpec(CHECKPOINT, resumed["checkpoint"]))]
            target.check_inputs(spec)
        target.ingested_by_watcher = True  # this loop indexes the child's end (_ended_journals)
        if self._snapshot is None:
            source = self.record.properties.get("launchbay.source_dir")
            self._snapshot = snapshot_from_id(self.store, str(self.record.snapshot_id), source)
        properties = {k: v for k, v in self.record.properties.items() if not k.startswith("launchbay.sweep")}
        if resumed is not None:
            properties[RESUME_OF] = resumed["run_id"]
        handle = self.session.launch(spec, self._snapshot, properties, target=target, inputs=inputs)
        self.journal.event(type="child", run_id=handle.run_id, index=index, params=params)
        return handle.run_id

    def _series(self) -> dict[str, list[float]]:
        """The primary metric of every child; ended children are read once and kept."""
        out = {}
        for run_id in self.children:
            if run_id in self._ended_series:
                out[run_id] = self._ended_series[run_id]
                continue
            record = self.store.get_run(run_id)
            out[run_id] = self.store.read_series(record, self.metric).values.tolist()
            if record.status.is_terminal():
                self._ended_series[run_id] = out[run_id]
        return out

    def _history(self) -> list[Trial]:
        """What the sampler sees: each trial's params, primary metric (best so far) and state."""
        if self.sampling.kind != "bayesian":
            return []
        series = self._series()
        best = min if self.goal == "minimize" else max
        out = list(self.warm)  # what earlier sweeps found comes first
        for run_id in self.children:
            record = self.store.get_run(run_id)
            values = [v for v in series.get(run_id, []) if v == v]
            state = trial_state(record)
            value = best(values) if values and state != "running" else None
            out.append(Trial(dict(record.spec.get("params") or {}), value, state))
        return out

    def _count(self, run_id: str) -> int:
        return self.store.series_count(run_id, self.metric)

    def _apply_policy(self) -> None:
        if self.policy.name == "none":
            return
        due = [r for r in self.active if self.policy.interval(self._count(r)) not in (None, self.judged.get(r))]
        if not due:
            return
        series = self._series()
        ended = frozenset(self._ended_series)
        for run_id in due:
            interval = self.policy.interval(len(series.get(run_id, ())))
            if interval is None or self.judged.get(run_id) == interval:
                continue
            self.judged[run_id] = interval
            reason = self.policy.evaluate(self.goal, series, run_id, ended)
            if reason:
                record = self.store.get_run(run_id)
                self.store.set_tag(record.pk, TERMINATION_TAG, reason)
                self.journal.event(type="early_termination", run_id=run_id, reason=reason)
                self._stop_child(record)

    def _stop_child(self, record: RunRecord) -> None:
        """Ask a child to stop without waiting: the loop sees it end on a later poll."""
        try:
            self.session.target_for(record).cancel(record)
        except LaunchbayError as exc:
            print(f"launchbay sweep: could not cancel {record.run_id}: {exc}", file=sys.stderr)

    def _events_size(self, run_id: str) -> int:
        try:
            return os.stat(self.store.run_dir(run_id) / rf.EVENTS_PATH).st_size
        except OSError:
            return 0

    def _new_events(self) -> list[str]:
        """Active children whose status events grew since their last refresh: a local child's end
        shows there first (its runner leaves indexing the end to this loop), one stat a child."""
        return [r for r in self.active if self._events_size(r) != self._events_read.get(r)]

    def _poll(self, full: bool = True) -> str | None:
        """Drop ended children from ``active``; a reason to stop the sweep, if one ended without the metric.

        ``full``: catch every child up with its journal and check its runner is alive; otherwise
        only the children whose events grew or whose record the store has as ended."""
        still, problem = [], None
        statuses = None if full else self.store.statuses(self.active)
        grown = set() if full else set(self._new_events())
        for run_id in self.active:
            ended = statuses is None or statuses.get(run_id, RunStatus.RUNNING).is_terminal()
            if not ended and run_id not in grown:
                still.append(run_id)
                continue
            self._events_read[run_id] = self._events_size(run_id)  # before the refresh reads them
            record = self.session.refresh(run_id)
            if not record.status.is_terminal():
                still.append(run_id)
            elif record.status is RunStatus.COMPLETED and self._count(run_id) == 0 and problem is None:
                logged = [s["name"] for s in self.store.metric_summaries(record)]
                problem = (
                    f"Child {run_id} completed without logging the primary metric {self.metric!r}"
                    f" (it logged: {', '.join(logged) or 'no metrics'}). Log it with"
                    f" Run.get_context().log({self.metric!r}, value), or name the metric the script logs."
                )
        self.active = still
        for run_id in set(self._events_read) - set(still):
            del self._events_read[run_id]
        return problem

    def _wait(self, seconds: float) -> None:
        """Sleep until the next full poll, or less: until a child's record has ended (its slot is
        free, so the next trial starts now, not up to POLL_S later) or a cancel was asked for."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.active and self._new_events():
                return
            if self.active and any(s.is_terminal() for s in self.store.statuses(self.active).values()):
                return
            if self._cancel_requested():
                return
            time.sleep(WAKE_S)

    def _adopt(self) -> None:
        """Resume: take over the children a previous controller left behind."""
        for run_id in self.store.children(self.record.run_id):
            record = self.session.refresh(run_id)
            index = int(record.tags.get(INDEX_TAG, len(self.trials)))
            self.trials[index] = run_id
        for index, run_id in sorted(self.trials.items()):
            record = self.store.get_run(run_id)
            if not record.status.is_terminal():
                self.active.append(run_id)
            elif trial_state(record) == "interrupted":
                self.retry.append(index)
        self.journal.event(type="resumed", adopted=len(self.trials), running=len(self.active), retry=self.retry)

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        self._begin()
        try:
            if self.resume:
                self._adopt()
            return self._loop()
        except Exception as exc:  # never leave the sweep Running with nobody behind it
            for run_id in self.active:
                self._stop_child(self.store.get_run(run_id))
            return self._finish("Failed", f"The sweep controller stopped: {type(exc).__name__}: {exc}")

    def _next(self, total: int, picked: int = 0) -> tuple[int, dict[str, Any], str | None] | None:
        """The next trial to launch: a cut-off one again, else a new index (after ``picked`` new ones
        not launched yet); None when all are out."""
        if self.retry:
            index = self.retry.pop(0)
            old = self.store.get_run(self.trials[index])
            return index, dict(old.spec.get("params") or {}), old.run_id
        index = len(self.trials) + picked
        if index >= total:
            return None
        if index in self.resumed:  # the trials this sweep goes on from come first, with their params
            return index, dict(self.resumed[index]["params"]), None
        return index, self.sampling.suggest(index, self._history(), self.goal), None

    def _fill_slots(self, total: int, concurrent: int) -> None:
        """Start a trial in every free slot, all at once: starting one waits for its runner to detach
        (an interpreter start), so slots freed together do not wait for each other's launches. A
        Bayesian sampler sees each launched trial as pending before it suggests the next: one at a time."""
        while len(self.active) < concurrent:
            picks: list[tuple[int, dict[str, Any], str | None]] = []
            room = 1 if self.sampling.kind == "bayesian" else concurrent - len(self.active)
            while len(picks) < room:
                nxt = self._next(total, sum(1 for p in picks if p[2] is None))
                if nxt is None:
                    break
                picks.append(nxt)
            if not picks:
                return
            self._start_all(picks, concurrent)

    def _start_all(self, picks: list[tuple[int, dict[str, Any], str | None]], concurrent: int) -> None:
        if self._snapshot is None:
            source = self.record.properties.get("launchbay.source_dir")
            self._snapshot = snapshot_from_id(self.store, str(self.record.snapshot_id), source)
        if self._launcher is None:
            self._launcher = ThreadPoolExecutor(max_workers=concurrent, thread_name_prefix="launch")
        futures = [self._launcher.submit(self._launch, params, index, retry_of) for index, params, retry_of in picks]
        failure: BaseException | None = None
        for (index, _, _), future in zip(picks, futures):
            try:
                run_id = future.result()
            except BaseException as exc:  # the others started: they are watched (and stopped) as usual
                failure = failure or exc
                continue
            self.trials[index] = run_id
            self.active.append(run_id)
        if failure is not None:
            raise failure

    def _loop(self) -> int:
        total = int(self.config["max_total_runs"])
        size = self.sampling.size()
        if size is not None:
            total = min(total, size)
        concurrent = int(self.config["max_concurrent_runs"])
        deadline = self.config.get("max_duration_s")
        started = time.time() - float(self.config.get("elapsed_s") or 0)
        stopping: str | None = None
        problem: str | None = None
        next_full = 0.0  # monotonic time of the next full poll (journals caught up, runners checked)
        while True:
            if self._cancel_requested() and stopping is None:
                stopping = "cancel"
            elif deadline and time.time() - started > float(deadline) and stopping is None:
                stopping = "deadline"
                self.journal.event(type="max_duration", seconds=deadline)
            elif problem:
                stopping = "problem"
            if stopping:
                for run_id in self.active:
                    record = self.store.get_run(run_id)
                    if stopping == "deadline":
                        self.store.set_tag(record.pk, TERMINATION_TAG, f"The sweep reached its {deadline} s limit.")
                    self._stop_child(record)
                self._wait_children(15.0)
                break
            full = time.monotonic() >= next_full
            problem = self._poll(full)
            if full:
                next_full = time.monotonic() + POLL_S
            if problem:
                continue
            self._apply_policy()
            self._fill_slots(total, concurrent)
            if not self.active and not self.retry and len(self.trials) >= total:
                break
            self._wait(next_full - time.monotonic())
        if stopping == "cancel":
            return self._finish("Canceled", self.cancel_reason)
        if stopping == "problem":
            return self._finish("Failed", problem)
        statuses = [self.store.get_run(r).status for r in self.children]
        if statuses and all(s is RunStatus.FAILED for s in statuses):
            return self._finish("Failed", f"All {len(statuses)} child runs failed; see their logs.")
        return self._finish("Completed")

    def _wait_children(self, wait_s: float) -> None:
        end = time.time() + wait_s
        while self.active and time.time() < end:
            self._poll()
            time.sleep(0.1)
        for run_id in self.active:  # did not answer: the session marks them
            self.session.cancel(run_id, wait_s=1.0)


def trial_state(record: RunRecord) -> str:
    """running, completed, stopped (by the policy or the sweep's limit), failed, or interrupted
    (its runner died, or it was canceled without a reason: a resumed sweep runs it again)."""
    status = record.status
    if not status.is_terminal():
        return "running"
    if status is RunStatus.COMPLETED:
        return "completed"
    if TERMINATION_TAG in record.tags:
        return "stopped"
    message = str((record.error or {}).get("message") or "")
    if status is RunStatus.CANCELED or "died" in message or "No heartbeat" in message:
        return "interrupted"
    return "failed"


def main(argv: list[str] | None = None) -> int:
    return controller_main(argv, Controller, "launchbay.sweeps.controller")


if __name__ == "__main__":
    sys.exit(main())
