"""The pipeline controller: a detached process that starts each step once its inputs are ready.

The pipeline is a run record (target ``pipeline``) whose journal this process writes as a runner would;
its definition and parameter values are ``RUN_DIR/pipeline.json``, and the state of every step
(status, run, reuse decision and its reason) is ``RUN_DIR/pipeline_state.json``, rewritten at each change.
Usage: ``python -m launchbay.pipelines.controller [--detach] [--resume] STORE RUN_ID``.
Cancel = SIGTERM or ``RUN_DIR/cancel``: every running step is canceled.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import LaunchbayError
from ..models import RunSpec, RunStatus
from ..runcontrol import ControllerRun, controller_main
from ..store import RunRecord, open_store
from ..targets.local import spawn_detached
from .definition import Definition
from .reuse import (
    KEY_TAG,
    NAME_TAG,
    PARTS_TAG,
    PIPELINE_TAG,
    STEP_TAG,
    code_hash,
    environment_hash,
    key_of,
    make_parts,
    script_hash,
    what_changed,
)

PIPELINE_FILE = "pipeline.json"
STATE_FILE = "pipeline_state.json"
POLL_S = 0.1
NOT_STARTED = "NotStarted"
WAITING = "Waiting"


def start_controller(store_uri: str, record: RunRecord, resume: bool = False) -> None:
    command = [sys.executable, "-m", "launchbay.pipelines.controller", "--detach", store_uri, record.run_id]
    if resume:
        command.append("--resume")
    spawn_detached(command, record.run_dir, dict(os.environ), "the pipeline controller")


def _path(step: dict[str, Any]) -> str:
    """The step's script as the snapshot's manifest names it (inside the step's working folder)."""
    folder = step.get("working_dir") or "."
    return step["script"] if folder == "." else f"{folder}/{step['script']}"


def output_dataset(pipeline: str, step: str, output: str) -> str:
    """The dataset a step's output becomes: one name per pipeline, step and output."""
    safe = "".join(c if c.isalnum() or c in "_-" else "-" for c in f"{pipeline}-{step}-{output}")
    return ("p-" + safe if not safe[0].isalpha() else safe)[:64]


class Controller(ControllerRun):
    kind = "pipeline"

    def __init__(self, store_path: str, run_id: str, resume: bool = False) -> None:
        from ..config import load_config
        from ..session import Session
        from ..sweeps.controller import snapshot_from_id

        self.store = open_store(store_path)
        self.record = self.store.get_run(run_id)
        super().__init__(self.store, self.record)
        data = json.loads((self.record.run_dir / PIPELINE_FILE).read_text())
        self.definition = Definition.from_json(data["definition"])
        self.values: dict[str, Any] = data["values"]
        self.no_reuse: set[str] = set(data.get("no_reuse") or [])
        self.previous: str | None = data.get("previous")  # the pipeline run this one re-runs
        self.source = self.record.properties.get("launchbay.source_dir")
        self.session = Session(self.store, load_config(Path(self.source)) if self.source else None)
        self.snapshot = snapshot_from_id(self.store, str(self.record.snapshot_id), self.source)
        self.manifest = self.store.snapshot_manifest(str(self.record.snapshot_id))
        self.resume = resume
        self.steps: dict[str, dict[str, Any]] = {
            name: {"name": name, "status": WAITING, "run_id": None, "reused_from": None, "reason": None}
            for name in self.definition.names()
        }
        self.outputs: dict[str, dict[str, tuple[str, str, int | None]]] = {}  # step -> output -> (hash, ds, v)
        self._launcher = ThreadPoolExecutor(max_workers=16, thread_name_prefix="step")
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}  # step -> future of its launch

    # -- state -------------------------------------------------------------------------------------
    def save(self) -> None:
        path = self.record.run_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        steps = [dict(self.steps[n]) for n in self.definition.names()]
        tmp.write_text(json.dumps({"steps": steps}, indent=1))
        os.replace(tmp, path)

    # -- one step -----------------------------------------------------------------------------------
    def _parts(self, name: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The step's reuse parts and its data inputs as sources (an edge: ``dataset:NAME:VERSION``)."""
        step = self.definition.step(name)
        arguments, used = self.definition.arguments(name, self.values)
        inputs: dict[str, str] = {}
        hashes: dict[str, str] = {}
        labels: dict[str, str] = {}
        for input_name, source in step["inputs"].items():
            edge = self.definition.upstream(name).get(input_name)
            if edge is None:
                inputs[input_name] = source
                hashes[input_name] = self._hash_source(input_name, source)
                continue
            digest, dataset, version = self.outputs[edge[0]][edge[1]]
            inputs[input_name] = f"dataset:{dataset}:{version}"
            hashes[input_name], labels[input_name] = digest, f"version {version}"
        others = {_path(s) for s in self.definition.steps if s["name"] != name}  # as the snapshot names them
        target = self.session.target(step.get("target"))
        env_name = step.get("environment")
        env_def = self.session.config.environments.get(env_name) if env_name else None
        parts = make_parts(
            code=code_hash(self.manifest, _path(step), others - {_path(step)}),
            script=step["script"],
            script_sha=script_hash(self.manifest, _path(step)),
            environment=environment_hash(env_name, env_def, target.type_name, step.get("env")),
            command=[step["script"], *arguments],
            params=used,
            inputs=hashes,
            labels=labels,
        )
        return parts, inputs

    def _hash_source(self, name: str, source: str) -> str:
        from ..data.resolve import resolve
        from ..data.spec import parse_input

        resolved = resolve(self.store, parse_input(f"{name}={source}", "input"))
        return str(resolved.manifest.version)

    def _earlier(self, name: str) -> list[RunRecord]:
        """Completed runs of a step of this pipeline's name, newest first (what reuse and reasons look at)."""
        found = self.store.list_runs(experiment=self.record.experiment, limit=None)
        return [r for r in found if r.tags.get(NAME_TAG) == self.definition.name and r.tags.get(STEP_TAG) == name]

    def _decide(self, name: str) -> None:
        """Reuse the step or launch it; runs on a launcher thread."""
        step = self.definition.step(name)
        parts, inputs = self._parts(name)
        key = key_of(parts)
        earlier = self._earlier(name)
        completed = [r for r in earlier if r.status is RunStatus.COMPLETED]
        if step.get("allow_reuse", True) and name not in self.no_reuse:
            for r in completed:
                if r.tags.get(KEY_TAG) == key and self._outputs_of(name, r) is not None:
                    with self._lock:
                        self.outputs[name] = self._outputs_of(name, r) or {}
                        self.steps[name].update(
                            status="Completed",
                            run_id=r.run_id,
                            reused_from=r.run_id,
                            reason=f"reused {r.run_id}: same code, environment, command, parameters and inputs",
                            key=key,
                        )
                    self.journal.event(type="step", step=name, status="Completed", reused_from=r.run_id, key=key)
                    return
        if not step.get("allow_reuse", True):
            reason = "allow_reuse is off for this step"
        elif name in self.no_reuse:
            reason = "re-run without reuse (--no-reuse / --from)"
        else:
            last = next((r for r in earlier if PARTS_TAG in r.tags), None)
            old = json.loads(last.tags[PARTS_TAG]) if last is not None else None
            reason = what_changed(old, parts)
        arguments, used = self.definition.arguments(name, self.values)
        spec = RunSpec(
            script=step["script"],
            arguments=tuple(arguments),
            target=self.session.default_target(step.get("target")),
            experiment=self.record.experiment,
            name=f"{self.definition.name}.{name}",
            environment=step.get("environment"),
            env_vars=self._env(step, used),
            code=step.get("code"),
            working_dir=step.get("working_dir") or self.record.spec.get("working_dir") or ".",
            tags={
                PIPELINE_TAG: self.record.run_id,
                NAME_TAG: self.definition.name,
                STEP_TAG: name,
                KEY_TAG: key,
                PARTS_TAG: json.dumps(parts),
            },  # fmt: skip
            params=dict(used),
            inputs=inputs,
            outputs={output_dataset(self.definition.name, name, o): p for o, p in step["outputs"].items()},
            parent_run_id=self.record.run_id,
        )
        from ..data.runs import run_inputs

        checked = self.session.check(spec)
        spec, target = checked.spec, checked.target
        spec, resolved = run_inputs(self.store, self.session.config, spec, target)
        properties = {k: v for k, v in self.record.properties.items() if not k.startswith("launchbay.pipeline")}
        handle = self.session.launch(spec, self.snapshot, properties, target=target, inputs=resolved)
        with self._lock:
            self.steps[name].update(status="Running", run_id=handle.run_id, reason=reason, key=key)
        self.journal.event(type="step", step=name, status="Running", run_id=handle.run_id, reason=reason)

    @staticmethod
    def _env(step: dict[str, Any], used: dict[str, Any]) -> dict[str, str]:
        """The step's variables; a cell step gets its parameters as variables too (as a sweep's cell does)."""
        from ..sweeps.names import PARAMS_ENV

        env = dict(step.get("env") or {})
        if step.get("code") is not None and used:
            env[PARAMS_ENV] = json.dumps(used)
        return env

    def _outputs_of(self, name: str, record: RunRecord) -> dict[str, tuple[str, str, int | None]] | None:
        """The step's outputs as the run made them (None when one is missing: it cannot be reused)."""
        made = {i.dataset: i for i in self.store.run_inputs(record.run_id, "output")}
        out = {}
        for output in self.definition.step(name)["outputs"]:
            item = made.get(output_dataset(self.definition.name, name, output))
            if item is None:
                return None
            out[output] = (item.hash, str(item.dataset), item.dataset_version)
        return out

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self) -> int:
        self._begin()
        try:
            if self.resume:
                self._adopt()
            self.save()
            return self._loop()
        except Exception as exc:
            self._stop_running()
            return self._finish("Failed", f"The pipeline controller stopped: {type(exc).__name__}: {exc}")

    def _adopt(self) -> None:
        """Resume: the steps this pipeline already has (Completed kept, running ones watched)."""
        for run_id in self.store.children(self.record.run_id):
            record = self.session.refresh(run_id)
            name = record.tags.get(STEP_TAG)
            if name not in self.steps:
                continue
            if record.status is RunStatus.COMPLETED or not record.status.is_terminal():
                self.steps[name].update(status=record.status.value, run_id=run_id, reason="kept on resume")
                if record.status is RunStatus.COMPLETED:
                    self.outputs[name] = self._outputs_of(name, record) or {}
        state = self.record.run_dir / STATE_FILE
        if state.is_file():  # steps reused before the controller died
            for old in json.loads(state.read_text())["steps"]:
                if old.get("reused_from") and old["name"] in self.steps:
                    record = self.store.get_run(old["reused_from"])
                    outputs = self._outputs_of(old["name"], record)
                    if outputs is not None:
                        self.steps[old["name"]].update(old)
                        self.outputs[old["name"]] = outputs

    def _running(self) -> list[str]:
        return [n for n, s in self.steps.items() if s["status"] not in (WAITING, NOT_STARTED) and s["run_id"]
                and not RunStatus(s["status"]).is_terminal()]  # fmt: skip

    def _stop_running(self) -> None:
        for name in self._running():
            try:
                record = self.store.get_run(self.steps[name]["run_id"])
                self.session.target_for(record).cancel(record)
            except LaunchbayError as exc:
                print(f"launchbay pipeline: could not cancel step {name}: {exc}", file=sys.stderr)

    def _poll(self) -> bool:
        """Catch running steps up; returns whether anything changed."""
        changed = False
        for name in self._running():
            record = self.session.refresh(self.steps[name]["run_id"])
            if record.status.value != self.steps[name]["status"]:
                changed = True
                if record.status is RunStatus.COMPLETED:
                    from ..ingest import ingest_run

                    ingest_run(self.store, record)
                    outputs = self._outputs_of(name, record)
                    if outputs is None:
                        message = record.tags.get("launchbay.dataset_error") or "an output was not written"
                        with self._lock:
                            self.steps[name].update(status="Failed", reason=f"step completed but {message}")
                        continue
                    with self._lock:
                        self.outputs[name] = outputs
                with self._lock:
                    self.steps[name]["status"] = record.status.value
                    if record.status is not RunStatus.COMPLETED and record.error:
                        self.steps[name]["error"] = record.error.get("message")
                self.journal.event(type="step", step=name, status=record.status.value, run_id=record.run_id)
        return changed

    def _ready(self) -> list[str]:
        """Waiting steps whose upstream steps all completed; upstream failures make dependents NotStarted."""
        ready = []
        for name, state in self.steps.items():
            if state["status"] != WAITING or name in self._pending:
                continue
            ups = {u for u, _ in self.definition.upstream(name).values()}
            bad = sorted(u for u in ups if self.steps[u]["status"] in ("Failed", "Canceled", NOT_STARTED))
            if bad:
                state.update(status=NOT_STARTED, reason=f"not started: step {bad[0]} did not complete")
                self.journal.event(type="step", step=name, status=NOT_STARTED, reason=state["reason"])
                continue
            if all(self.steps[u]["status"] == "Completed" for u in ups):
                ready.append(name)
        return ready

    def _loop(self) -> int:
        while True:
            if self._cancel_requested():
                self._stop_running()
                self._wait_running(15.0)
                for state in self.steps.values():
                    if state["status"] == WAITING:
                        state.update(status=NOT_STARTED, reason="not started: the pipeline was canceled")
                return self._finish("Canceled", self.cancel_reason)
            changed = self._poll()
            for name in self._ready():
                self._pending[name] = self._launcher.submit(self._decide, name)
                changed = True
            for name, future in list(self._pending.items()):
                if future.done():
                    del self._pending[name]
                    exc = future.exception()
                    if exc is not None:
                        self.steps[name].update(status="Failed", reason=f"could not start: {exc}")
                    changed = True
            if changed:
                self.save()
                continue
            if not self._pending and not self._running() and not self._ready():
                if all(s["status"] != WAITING for s in self.steps.values()):
                    break
            time.sleep(POLL_S)
        failed = [n for n, s in self.steps.items() if s["status"] != "Completed"]
        if failed:
            return self._finish("Failed", f"Steps that did not complete: {', '.join(failed)}.")
        return self._finish("Completed")

    def _wait_running(self, seconds: float) -> None:
        end = time.time() + seconds
        while self._running() and time.time() < end:
            self._poll()
            time.sleep(0.1)
        for name in self._running():
            self.session.cancel(self.steps[name]["run_id"], wait_s=1.0)
        self._poll()


def main(argv: list[str] | None = None) -> int:
    return controller_main(argv, Controller, "launchbay.pipelines.controller")


if __name__ == "__main__":
    sys.exit(main())
