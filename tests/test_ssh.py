"""The SSH target against a real sshd on 127.0.0.1 (scripts/services/start.sh sshd).

Each test gets its own remote workdir, so the blob cache starts empty. The remote
python is the host's own interpreter, where launchbay is not installed: the runs
import the in-run API from the runtime shipped with them. What every target does is
in test_target_contract.py.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import conftest
import launchbay
from conftest import CLI, SSH_ENV, free_port, need_service, ssh_settings, toml_table, write
from launchbay.errors import TargetError
from launchbay.targets.sshconn import load_asyncssh

pytestmark = pytest.mark.ssh

ENV = SSH_ENV


def _toml(workdir: Path, **overrides: object) -> str:
    return toml_table("gpu-box", ssh_settings(workdir, **overrides))


@pytest.fixture
def remote_dir(tmp_path: Path) -> Path:
    return tmp_path / "remote"


@pytest.fixture
def ssh_project(project: Path, remote_dir: Path) -> Iterator[Path]:
    need_service(all(ENV.values()), "The test sshd (LAUNCHBAY_TEST_SSH_*)")
    (project / "launchbay.toml").write_text(_toml(remote_dir))
    yield project
    from launchbay.targets.sshconn import close_connections

    close_connections()


def remote(command: str) -> tuple[int, str]:
    """Run a command on the SSH host over a connection of the test's own."""
    from launchbay.targets.sshconn import SSHConnection

    with SSHConnection(ENV["HOST"], int(ENV["PORT"]), ENV["USER"], ENV["KEY"], ENV["KNOWN_HOSTS"]) as conn:
        rc, out, _ = conn.run(command, check=False)
    return rc, out


def target_row(cli: CLI) -> dict[str, Any]:
    """The gpu-box line of `launchbay targets --json`."""
    rows: list[dict[str, Any]] = cli.json("targets")  # type: ignore[assignment]
    return next(row for row in rows if row["name"] == "gpu-box")


def nothing_stored(tmp_path: Path) -> bool:
    """No run and no snapshot in the test's store (the conftest store is tmp_path/store)."""
    return not [p for p in (tmp_path / "store" / "blobs").rglob("*") if p.is_file()]


wait_for = functools.partial(conftest.wait_for, timeout=30, interval=0.1)


TRAIN = """
    import os, sys, time
    import launchbay
    from launchbay import Run
    run = Run.get_context()
    print("api from", launchbay.__file__, flush=True)
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for i in range(steps):
        run.log("loss", 1.0 / (i + 1), step=i)
        print(f"line {i}", flush=True)
        time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
    run.log_row("pr", p=0.9, r=0.8)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.txt", "w") as fh:
        fh.write("weights")
    os.makedirs("logs", exist_ok=True)
    with open("logs/extra.log", "w") as fh:
        fh.write("extra")
"""


def test_a_run_uses_the_runtime_shipped_with_it(ssh_project: Path, remote_dir: Path, cli: CLI) -> None:
    write(ssh_project, "train.py", TRAIN)
    handle = launchbay.submit("train.py", ["2"], target="gpu-box")
    assert handle.wait() == "Completed"
    # launchbay is not installed for the remote python: the run used the shipped runtime
    assert f"api from {remote_dir}/runtime/" in handle.get_log()
    details = handle.get_details()
    assert details["target_type"] == "ssh" and details["remote_run_dir"].startswith(str(remote_dir))
    assert "logs/extra.log" in handle.get_file_names()

    box = target_row(cli)
    assert box["reachable"] is True and box["version"].startswith("3.")
    assert "gpus" in box


def test_submit_from_the_cli_streams_the_remote_log(ssh_project: Path, cli: CLI) -> None:
    write(ssh_project, "train.py", TRAIN)
    proc = cli("submit", "-t", "gpu-box", "train.py", "--", "3")
    assert proc.returncode == 0, proc.stderr
    assert "line 0\nline 1\nline 2" in proc.stdout
    assert "Completed" in proc.stderr


def test_a_cell_runs_on_the_ssh_target_with_pushed_and_pulled_variables(ssh_project: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "launchbay")
        shell.user_ns["x"] = 21
        cell = "from launchbay import Run\nRun.get_context().log('answer', x * 2)\ny = x * 2\nprint('cell says', y)\n"
        handle = shell.run_cell_magic("submit", "-t gpu-box --wait --no-widget --push x --pull y", cell)
        assert handle.status == "Completed"
        assert "cell says 42" in handle.get_log()
        assert handle.get_metrics()["answer"] == 42
        assert shell.user_ns["y"] == 42
    finally:
        InteractiveShell.clear_instance()


def test_a_second_submit_sends_only_the_changed_file(ssh_project: Path) -> None:
    for i in range(20):
        (ssh_project / "data" / f"part{i}.bin").parent.mkdir(exist_ok=True)
        (ssh_project / "data" / f"part{i}.bin").write_bytes(os.urandom(50_000))
    write(ssh_project, "train.py", "print('ok')\n")
    first = launchbay.submit("train.py", target="gpu-box")
    assert first.wait() == "Completed"
    (ssh_project / "data" / "part7.bin").write_bytes(os.urandom(50_000))
    second = launchbay.submit("train.py", target="gpu-box")
    assert second.wait() == "Completed"
    up1 = first.record().target_state["upload"]
    up2 = second.record().target_state["upload"]
    print(f"\nfirst submit: {up1}\nsecond submit: {up2}")
    assert up1["blobs_sent"] == up1["blobs"] == 23  # 20 parts, train.py, launchbay.toml, the manifest
    assert up1["bytes_sent"] > 20 * 50_000 and up1["runtime_bytes_sent"] > 0
    assert up2["blobs_sent"] == 2  # the changed part and the new manifest
    assert 50_000 < up2["bytes_sent"] < 60_000 and up2["runtime_bytes_sent"] == 0


def _watch_cli_submit(project: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "launchbay", "submit", "-t", "gpu-box", *args],
        cwd=project,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None and proc.stdout is not None
    run_id = ""
    for line in proc.stderr:
        if " submitted to " in line:
            run_id = line.split()[2]
            break
    assert run_id, "the CLI did not report a run id"
    for line in proc.stdout:
        if line.startswith("line 5"):
            break
    return proc, run_id


def test_a_dropped_connection_loses_nothing(ssh_project: Path) -> None:
    write(ssh_project, "train.py", TRAIN)
    # the client side dies mid-run: the watching CLI is SIGKILLed with its SSH connection
    proc, run_id = _watch_cli_submit(ssh_project, "train.py", "--", "40", "0.1")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()  # type: ignore[union-attr]
    handle = launchbay.get_run(run_id)
    wait_for(lambda: "line 12" in handle.get_log())
    # and this process's own connection drops too: its sshd session process is killed on the
    # host, so the TCP connection dies under the client; the next refresh reconnects
    from launchbay.targets.sshconn import pooled_connections

    (conn,) = pooled_connections()
    helper = conn.remote_python()["pid"]
    assert remote(f"kill -9 $(awk '{{print $4}}' /proc/{helper}/stat)")[0] == 0
    wait_for(lambda: conn.closed, timeout=10)
    assert handle.wait() == "Completed"
    lines = [ln for ln in handle.get_log().splitlines() if ln.startswith("line")]
    assert lines == [f"line {i}" for i in range(40)]
    series = handle.get_metric_series("loss")
    assert series.steps.tolist() == list(range(40))
    assert "outputs/model.txt" in handle.get_file_names()


def test_an_unknown_host_key_is_refused_before_anything_is_recorded(
    ssh_project: Path, remote_dir: Path, tmp_path: Path, cli: CLI
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    (ssh_project / "launchbay.toml").write_text(_toml(remote_dir, known_hosts=str(empty)))
    write(ssh_project, "train.py", "print('never')\n")
    with pytest.raises(TargetError) as info:
        launchbay.submit("train.py", target="gpu-box")
    message = str(info.value)
    assert "unknown" in message and "SHA256:" in message
    assert f"ssh-keyscan -p {ENV['PORT']} {ENV['HOST']} >> {empty}" in message
    proc = cli("submit", "-t", "gpu-box", "train.py")
    assert proc.returncode != 0 and "ssh-keyscan" in proc.stderr
    assert cli.json("runs") == []
    assert not remote_dir.exists()
    assert nothing_stored(tmp_path)
    box = target_row(cli)
    assert box["reachable"] is False and "ssh-keyscan" in box["error"]


def test_a_changed_host_key_is_refused_as_changed(ssh_project: Path, remote_dir: Path, tmp_path: Path) -> None:
    asyncssh = load_asyncssh()

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    forged = tmp_path / "known_hosts"
    forged.write_text(f"[{ENV['HOST']}]:{ENV['PORT']} {other}\n")
    (ssh_project / "launchbay.toml").write_text(_toml(remote_dir, known_hosts=str(forged)))
    write(ssh_project, "train.py", "print('never')\n")
    with pytest.raises(TargetError, match="CHANGED.*ssh-keygen -R"):
        launchbay.submit("train.py", target="gpu-box")
    assert launchbay.runs() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"port": "FREE"}, "Cannot connect to 127.0.0.1:{port} (connection refused): is sshd running there"),
        ({"identity_file": "HOSTKEY"}, "refused SSH login for user 'root' with the identity file"),
        ({"python": "/nonexistent/python3"}, "No Python interpreter '/nonexistent/python3'"),
    ],
    ids=["wrong-port", "auth-refused", "python-missing"],
)
def test_a_failing_connection_is_one_clear_error_and_records_nothing(
    ssh_project: Path, remote_dir: Path, tmp_path: Path, cli: CLI, overrides: dict[str, object], expected: str
) -> None:
    port = free_port()
    if overrides.get("port") == "FREE":
        overrides = {"port": port}
    if overrides.get("identity_file") == "HOSTKEY":  # a valid key that is not authorized
        overrides = {"identity_file": str(Path(ENV["KEY"]).with_name("host_ed25519"))}
    (ssh_project / "launchbay.toml").write_text(_toml(remote_dir, **overrides))
    write(ssh_project, "train.py", "print('never')\n")
    proc = cli("submit", "-t", "gpu-box", "train.py")
    assert proc.returncode != 0
    assert expected.format(port=port) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert cli.json("runs") == []
    assert nothing_stored(tmp_path)
    box = target_row(cli)
    assert box["reachable"] is False and expected.format(port=port) in box["error"]


def test_the_ssh_agent_is_used_when_no_identity_file_is_set(
    ssh_project: Path, remote_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        wait_for(sock.exists, timeout=10)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", ENV["KEY"]], check=True, capture_output=True)
        (ssh_project / "launchbay.toml").write_text(_toml(remote_dir, identity_file=None))
        write(ssh_project, "train.py", "print('via the agent')\n")
        handle = launchbay.submit("train.py", target="gpu-box")
        assert handle.wait() == "Completed"
        assert "via the agent" in handle.get_log()
    finally:
        agent.terminate()
        agent.wait()


@pytest.mark.docker
def test_docker_true_runs_the_runner_in_a_container_on_the_host(ssh_project: Path, remote_dir: Path) -> None:
    image = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE", "")
    need_service(bool(image and os.environ.get("DOCKER_HOST")), "Docker (LAUNCHBAY_TEST_BASE_IMAGE)")
    (ssh_project / "launchbay.toml").write_text(_toml(remote_dir, docker=True, image=image))
    write(ssh_project, "train.py", TRAIN + "    print('in container', os.path.exists('/.dockerenv'))\n")
    handle = launchbay.submit("train.py", ["3"], target="gpu-box")
    assert handle.wait() == "Completed", handle.get_details().get("error")
    log = handle.get_log()
    assert "in container True" in log and "line 2" in log
    assert handle.get_metrics()["loss"] == [1.0, 0.5, 1 / 3]
    assert "outputs/model.txt" in handle.get_file_names()


@pytest.mark.docker
def test_cancel_stops_the_container_on_the_host(ssh_project: Path, remote_dir: Path) -> None:
    image = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE", "")
    need_service(bool(image and os.environ.get("DOCKER_HOST")), "Docker (LAUNCHBAY_TEST_BASE_IMAGE)")
    (ssh_project / "launchbay.toml").write_text(_toml(remote_dir, docker=True, image=image))
    write(ssh_project, "slow.py", "import time\nprint('up', flush=True)\ntime.sleep(300)\n")
    handle = launchbay.submit("slow.py", target="gpu-box")
    wait_for(lambda: "up" in handle.get_log())
    name = handle.record().target_state["remote_container"]
    assert remote(f"docker inspect -f '{{{{.State.Running}}}}' {name}")[1].strip() == "true"
    assert handle.cancel() == "Canceled"
    wait_for(lambda: remote(f"docker inspect -f '{{{{.State.Running}}}}' {name}")[1].strip() == "false", timeout=15)


def _tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel made by hand, so the environment builds with no index."""
    import base64
    import hashlib
    import zipfile

    files = {
        "lbtiny/__init__.py": b"VALUE = 'tiny 0.1'\n",
        "lbtiny-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: lbtiny\nVersion: 0.1\n",
        "lbtiny-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files["lbtiny-0.1.dist-info/RECORD"] = ("\n".join(record) + "\nlbtiny-0.1.dist-info/RECORD,,\n").encode()
    wheel = folder / "lbtiny-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


@pytest.mark.slow
def test_an_environment_is_built_on_the_host_once_and_reused(
    ssh_project: Path, remote_dir: Path, tmp_path: Path
) -> None:
    wheel = _tiny_wheel(tmp_path)
    (ssh_project / "launchbay.toml").write_text(
        _toml(remote_dir, env="tiny")
        + f'\n[environments.tiny]\npip = ["--no-index", "{wheel}"]\nenv = {{ GREETING = "hello from env" }}\n'
    )
    write(
        ssh_project,
        "use.py",
        """
        import os, sys, lbtiny
        print(lbtiny.VALUE, os.environ["GREETING"], sys.prefix)
    """,
    )
    first = launchbay.submit("use.py", target="gpu-box")
    assert first.wait() == "Completed", first.get_details().get("error")
    assert f"tiny 0.1 hello from env {remote_dir}/envs/" in first.get_log()
    assert first.record().target_state["environment"]["built"] is True
    second = launchbay.submit("use.py", target="gpu-box")
    assert second.wait() == "Completed"
    assert second.record().target_state["environment"]["built"] is False  # the venv on the host is reused
    assert "tiny 0.1" in second.get_log()


def test_an_environment_file_is_read_from_the_submitted_folder(ssh_project: Path) -> None:
    """As on every target, environment="FILE" names a file in the folder the run was submitted from
    (the SSH target used to look in the project root instead)."""
    job = ssh_project / "job"
    write(job, "reqs.txt", "# nothing to install: the host's interpreter as it is\n")
    write(job, "hello.py", "print('hello from job', flush=True)\n")
    handle = launchbay.submit("hello.py", target="gpu-box", source_dir=job, environment="reqs.txt")
    assert handle.wait() == "Completed", handle.get_details().get("error")
    assert "hello from job" in handle.get_log()
    assert handle.record().target_state["environment"]["name"] == "reqs.txt"


def test_an_environment_that_fails_to_build_says_why(ssh_project: Path, remote_dir: Path, cli: CLI) -> None:
    (ssh_project / "launchbay.toml").write_text(
        _toml(remote_dir) + '\n[environments.broken]\npip = ["--no-index", "no-such-package-lb==9.9"]\n'
    )
    write(ssh_project, "use.py", "print('never')\n")
    proc = cli("submit", "-t", "gpu-box", "--env", "broken", "use.py")  # follows the run: its build, then its end
    assert proc.returncode != 0 and "Failed" in proc.stderr
    assert "failed to build on" in proc.stdout and "no-such-package-lb" in proc.stdout
    (run,) = cli.json("runs")  # type: ignore[misc]
    assert run["status"] == "Failed" and "no-such-package-lb" in cli("logs", run["run_id"], check=True).stdout


def test_a_remote_runs_count_of_points_not_written_comes_back(ssh_project: Path) -> None:
    """The count is rewritten in place (its space was reserved), so it is synced whole, not by tails."""
    write(
        ssh_project,
        "lost.py",
        """
        import errno, time
        from launchbay import Run
        run = Run.get_context()
        run.log("x", 1.0)
        run.flush()
        time.sleep(1.5)  # synced once as "0"
        full = OSError(errno.ENOSPC, "No space left on device")
        run._journal._lost(7, full)  # what a full disk makes the writer do
        run._journal._lost(5, full)
        """,
    )
    handle = launchbay.submit("lost.py", target="gpu-box")
    assert handle.wait() == "Completed"
    assert handle.record().properties["launchbay.points_not_written"] == "disk full: 12 points not written"
    assert handle.get_metrics()["x"] == 1.0
