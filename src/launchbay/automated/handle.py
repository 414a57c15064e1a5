"""AutoMLHandle: an AutoML run, its trials best first, and its best fitted pipeline, from any process."""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import LaunchbayError
from ..handle import RunHandle
from .names import CONFIG_FILE, MODEL_FILE, STATE_FILE


class AutoMLHandle(RunHandle):
    """An AutoML run by id: ``wait``/``cancel``/``status`` act on it (cancel stops every trial)."""

    def __repr__(self) -> str:
        return f"AutoMLHandle(run_id={self.run_id!r}, status={self.status!r})"

    def config(self) -> dict[str, Any]:
        """What it was started with: the checked settings, the data, the trials' target."""
        record = self._session.store.get_run(self.run_id)
        data: dict[str, Any] = json.loads((record.run_dir / CONFIG_FILE).read_text())
        return data

    def state(self) -> dict[str, Any]:
        """Every trial (index, run_id, algorithm, params, status, score, seconds), the best, the model."""
        path = self._session.store.get_run(self.run_id).run_dir / STATE_FILE
        for _ in range(40):  # the controller replaces it atomically; it may not be written yet
            if path.is_file():
                state: dict[str, Any] = json.loads(path.read_text())
                return state
            time.sleep(0.05)
        return {"trials": [], "best_run": None, "best_score": None, "stopped": None, "model": None}

    def trials(self) -> list[dict[str, Any]]:
        """The trials, best score first (those without one after, in the order they started)."""
        goal = self.config()["settings"]["goal"]
        sign = -1.0 if goal == "maximize" else 1.0
        trials = list(self.state()["trials"])
        return sorted(trials, key=lambda t: (t["score"] is None, sign * (t["score"] or 0.0), t["index"]))

    def leaderboard(self) -> Any:
        """A DataFrame, best first: run_id, algorithm, score, status, seconds, hyperparameters."""
        import pandas as pd

        rows = [
            {
                "run_id": t["run_id"],
                "algorithm": t["algorithm"],
                "score": t["score"],
                "status": t["status"],
                "seconds": t["seconds"],
                "hyperparameters": t["params"],
            }
            for t in self.trials()
        ]
        columns = ["run_id", "algorithm", "score", "status", "seconds", "hyperparameters"]
        table = pd.DataFrame(rows, columns=columns)
        table.attrs["primary_metric"] = self.config()["settings"]["primary_metric"]
        return table

    @property
    def best_run(self) -> RunHandle | None:
        """The trial with the best score (None until one completed)."""
        best = self.state().get("best_run")
        return RunHandle(best, self._session) if best else None

    def get_output(self) -> tuple[RunHandle, Any]:
        """(best run, its fitted pipeline): ``fitted_model.predict(raw_rows)``."""
        from .featurize import load_model

        best = self.best_run
        if best is None:
            status = self.status
            raise LaunchbayError(
                f"AutoML run {self.run_id} has no completed trial yet ({status}); wait() for it first."
            )
        return best, load_model(best.file_path(MODEL_FILE))

    def summary(self) -> dict[str, Any]:
        """What ``launchbay automl show RUN --json`` prints."""
        settings = self.config()["settings"]
        state = self.state()
        record = self._session.refresh(self.run_id)
        return {
            "run_id": self.run_id,
            "status": record.status.value,
            "task": settings["task"],
            "primary_metric": settings["primary_metric"],
            "best_run": state.get("best_run"),
            "best_score": state.get("best_score"),
            "leaderboard": [
                {
                    "run_id": t["run_id"],
                    "algorithm": t["algorithm"],
                    "score": t["score"],
                    "params": t["params"],
                    "status": t["status"],
                    "seconds": t["seconds"],
                }  # fmt: skip
                for t in self.trials()
            ],
            "model": state.get("model"),
            "stopped": state.get("stopped"),
            "imbalance": record.tags.get("launchbay.automl.imbalance"),
            "error": (record.error or {}).get("message"),
        }
