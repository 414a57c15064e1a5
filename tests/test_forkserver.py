"""Local runners are forked by a warm server (launchbay/forkserver.py): no interpreter start a run.

Each test has a server of its own (a private address), so none depends on what ran before."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import launchbay
from conftest import pid_alive, wait_for, write
from launchbay import forkserver

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the server is Linux-only")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private server address for this test; the server is stopped afterwards."""
    where = f"\0launchbay-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(forkserver, "address", lambda python=sys.executable: where)
    monkeypatch.delenv(forkserver.ENABLED_VAR, raising=False)
    yield where
    forkserver.stop_server()


def server_pids(where: str) -> list[int]:
    """The server (``ps -e`` shows it as lb-forkserver; its runners keep its command line)."""
    token = where[1:].encode()
    found = []
    for entry in os.listdir("/proc"):
        try:
            if not entry.isdigit() or token not in Path(f"/proc/{entry}/cmdline").read_bytes():
                continue
            if Path(f"/proc/{entry}/comm").read_text().strip() == "lb-forkserver" and pid_alive(int(entry)):
                found.append(int(entry))
        except OSError:
            pass
    return found


def forked_by(where: str, runner_pid: int) -> bool:
    """A forked runner carries its server's command line (a plain one has runner.py and the run folder)."""
    named = Path(f"/proc/{runner_pid}/comm").read_text().strip() == "lb-runner"
    return named and where[1:].encode() in Path(f"/proc/{runner_pid}/cmdline").read_bytes()


def warm_up(project: Path, server: str) -> None:
    """A first local run (its own runner) starts the server; wait until it is up."""
    write(project, "hello.py", "print('hello')\n")
    launchbay.submit("hello.py").wait(show_output=False)
    wait_for(lambda: server_pids(server), timeout=30)


def slow_script(project: Path) -> None:
    write(
        project,
        "slow.py",
        """
        import time
        from launchbay import Run
        run = Run.get_context()
        for i in range(5):
            run.log("loss", 1.0 / (i + 1), step=i)
        print("up", flush=True)
        time.sleep(120)
    """,
    )


def test_the_first_submit_starts_the_server_and_later_runs_are_forked_from_it(project: Path, server: str) -> None:
    write(project, "hello.py", "from launchbay import Run\nRun.get_context().log('x', 1)\nprint('hello')\n")
    first = launchbay.submit("hello.py")
    assert first.wait(show_output=False) == "Completed"
    wait_for(lambda: server_pids(server), timeout=30)
    slow_script(project)
    second = launchbay.submit("slow.py")
    wait_for(lambda: "up" in second.get_log())
    record = second.record()
    assert forked_by(server, record.target_state["runner_pid"])
    assert record.target_state["runner_start"] > 0
    wait_for(lambda: second.get_metric_series("loss").values.tolist() == [1.0, 0.5, 1 / 3, 0.25, 0.2])
    # a forked runner is the run's runner in every way: cancel stops it and its script
    child = record.target_state["child_pgid"]
    assert second.cancel() == "Canceled"
    wait_for(lambda: not pid_alive(child), timeout=10)
    assert first.get_log().strip() == "hello"


def test_runs_outlive_the_server_and_a_dead_forked_runner_is_found_out(
    project: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm_up(project, server)
    slow_script(project)
    kept, killed = launchbay.submit("slow.py"), launchbay.submit("slow.py")
    wait_for(lambda: "up" in kept.get_log() and "up" in killed.get_log())
    for pid in server_pids(server):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not server_pids(server))
    assert kept.status == "Running"
    runner = killed.record().target_state["runner_pid"]
    assert forked_by(server, runner)
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: killed.status == "Failed", timeout=15)
    assert "runner process died" in killed.record().error["message"]  # type: ignore[index]
    assert kept.cancel() == "Canceled"
    # with the server gone the next run starts the plain way, and starts a new server
    monkeypatch.setattr(forkserver, "_started", {})  # (this process started the first one just now)
    launchbay.submit("hello.py").wait(show_output=False)
    wait_for(lambda: server_pids(server), timeout=30)


def test_the_runner_gets_the_submitters_environment_and_umask_not_the_servers(
    project: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm_up(project, server)
    write(
        project,
        "env.py",
        """
        import os
        open("made.txt", "w").close()
        print("VAR", os.environ.get("LB_TEST_VAR"), os.stat("made.txt").st_mode & 0o777, flush=True)
        import time
        time.sleep(120)
    """,
    )
    monkeypatch.setenv("LB_TEST_VAR", "from-the-submitter")
    old = os.umask(0o077)
    try:
        handle = launchbay.submit("env.py")
    finally:
        os.umask(old)
    wait_for(lambda: "VAR" in handle.get_log())
    assert forked_by(server, handle.record().target_state["runner_pid"])
    assert "VAR from-the-submitter 384" in handle.get_log()  # 0o600: the submitter's umask
    assert handle.cancel() == "Canceled"


def test_the_server_refuses_another_user(project: Path, server: str) -> None:
    warm_up(project, server)
    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.getuid() != 0 or python is None:
        pytest.skip("needs root to connect as another user")
    victim = project / "victim"
    victim.mkdir(mode=0o777)
    request = f'{{"run_dir": "{victim}", "env": {{}}, "umask": 18}}\n'
    code = (
        f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({server!r})\n"
        f"try:\n    s.sendall({request!r}.encode()); print(repr(s.recv(100)))\n"
        "except (BrokenPipeError, ConnectionResetError):\n    print('reset')"
    )
    out = subprocess.run([python, "-c", code], user="nobody", capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() in ("b''", "reset"), out  # closed without an answer
    assert not (victim / "journal").exists()  # nothing was forked for it


def test_an_idle_server_exits(project: Path, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(forkserver.IDLE_VAR, "1")
    warm_up(project, server)
    wait_for(lambda: not server_pids(server), timeout=15)


def test_turned_off_every_runner_starts_the_plain_way(
    project: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(forkserver.ENABLED_VAR, "0")
    slow_script(project)
    handle = launchbay.submit("slow.py")
    wait_for(lambda: "up" in handle.get_log())
    runner = handle.record().target_state["runner_pid"]
    assert str(handle.record().run_dir).encode() in Path(f"/proc/{runner}/cmdline").read_bytes()
    assert not server_pids(server)
    assert handle.cancel() == "Canceled"
