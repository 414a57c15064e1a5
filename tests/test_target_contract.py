"""What every target promises, checked on each (local, docker, ssh, ray, slurm: the ``target`` fixture).

A run completes with its log, metrics, system metrics and outputs brought back; a symbolic link in the project
is one in the run; secret variables and arguments reach the script and no file; what the run left running in a
new session is stopped at its end; a failing script fails with its error; cancel stops the whole process tree;
``max_duration_s`` cancels; a run outlives the process that submitted it and is re-attached by id; hostile
source folders, script names and arguments (spaces, quotes, ``$HOME``, backticks, newlines, a leading dash)
reach the script unchanged. A command (``bash run.sh ARGS``) runs in the same snapshot with its log, and its
Python children find ``python`` to be the run's interpreter, log metrics and leave outputs; cancel stops a
command's whole tree too. What only one target does lives in that target's own test file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import launchbay
from conftest import TargetUnderTest, pids_with, wait_for, write

TRAIN = """
    import hashlib, os, subprocess, sys, time
    from launchbay import Run
    run = Run.get_context()
    start = time.time()
    while time.time() < start + 1.5:  # busy, for the system metrics sampled every 0.5 s
        pass
    for i in range(5):
        run.log("loss", 1.0 / (i + 1), step=i)
    run.log_row("pr", p=0.9, r=0.8)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.txt", "w") as fh:
        fh.write("weights")
    print("config", open("config.yaml").read().strip(), os.readlink("config.yaml"), flush=True)
    print("secrets sha", hashlib.sha256("|".join([os.environ["API_TOKEN"], *sys.argv[1:]]).encode()).hexdigest())
    subprocess.run([sys.executable, "escape.py", run.id])
    while not os.path.exists("escaped"):
        time.sleep(0.05)
    print("trained", flush=True)
"""

ESCAPE = """
    import os, time
    if os.fork() == 0:  # double-forked away from the run's process group, in a session of its own
        os.setsid()
        open("escaped", "w").close()
        time.sleep(300)
"""

ECHO = """
    import json, os, sys
    print("args", json.dumps(sys.argv[1:]), flush=True)
    print("cwd", json.dumps(os.path.basename(os.getcwd())), flush=True)
    print("data", open("../data 'in' here.txt").read(), flush=True)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/the args.json", "w") as fh:
        json.dump(sys.argv[1:], fh)
"""

HOSTILE_FOLDER = "-my project 'single' \"double\" $HOME `id` \\ ünï\nsecond line"
HOSTILE_SCRIPT = "-echo 'args' $HOME `id`.py"  # in a subfolder named like HOSTILE_FOLDER, submitted from there
HOSTILE_ARGS = ["-x", "--help", "a b", "it's", 'say "hi"', "line1\nline2", "$HOME", "`id`", "\\", "--", "", "ünï ✓"]


SECRET_ENV = {"API_TOKEN": "tok-secret-1"}
SECRET_ARGS = ["--password=arg-secret-2", "--api-key", "arg-secret-3"]


def submit(target: TargetUnderTest, script: str, folder: Path, **kwargs: object) -> launchbay.RunHandle:
    kwargs.setdefault("system_metrics_interval_s", 0)
    return launchbay.submit(script, target=target.name, source_dir=folder, **kwargs)


SECRET_ENV = {"API_TOKEN": "tok-secret-1"}
SECRET_ARGS = ["--password=arg-secret-2", "--api-key", "arg-secret-3"]


@pytest.fixture(scope="module")
def finished(target: TargetUnderTest, tmp_path_factory: pytest.TempPathFactory) -> launchbay.RunHandle:
    """One ordinary run, read by the tests of what a completed run brings back: metrics, outputs, a symbolic
    link in the project, secret variables and arguments, and a process it left behind in a new session."""
    folder = tmp_path_factory.mktemp("train")
    target.configure(folder)
    write(folder, "train.py", TRAIN)
    write(folder, "escape.py", ESCAPE)
    write(folder, "conf/real.yaml", "lr: 3\n")
    os.symlink("conf/real.yaml", folder / "config.yaml")
    handle = submit(
        target,
        "train.py",
        folder,
        args=SECRET_ARGS,
        env_vars=SECRET_ENV,
        store=folder.parent / "store",
        system_metrics_interval_s=0.5,
    )
    assert handle.wait(timeout=180) == "Completed", handle.record().error
    return handle


@pytest.fixture(scope="module")
def hostile(target: TargetUnderTest, tmp_path_factory: pytest.TempPathFactory) -> launchbay.RunHandle:
    """HOSTILE_SCRIPT with HOSTILE_ARGS, submitted from a subfolder of a project folder, both named
    HOSTILE_FOLDER: the run starts in the subfolder's place in the snapshot."""
    folder = tmp_path_factory.mktemp("hostile") / HOSTILE_FOLDER
    (folder / HOSTILE_FOLDER).mkdir(parents=True)
    target.configure(folder)
    write(folder / HOSTILE_FOLDER, HOSTILE_SCRIPT, ECHO)
    write(folder, "data 'in' here.txt", "from the folder")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder / HOSTILE_FOLDER)
        handle = submit(target, HOSTILE_SCRIPT, folder, args=HOSTILE_ARGS, store=folder.parent / "store")
    assert handle.wait(timeout=180) == "Completed", handle.record().error
    return handle


def test_a_run_completes_with_its_log(finished: launchbay.RunHandle) -> None:
    assert finished.status == "Completed"
    assert "trained" in finished.get_log()
    assert "user_logs/std_log.txt" in finished.get_file_names()


def test_metrics_come_back(finished: launchbay.RunHandle) -> None:
    metrics = finished.get_metrics()
    assert metrics["loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert metrics["pr"] == {"p": [0.9], "r": [0.8]}
    assert finished.get_metric_series("loss").steps.tolist() == [0, 1, 2, 3, 4]


def test_system_metrics_and_host_facts_come_back(finished: launchbay.RunHandle) -> None:
    metrics = finished.get_metrics()
    assert len(metrics["system/cpu_percent"]) >= 2 and max(metrics["system/cpu_percent"]) > 5
    assert min(metrics["system/memory_rss_mb"]) > 1
    props = finished.record().properties
    assert props["launchbay.host.cpu_count"] >= 1 and props["launchbay.host.python"].startswith("3.")


def test_outputs_come_back(finished: launchbay.RunHandle, tmp_path: Path) -> None:
    assert "outputs/model.txt" in finished.get_file_names()
    assert finished.download_file("outputs/model.txt", tmp_path / "model.txt").read_text() == "weights"


def test_a_symbolic_link_in_the_project_is_a_link_in_the_run(finished: launchbay.RunHandle) -> None:
    assert "config lr: 3 conf/real.yaml" in finished.get_log()


def test_secret_variables_and_arguments_reach_the_script_but_no_file(
    finished: launchbay.RunHandle, target: TargetUnderTest
) -> None:
    seen = hashlib.sha256("|".join([*SECRET_ENV.values(), *SECRET_ARGS]).encode()).hexdigest()
    assert f"secrets sha {seen}" in finished.get_log()
    assert finished.get_details()["arguments"] == ["--password=***", "--api-key", "***"]
    folders = [finished.session.store.root, target.remote_dir]
    files = [p for folder in folders if folder for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink()]
    assert files and not [(p, s) for p in files for s in (b"tok-secret-1", b"arg-secret-") if s in p.read_bytes()]


def test_processes_the_run_left_in_a_new_session_are_stopped_at_its_end(finished: launchbay.RunHandle) -> None:
    wait_for(lambda: pids_with(finished.run_id) == [], timeout=15)


def test_a_failing_script_fails_with_its_error(target: TargetUnderTest, project: Path) -> None:
    target.configure(project)
    write(project, "bad.py", "print('loading', flush=True)\nraise ValueError('bad input file')\n")
    handle = submit(target, "bad.py", project)
    assert handle.wait(timeout=120) == "Failed"
    record = handle.record()
    assert record.error is not None and record.error["message"] == "ValueError: bad input file"
    assert "Traceback" in record.error["traceback"]
    assert record.exit_code == 1
    assert "loading" in handle.get_log()


TREE = """
    import subprocess, sys, time
    token, depth = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if depth < 2:  # the script starts a child, which starts a grandchild in a session of its own
        subprocess.Popen([sys.executable, sys.argv[0], token, str(depth + 1)], start_new_session=depth == 1)
    if depth == 0:
        print("up", flush=True)
    time.sleep(300)
"""


def test_cancel_stops_the_whole_process_tree(target: TargetUnderTest, project: Path) -> None:
    """The script, its child and its grandchild (in a new session) carry a token on their command line (all
    targets run on this machine, so /proc shows them); none is left after cancel."""
    target.configure(project)
    write(project, "tree.py", TREE)
    token = f"lbtree-{uuid.uuid4().hex}"
    handle = submit(target, "tree.py", project, args=[token])
    wait_for(lambda: "up" in handle.get_log(), timeout=120)  # the log streams while the run runs
    wait_for(lambda: len(pids_with(token)) == 3, timeout=30)
    wait_for(lambda: handle.status == "Running")  # the journal may come back a moment after the log
    assert handle.cancel() == "Canceled"
    wait_for(lambda: pids_with(token) == [], timeout=30)
    wait_for(lambda: pids_with(handle.run_id) == [], timeout=30)  # nor is the runner left
    assert handle.record().error["message"].startswith("Canceled")  # type: ignore[index]


def test_max_duration_cancels_the_run(target: TargetUnderTest, project: Path) -> None:
    target.configure(project)
    write(project, "slow.py", "import time\nprint('up', flush=True)\ntime.sleep(300)\n")
    handle = submit(target, "slow.py", project, max_duration_s=2)
    assert handle.wait(timeout=180) == "Canceled"
    assert "maximum duration of 2" in handle.record().error["message"]  # type: ignore[index]
    assert "up" in handle.get_log()


def test_a_run_outlives_its_submitter_and_is_re_attached_by_id(target: TargetUnderTest, project: Path) -> None:
    target.configure(project)
    write(project, "slow.py", "import time\nprint('started', flush=True)\ntime.sleep(1)\nprint('finished')\n")
    code = f"import launchbay; print(launchbay.submit('slow.py', target={target.name!r}).run_id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=project)
    run_id = out.stdout.strip()
    handle = launchbay.get_run(run_id[:-2])  # a unique prefix will do
    assert handle.run_id == run_id
    assert handle.wait(timeout=120) == "Completed"
    assert "started\nfinished" in handle.get_log()


def test_a_hostile_source_folder_is_snapshotted_and_recorded_as_is(hostile: launchbay.RunHandle) -> None:
    log = hostile.get_log()
    assert f"cwd {json.dumps(HOSTILE_FOLDER)}" in log and "data from the folder" in log
    details = hostile.get_details()
    assert details["properties"]["launchbay.source_dir"].endswith(os.sep + HOSTILE_FOLDER)
    assert details["script"] == HOSTILE_SCRIPT


def test_hostile_arguments_reach_the_script_unchanged(hostile: launchbay.RunHandle, tmp_path: Path) -> None:
    assert f"args {json.dumps(HOSTILE_ARGS)}" in hostile.get_log()
    got = hostile.download_file("outputs/the args.json", tmp_path / "args.json")
    assert json.loads(got.read_text()) == HOSTILE_ARGS
    assert hostile.get_details()["arguments"] == HOSTILE_ARGS


RUN_SH = """
    set -e
    echo "bash got $# arguments"
    python child.py "$@"
    echo "command done"
"""

CHILD = """
    import json, os, sys
    from launchbay import Run  # the in-run API, in a Python child of the command
    run = Run.get_context()
    run.log("from_child", 7)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/child.json", "w") as fh:
        json.dump(sys.argv[1:], fh)
    same = sys.executable == os.environ["LAUNCHBAY_PYTHON"]
    print("child args", json.dumps(sys.argv[1:]), "python is the run's:", same)
"""

COMMAND_ARGS = ["x", "a b", "it's", "$HOME", "`id`", "line1\nline2", ""]


def test_a_command_runs_with_the_snapshot_log_metrics_and_outputs(
    target: TargetUnderTest, project: Path, tmp_path: Path
) -> None:
    target.configure(project)
    write(project, "run.sh", RUN_SH)
    write(project, "child.py", CHILD)
    handle = launchbay.submit(command=["bash", "run.sh", *COMMAND_ARGS], target=target.name, source_dir=project)
    assert handle.wait(timeout=180) == "Completed", handle.record().error
    log = handle.get_log()
    assert f"bash got {len(COMMAND_ARGS)} arguments" in log and "command done" in log
    assert f"child args {json.dumps(COMMAND_ARGS)} python is the run's: True" in log
    assert handle.get_metrics()["from_child"] == 7
    got = handle.download_file("outputs/child.json", tmp_path / "child.json")
    assert json.loads(got.read_text()) == COMMAND_ARGS
    details = handle.get_details()
    assert (details["script"], details["arguments"]) == ("bash", ["run.sh", *COMMAND_ARGS])


def test_cancel_stops_a_commands_whole_process_tree(target: TargetUnderTest, project: Path) -> None:
    """``sh -c`` runs tree.py, whose child and grandchild (in a session of its own) carry the token too."""
    target.configure(project)
    write(project, "tree.py", TREE)
    token = f"lbcmdtree-{uuid.uuid4().hex}"
    handle = launchbay.submit(command=f"python tree.py {token}; sleep 300", target=target.name, source_dir=project)
    wait_for(lambda: "up" in handle.get_log(), timeout=120)
    wait_for(lambda: len(pids_with(token)) >= 3, timeout=30)
    wait_for(lambda: handle.status == "Running")
    assert handle.cancel() == "Canceled"
    wait_for(lambda: pids_with(token) == [], timeout=30)
    wait_for(lambda: pids_with(handle.run_id) == [], timeout=30)
