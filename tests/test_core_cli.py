"""What a user sees from the `launchbay` command line on the local target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import launchbay
from conftest import CLI, write
from launchbay.errors import ConfigError

TRAIN = """
import sys
from launchbay import Run
run = Run.get_context()
print("args", sys.argv[1:], flush=True)
for i in range(20):
    run.log("loss", 1.0 / (i + 1))
run.log("acc", 0.5, step=7)
run.tag("stage", "test")
import os
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as fh:
    fh.write("weights")
print("done", flush=True)
"""


def test_submit_streams_the_log_and_exits_zero_when_completed(project: Path, cli: CLI) -> None:
    write(project, "train.py", TRAIN)
    proc = cli("submit", "train.py", "--", "--lr", "0.1")
    assert proc.returncode == 0, proc.stderr
    assert "args ['--lr', '0.1']" in proc.stdout
    assert "done" in proc.stdout
    assert "Completed" in proc.stderr


def test_show_json_has_everything_a_report_needs(project: Path, cli: CLI) -> None:
    write(project, "train.py", TRAIN)
    run_id = cli.json("submit", "--detach", "train.py", "--", "--epochs", "2")["run_id"]  # type: ignore[index]
    cli("logs", run_id, "-f", check=True)
    details = cli.json("show", run_id)
    assert isinstance(details, dict)
    for key in (
        "run_id",
        "status",
        "experiment",
        "target",
        "script",
        "arguments",
        "exit_code",
        "error",
        "created",
        "started",
        "ended",
        "tags",
        "properties",
        "snapshot",
    ):
        assert key in details
    assert details["status"] == "Completed"
    assert details["experiment"] == "proj"
    assert details["arguments"] == ["--epochs", "2"]
    assert details["exit_code"] == 0
    assert details["tags"] == {"stage": "test"}
    assert details["snapshot"]["files"] == 1


def test_metrics_json_is_a_series_per_name(project: Path, cli: CLI) -> None:
    write(project, "train.py", TRAIN)
    run_id = cli.json("submit", "train.py")["run_id"]  # type: ignore[index]
    metrics: Any = cli.json("metrics", run_id)
    assert metrics["loss"]["kind"] == "scalar"
    assert [p["step"] for p in metrics["loss"]["points"]] == list(range(20))
    assert metrics["loss"]["points"][1]["value"] == 0.5
    acc = metrics["acc"]["points"]
    assert acc == [{"step": 7, "value": 0.5, "ts": acc[0]["ts"]}]
    only = cli.json("metrics", run_id, "acc")
    assert list(only) == ["acc"]  # type: ignore[arg-type]


def test_outputs_are_kept_and_downloadable(project: Path, cli: CLI, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    run_id = cli.json("submit", "train.py")["run_id"]  # type: ignore[index]
    files = cli("files", run_id, check=True).stdout.split()
    assert "outputs/model.txt" in files and "user_logs/std_log.txt" in files
    dest = tmp_path / "got.txt"
    cli("download", run_id, "outputs/model.txt", "-o", str(dest), check=True)
    assert dest.read_text() == "weights"


def test_a_failing_script_is_failed_with_its_traceback_and_nonzero_exit(project: Path, cli: CLI) -> None:
    write(project, "bad.py", "def f():\n    raise ValueError('learning rate too high')\nf()\n")
    proc = cli("submit", "bad.py")
    assert proc.returncode == 1
    run_id = json.loads(cli("runs", "--json").stdout)[0]["run_id"]
    details = cli.json("show", run_id)
    assert details["status"] == "Failed"  # type: ignore[index]
    assert details["exit_code"] == 1  # type: ignore[index]
    assert details["error"]["message"] == "ValueError: learning rate too high"  # type: ignore[index]
    assert 'bad.py", line 2, in f' in details["error"]["traceback"]  # type: ignore[index]


def test_runs_lists_newest_first_and_filters(project: Path, cli: CLI) -> None:
    write(project, "ok.py", "print('ok')\n")
    write(project, "bad.py", "raise SystemExit(3)\n")
    cli("submit", "-e", "alpha", "ok.py")
    cli("submit", "-e", "beta", "bad.py")
    runs = cli.json("runs")
    assert [r["experiment"] for r in runs] == ["beta", "alpha"]  # type: ignore[union-attr,index]
    failed = cli.json("runs", "--status", "failed")
    assert [r["experiment"] for r in failed] == ["beta"]  # type: ignore[union-attr,index]
    assert len(cli.json("runs", "--experiment", "alpha")) == 1  # type: ignore[arg-type]
    table = cli("runs", check=True).stdout
    assert "Completed" in table and "Failed" in table


def test_bad_inputs_get_one_clear_line_and_leave_the_store_empty(project: Path, cli: CLI) -> None:
    write(project, "ok.py", "print('ok')\n")
    cases = {
        ("show", "no-such-run"): "No run 'no-such-run'",
        ("submit", "missing.py"): "No script 'missing.py'",
        ("submit", "-t", "gpu-box", "ok.py"): "Unknown target 'gpu-box'",
        ("runs", "--status", "sleeping"): "Unknown status 'sleeping'",
    }
    for args, expected in cases.items():
        proc = cli(*args)
        assert proc.returncode == 2, args
        assert expected in proc.stderr, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert cli.json("runs") == []


def test_malformed_config_names_the_file(project: Path, cli: CLI) -> None:
    write(project, "ok.py", "print('ok')\n")
    write(project, "launchbay.toml", "[targets.box\ntype = 'ssh'\n")
    proc = cli("submit", "ok.py")
    assert proc.returncode == 2
    assert "launchbay.toml is not valid TOML" in proc.stderr
    write(project, "launchbay.toml", "[targets.box]\nhost = 'x'\n")
    proc = cli("submit", "-t", "box", "ok.py")
    assert "has no 'type'" in proc.stderr
    assert cli.json("runs") == []


def test_a_malformed_config_leaves_the_commands_that_only_read_the_store_working_with_one_warning(
    project: Path, cli: CLI
) -> None:
    write(project, "train.py", TRAIN)
    run_id = cli.json("submit", "train.py")["run_id"]  # type: ignore[index]
    write(project, "launchbay.toml", "[targets.box]\ntype = 'ssh'\nhost = \n")  # a value left out: line 3

    for command in (["runs"], ["show", run_id], ["logs", run_id], ["metrics", run_id, "loss"]):
        proc = cli(*command)
        assert proc.returncode == 0, proc.stderr
        warning = proc.stderr.splitlines()
        assert len(warning) == 1 and warning[0].startswith("launchbay: warning:"), proc.stderr
        assert f"{project / 'launchbay.toml'} is not valid TOML" in warning[0] and "line 3, column 8" in warning[0]
    assert run_id in cli("runs").stdout and "done" in cli("logs", run_id).stdout
    assert json.loads(cli("show", run_id, "--json").stdout)["status"] == "Completed"

    for command in (
        ["submit", "train.py"],
        ["targets"],
        ["sweep", "--param", "x=choice(1,2)", "--metric", "loss", "train.py"],
        ["rerun", run_id],
    ):
        proc = cli(*command)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (command, proc.stderr)
        assert proc.stderr.startswith("launchbay: error:") and "launchbay.toml is not valid TOML" in proc.stderr
    assert len(cli.json("runs")) == 1  # type: ignore[arg-type]


def test_max_duration_cancels_the_run(project: Path, cli: CLI) -> None:
    write(project, "slow.py", "import time\nprint('start', flush=True)\ntime.sleep(60)\n")
    proc = cli("submit", "--max-duration", "1", "slow.py")
    assert proc.returncode == 1
    run = cli.json("runs")[0]  # type: ignore[index]
    assert run["status"] == "Canceled"
    assert "maximum duration" in run["error"]["message"]


def test_snapshot_dry_run_explains_every_file(project: Path, cli: CLI) -> None:
    write(project, "train.py", "print(1)\n")
    write(project, ".gitignore", "*.csv\n")
    write(project, "data/big.csv", "a,b\n")
    out = cli("snapshot", "--dry-run", check=True).stdout
    assert "+ train.py" in out
    assert "- data/big.csv  (.gitignore: *.csv)" in out
    assert "Sizes by folder" in out


def test_git_state_is_recorded(project: Path, cli: CLI) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)

    write(project, "train.py", "print('hi')\n")
    git("init", "-b", "main")
    git("-c", "user.email=a@b", "-c", "user.name=A", "add", "train.py")
    git("-c", "user.email=a@b", "-c", "user.name=A", "commit", "-m", "first")
    git("remote", "add", "origin", "https://example.invalid/team/repo.git")
    run_id = cli.json("submit", "train.py")["run_id"]  # type: ignore[index]
    props = cli.json("show", run_id)["properties"]  # type: ignore[index]
    assert props["launchbay.git.branch"] == "main"
    assert props["launchbay.git.repository_uri"] == "https://example.invalid/team/repo.git"
    assert len(props["launchbay.git.commit"]) == 40
    assert props["launchbay.git.dirty"] == "false"
    write(project, "train.py", "print('changed')\n")
    run_id = cli.json("submit", "train.py")["run_id"]  # type: ignore[index]
    assert cli.json("show", run_id)["properties"]["launchbay.git.dirty"] == "true"  # type: ignore[index]


def test_a_snapshot_over_budget_is_refused_from_the_cli(project: Path, cli: CLI) -> None:
    write(project, "train.py", "print('hi')\n")
    (project / "data").mkdir()
    (project / "data" / "huge.bin").write_bytes(b"0" * 4096)
    write(project, "launchbay.toml", "[snapshot]\nmax_bytes = 1000\n")
    proc = cli("submit", "train.py")
    assert proc.returncode == 2
    assert "Biggest: data/ (4.1 KB in 1 file)" in proc.stderr
    assert f"add this line to {project / '.launchbayignore'}:\n    /data/\n" in proc.stderr
    assert cli.json("runs") == []


def test_a_local_target_whose_python_does_not_exist_is_refused_before_a_run_is_recorded(
    project: Path, cli: CLI
) -> None:
    write(project, "ok.py", "print('ok')\n")
    write(project, "launchbay.toml", "[targets.box]\ntype = 'local'\npython = '/no/such/python'\n")
    proc = cli("submit", "-t", "box", "ok.py")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "Target 'box': python '/no/such/python' is not an interpreter on this machine" in proc.stderr
    assert f"set python in [targets.box] in {project / 'launchbay.toml'}" in proc.stderr
    assert cli.json("runs") == []


def test_a_max_duration_that_is_not_a_positive_number_is_refused(project: Path, cli: CLI) -> None:
    write(project, "ok.py", "print('ok')\n")
    for value in ("-1", "0", "nan"):
        proc = cli("submit", "--max-duration", value, "ok.py")
        assert proc.returncode == 2, (value, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert "must be a number of seconds > 0" in proc.stderr and "leave it out for no limit" in proc.stderr
    for seconds in (-1.0, 0.0, float("nan")):
        with pytest.raises(ConfigError, match=r"must be a number of seconds > 0, not (-1\.0|0\.0|nan)"):
            launchbay.submit("ok.py", max_duration_s=seconds)
    assert cli.json("runs") == []


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGUSR1"])
def test_a_script_killed_by_a_signal_is_failed_and_says_which(project: Path, cli: CLI, sig: str) -> None:
    write(
        project, "killed.py", f"import os, signal\nprint('working', flush=True)\nos.kill(os.getpid(), signal.{sig})\n"
    )
    proc = cli("submit", "killed.py")
    assert proc.returncode == 1
    run = cli.json("runs")[0]  # type: ignore[index]
    assert run["status"] == "Failed"
    assert run["error"]["message"] == f"The run's process was killed ({sig})."
    assert "working" in run["error"]["traceback"]  # the output's last lines, as for any failure
