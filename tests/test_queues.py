"""Run queues: ``max_concurrent_runs`` on a target, on the local target and over SSH.

A submit past the limit is recorded Queued with its place; the store's supervisor (started by that
submit, one per store, gone when nothing waits) starts queued runs in submit order, ``--priority``
first, as slots free. Each run here writes when it started and ended (by the runner's clock, the
store's ``started``/``ended``), so "never two at once" is read off the record, not sampled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI, SSH_ENV, need_service, ssh_settings, toml_table, wait_for, write

SLEEPER = """
import os, sys, time
wait = sys.argv[1]
if wait.replace(".", "").isdigit():
    time.sleep(float(wait))
else:  # a gate: holds its slot until the test opens it (the sshd runs on this machine: same paths)
    deadline = time.time() + 120
    while not os.path.exists(wait) and time.time() < deadline:
        time.sleep(0.05)
print("done", sys.argv[2:])
"""


@pytest.fixture(params=["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def box(request: pytest.FixtureRequest, project: Path, tmp_path: Path) -> Iterator[str]:
    """A target ``box`` that takes one run at a time: the local machine, or the test sshd."""
    if request.param == "ssh":
        need_service(all(SSH_ENV.values()), "The test sshd (LAUNCHBAY_TEST_SSH_*)")
        settings: dict[str, object] = ssh_settings(tmp_path / "remote", max_concurrent_runs=1)
    else:
        settings = {"type": "local", "max_concurrent_runs": 1}
    (project / "launchbay.toml").write_text(toml_table("box", settings))
    write(project, "sleep.py", SLEEPER)
    yield request.param
    if request.param == "ssh":
        from launchbay.targets.sshconn import close_connections

        close_connections()


def submit(cli: CLI, seconds: float | Path, *extra: str, priority: int | None = None) -> str:
    more = ["--priority", str(priority)] if priority is not None else []
    proc = cli("submit", "-t", "box", "--detach", *more, "sleep.py", "--", str(seconds), *extra, check=True)
    return proc.stdout.strip()


def runs(cli: CLI) -> dict[str, dict[str, Any]]:
    listed = cli.json("runs")
    assert isinstance(listed, list)
    return {r["run_id"]: r for r in listed}


def all_ended(cli: CLI, ids: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
    def ended() -> dict[str, dict[str, Any]] | None:
        now = runs(cli)
        return now if all(now[i]["status"] in ("Completed", "Failed", "Canceled") for i in ids) else None

    return wait_for(ended, timeout=timeout, interval=0.5)  # type: ignore[no-any-return]


def stamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def one_at_a_time(records: list[dict[str, Any]]) -> None:
    """Each run started only after the one before it had ended."""
    for before, after in zip(records, records[1:]):
        assert stamp(after["started"]) >= stamp(before["ended"]), (before["run_id"], after["run_id"])


def supervisor_pid(project: Path) -> int:
    store = Path(os.environ["LAUNCHBAY_STORE"])
    return int((store / "supervisor.lock").read_text().split()[0])


def widget_header(run_id: str) -> str:
    """The run widget's status line for a run, as a notebook shows it."""
    from launchbay import get_run
    from launchbay.ipython.widgets import RunWidget

    widget = RunWidget(get_run(run_id))
    widget._update(widget.handle.record())
    return str(widget._header.value)


def test_limit_1_with_5_submits_runs_them_one_at_a_time_in_submit_order(box: str, cli: CLI, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    ids = [submit(cli, gate, "0")] + [submit(cli, 0.3, str(i)) for i in range(1, 5)]
    listed = runs(cli)
    queued = [listed[i] for i in ids[1:]]
    assert [q["status"] for q in queued] == ["Queued"] * 4, "past the limit, submits wait"
    assert [q["queue_position"] for q in queued] == [1, 2, 3, 4]
    assert listed[ids[0]]["queue_position"] is None  # the first took the free slot: not in a queue
    table = cli("queue", "box", "--json", check=True).stdout
    assert [row["run_id"] for row in json.loads(table)] == [q["run_id"] for q in queued]
    assert set(json.loads(table)[0]) >= {"run_id", "position", "priority", "submitted"}
    assert "Queued, 1st for box" in cli("runs", check=True).stdout
    assert "Queued, 2nd for box" in cli("show", ids[2], check=True).stdout
    assert "Queued, 3rd for box" in widget_header(ids[3])
    from launchbay.server.service import LaunchbayService

    rest = {r["run_id"]: r for r in LaunchbayService.open(None, str(Path.cwd())).list_runs()["runs"]}
    assert [(rest[i]["queue_position"], rest[i]["queue"]) for i in ids[1:3]] == [(1, "box"), (2, "box")]

    gate.touch()
    ended = all_ended(cli, ids)
    assert [ended[i]["status"] for i in ids] == ["Completed"] * 5
    one_at_a_time([ended[i] for i in ids])
    assert cli.json("queue") == []


def test_cancel_of_a_queued_run_ends_it_canceled_and_it_never_starts(box: str, cli: CLI, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    first, second, third = submit(cli, gate), submit(cli, 0.2), submit(cli, 0.2)
    out = cli("cancel", second, check=True).stdout
    assert out.strip() == f"{second} Canceled"
    shown = cli.json("show", second)
    assert isinstance(shown, dict)
    assert shown["status"] == "Canceled" and shown["queue_position"] is None
    assert shown["started"] is None and "queued" in shown["error"]["message"]

    gate.touch()
    ended = all_ended(cli, [first, third])
    assert ended[first]["status"] == ended[third]["status"] == "Completed"
    time.sleep(1)
    assert runs(cli)[second]["started"] is None  # still never started once the queue ran dry


def test_priority_goes_first_and_queue_move_top_reorders(box: str, cli: CLI, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    first = submit(cli, gate)
    low, high = submit(cli, 0.2), submit(cli, 0.2, priority=5)
    last = submit(cli, 0.2)
    order = [r["run_id"] for r in json.loads(cli("queue", "--json", check=True).stdout)]
    assert order == [high, low, last]
    moved = cli("queue", "move", last, "--top", check=True).stdout
    assert "Queued, 1st for box" in moved
    assert [r["run_id"] for r in json.loads(cli("queue", "--json", check=True).stdout)] == [last, high, low]

    gate.touch()
    ended = all_ended(cli, [first, low, high, last])
    one_at_a_time([ended[i] for i in (first, last, high, low)])


def test_sigkill_of_the_supervisor_loses_no_queued_run(box: str, cli: CLI, project: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    ids = [submit(cli, gate)] + [submit(cli, 0.3, str(i)) for i in range(1, 4)]
    pid = wait_for(lambda: supervisor_pid(project))
    os.kill(pid, signal.SIGKILL)
    gate.touch()
    time.sleep(2)  # the gated run ends with no supervisor to start the next
    from launchbay.session import open_session

    with open_session() as session:  # read without a refresh (which would start a new supervisor)
        waiting = session.store.queue_entries()
    assert [e.run_id for e in waiting] == ids[1:]
    # the next look (`launchbay runs` refreshes the queued runs) starts a new supervisor, which starts them
    ended = all_ended(cli, ids)
    assert [ended[i]["status"] for i in ids] == ["Completed"] * 4
    one_at_a_time([ended[i] for i in ids])


def test_20_submitters_in_parallel_never_exceed_the_limit(project: Path, cli: CLI) -> None:
    (project / "launchbay.toml").write_text(toml_table("box", {"type": "local", "max_concurrent_runs": 2}))
    write(project, "sleep.py", SLEEPER)
    command = [sys.executable, "-m", "launchbay", "submit", "-t", "box", "--detach", "sleep.py", "--", "0.5"]
    out, quiet = subprocess.PIPE, subprocess.DEVNULL
    procs = [subprocess.Popen(command, cwd=project, stdout=out, stderr=quiet, text=True) for _ in range(20)]
    ids = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and len(set(ids)) == 20
    ended = all_ended(cli, ids, timeout=240)
    assert all(ended[i]["status"] == "Completed" for i in ids)
    spans = sorted((stamp(ended[i]["started"]), stamp(ended[i]["ended"])) for i in ids)
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most <= 2


def test_a_bad_limit_is_one_line_and_nothing_is_recorded(project: Path, cli: CLI) -> None:
    (project / "launchbay.toml").write_text(toml_table("box", {"type": "local", "max_concurrent_runs": -1}))
    write(project, "sleep.py", SLEEPER)
    proc = cli("submit", "-t", "box", "--detach", "sleep.py", "--", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("launchbay: error: [targets.box] max_concurrent_runs")
    assert cli.json("runs") == []


def test_a_run_that_fails_to_start_frees_its_slot(project: Path, cli: CLI) -> None:
    (project / "launchbay.toml").write_text(toml_table("box", {"type": "local", "max_concurrent_runs": 1}))
    write(project, "sleep.py", SLEEPER)
    gate = project.parent / "gate"
    first = submit(cli, gate)
    doomed = submit(cli, 0.1)
    after = submit(cli, 0.1)
    # the queued run's snapshot is taken away before its turn: its start fails, and the next one runs
    from launchbay.session import open_session

    with open_session() as session:
        record = session.store.get_run(doomed)
        session.store.update_run(record.pk, snapshot_id="0" * 64)
    gate.touch()
    ended = all_ended(cli, [first, doomed, after])
    assert ended[doomed]["status"] == "Failed"
    assert "Could not start the queued run" in ended[doomed]["error"]["message"]
    assert ended[after]["status"] == "Completed"


def test_supervise_runs_until_nothing_is_left_and_install_prints_a_systemd_user_unit(project: Path, cli: CLI) -> None:
    assert "Nothing left to do" in cli("supervise", check=True, timeout=30).stdout
    unit = cli("supervise", "--install", check=True).stdout
    assert "[Service]" in unit and "-m launchbay.supervisor --stay" in unit and "WantedBy=default.target" in unit


def test_an_experiment_limit_queues_that_experiments_runs(project: Path, cli: CLI, tmp_path: Path) -> None:
    (project / "launchbay.toml").write_text("[experiments.nightly]\nmax_concurrent_runs = 1\n")
    write(project, "sleep.py", SLEEPER)
    gate = tmp_path / "gate"
    first = cli("submit", "-e", "nightly", "--detach", "sleep.py", "--", str(gate), check=True).stdout.strip()
    second = cli("submit", "-e", "nightly", "--detach", "sleep.py", "--", "0.1", check=True).stdout.strip()
    other = cli("submit", "-e", "daytime", "--detach", "sleep.py", "--", "0.1", check=True).stdout.strip()
    listed = runs(cli)
    assert listed[second]["status"] == "Queued" and listed[second]["queue_position"] == 1
    assert listed[other]["queue_position"] is None  # another experiment: no limit, no queue
    assert "Queued, 1st for experiment nightly" in cli("show", second, check=True).stdout
    gate.touch()
    ended = all_ended(cli, [first, second, other])
    one_at_a_time([ended[first], ended[second]])
