"""``run.log`` against a bare Python method, and local submit against ``python script.py`` (issue 18).

Run: ``python bench/bench_runlog.py`` (``bash bench/run_scale.sh`` runs it with the others).
Both ``run.log`` figures come from one submitted run: a bare method that appends a
timestamped tuple to a list, then ``run.log``, in alternating rounds (best of each), so both
share the process, the machine's load and the run's background flusher.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from table import ms, row  # noqa: E402

PY = sys.executable

LOOP = """
import time
from launchbay import Run

class Bare:
    def __init__(self):
        self.points = []

    def log(self, name, value, step=None):
        self.points.append((name, value, step, time.time()))

run = Run.get_context()
bare = Bare()
N = {points}
best = {{"bare": 0.0, "run.log": 0.0}}
for _ in range(5):
    for label, log in (("bare", bare.log), ("run.log", run.log)):
        t = time.perf_counter()
        for i in range(N):
            log("loss", i * 0.5, i)
        best[label] = max(best[label], N / (time.perf_counter() - t))
        bare.points.clear()
        time.sleep(0.3)  # the flusher drains run.log's list between rounds
print("RATES", best["bare"], best["run.log"], flush=True)
"""


def runlog_rates(work: Path, points: int) -> tuple[float, float]:
    import launchbay

    proj = work / "runlog"
    proj.mkdir()
    (proj / "loop.py").write_text(LOOP.format(points=points))
    handle = launchbay.submit("loop.py", source_dir=proj, store=work / "store-runlog")
    handle.wait(poll_s=0.05)
    line = next(x for x in handle.get_log().splitlines() if x.startswith("RATES"))
    bare, ours = map(float, line.split()[1:])
    return bare, ours


def submit_first_line(work: Path, files: int, repeats: int = 9) -> tuple[float, float]:
    """Median time to the script's first line: ``python script.py`` and a local submit (snapshot cached)."""
    import launchbay

    proj = work / f"latency{files}"
    proj.mkdir()
    for i in range(files - 1):
        sub = proj / f"pkg{i % 20}"
        sub.mkdir(exist_ok=True)
        (sub / f"mod{i}.py").write_text(f"X = {i}\n" * 20)
    (proj / "first.py").write_text("import time\nprint('FIRST', time.time(), flush=True)\n")
    store = work / f"store-latency{files}"
    launchbay.submit("first.py", source_dir=proj, store=store).wait()  # the snapshot is made once
    plain, ours = [], []
    for _ in range(repeats):
        t = time.time()
        out = subprocess.run([PY, "first.py"], cwd=proj, capture_output=True, text=True, check=True).stdout
        plain.append(float(out.split()[1]) - t)
        t = time.time()
        handle = launchbay.submit("first.py", source_dir=proj, store=store)
        handle.wait(poll_s=0.02)
        ours.append(float(handle.get_log().split()[1]) - t)
    return statistics.median(plain), statistics.median(ours)


def main() -> None:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["LAUNCHBAY_STORE"] = str(work / "store")
        bare, ours = runlog_rates(work, 100_000 if quick else 1_000_000)
        small_plain, small_ours = submit_first_line(work, 3)
        big_plain, big_ours = submit_first_line(work, 1000, repeats=3 if quick else 7)
    share = ours / bare
    row(
        "run.log calls/s (same run as the bare method)",
        ">= 70% of bare",
        f"{ours / 1e6:,.2f}M/s",
        f"bare method {bare / 1e6:,.2f}M/s",
        share,
        share >= 0.70,
    )
    over = small_ours - small_plain
    row(
        "local submit: first line (3 files)",
        "<= plain + 40 ms",
        ms(small_ours),
        f"python script.py {ms(small_plain)}",
        small_ours / small_plain,
        over <= 0.040,
    )
    row(f"  overhead over python script.py: {over * 1000:,.0f} ms", "", "")
    row("  (1,000 files, snapshot cached)", "", ms(big_ours), f"python script.py {ms(big_plain)}", big_ours / big_plain)


if __name__ == "__main__":
    main()
