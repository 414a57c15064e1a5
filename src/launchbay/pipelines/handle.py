"""PipelineHandle: a pipeline run and its steps, from any process."""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import ConfigError
from ..handle import RunHandle
from .controller import PIPELINE_FILE, STATE_FILE
from .definition import Definition


class PipelineHandle(RunHandle):
    """A pipeline by run id: ``wait``/``cancel``/``status`` act on the pipeline (cancel stops every running step)."""

    def __repr__(self) -> str:
        return f"PipelineHandle(run_id={self.run_id!r}, status={self.status!r})"

    @property
    def steps(self) -> list[dict[str, Any]]:
        """Each step, in the order defined: name, status, run_id, reused_from, reason."""
        record = self._session.store.get_run(self.run_id)
        path = record.run_dir / STATE_FILE
        for _ in range(20):  # the controller replaces the file atomically; it may not exist yet
            if path.is_file():
                steps: list[dict[str, Any]] = json.loads(path.read_text())["steps"]
                return [
                    {k: s.get(k) for k in ("name", "status", "run_id", "reused_from", "reason", "key", "error")}
                    for s in steps
                ]
            time.sleep(0.05)
        return []

    def definition(self) -> Definition:
        """The steps and edges as the pipeline's record keeps them (``pipeline.json``)."""
        cached: Definition | None = getattr(self, "_definition", None)
        if cached is None:
            record = self._session.store.get_run(self.run_id)
            cached = Definition.from_json(json.loads((record.run_dir / PIPELINE_FILE).read_text())["definition"])
            self._definition = cached
        return cached

    def graph(self) -> dict[str, Any]:
        """What a front end draws: the steps (as ``steps``), the data edges and the DAG as SVG."""
        from .dag import dag_svg, edges

        definition, steps = self.definition(), self.steps
        return {"steps": steps, "edges": edges(definition), "svg": dag_svg(definition, steps)}

    def get_step(self, name: str) -> RunHandle:
        """The run of step ``name`` (for a reused step: the run whose results it reused)."""
        for step in self.steps:
            if step["name"] == name:
                if not step["run_id"]:
                    raise ConfigError(f"Step {name!r} has no run ({step['status']}: {step['reason'] or 'waiting'}).")
                return RunHandle(step["run_id"], self._session)
        raise ConfigError(f"Pipeline {self.run_id} has no step {name!r}.")

    def summary(self) -> dict[str, Any]:
        """What ``launchbay pipeline show RUN --json`` prints."""
        status = self.status
        return {
            "run_id": self.run_id,
            "status": status,
            "steps": [{k: s[k] for k in ("name", "status", "run_id", "reused_from", "reason")} for s in self.steps],
        }
