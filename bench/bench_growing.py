"""The run widget and the sidebar chart while one 10,000,000-point series grows (issue 18: scale).

Run: ``python bench/bench_growing.py [--points N]`` (``bash bench/run_scale.sh`` runs it).
A local run logs ``loss`` at every step, as fast as it can (a noisy decaying float), then ends;
it writes ``step time`` to a side file every 65,536 steps, so the age of what a view shows can be
told. While it runs, in this process, the notebook's run widget (``RunWidget``, its own thread left
out) is driven one pass at a time as its poll loop does (``handle.record()`` then ``_update``,
``POLL_S`` apart; a pass redraws the PNG at most every ``REDRAW_S``), each pass timed; and a child
process polls a real ``jupyter server`` with the launchbay extension as the sidebar's run view does
(``runview.ts``: the run, its metric list, then the series with ``after_step`` = the last step it
has and ``buckets=2000``, appended), once a second, each request timed over HTTP. After the end:
one redraw at the final size, and the full series (no ``after_step``, 2,000 buckets) over HTTP.
Staleness: the age of the newest point each view shows (how long ago the script logged it), the
longest wait between two updates, and the delay from the script's last ``run.log`` to the view
showing that last point. Completeness, counted, not asserted: the points the widget shows once
the run has ended (its loop stops there), and the last step the sidebar shows in the round that
sees the end (runview.ts polls no more after it; this bench goes on, to time the last point).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from table import ms, row  # noqa: E402

PY = sys.executable
METRIC = "loss"
SIDEBAR_POLL_S = 1.0  # runview.ts waits RUN_POLL_MS (2 s) between rounds; once a second is the harder case
BUCKETS = 2000  # what runview.ts asks for
GROW = """
import math, random, sys, time
from launchbay import Run

n, progress = int(sys.argv[1]), open(sys.argv[2], "w", buffering=1)
log, noise, exp, now = Run.get_context().log, random.random, math.exp, time.time
scale = n / 5
for i in range(n):
    log("loss", 2.0 * exp(-i / scale) + 0.05 + 0.1 * noise(), step=i)
    if not i & 0xFFFF:
        progress.write(f"{i} {now()}\\n")
progress.write(f"{n - 1} {now()}\\nEND\\n")
"""


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


# -- the sidebar: a child process, so its timings never wait on this process's GIL -------------------------
def sidebar_client(config: dict[str, Any]) -> dict[str, Any]:
    """Poll as runview.ts does until the run has ended and the chart has its last point."""
    sys.path.insert(0, str(HERE))
    from bench_scale import Jupyter

    server, run_id = Jupyter(config["base"], config["token"]), config["run_id"]
    last: int | None = None  # the chart's last step (LineChart.lastStep)
    at_end: int | None = None
    rounds: list[dict[str, Any]] = []
    deadline = time.time() + config["timeout_s"]
    while time.time() < deadline:
        sample: dict[str, Any] = {}
        t = time.perf_counter()
        status = server.get(f"runs/{run_id}")["status"]
        sample["run_s"] = time.perf_counter() - t
        t = time.perf_counter()
        metrics = server.get(f"runs/{run_id}/metrics")["metrics"]
        sample["list_s"] = time.perf_counter() - t
        summary = next((m for m in metrics if m["name"] == METRIC), None)
        if summary is not None and (last is None or summary["last_step"] is None or summary["last_step"] > last):
            query = f"runs/{run_id}/metrics/{METRIC}?buckets={BUCKETS}"
            if last is not None:
                query += f"&after_step={last}"
            t = time.perf_counter()
            series = server.get(query)
            sample["series_s"] = time.perf_counter() - t
            sample["after_step"], sample["returned"] = last, len(series["steps"])
            newer = [s for s in series["steps"] if last is None or s > last]
            if newer:
                last = int(newer[-1])
        sample["at"], sample["shown"] = time.time(), last
        rounds.append(sample)
        ended = status in ("Completed", "Failed", "Canceled")
        if ended and at_end is None:
            at_end = last  # runview.ts stops here: the round that sees the end is its last
        if ended and (summary is None or summary["last_step"] == last):
            break  # this bench goes on until the chart has the last point (to time that)
        time.sleep(SIDEBAR_POLL_S)
    return {"rounds": rounds, "shown_at_end": at_end}


def start_sidebar(base: str, token: str, run_id: str, timeout_s: float) -> subprocess.Popen[str]:
    config = {"base": base, "token": token, "run_id": run_id, "timeout_s": timeout_s}
    return subprocess.Popen(
        [PY, str(Path(__file__).resolve()), "--sidebar-client", json.dumps(config)], stdout=subprocess.PIPE, text=True
    )


# -- the widget: its poll loop, one timed pass at a time, in this process ------------------------------------
def drive_widget(handle: Any, timeout_s: float) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    from launchbay.ipython import widgets

    class Passes(widgets.RunWidget):
        """The real widget; its thread does nothing, the bench calls each pass itself."""

        def _poll_loop(self) -> None:
            self._done.set()

    widget = Passes(handle)
    widget._thread.join()
    passes: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        t = time.perf_counter()
        record = handle.record()  # catches the store up with the run's journal (if no one else is)
        record_s = time.perf_counter() - t
        buf = widget._series.get(METRIC)
        drawn = buf.drawn_count if buf else -1
        widget._update(record)
        pass_s = time.perf_counter() - t
        buf = widget._series.get(METRIC)
        sample = {
            "s": pass_s,
            "record_s": record_s,
            "at": time.time(),
            "points": len(buf.values) if buf else 0,
            "shown": int(buf.steps[-1]) if buf and len(buf.steps) else None,
            "drew": bool(buf and buf.drawn_count != drawn),
            "ended": record.status.is_terminal(),
        }
        passes.append(sample)
        if record.status.is_terminal():
            t = time.perf_counter()
            widget._finish(record)  # what the loop does once: one more _update (final: a redraw), the footer
            final = {"finish_s": time.perf_counter() - t, "status": record.status.value}
            break
        time.sleep(widgets.POLL_S)
    return widget, passes, final


def missing_points(handle: Any, shown: np.ndarray, n: int) -> int:
    """Points the widget does not show once the run ended (0: every step 0..n-1, once, in order);
    when some are missing, what the store holds by now goes to stderr."""
    if len(shown) == n and bool(np.all(shown == np.arange(n))):
        return 0
    stored = handle.series_since(METRIC, None).steps
    gaps = np.flatnonzero(np.diff(shown) != 1)
    print(
        f"the widget shows {len(shown):,} of {n:,} points (last step {int(shown[-1]) if len(shown) else None}; "
        f"jumps after steps {[int(shown[i]) for i in gaps[:5]]}); the store by now: {handle.metric_summaries()}, "
        f"a full read {len(stored):,} points",
        file=sys.stderr,
    )
    return n - len(np.unique(shown))


def warm_up() -> None:
    """The widget's modules imported, matplotlib too, and one figure drawn (a notebook that has shown one)."""
    import launchbay.ipython.widgets  # noqa: F401
    from launchbay.ipython.plots import figure_png, series_figure

    figure_png(series_figure(METRIC, np.arange(10), np.arange(10.0)))


def redraw_s(widget: Any, repeats: int = 3) -> float:
    buf = widget._series[METRIC]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        type(widget)._draw(buf)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- staleness from the script's progress file ------------------------------------------------------------
def read_progress(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    lines = path.read_text().split("\n")
    assert "END" in lines, "the script did not finish"
    pairs = [line.split() for line in lines if line and line != "END"]
    steps = np.array([int(p[0]) for p in pairs], dtype=np.float64)
    times = np.array([float(p[1]) for p in pairs])
    return steps, times, float(times[-1])


def staleness(samples: list[dict[str, Any]], progress: tuple[np.ndarray, np.ndarray, float]) -> dict[str, Any]:
    """How far behind the script a view is while it logs, and how soon it shows the script's last point.

    A sample is one update (a widget pass, a sidebar round): when it ended and the last step then shown.
    The age of a point is how long ago the script logged it; the worst age is the one just before an
    update replaces it (the view was that stale for a moment); the longest gap is between two updates."""
    steps, times, end = progress
    last = int(steps[-1])

    def logged_at(step: int) -> float:
        return float(np.interp(step, steps, times))

    live = [s for s in samples if s["shown"] is not None and s["at"] < end]
    ages = [s["at"] - logged_at(s["shown"]) for s in live]
    pairs = [(a, b) for a, b in zip(samples, samples[1:]) if a["shown"] is not None and a["at"] < end]
    worst = [b["at"] - logged_at(a["shown"]) for a, b in pairs]
    behind = [float(np.interp(s["at"], times, steps)) - s["shown"] for s in live]
    shown = [s["at"] for s in samples if s["shown"] == last]
    return {
        "age_median_s": statistics.median(ages) if ages else None,
        "age_worst_s": max(worst) if worst else None,
        "longest_gap_s": max((b["at"] - a["at"] for a, b in pairs), default=None),
        "steps_behind_median": statistics.median(behind) if behind else None,
        "end_to_last_point_s": (shown[0] - end) if shown else None,
        "samples_while_logging": len(live),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--sidebar-client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sidebar_client:
        print(json.dumps(sidebar_client(json.loads(args.sidebar_client))))
        return
    from bench_scale import jupyter_server

    import launchbay

    n = args.points
    timeout_s = 120 + n / 20_000  # a stuck run ends the bench instead of hanging it
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        proj, store, progress = work / "proj", work / "store", work / "progress.txt"
        proj.mkdir()
        (proj / "grow.py").write_text(GROW)
        print("... jupyter server", file=sys.stderr, flush=True)
        with jupyter_server(store, work) as server:
            warm_up()
            print(f"... a run logging {n:,} points", file=sys.stderr, flush=True)
            t = time.time()
            handle = launchbay.submit("grow.py", [str(n), str(progress)], source_dir=proj, store=store)
            submitted = time.time() - t
            client = start_sidebar(server.base, server.token, handle.run_id, timeout_s)
            widget, passes, final = drive_widget(handle, timeout_s)
            out, _ = client.communicate(timeout=timeout_s)
            sidebar = json.loads(out)
            rounds = sidebar["rounds"]
            assert final.get("status") == "Completed", (final, handle.get_log()[-2000:])
            buf = widget._series[METRIC]
            missing = missing_points(handle, buf.steps, n)
            sidebar_end = sidebar["shown_at_end"]
            print("... redraw and full series at the final size", file=sys.stderr, flush=True)
            redraw = redraw_s(widget)
            full = []
            for _ in range(3):
                t = time.perf_counter()
                whole = server.get(f"runs/{handle.run_id}/metrics/{METRIC}?buckets={BUCKETS}")
                full.append(time.perf_counter() - t)
            assert 2 * BUCKETS - 2 <= len(whole["steps"]) <= 2 * BUCKETS + 2, len(whole["steps"])
            widget.close()
        prog = read_progress(progress)
    steps, times, end = prog
    logged_s = end - times[0]
    growing = [p for p in passes if p["points"] and p["at"] - p["s"] < end]  # begun while the script logged
    pass_times = [p["s"] for p in growing]
    plain = [p["s"] for p in growing if not p["drew"]]
    drew = [p["s"] for p in growing if p["drew"]]
    series_req = [r["series_s"] for r in rounds if "series_s" in r]
    found: dict[str, Any] = {
        "points": n,
        "submit_s": submitted,
        "logging_s": logged_s,
        "widget": {
            "passes": len(growing),
            "median_s": statistics.median(pass_times),
            "p95_s": percentile(pass_times, 95),
            "max_s": max(pass_times),
            "record_median_s": statistics.median([p["record_s"] for p in growing]),
            "record_max_s": max(p["record_s"] for p in growing),
            "no_redraw_median_s": statistics.median(plain) if plain else None,
            "redraw_pass_median_s": statistics.median(drew) if drew else None,
            "redraw_final_s": redraw,
            "finish_s": final["finish_s"],
            "missing_at_end": missing,
            **staleness(passes, prog),
        },
        "sidebar": {
            "rounds": len(rounds),
            "series_requests": len(series_req),
            "series_median_s": statistics.median(series_req),
            "series_max_s": max(series_req),
            "list_median_s": statistics.median([r["list_s"] for r in rounds]),
            "run_median_s": statistics.median([r["run_s"] for r in rounds]),
            "run_max_s": max(r["run_s"] for r in rounds),
            "full_series_s": statistics.median(full),
            "full_series_first_s": full[0],
            "last_step_when_ended": sidebar_end,
            **staleness(rounds, prog),
        },
        "script_start": float(times[0]),
        "pass_samples": [{k: p[k] for k in ("at", "s", "record_s", "points", "drew", "ended")} for p in passes],
        "sidebar_samples": [
            {k: r.get(k) for k in ("at", "run_s", "series_s", "after_step", "returned")} for r in rounds
        ],
    }
    print(json.dumps(found), file=sys.stderr)

    big = f"{n / 1e6:,.4g}M" if n >= 1_000_000 else f"{n / 1e3:,.4g}k"
    wid, side = found["widget"], found["sidebar"]

    def seconds(value: float | None) -> str:
        return "-" if value is None else ms(value)

    def stale_rows(view: dict[str, Any], name: str) -> None:
        worst = f"worst {seconds(view['age_worst_s'])}"
        row("  age of the newest point shown (median)", "", seconds(view["age_median_s"]), worst)
        row("  longest time between two updates", "", seconds(view["longest_gap_s"]))
        row(f"  script's last point -> {name} shows it", "", seconds(view["end_to_last_point_s"]))

    row(f"a run logging {big} points of one series", "", ms(logged_s), f"{n / logged_s / 1e6:,.2f}M points/s")
    row(
        f"widget poll pass, {big}-point series growing",
        "< 200 ms",
        ms(wid["median_s"]),
        "-",
        None,
        wid["median_s"] < 0.200,
    )
    passes_text = f"{wid['passes']} pass" + ("" if wid["passes"] == 1 else "es")
    row(f"  p95 ({passes_text})", "", ms(wid["p95_s"]), f"max {ms(wid['max_s'])}")
    row(
        "  of which handle.record() (journal catch-up)",
        "",
        ms(wid["record_median_s"]),
        f"max {ms(wid['record_max_s'])}",
    )
    row("  a pass that does not redraw (median)", "", seconds(wid["no_redraw_median_s"]))
    row("  a pass that redraws the PNG (<= every 1 s)", "", seconds(wid["redraw_pass_median_s"]))
    row(f"  a PNG redraw at the final size ({big})", "", ms(redraw))
    stale_rows(wid, "widget")
    row("  points shown once the run has ended", f"= {n:,}", f"{n - missing:,}", "", None, missing == 0)
    row(
        f"sidebar series request over HTTP, {big} growing",
        "< 200 ms",
        ms(side["series_median_s"]),
        "-",
        None,
        side["series_median_s"] < 0.200,
    )
    row(f"  max ({side['series_requests']} requests)", "", ms(side["series_max_s"]))
    row("  the run request before it (median)", "", ms(side["run_median_s"]), f"max {ms(side['run_max_s'])}")
    row("  the metric list request beside it (median)", "", ms(side["list_median_s"]))
    row(
        f"  full series, {big} -> {BUCKETS:,} buckets, over HTTP", "", ms(side["full_series_s"]), f"first {ms(full[0])}"
    )
    stale_rows(side, "sidebar")
    shown_end = "-" if sidebar_end is None else f"{sidebar_end:,}"
    row("  last step shown in the round that sees the end", f"= {n - 1:,}", shown_end, "", None, sidebar_end == n - 1)


if __name__ == "__main__":
    main()
