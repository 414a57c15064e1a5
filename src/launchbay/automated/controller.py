"""The AutoML controller: a detached process that asks FLAML's search for configs and runs each as a trial.

The AutoML run is a run record (target ``automl``) whose journal this process writes as a runner would;
its settings are ``RUN_DIR/automl.json`` and every trial (algorithm, params, status, score) is in
``RUN_DIR/automl_state.json``, rewritten at each change. Each trial is an ordinary child run of
``automl_trial.py`` on the chosen target. It ends at the timeout (running trials are stopped), after
``iterations`` trials, when a trial reaches ``experiment_exit_score``, or when FLAML's search has nothing
more to try; then the best trial's fitted pipeline is registered as ``automl-<experiment>``.
Usage: ``python -m launchbay.automated.controller [--detach] STORE RUN_ID``. Cancel = SIGTERM or
``RUN_DIR/cancel``: every running trial is canceled.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import LaunchbayError
from ..models import RunSpec, RunStatus
from ..runcontrol import ControllerRun, controller_main
from ..store import RunRecord, open_store
from ..targets.local import spawn_detached
from .names import AUTOML_TAG, CONFIG_FILE, INDEX_TAG, MODEL_FILE, STATE_FILE, TRIAL_SCRIPT

POLL_S = 0.05


def start_controller(store_uri: str, record: RunRecord) -> None:
    command = [sys.executable, "-m", "launchbay.automated.controller", "--detach", store_uri, record.run_id]
    spawn_detached(command, record.run_dir, dict(os.environ), "the AutoML controller")


class Controller(ControllerRun):
    kind = "automl"

    def __init__(self, store_path: str, run_id: str, resume: bool = False) -> None:
        from ..config import load_config
        from ..session import Session
        from ..sweeps.controller import snapshot_from_id

        self.store = open_store(store_path)
        self.record = self.store.get_run(run_id)
        super().__init__(self.store, self.record)
        self.config: dict[str, Any] = json.loads((self.record.run_dir / CONFIG_FILE).read_text())
        self.settings: dict[str, Any] = self.config["settings"]
        source = self.record.properties.get("launchbay.source_dir")
        self.session = Session(self.store, load_config(Path(source)) if source else None)
        self.snapshot = snapshot_from_id(self.store, str(self.record.snapshot_id), source)
        self.trials: list[dict[str, Any]] = []
        self.stopped: str | None = None
        self.model: dict[str, Any] | None = None
        self._launcher = ThreadPoolExecutor(max_workers=max(1, int(self.settings["max_concurrent"])))

    # -- state ------------------------------------------------------------------------------------
    def best(self) -> dict[str, Any] | None:
        done = [t for t in self.trials if t["status"] == "Completed" and t["score"] is not None]
        sign = -1.0 if self.settings["goal"] == "maximize" else 1.0
        return min(done, key=lambda t: (sign * t["score"], t["index"]), default=None)

    def save(self) -> None:
        best = self.best()
        state = {
            "trials": self.trials,
            "best_run": best["run_id"] if best else None,
            "best_score": best["score"] if best else None,
            "stopped": self.stopped,
            "model": self.model,
        }
        path = self.record.run_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, path)

    # -- trials ------------------------------------------------------------------------------------
    def _launch(self, index: int, algorithm: str, params: dict[str, Any]) -> str:
        from ..data.runs import run_inputs

        arguments = ["--algorithm", algorithm]
        for name, value in params.items():
            arguments += [f"--{name}", json.dumps(value)]
        spec = RunSpec(
            script=TRIAL_SCRIPT,
            arguments=tuple(arguments),
            target=self.config["target"],
            experiment=self.record.experiment,
            name=f"{self.record.run_id}_{index} {algorithm}",
            environment=self.config.get("environment"),
            working_dir=".",
            tags={AUTOML_TAG: self.record.run_id, INDEX_TAG: str(index)},
            params={"algorithm": algorithm, **params},
            inputs=dict(self.config["inputs"]),
            parent_run_id=self.record.run_id,
        )
        checked = self.session.check(spec)
        spec, target = checked.spec, checked.target
        spec, resolved = run_inputs(self.store, self.session.config, spec, target)
        properties = {k: v for k, v in self.record.properties.items() if not k.startswith("launchbay.automl")}
        handle = self.session.launch(spec, self.snapshot, properties, target=target, inputs=resolved)
        self.journal.event(type="trial", run_id=handle.run_id, index=index, algorithm=algorithm, params=params)
        return handle.run_id

    def _running(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t["run_id"] and not RunStatus(t["status"]).is_terminal()]

    def _poll(self, search: Any) -> bool:
        from ..ingest import ingest_run

        changed = False
        for trial in self._running():
            record = self.session.refresh(trial["run_id"])
            if not record.status.is_terminal():
                if record.status.value != trial["status"]:
                    trial["status"], changed = record.status.value, True
                continue
            changed = True
            score = None
            if record.status is RunStatus.COMPLETED:
                ingest_run(self.store, record)
                record = self.store.get_run(record.run_id)
                values = self.store.read_series(record, self.settings["primary_metric"]).values.tolist()
                score = float(values[-1]) if values else None
            ended = record.ended or time.time()
            trial.update(status=record.status.value, score=score, ended=ended, seconds=ended - trial["started"])
            if trial.get("error") is None and record.error:
                trial["error"] = record.error.get("message")
            search.complete(str(trial["index"]), score, trial["seconds"])
            self.journal.event(type="trial", run_id=record.run_id, status=record.status.value, score=score)
        return changed

    def _stop_running(self, reason: str | None = None) -> None:
        for trial in self._running():
            try:
                record = self.store.get_run(trial["run_id"])
                if reason:
                    self.store.set_tag(record.pk, "launchbay.early_termination", reason)
                self.session.target_for(record).cancel(record)
            except LaunchbayError as exc:
                print(f"launchbay automl: could not cancel {trial['run_id']}: {exc}", file=sys.stderr)

    def _wait_running(self, seconds: float, search: Any) -> None:
        end = time.time() + seconds
        while self._running() and time.time() < end:
            self._poll(search)
            time.sleep(0.1)
        for trial in self._running():
            self.session.cancel(trial["run_id"], wait_s=1.0)
        self._poll(search)

    def _reached_exit_score(self) -> bool:
        target, best = self.settings.get("exit_score"), self.best()
        if target is None or best is None:
            return False
        return bool(best["score"] >= target if self.settings["goal"] == "maximize" else best["score"] <= target)

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> int:
        self._begin()
        started = time.time()
        try:
            self.save()
            search = self._search()
            return self._loop(search, started)
        except Exception as exc:
            self._stop_running()
            return self._finish("Failed", f"The AutoML controller stopped: {type(exc).__name__}: {exc}")

    def _search(self) -> Any:
        """FLAML's searcher, on the training data as featurized (its size shapes the search space)."""
        import numpy as np
        import pandas as pd

        from .featurize import make_featurizer
        from .search import Search
        from .trial import read_table

        frame = read_table(self.config["data"]["location"])
        kinds, label = self.settings["kinds"], self.settings["label"]
        X = make_featurizer(kinds).fit_transform(frame[list(kinds)])
        if self.settings["task"] == "classification":
            y = np.asarray(pd.factorize(frame[label], sort=True)[0])
        else:
            y = frame[label].to_numpy(dtype=float)
        return Search(
            self.settings["task"], self.settings["models"], X, y, self.settings["goal"], self.settings["seed"]
        )

    def _loop(self, search: Any, started: float) -> int:
        timeout = float(self.settings["timeout_s"])
        iterations = self.settings.get("iterations")
        concurrent = int(self.settings["max_concurrent"])
        while True:
            if self._cancel_requested():
                self._stop_running()
                self._wait_running(15.0, search)
                return self._finish("Canceled", self.cancel_reason)
            changed = self._poll(search)
            if time.time() - started >= timeout:
                self.stopped = f"the experiment timeout ({timeout:g} s) was reached"
                self._stop_running(f"The AutoML run reached its {timeout:g} s timeout.")
                self._wait_running(max(1.0, 0.05 * timeout), search)
                break
            if self._reached_exit_score():
                self.stopped = f"a trial reached experiment_exit_score {self.settings['exit_score']}"
                self._stop_running("Another trial reached the experiment exit score.")
                self._wait_running(15.0, search)
                break
            picks: list[tuple[int, str, dict[str, Any]]] = []
            while len(self._running()) + len(picks) < concurrent:
                if iterations is not None and len(self.trials) + len(picks) >= int(iterations):
                    break
                index = len(self.trials) + len(picks)
                nxt = search.suggest(str(index))
                if nxt is None:
                    break
                picks.append((index, *nxt))
            if picks:
                self._start(picks)
                changed = True
            if changed:
                self.save()
            if not self._running() and not picks:
                if iterations is not None and len(self.trials) >= int(iterations):
                    self.stopped = f"{iterations} iterations were run"
                else:
                    self.stopped = "FLAML's search had nothing more to try"
                break
            time.sleep(POLL_S)
        return self._end()

    def _start(self, picks: list[tuple[int, str, dict[str, Any]]]) -> None:
        futures = [self._launcher.submit(self._launch, index, a, p) for index, a, p in picks]
        for (index, algorithm, params), future in zip(picks, futures):
            trial: dict[str, Any] = {"index": index, "algorithm": algorithm, "params": params, "score": None}
            trial.update(started=time.time(), ended=None, seconds=None, error=None)
            try:
                trial.update(run_id=future.result(), status="Starting")
            except Exception as exc:  # one trial that cannot start fails alone; the others go on
                trial.update(run_id=None, status="Failed", error=f"could not start: {exc}")
            self.trials.append(trial)

    def _end(self) -> int:
        best = self.best()
        if best is None:
            failed = [t for t in self.trials if t["status"] == "Failed"]
            first = next((t["error"] for t in failed if t.get("error")), None)
            why = f"; the first failure: {first}" if first else ""
            return self._finish("Failed", f"No trial completed with the metric {self.settings['primary_metric']}{why}.")
        self._register(best)
        return self._finish("Completed")

    def _register(self, best: dict[str, Any]) -> None:
        """The best trial's fitted pipeline becomes the next version of the model, its card naming the data."""
        from ..registry import ModelRegistry

        record = self.session.refresh(best["run_id"])
        data = self.config["data"]
        tags = {
            "automl_run": self.record.run_id,
            "algorithm": best["algorithm"],
            "task": self.settings["task"],
            "primary_metric": self.settings["primary_metric"],
            "score": f"{best['score']:.6g}",
            "data": data["label"],
        }
        description = (
            f"AutoML best of {len(self.trials)} trials: {best['algorithm']}, {self.settings['primary_metric']}"
            f" {best['score']:.4g}; one fitted pipeline (featurization and estimator), trained on {data['label']}."
        )
        version = ModelRegistry(self.store).register(
            record, self.config["model_name"], MODEL_FILE, tags=tags, description=description
        )
        self.model = {"name": version.name, "version": version.version}
        self.store.set_tag(record.pk, "launchbay.automl.best", "true")
        self.store.set_tag(self.record.pk, "launchbay.automl.best_run", best["run_id"])
        self.store.set_tag(self.record.pk, "launchbay.automl.model", f"{version.name}:{version.version}")


def main(argv: list[str] | None = None) -> int:
    return controller_main(argv, Controller, "launchbay.automated.controller")


if __name__ == "__main__":
    sys.exit(main())
