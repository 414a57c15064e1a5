"""A 50-step pipeline (prep, a fan-out of 48 independent steps, gather) on the local target, against running
the same scripts by hand in the same order. Prints the controller's overhead per step, and the time of a
re-run that reuses every step, and how long the notebook's DAG widget takes to redraw the 50 steps (reading
their state and drawing the SVG: what each change of a step costs). Usage: python bench/bench_pipeline.py [FOLDER]."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAN = 48


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="lb-bench-pipe-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    os.environ["LAUNCHBAY_STORE"] = str(folder / ".store")
    Path("prep.py").write_text("import pathlib\npathlib.Path('outputs/d').mkdir(parents=True, exist_ok=True)\n"
                               "pathlib.Path('outputs/d/x').write_text('1')\n")  # fmt: skip
    Path("work.py").write_text("import os, sys\nopen(os.path.join(os.environ['LAUNCHBAY_INPUT_D'], 'x')).read()\n")
    Path("gather.py").write_text("print('gathered')\n")
    started = time.perf_counter()
    for script in ["prep.py", *["work.py"] * FAN, "gather.py"]:
        env = {**os.environ, "LAUNCHBAY_INPUT_D": str(folder / "outputs/d")}
        subprocess.run([sys.executable, script], check=True, env=env)
    by_hand = time.perf_counter() - started

    from launchbay import Step, pipeline

    steps = [Step("prep", "prep.py", outputs={"d": "outputs/d"})]
    steps += [Step(f"w{i}", "work.py", args=[str(i)], inputs={"d": "prep.d"}) for i in range(FAN)]
    steps.append(Step("gather", "gather.py", inputs={"d": "prep.d"}))
    started = time.perf_counter()
    handle = pipeline(steps, experiment="bench").submit()
    assert handle.wait(timeout=600) == "Completed", handle.steps
    piped = time.perf_counter() - started
    started = time.perf_counter()
    again = pipeline(steps, experiment="bench").submit()
    assert again.wait(timeout=600) == "Completed"
    reused = time.perf_counter() - started
    assert all(s["reused_from"] for s in again.steps)
    redraw = widget_redraw_ms(handle)
    n = FAN + 2
    print(json.dumps({
        "steps": n, "by_hand_s": round(by_hand, 2), "pipeline_s": round(piped, 2),
        "overhead_ms_per_step": round((piped - by_hand) / n * 1000, 1), "full_reuse_rerun_s": round(reused, 2),
        "widget_redraw_ms_median": redraw["median"], "widget_redraw_ms_max": redraw["max"],
        "cores": os.cpu_count(),
    }))  # fmt: skip


def widget_redraw_ms(handle: object, times: int = 20) -> dict[str, float]:
    """One redraw as the widget does it when a step changed: read the steps' state, draw, set the value."""
    from launchbay.ipython.pipeline_widget import PipelineWidget

    widget = PipelineWidget(handle)  # type: ignore[arg-type]
    took = []
    for _ in range(times):
        widget._drawn = None  # as if a step had changed
        started = time.perf_counter()
        widget.refresh()
        took.append((time.perf_counter() - started) * 1000)
    widget.close()
    took.sort()
    return {"median": round(took[len(took) // 2], 1), "max": round(took[-1], 1)}


if __name__ == "__main__":
    main()
