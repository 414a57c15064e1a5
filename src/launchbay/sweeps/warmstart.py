"""A sweep that goes on from earlier ones: Azure ML v1's ``resume_from`` and ``resume_child_runs``.

* ``warm_start`` (v1 ``resume_from``): earlier sweeps whose trials the new one learns from. Their
  params and last primary-metric values are written into the new sweep's configuration once, when
  it starts, so a Bayesian sampler treats them as its first observations (random, grid and Sobol
  draw as they would anyway), and the best run may be one of them
  (``HyperDriveRun.get_best_run_by_primary_metric(include_resume_from_runs=True)``).
* ``resume_children`` (v1 ``resume_child_runs``): trials of earlier sweeps that were stopped part way
  (canceled, preempted, cut off by a time limit). Each is the new sweep's next trial with the same
  params, and gets the old trial's ``outputs/`` as its data input ``checkpoint``
  (``$LAUNCHBAY_INPUT_CHECKPOINT``), as ``launchbay resume`` gives a single run. They count towards
  ``max_total_runs``.

Both are checked before anything is recorded: a run that is not a sweep, a trial without params or
without checkpoints, or one still running is one line that says what to give instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..session import Session


def warm_trials(session: Session, sweep_ids: Sequence[str], metric: str) -> list[dict[str, Any]]:
    """Every trial of the given sweeps: run id, params, last value of ``metric`` (None without one), state."""
    from .controller import trial_state
    from .handle import SweepHandle

    out: list[dict[str, Any]] = []
    for sweep_id in dict.fromkeys(sweep_ids):
        record = session.store.get_run(sweep_id)
        if record.tags.get("launchbay.type") != "sweep":
            raise ConfigError(
                f"{record.run_id} is not a sweep; warm_start (v1 resume_from) takes the sweeps whose trials "
                "the new sweep learns from."
            )
        handle = SweepHandle(record.run_id, session)
        children = handle.children()
        last = handle.last_values(children, metric)
        for child in reversed(children):  # oldest first: the order they were tried in
            value = last.get(child.pk)
            out.append(
                {
                    "run_id": child.run_id,
                    "params": dict(child.spec.get("params") or {}),
                    "value": value if value is not None and value == value else None,
                    "state": trial_state(child),
                }
            )
    return out


def resumed_trials(session: Session, run_ids: Sequence[str], max_total_runs: int) -> list[dict[str, Any]]:
    """The trials to go on from: run id, params and the ``outputs/`` folder each resumes from."""
    from ..reproduce import checkpoint_of

    ids = list(dict.fromkeys(run_ids))
    if len(ids) > max_total_runs:
        raise ConfigError(
            f"{len(ids)} trials to resume, but max_total_runs is {max_total_runs}: resumed trials count towards "
            "it; raise max_total_runs or resume fewer."
        )
    out: list[dict[str, Any]] = []
    for run_id in ids:
        record = session.store.get_run(run_id)
        params = record.spec.get("params") or {}
        if record.parent_run_id is None or not params:
            raise ConfigError(
                f"{record.run_id} is not a sweep's trial (it has no sampled params); resume a single run with "
                f"launchbay resume {record.run_id}."
            )
        checkpoint = checkpoint_of(session, record)
        out.append({"run_id": record.run_id, "params": dict(params), "checkpoint": str(checkpoint)})
    return out
