"""Schedules: a launchbay command line fired by rule by the store's supervisor, kept in the store.

Each fire is a normal run tagged ``launchbay.schedule = NAME``; a due time is taken once (a killed
supervisor's heir never fires it again); a due time missed while nothing ran fires once late, or is
recorded skipped with ``--no-catch-up``. Bad input is one line and writes nothing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI, SSH_ENV, need_service, ssh_settings, toml_table, wait_for, write


@pytest.fixture(params=["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def box(request: pytest.FixtureRequest, project: Path, tmp_path: Path) -> Iterator[str]:
    if request.param == "ssh":
        need_service(all(SSH_ENV.values()), "The test sshd (LAUNCHBAY_TEST_SSH_*)")
        settings: dict[str, object] = ssh_settings(tmp_path / "remote")
    else:
        settings = {"type": "local"}
    (project / "launchbay.toml").write_text(toml_table("box", settings))
    write(project, "train.py", "print('trained')\n")
    yield request.param
    if request.param == "ssh":
        from launchbay.targets.sshconn import close_connections

        close_connections()


@pytest.fixture(autouse=True)
def no_supervisor_left(project: Path) -> Iterator[None]:
    """A test's schedules go with it: its supervisor is stopped (it would fire on otherwise)."""
    yield
    lock = Path(os.environ["LAUNCHBAY_STORE"]) / "supervisor.lock"
    if lock.is_file() and lock.read_text().strip():
        try:
            os.kill(int(lock.read_text().split()[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def schedule(cli: CLI, name: str) -> dict[str, Any]:
    shown = cli.json("schedule", "show", name)
    assert isinstance(shown, dict)
    return shown


def store_now() -> Any:
    from launchbay.session import open_session

    return open_session()


def test_an_every_schedule_fires_twice_each_a_tagged_run(box: str, cli: CLI) -> None:
    cli("schedule", "add", "often", "--every", "3s", "--", "submit", "-t", "box", "--detach", "train.py", check=True)
    listed = cli.json("schedule", "list")
    assert isinstance(listed, list) and len(listed) == 1
    assert set(listed[0]) >= {"name", "rule", "command", "paused", "next_fire", "last_runs"}
    assert listed[0]["rule"] == "every 3s" and listed[0]["command"] == ["submit", "-t", "box", "--detach", "train.py"]

    fired = wait_for(lambda: (s := schedule(cli, "often"))["last_runs"][1:] and s, timeout=60)
    cli("schedule", "pause", "often", check=True)
    assert [f["outcome"] for f in fired["fires"]][-2:] == ["fired", "fired"]
    for run_id in fired["last_runs"][:2]:
        shown = cli.json("show", run_id)
        assert isinstance(shown, dict)
        assert shown["tags"]["launchbay.schedule"] == "often" and shown["target"] == "box"
        wait_for(lambda rid=run_id: cli.json("show", rid)["status"] == "Completed", timeout=60)  # type: ignore[index]
    paused = schedule(cli, "often")
    assert paused["paused"] is True and paused["next_fire"] is None


def test_a_missed_fire_runs_once_at_the_next_start_or_is_skipped_with_no_catch_up(project: Path, cli: CLI) -> None:
    write(project, "train.py", "print('trained')\n")
    cli("schedule", "add", "late", "--every", "1h", "--", "submit", "--detach", "train.py", check=True)
    cli(
        "schedule",
        "add",
        "strict",
        "--every",
        "1h",
        "--no-catch-up",
        "--",
        "submit",
        "--detach",
        "train.py",
        check=True,
    )
    with store_now() as session:  # the machine was off for three hours: three due times passed unseen
        for name in ("late", "strict"):
            session.store.update_schedule(name, next_fire=time.time() - 3 * 3600)
    wait_for(lambda: schedule(cli, "late")["fires"] and schedule(cli, "strict")["fires"], timeout=30)
    time.sleep(2)  # and nothing more comes of the other two missed due times
    late, done = schedule(cli, "late"), schedule(cli, "strict")
    assert [f["outcome"] for f in late["fires"]] == ["caught-up"] and len(late["last_runs"]) == 1
    assert "missed at" in late["fires"][0]["message"]
    assert [f["outcome"] for f in done["fires"]] == ["skipped"] and done["last_runs"] == []
    assert "--no-catch-up" in done["fires"][0]["message"]
    from datetime import datetime

    assert datetime.fromisoformat(late["next_fire"]).timestamp() > time.time()


def test_sigkill_of_the_supervisor_never_fires_a_due_time_twice(project: Path, cli: CLI) -> None:
    write(project, "train.py", "print('trained')\n")
    cli("schedule", "add", "often", "--every", "2s", "--", "submit", "--detach", "train.py", check=True)
    wait_for(lambda: schedule(cli, "often")["last_runs"], timeout=30)
    lock = Path(os.environ["LAUNCHBAY_STORE"]) / "supervisor.lock"
    os.kill(int(lock.read_text().split()[0]), signal.SIGKILL)
    time.sleep(3)  # due times pass with no supervisor
    cli("schedule", "list", check=True)  # a look at the schedules starts the heir
    shown = wait_for(lambda: (s := schedule(cli, "often"))["last_runs"][2:] and s, timeout=30)
    cli("schedule", "pause", "often", check=True)
    dues = [f["due"] for f in shown["fires"]]
    assert len(dues) == len(set(dues))
    runs = [r["run_id"] for r in cli.json("runs")]  # type: ignore[union-attr]
    assert len(set(shown["last_runs"])) == len(shown["last_runs"]) and set(shown["last_runs"]) <= set(runs)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["bad", "--cron", "61 * * * *"], "Invalid cron expression '61 * * * *': field 1 (minute) '61' is wrong"),
        (["bad", "--cron", "0 3 * * mon-zz"], "field 5 (day of week)"),
        (["bad", "--cron", "0 3 * *"], "it needs 5 fields"),
        (["bad", "--every=-5m"], "--every takes a duration > 0"),
        (["bad", "--every", "soon"], "--every takes a duration > 0"),
        (["bad", "--every", "5m", "--cron", "0 3 * * *"], "--on-change dataset:NAME (one of them)"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(cli: CLI, args: list[str], said: str) -> None:
    proc = cli("schedule", "add", *args, "--", "submit", "train.py")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert said in proc.stderr
    assert cli.json("schedule", "list") == []


def test_an_existing_name_or_a_command_launchbay_does_not_run_is_refused(cli: CLI) -> None:
    cli("schedule", "add", "nightly", "--cron", "0 3 * * *", "--", "submit", "train.py", check=True)
    again = cli("schedule", "add", "nightly", "--every", "5m", "--", "submit", "other.py")
    assert again.returncode == 2 and "A schedule named 'nightly' exists" in again.stderr
    typo = cli("schedule", "add", "typo", "--every", "5m", "--", "sbumit", "train.py")
    assert typo.returncode == 2 and "invalid choice: 'sbumit'" in typo.stderr
    listed = cli.json("schedule", "list")
    assert [s["name"] for s in listed] == ["nightly"]  # type: ignore[union-attr]
    assert listed[0]["rule"] == "cron 0 3 * * *" and listed[0]["command"] == ["submit", "train.py"]  # type: ignore[index]
    cli("schedule", "rm", "nightly", check=True)
    assert cli.json("schedule", "list") == []


def test_a_notebook_adds_and_lists_schedules_with_the_launchbay_magic(project: Path, cli: CLI) -> None:
    from ipython_driver import run_cells

    out = run_cells(
        project,
        "%load_ext launchbay",
        '%launchbay schedule add nightly --cron "0 3 * * *" -- submit train.py',
        "%launchbay schedule list",
    )
    assert "schedule nightly: cron 0 3 * * *" in out and "launchbay submit train.py" in out
    assert [s["name"] for s in cli.json("schedule", "list")] == ["nightly"]  # type: ignore[union-attr]


def test_the_python_api_adds_and_lists_the_same_schedules(project: Path, cli: CLI) -> None:
    import launchbay
    from launchbay.errors import ConfigError

    made = launchbay.schedule("nightly", "submit -t box train.py", cron="0 3 * * *", catch_up=False)
    assert made["rule"] == "cron 0 3 * * *" and made["command"] == ["submit", "-t", "box", "train.py"]
    assert made["catch_up"] is False and made["next_fire"].endswith("03:00:00.000+00:00")
    with pytest.raises(ConfigError, match="field 2 \\(hour\\)"):
        launchbay.schedule("broken", ["submit", "train.py"], cron="0 24 * * *")
    assert [s["name"] for s in launchbay.schedules()] == ["nightly"]
    assert cli.json("schedule", "list") == launchbay.schedules()


def test_on_change_fires_once_per_new_version_of_a_dataset(project: Path, cli: CLI) -> None:
    write(project, "train.py", "import os\nprint('trained on', os.environ.get('LAUNCHBAY_SCHEDULE_VERSION'))\n")
    write(project, "raw/a.csv", "x\n1\n")
    cli("data", "add", "raw", "raw", check=True)
    unknown = cli("schedule", "add", "retrain", "--on-change", "dataset:nope", "--", "submit", "train.py")
    assert unknown.returncode == 2 and "No dataset 'nope' to watch (datasets: raw)" in unknown.stderr
    assert cli.json("schedule", "list") == []

    cli("schedule", "add", "retrain", "--on-change", "dataset:raw", "--", "submit", "--detach", "train.py", check=True)
    time.sleep(2)
    assert schedule(cli, "retrain")["fires"] == []  # the version there when it was added does not fire it
    for n in (2, 3):
        write(project, "raw/a.csv", f"x\n{n}\n")
        cli("data", "add", "raw", "raw", check=True)
        wait_for(lambda n=n: len(schedule(cli, "retrain")["last_runs"]) == n - 1, timeout=30)
    time.sleep(2)
    shown = schedule(cli, "retrain")
    assert [f["message"] for f in shown["fires"]] == ["dataset raw version 3", "dataset raw version 2"]
    assert shown["rule"] == "on-change dataset:raw" and shown["next_fire"] is None
    newest = shown["last_runs"][0]
    wait_for(lambda: cli.json("show", newest)["status"] == "Completed", timeout=60)  # type: ignore[index]
    assert "trained on raw:3" in cli("logs", newest, check=True).stdout
    assert cli.json("show", newest)["tags"]["launchbay.schedule"] == "retrain"  # type: ignore[index]
