"""A 1,000-trial sweep, 8 at a time, on the local target (issue 18: scale).

Run: ``python bench/bench_sweep_scale.py [--trials N]`` (``bash bench/run_scale.sh`` runs it).
The reference is the same trial script started by a plain process pool that keeps 8
``python trial.py --x V`` running. The controller's overhead a trial is the extra wall time the
sweep takes over that pool, (sweep wall - pool wall) / trials; beside it the controller process's
own CPU a trial and the extra slot time (x 8, what each slot waits longer). Then, on the finished
sweep: the sweep widget's refresh (one pass of its poll: rows, plots, table) and
``launchbay runs --parent SWEEP`` as a whole process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scale import entry_point  # noqa: E402
from table import ms, row  # noqa: E402

PY = sys.executable
TRIAL = """
import sys
from launchbay import Run
x = float(sys.argv[sys.argv.index("--x") + 1])
Run.get_context().log("loss", (x - 0.3) ** 2)
"""
CONCURRENT = 8


def plain_pool(proj: Path, trials: int) -> float:
    """Wall time of the trials run by a bare process pool, 8 at a time (outside any run, no store)."""
    env = dict(os.environ)
    env.pop("LAUNCHBAY_STORE", None)
    t = time.perf_counter()
    running: list[subprocess.Popen[bytes]] = []
    for i in range(trials):
        while len(running) >= CONCURRENT:
            running = [p for p in running if p.poll() is None]
            if len(running) >= CONCURRENT:
                time.sleep(0.005)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        running.append(subprocess.Popen([PY, "trial.py", "--x", str(i / trials)], cwd=proj, env=env, **quiet))
    for p in running:
        p.wait()
    return time.perf_counter() - t


def run_sweep(proj: Path, store: Path, trials: int) -> tuple[str, float, dict[str, float]]:
    from launchbay.sweeps import GridSampling, choice, get_sweep, sweep

    t = time.perf_counter()
    handle = sweep(
        "trial.py",
        sampling=GridSampling({"x": choice(*[i / trials for i in range(trials)])}),
        primary_metric="loss",
        max_total_runs=trials,
        max_concurrent_runs=CONCURRENT,
        source_dir=proj,
        store=store,
    )
    cpu = 0.0  # the controller process's CPU seconds, sampled until it exits
    while not (record := handle.record()).status.is_terminal():
        cpu = max(cpu, process_cpu_s(record.target_state.get("runner_pid")))
        time.sleep(0.05)
    wall = time.perf_counter() - t
    sweep_handle = get_sweep(handle.run_id, store=store)
    assert handle.record().status.value == "Completed", handle.record()
    children = sweep_handle.children()
    assert len(children) == trials and all(c.status.value == "Completed" for c in children)
    launch = [c.started - c.created for c in children if c.started]  # type: ignore[operator]
    by_start = sorted(children, key=lambda c: c.created)
    ends = sorted(c.ended for c in children if c.ended)
    # how long a freed slot waits for its next child: the k-th launch after the first 8 follows the k-th end
    gaps = [max(0.0, c.created - ends[k]) for k, c in enumerate(by_start[CONCURRENT:])]
    detail = {"launch_s": statistics.median(launch), "slot_gap_s": statistics.median(gaps), "controller_cpu_s": cpu}
    return handle.run_id, wall, detail


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a live process (0 when it is gone or not known yet)."""
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()  # type: ignore[arg-type]
    except (OSError, TypeError, ValueError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def widget_refresh(store: Path, sweep_id: str, trials: int) -> tuple[float, float]:
    """One pass of the sweep widget's poll on the finished sweep: rows, table and header (what
    every poll does), and a pass that redraws both plots too (at most every few seconds)."""
    from launchbay.ipython.sweep_widget import SweepWidget
    from launchbay.sweeps import get_sweep

    widget = SweepWidget(get_sweep(sweep_id, store=store))
    time.sleep(0.5)
    out = []
    for drawn in (trials, -1):  # the plots are redrawn when more trials finished than last drawn
        times = []
        for _ in range(5):
            widget._drawn = drawn
            t = time.perf_counter()
            widget._poll()  # the sweep has ended: exactly one pass
            times.append(time.perf_counter() - t)
        out.append(statistics.median(times))
    widget.close()
    return out[0], out[1]


def cli_parent(store: Path, sweep_id: str) -> float:
    env = dict(os.environ, LAUNCHBAY_STORE=str(store))
    argv = [PY, "-c", entry_point(), "runs", "--parent", sweep_id]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "proj"
        proj.mkdir()
        (proj / "trial.py").write_text(TRIAL)
        store = Path(tmp) / "store"
        print(f"... plain pool of {args.trials} trials", file=sys.stderr, flush=True)
        pool = plain_pool(proj, args.trials)
        print(f"... sweep of {args.trials} trials", file=sys.stderr, flush=True)
        sweep_id, wall, detail = run_sweep(proj, store, args.trials)
        print("... widget and runs --parent", file=sys.stderr, flush=True)
        refresh, plots = widget_refresh(store, sweep_id, args.trials)
        parent = cli_parent(store, sweep_id)
    found = {
        "pool_s": pool,
        "sweep_s": wall,
        "widget_refresh_s": refresh,
        "widget_plots_s": plots,
        "cli_parent_s": parent,
        **detail,
    }
    print(json.dumps(found), file=sys.stderr)
    overhead = max(0.0, wall - pool) / args.trials
    controller = detail["controller_cpu_s"] / args.trials
    row(
        f"sweep of {args.trials:,} trials, {CONCURRENT} at a time",
        "",
        ms(wall),
        f"process pool {ms(pool)}",
        wall / pool,
    )
    row(
        "  controller overhead a trial (wall)",
        "<= 50 ms",
        ms(overhead),
        "(sweep - pool) / trials",
        None,
        overhead <= 0.050,
    )
    row("  the controller's own CPU a trial", "", ms(controller), "", None)
    row("  extra slot time a trial (x8 slots)", "", ms(overhead * CONCURRENT))
    row("  child created -> running (median)", "", ms(detail["launch_s"]))
    row("  freed slot -> next child created (median)", "", ms(detail["slot_gap_s"]))
    row(f"sweep widget refresh, {args.trials:,} trials", "< 200 ms", ms(refresh), "", None, refresh < 0.200)
    row("  a pass that redraws both plots (<= every 5 s)", "", ms(plots))
    row("`launchbay runs --parent SWEEP` (process)", "< 200 ms", ms(parent), "", None, parent < 0.200)


if __name__ == "__main__":
    main()
