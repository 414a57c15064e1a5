"""A sweep child its policy stopped: machine-readable output says Canceled with ``stopped_early``;
only what a person reads says "stopped early"."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conftest import CLI
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunStore, open_store
from launchbay.sweeps import get_sweep
from launchbay.sweeps.names import INDEX_TAG, SWEEP_FILE, SWEEP_TAG, TERMINATION_TAG

DOCUMENTED = {"Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed", "Failed", "Canceled"}
REASON = "BanditPolicy: loss 9 is worse than the best 0.5 by more than slack 0.1 at step 3"


def ended_child(store: RunStore, sweep_id: str, index: int, loss: float, status: RunStatus, **tags: str) -> str:
    spec = RunSpec(
        script="train.py",
        parent_run_id=sweep_id,
        params={"lr": 10.0**index},
        tags={SWEEP_TAG: sweep_id, INDEX_TAG: str(index), **tags},
    )
    record = store.create_run(spec, target_type="local", snapshot_id=None, properties={})
    with store.write(record.pk) as run:
        run.append_points("loss", [("loss", loss, 0, time.time())])
        run.transition(status, started=time.time(), ended=time.time())
    return record.run_id


def a_sweep_with_one_child_stopped_early() -> tuple[str, str, str]:
    """(sweep, completed child, stopped child) in the store the ``project`` fixture points at."""
    store = open_store(os.environ["LAUNCHBAY_STORE"])
    spec = RunSpec(script="train.py", target="sweep", tags={"launchbay.type": "sweep"})
    sweep = store.create_run(spec, target_type="sweep", snapshot_id=None, properties={})
    space = {"lr": {"kind": "choice", "args": [1.0, 10.0]}}
    config = {
        "primary_metric": "loss",
        "goal": "minimize",
        "max_total_runs": 2,
        "sampling": {"type": "grid", "space": space},
    }
    (sweep.run_dir / SWEEP_FILE).write_text(json.dumps(config))
    with store.write(sweep.pk) as run:
        run.transition(RunStatus.COMPLETED, started=time.time(), ended=time.time())
    good = ended_child(store, sweep.run_id, 0, 0.5, RunStatus.COMPLETED)
    stopped = ended_child(store, sweep.run_id, 1, 9.0, RunStatus.CANCELED, **{TERMINATION_TAG: REASON})
    return sweep.run_id, good, stopped


def test_runs_parent_json_says_canceled_and_stopped_early_and_the_text_says_stopped_early(
    project: Path, cli: CLI
) -> None:
    sweep_id, good, stopped = a_sweep_with_one_child_stopped_early()

    kids = cli.json("runs", "--parent", sweep_id)
    assert isinstance(kids, list)
    by_id = {k["run_id"]: k for k in kids}
    assert {k["status"] for k in kids} <= DOCUMENTED
    assert by_id[stopped]["status"] == "Canceled" and by_id[stopped]["stopped_early"] is True
    assert by_id[stopped]["early_termination"] == REASON
    assert by_id[good]["status"] == "Completed" and by_id[good]["stopped_early"] is False
    assert cli.json("show", stopped)["status"] == by_id[stopped]["status"]  # type: ignore[index]

    text = cli("runs", "--parent", sweep_id, check=True).stdout
    assert "stopped early" in text and "Canceled" not in text


def test_the_sweep_table_carries_the_status_and_renders_the_label(project: Path) -> None:
    sweep_id, good, stopped = a_sweep_with_one_child_stopped_early()

    table = get_sweep(sweep_id).table()
    rows = {r["run_id"]: r for r in table}
    assert json.loads(json.dumps(list(table)))  # plain JSON, as a script would dump it
    assert rows[stopped]["status"] == "Canceled" and rows[stopped]["stopped_early"] is True
    assert rows[good]["status"] == "Completed" and rows[good]["stopped_early"] is False
    assert "stopped early" in str(table) and "Canceled" not in str(table)
    assert "<td>stopped early</td>" in table._repr_html_()


def test_the_rest_api_says_canceled_with_the_reason_in_the_tag_the_sidebar_reads(project: Path) -> None:
    from launchbay.server.service import LaunchbayService

    _sweep_id, _good, stopped = a_sweep_with_one_child_stopped_early()
    run = LaunchbayService.open().run(stopped)
    assert run["status"] == "Canceled" and run["tags"][TERMINATION_TAG] == REASON
