"""Two people, two project folders, one team store (PostgreSQL + S3): each sees the other's runs.

Alice and Bob each have a project folder whose launchbay.toml names the same team store (the
index in the test PostgreSQL, blobs in moto's S3 *emulator*) and their own ``[user] name``; each
has a local folder of their own (``[store] cache``), as two machines would, so nothing reaches
Bob from Alice's disk: her runs' metrics come from PostgreSQL and her files from the bucket. The
password comes from PGPASSFILE and the S3 keys from ``${ENV}`` references; neither is in a file.
They submit local runs from the CLI and the Python API and read each other's runs, metrics and
files through both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_PASSFILE
from launchbay.models import RunStatus

TRAIN = """
from launchbay import Run
import os
import time
run = Run.get_context()
for step in range(5):
    run.log("loss", 1.0 / (step + 1) + {offset}, step=step)
os.makedirs("outputs", exist_ok=True)
with open("outputs/result.txt", "w") as fh:
    fh.write("made by {who}\\n")
print("hello from {who}")
"""


class Person:
    def __init__(
        self, name: str, base: Path, store: str, blobs: str, s3: dict[str, str], extra: str = "", machine: str = ""
    ) -> None:
        self.name = name
        self.folder = base / f"{name}-project"
        self.folder.mkdir()
        cache = base / f"{machine or name}-machine"
        (self.folder / "launchbay.toml").write_text(
            textwrap.dedent(
                f"""
                [store]
                url = {json.dumps(store)}
                blobs = {json.dumps(blobs)}
                cache = {json.dumps(str(cache))}

                [s3]
                endpoint = {json.dumps(s3["endpoint"])}
                region = "us-east-1"
                access_key_id = "${{TEAM_S3_KEY_ID}}"
                secret_access_key = "${{TEAM_S3_SECRET}}"

                [user]
                name = "{name}"
                """
            )
            + extra
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("LAUNCHBAY_", "AWS_", "PG"))}
        self.env.update(
            PGPASSFILE=PG_PASSFILE,
            TEAM_S3_KEY_ID=s3["access_key_id"],
            TEAM_S3_SECRET=s3["secret_access_key"],
        )

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "launchbay", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"launchbay {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json"))

    def python(self, code: str) -> Any:
        """``code`` in a fresh Python in the project folder; what it prints last, as JSON."""
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_people_on_one_team_store_see_each_others_runs_metrics_and_files(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    blobs, s3 = team_s3
    alice = Person("alice", tmp_path, team_pg, blobs, s3)
    bob = Person("bob", tmp_path, team_pg, blobs, s3)
    (alice.folder / "train.py").write_text(TRAIN.format(offset=0, who="alice"))
    (bob.folder / "train.py").write_text(TRAIN.format(offset=10, who="bob"))

    # Alice submits from the CLI and waits; Bob from the Python API
    alice.cli("submit", "-e", "shared", "train.py")
    alice_run = alice.json("runs")[0]
    assert alice_run["status"] == "Completed" and alice_run["created_by"] == "alice"
    bob_run = bob.python(
        """
        import json, launchbay
        handle = launchbay.submit("train.py", experiment="shared")
        print(json.dumps({"status": handle.wait(), "run_id": handle.run_id}))
        """
    )
    assert bob_run["status"] == "Completed"

    # each lists both runs, knows who made which, and filters by person
    for person in (alice, bob):
        listed = {r["run_id"]: r["created_by"] for r in person.json("runs")}
        assert listed == {alice_run["run_id"]: "alice", bob_run["run_id"]: "bob"}
    assert [r["run_id"] for r in bob.json("runs", "--user", "alice")] == [alice_run["run_id"]]
    assert [r["run_id"] for r in bob.json("runs", "--mine")] == [bob_run["run_id"]]
    table = bob.cli("runs").splitlines()
    assert table[0].split()[:4] == ["RUN", "NAME", "EXPERIMENT", "USER"]
    assert any(line.startswith(alice_run["run_id"]) and " alice " in line for line in table)

    # Bob reads Alice's metrics, files and log (from PostgreSQL and the bucket, not her disk)
    metrics = bob.json("metrics", alice_run["run_id"])
    assert json.dumps(metrics).count("loss") >= 1
    files = [f["name"] for f in bob.json("files", alice_run["run_id"])]
    assert "outputs/result.txt" in files
    out = tmp_path / "from-alice.txt"
    bob.cli("download", alice_run["run_id"], "outputs/result.txt", "-o", str(out))
    assert out.read_text() == "made by alice\n"
    log = bob.cli("logs", alice_run["run_id"])
    assert "hello from alice" in log and "live ingest stopped" not in log
    assert not (tmp_path / "bob-machine" / "runs" / alice_run["run_id"] / "run.json").exists()

    # and Alice reads Bob's through the Python API
    seen = alice.python(
        f"""
        import json, launchbay
        run = launchbay.get_run({bob_run["run_id"]!r})
        print(json.dumps({{
            "loss": run.get_metrics()["loss"],
            "files": run.get_file_names(),
            "by": run.get_details().get("created_by"),
        }}))
        """
    )
    assert seen["loss"] == [10 + 1.0 / (s + 1) for s in range(5)]
    assert "outputs/result.txt" in seen["files"] and seen["by"] == "bob"

    # removing a colleague's run asks for --force; a whole experiment's rm leaves theirs alone
    refused = subprocess.run(
        [sys.executable, "-m", "launchbay", "rm", alice_run["run_id"]],
        cwd=bob.folder,
        env=bob.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "made by alice, not by you (bob): pass --force" in refused.stderr
    assert "Left 1 unfinished or other people's run(s) alone" in bob.cli("rm", "--experiment", "shared", "--dry-run")
    bob.cli("rm", "--force", alice_run["run_id"])
    assert [r["run_id"] for r in alice.json("runs")] == [bob_run["run_id"]]


SLOW_TRAIN = """
import time
from launchbay import Run
run = Run.get_context()
for step in range(400):
    run.log("loss", float(step), step=step)
    time.sleep(0.01)
print("done")
"""


@pytest.mark.slow
def test_a_postgresql_restart_while_runs_are_running_loses_and_doubles_nothing(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """``pg_ctl -m fast restart`` while four runs log: they keep running (their journals buffer
    what the store cannot take meanwhile), ingest resumes when it is back, and every run ends
    Completed with each of its 400 points exactly once."""
    from test_team_store import restart_postgres

    blobs, s3 = team_s3
    alice = Person("alice", tmp_path, team_pg, blobs, s3)
    (alice.folder / "train.py").write_text(SLOW_TRAIN)
    run_ids = [alice.cli("submit", "--detach", "train.py").split()[-1] for _ in range(4)]
    time.sleep(0.5)
    before = {r["run_id"]: r["status"] for r in alice.json("runs")}
    assert sum(not RunStatus(status).is_terminal() for status in before.values()) >= 2, before  # still running
    restart_postgres(os.environ["LAUNCHBAY_TEST_PG_DATA"])
    ended = alice.python(
        f"""
        import json, launchbay
        out = {{}}
        for run_id in {run_ids!r}:
            handle = launchbay.get_run(run_id)
            status = handle.wait(timeout=120)
            series = handle._session.store.read_series(handle.record(), "loss")
            out[run_id] = [status, series.steps.tolist()]
        print(json.dumps(out))
        """
    )
    for run_id in run_ids:
        status, steps = ended[run_id]
        assert status == "Completed"
        assert steps == list(range(400)), f"{run_id}: {len(steps)} points"


def test_a_read_only_role_lists_runs_and_gets_one_line_for_submit_cancel_and_rm(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from conftest import PG_READER_URL, pg_schema_url

    blobs, s3 = team_s3
    alice = Person("alice", tmp_path, team_pg, blobs, s3)
    (alice.folder / "train.py").write_text(TRAIN.format(offset=0, who="alice"))
    (alice.folder / "slow.py").write_text(SLOW_TRAIN.replace("range(400)", "range(100_000)"))
    alice.cli("submit", "train.py")
    run_id = alice.json("runs")[0]["run_id"]
    running = alice.cli("submit", "--detach", "slow.py").split()[-1]
    schema = team_pg.rsplit("%3D", 1)[1]
    viewer = Person("viewer", tmp_path, pg_schema_url(PG_READER_URL, schema), blobs, s3)
    (viewer.folder / "train.py").write_text(TRAIN.format(offset=0, who="viewer"))
    assert {r["run_id"] for r in viewer.json("runs")} == {run_id, running}
    assert "outputs/result.txt" in [f["name"] for f in viewer.json("files", run_id)]
    for command in (["submit", "train.py"], ["cancel", running], ["rm", run_id]):
        done = subprocess.run(
            [sys.executable, "-m", "launchbay", *command],
            cwd=viewer.folder,
            env=viewer.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0, command
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (command, done.stderr)
        assert "lb_reader may only read" in lines[0], (command, lines[0])
    assert {r["run_id"] for r in alice.json("runs")} == {run_id, running}  # nothing changed
    assert alice.cli("cancel", running).split()[-1] == "Canceled"  # its owner may


@pytest.mark.slow
@pytest.mark.docker
def test_a_docker_run_on_the_team_store_is_read_from_another_machine(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """The run folder is mounted into the container; the journal is ingested on Bob's machine, his
    files go to the bucket at the end, and Alice reads metrics and files without his disk."""
    from conftest import BASE_IMAGE, docker_ready, need_service, remove_containers

    need_service(docker_ready(BASE_IMAGE), "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    blobs, s3 = team_s3
    box = f'\n[targets.box]\ntype = "docker"\nimage = "{BASE_IMAGE}"\n'
    bob = Person("bob", tmp_path, team_pg, blobs, s3, extra=box)
    alice = Person("alice", tmp_path, team_pg, blobs, s3)
    (bob.folder / "train.py").write_text(TRAIN.format(offset=10, who="bob in docker"))
    try:
        bob.cli("submit", "-t", "box", "train.py")
    finally:
        remove_containers(str(tmp_path))
    run = bob.json("runs")[0]
    assert run["status"] == "Completed" and run["target"] == "box" and run["created_by"] == "bob"
    out = tmp_path / "from-bob.txt"
    alice.cli("download", run["run_id"], "outputs/result.txt", "-o", str(out))
    assert out.read_text() == "made by bob in docker\n"
    seen = alice.python(
        f"""
        import json, launchbay
        print(json.dumps(launchbay.get_run({run["run_id"]!r}).get_metrics()["loss"]))
        """
    )
    assert seen == [10 + 1.0 / (s + 1) for s in range(5)]


@pytest.mark.slow
def test_a_detached_local_run_reaches_the_team_store_with_nobody_watching(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Alice submits with --detach and looks no more: her run's runner keeps the team store caught
    up as it runs and at its end (its ingest uploads the files once the final event is in), so Bob,
    whose machine cannot ingest it, sees it end and reads its files."""
    blobs, s3 = team_s3
    alice = Person("alice", tmp_path, team_pg, blobs, s3)
    bob = Person("bob", tmp_path, team_pg, blobs, s3)
    (alice.folder / "train.py").write_text(TRAIN.format(offset=0, who="alice, unwatched"))
    run_id = alice.cli("submit", "--detach", "train.py").split()[-1]
    deadline = time.monotonic() + 90
    while (status := bob.json("show", run_id)["status"]) != "Completed":
        assert time.monotonic() < deadline and not RunStatus(status).is_terminal(), status
        time.sleep(0.5)
    out = tmp_path / "unwatched.txt"
    bob.cli("download", run_id, "outputs/result.txt", "-o", str(out))
    assert out.read_text() == "made by alice, unwatched\n"
    assert "loss" in json.dumps(bob.json("metrics", run_id))


@pytest.mark.slow
def test_a_detached_docker_run_is_followed_by_the_supervisor_and_ends_for_colleagues_with_nobody_watching(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """A run on another target has no runner of launchbay's that reaches the team store (the
    container's journal is read on Bob's machine only). Bob submits with --detach and closes
    everything; the store's supervisor on his machine follows the run to its end, so Alice sees it
    Completed with its metrics and files, and the supervisor exits once nothing is left to follow."""
    from conftest import BASE_IMAGE, docker_ready, need_service, remove_containers, wait_for

    need_service(docker_ready(BASE_IMAGE), "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    blobs, s3 = team_s3
    box = f'\n[targets.box]\ntype = "docker"\nimage = "{BASE_IMAGE}"\n'
    bob = Person("bob", tmp_path, team_pg, blobs, s3, extra=box)
    alice = Person("alice", tmp_path, team_pg, blobs, s3)
    (bob.folder / "train.py").write_text("import time\ntime.sleep(3)\n" + TRAIN.format(offset=20, who="bob, unwatched"))
    try:
        run_id = bob.cli("submit", "-t", "box", "--detach", "train.py").split()[-1]
        deadline = time.monotonic() + 120
        while (status := alice.json("show", run_id)["status"]) != "Completed":
            assert time.monotonic() < deadline and not RunStatus(status).is_terminal(), status
            time.sleep(0.5)
    finally:
        remove_containers(str(tmp_path))
    out = tmp_path / "unwatched-docker.txt"
    alice.cli("download", run_id, "outputs/result.txt", "-o", str(out))
    assert out.read_text() == "made by bob, unwatched\n"
    lock = tmp_path / "bob-machine" / "supervisor.lock"

    def supervisor_gone() -> bool:
        import fcntl

        with open(lock) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

    wait_for(supervisor_gone, timeout=30)  # nothing left to follow: it does not linger


MANY = """
import json, sys, launchbay
targets = ["local", "box", "gpu-box", "cluster"]
handles = [launchbay.submit("many.py", [str(i)], target=targets[i % 4], experiment="many") for i in range(64)]
statuses = [h.wait(timeout=600) for h in handles]
rows = []
for h, status in zip(handles, statuses):
    metrics = h.get_metrics()
    rows.append({"run_id": h.run_id, "status": status, "target": h.record().target,
                 "loss": metrics.get("loss"), "error": (h.get_details().get("error") or {}).get("message")})
print(json.dumps(rows))
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sixty_four_runs_on_four_targets_at_once_on_the_team_store_lose_no_point(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """16 runs each on local, Docker, SSH and Slurm, all writing at once into one team store: every
    run ends Completed with every one of its 300 points, exactly, and none saw a lock error."""
    from conftest import (
        BASE_IMAGE,
        SSH_ENV,
        docker_ready,
        need_service,
        remove_containers,
        slurm_answers,
        ssh_settings,
        toml_table,
    )

    need_service(docker_ready(BASE_IMAGE), "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    need_service(all(SSH_ENV.values()), "The test sshd (LAUNCHBAY_TEST_SSH_*)")
    need_service(slurm_answers(), "Slurm (LAUNCHBAY_TEST_SLURM, SLURM_CONF)")
    blobs, s3 = team_s3
    targets = "\n" + "\n".join(
        [
            toml_table("box", {"type": "docker", "image": BASE_IMAGE}),
            toml_table("gpu-box", ssh_settings(tmp_path / "remote", python=sys.executable)),
            toml_table("cluster", {"type": "slurm", "python": sys.executable, "shared_dir": str(tmp_path / "shared")}),
        ]
    )
    maya = Person("maya", tmp_path, team_pg, blobs, s3, extra=targets)
    (maya.folder / "many.py").write_text(
        "import sys\nfrom launchbay import Run\nrun = Run.get_context()\nk = int(sys.argv[1])\n"
        "for step in range(300):\n    run.log('loss', k + step / 1000, step=step)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", MANY], cwd=maya.folder, env=maya.env, capture_output=True, text=True, timeout=840
        )
    finally:
        remove_containers(str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted({r["target"] for r in rows}) == ["box", "cluster", "gpu-box", "local"] and len(rows) == 64
    for k, row in enumerate(rows):
        assert row["status"] == "Completed", row
        assert row["loss"] == [k + step / 1000 for step in range(300)], (row["target"], row["run_id"])
    assert "lock" not in done.stderr.lower()


@pytest.mark.slow
def test_cancelling_a_colleagues_run_on_the_same_machine_asks_for_force_and_records_who(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Alice and Bob share one machine's folder of the team store (a shared GPU box): Bob may stop
    Alice's run only with --force, and the run then says he did."""
    blobs, s3 = team_s3
    alice = Person("alice", tmp_path, team_pg, blobs, s3, machine="gpu-box")
    bob = Person("bob", tmp_path, team_pg, blobs, s3, machine="gpu-box")
    (alice.folder / "slow.py").write_text(SLOW_TRAIN.replace("range(400)", "range(100_000)"))
    run_id = alice.cli("submit", "--detach", "slow.py").split()[-1]
    refused = subprocess.run(
        [sys.executable, "-m", "launchbay", "cancel", run_id],
        cwd=bob.folder,
        env=bob.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "made by alice, not by you (bob): pass --force to cancel" in refused.stderr
    assert bob.cli("cancel", "--force", run_id).split()[-1] == "Canceled"
    shown = alice.json("show", run_id)
    assert shown["status"] == "Canceled" and shown["tags"]["launchbay.canceled_by"] == "bob"
