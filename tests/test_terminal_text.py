"""Where no widget renders, %%submit streams the run as text: terminal IPython in a real pty.

(Under nbclient/nbconvert: tests/test_notebooks.py::test_quickstart_runs_end_to_end.)
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect

from conftest import CLI, write
from ipython_driver import run_cells

PROMPT = r"In \[\d+\]: "


def terminal_ipython(cwd: Path) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k != "LAUNCHBAY_WIDGETS"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "IPython", "--simple-prompt", "--colors=NoColor", "--no-banner"],
        cwd=str(cwd),
        env=env,
        encoding="utf-8",
        timeout=60,
    )
    child.expect(PROMPT)
    child.sendline("%load_ext launchbay")
    child.expect(PROMPT)
    return child


def send_cell(child: pexpect.spawn, cell: str) -> None:
    for line in cell.splitlines():
        child.sendline(line)
    child.sendline("")  # blank lines end a cell magic at the terminal
    child.sendline("")


def test_terminal_ipython_shows_log_lines_and_the_final_status_before_the_prompt_returns(project: Path) -> None:
    child = terminal_ipython(project)
    send_cell(child, "%%submit\nimport time\nfor i in range(3):\n    print('line', i, flush=True)\n    time.sleep(0.2)")
    child.expect(PROMPT)
    shown = child.before.replace("\r\n", "\n")
    positions = [shown.index(text) for text in ("submitted to", "line 0", "line 1", "line 2", "Completed after")]
    assert positions == sorted(positions), shown
    first_status = re.search(r"run \S+ (Queued|Preparing|Starting|Running)\n", shown)  # as far as it got by then
    assert first_status and first_status.start() < positions[1], shown
    assert re.search(r"run \S+ Completed after [\d.]+ s \(exit code 0\)", shown)
    child.sendline("exit")
    child.expect(pexpect.EOF)


def test_ctrl_c_stops_watching_and_the_line_it_gives_reattaches(project: Path, cli: CLI) -> None:
    child = terminal_ipython(project)
    send_cell(child, "%%submit\nimport time\nprint('started', flush=True)\ntime.sleep(30)")
    child.expect(r"\r\nstarted\r\n")  # the run's log line, not the echoed input
    child.sendintr()
    child.expect(PROMPT)
    shown = child.before.replace("\r\n", "\n")
    run_id = re.search(r"launchbay: run (\S+) is still running; `%launchbay show (\S+)` re-attaches", shown)
    assert run_id and run_id.group(1) == run_id.group(2), shown
    assert cli.json("show", run_id.group(1))["status"] == "Running"  # type: ignore[index]

    child.sendline(f"%launchbay show {run_id.group(1)}")
    child.expect(r"\r\nstarted\r\n")  # the log so far, then it follows the run again
    cli("cancel", run_id.group(1), check=True)
    child.expect(r"Canceled after [\d.]+ s")
    child.expect(PROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)


def test_no_wait_returns_at_once(project: Path) -> None:
    out = run_cells(project, "%%submit --no-wait\nimport time\ntime.sleep(20)\nprint('never seen')")
    assert re.search(r"Run (\S+) submitted to local; follow it with `%launchbay show \1`", out), out
    assert "never seen" not in out
    both = run_cells(project, "%%submit --wait --no-wait\nprint(1)")
    assert "UsageError: --wait and --no-wait contradict each other: give one." in both


LOGS_A_FALLING_LOSS = """
from launchbay import Run
run = Run.get_context()
for step in range(40):
    run.log("loss", 4.0 / (step + 1), step=step)
run.log_row("pr", threshold=0.5, precision=0.9)
"""


def test_metrics_magic_in_a_terminal_prints_summaries_and_a_sparkline_not_display_objects(
    project: Path, cli: CLI
) -> None:
    write(project, "train.py", LOGS_A_FALLING_LOSS)
    cli("submit", "--system-metrics-interval", "0", "train.py", check=True)
    run_id = cli.json("runs")[0]["run_id"]  # type: ignore[index]
    child = terminal_ipython(project)
    child.sendline(f"%launchbay metrics {run_id}")
    child.expect(PROMPT)
    shown = child.before.replace("\r\n", "\n")
    assert "<IPython.core.display" not in shown, shown
    assert "loss (scalar): 40 points, last 0.1 at step 39, min 0.1, max 4\n" in shown, shown
    spark = re.search(r"\n  ([ ▁▂▃▄▅▆▇█]+)\n", shown)
    assert spark and len(spark.group(1)) == 40 and spark.group(1)[0] == "█" and spark.group(1)[-1] == "▁", shown
    assert "pr (rows): 1 row × 2 columns\n  threshold  precision\n        0.5        0.9\n" in shown, shown
    child.sendline("exit")
    child.expect(pexpect.EOF)
