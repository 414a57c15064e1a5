"""The run widget in a real JupyterLab, driven by the system Chromium (Playwright).

A user submits a cell and watches: the log and the plots must move while the run
is still running, the notebook must stay usable, the status must end Completed,
and the Cancel button must really stop a run. Screenshots go to
test-artifacts/notebook-browser/ so a person can look at the widget.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM_ARGS, checkout_labextensions, free_port, need_service, pid_alive

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "notebook-browser"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
TERMINAL = {"Completed", "Failed", "Canceled"}
# The log's last line lies inside its box's visible area (its real position, not clipped by any scroller).
TAIL_IN_VIEW = """e => {
  const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
  let last = null;
  while (walker.nextNode()) if (walker.currentNode.textContent.trim()) last = walker.currentNode;
  if (!last) return false;
  const range = document.createRange();
  range.selectNodeContents(last);
  const lines = Array.from(range.getClientRects()).filter(r => r.width > 0);
  const line = lines[lines.length - 1], box = e.getBoundingClientRect();
  return line.top >= box.top - 1 && line.bottom <= box.bottom + 1;
}"""

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

# -- the notebooks the tests open (code lives here: typed code would get auto-indented) -----------
LIVE_RUN_CELLS = [
    "%load_ext launchbay",
    """%%submit -e browser --name live
import time
from pathlib import Path
from launchbay import Run

run = Run.get_context()
for step in range(60):
    loss = 1.0 / (1 + step)
    run.log("loss", loss, step=step)
    run.log("accuracy", step / 59, step=step)
    print(f"step {step:02d}: loss {loss:.4f}", flush=True)
    time.sleep(0.2)
Path("outputs").mkdir(exist_ok=True)
Path("outputs/result.txt").write_text("done\\n")
print("training finished", flush=True)""",
    'first = _\nprint("meanwhile", 6 * 7)',
    "%launchbay show {first.run_id}",
]
CANCEL_CELLS = [
    "%load_ext launchbay",
    """%%submit -e browser --name to-cancel --max-duration 120
import time
for i in range(1200):
    print(f"tick {i}", flush=True)
    time.sleep(0.1)""",
]


def write_notebook(path: Path, cells: list[str]) -> None:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": source.splitlines(keepends=True),
            }
            for i, source in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


# -- JupyterLab and Chromium ------------------------------------------------------------------------
@dataclass
class Lab:
    url: str
    root: Path
    store: Path


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout:.0f} s: {what}")
        time.sleep(every)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A real JupyterLab server on its own project folder and store; stopped by its PID."""
    need_service(CHROMIUM.exists(), "Chromium")
    base = tmp_path_factory.mktemp("lab")
    root, store, workspaces, settings = base / "project", base / "store", base / "workspaces", base / "settings"
    for folder in (root, store, workspaces):
        folder.mkdir()
    # Own user settings: no "get Jupyter news?" toast over the notebook, no update check.
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    env = dict(os.environ, LAUNCHBAY_STORE=str(store), JUPYTERLAB_SETTINGS_DIR=str(settings))
    env.update(checkout_labextensions(base))  # this checkout's TypeScript build, when there is one
    env.pop("LAUNCHBAY_WIDGETS", None)
    log = open(base / "jupyterlab.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [  # this interpreter's JupyterLab (a copied venv's bin/jupyter may start another one's)
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.token=",
            "--ServerApp.ip=127.0.0.1",
            "--port",
            str(port),
            "--ServerApp.port_retries=0",
            f"--LabApp.workspaces_dir={workspaces}",
            "--allow-root",
            f"--ServerApp.root_dir={root}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{(base / 'jupyterlab.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_for(ready, 90, "JupyterLab answers /api/status", every=0.3)
        yield Lab(url, root, store)
    finally:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down on the way out
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="lb-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1100},
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


class NotebookPage:
    """One open notebook: run its cells by index and read what the run widget shows."""

    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name = page, name
        self.panel = page.locator(PANEL)

    def wait_idle(self, timeout: float = 60) -> None:
        self.page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\|\s*Idle")).wait_for(timeout=timeout * 1000)

    def run_cell(self, index: int) -> None:
        """Select cell ``index`` and run it with Shift+Enter (as a user does)."""
        cell = self.panel.locator(".jp-CodeCell").nth(index)
        cell.locator(".jp-InputArea-prompt").click()  # the prompt selects the cell without entering edit mode
        self.page.keyboard.press("Shift+Enter")

    def output_text(self, index: int) -> str:
        return str(self.panel.locator(".jp-CodeCell").nth(index).locator(".jp-Cell-outputArea").inner_text())

    def widget(self, index: int = 0) -> Any:
        return self.panel.locator(".lb-run-widget").nth(index)

    def status(self, index: int = 0) -> str:
        return str(self.widget(index).locator(".lb-widget-header .lb-widget-status").inner_text().strip())

    def log_text(self, index: int = 0) -> str:
        return str(self.widget(index).locator(".lb-widget-log").inner_text())

    def plot_sources(self, index: int = 0) -> list[str]:
        plots = self.widget(index).locator("img.lb-widget-plot")
        return [str(plots.nth(i).get_attribute("src") or "") for i in range(plots.count())]

    def run_id(self, index: int = 0) -> str:
        return str(self.widget(index).locator(".lb-widget-header code").first.inner_text().strip())

    def screenshot_of(self, locator: Any, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        locator.screenshot(path=str(ARTIFACTS / f"{self.name}-{name}.png"))

    def screenshot(self, name: str, index: int = 0) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{name}-page.png"))
        self.widget(index).screenshot(path=str(ARTIFACTS / f"{self.name}-{name}-widget.png"))


@pytest.fixture
def open_notebook(lab: Lab, browser: Any) -> Iterator[Callable[[str, list[str]], NotebookPage]]:
    pages: list[Any] = []

    def opener(name: str, cells: list[str]) -> NotebookPage:
        write_notebook(lab.root / f"{name}.ipynb", cells)
        page = browser.new_page()
        pages.append(page)
        page.goto(f"{lab.url}/lab/tree/{name}.ipynb?reset")
        notebook = NotebookPage(page, name)
        notebook.panel.locator(".jp-CodeCell").first.wait_for(timeout=60_000)
        notebook.wait_idle()
        return notebook

    yield opener
    for page in pages:
        page.close()


# -- helpers on the test's side of the store --------------------------------------------------------
def process_group_alive(pgid: int) -> bool:
    """Is any live (non-zombie) process left in process group ``pgid``?"""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


# -- the tests ------------------------------------------------------------------------------------------
def test_widget_shows_a_run_live_and_its_outcome(open_notebook: Callable[..., NotebookPage], lab: Lab) -> None:
    import launchbay

    nb = open_notebook("live", LIVE_RUN_CELLS)
    nb.run_cell(0)
    nb.run_cell(1)
    widget = nb.widget()
    widget.wait_for(timeout=60_000)
    assert "follow it with" not in nb.output_text(1), "a JupyterLab kernel shows the widget, not the text form"

    # While the run runs, the log grows and the plots are redrawn.
    wait_for(
        lambda: nb.status() == "Running" and "step 0" in nb.log_text() and len(nb.plot_sources()) == 2,
        60,
        "the widget shows Running, the first log line and two plots",
    )
    log_before, plots_before = nb.log_text(), nb.plot_sources()
    wait_for(
        lambda: len(nb.log_text()) > len(log_before) and nb.plot_sources()[0] != plots_before[0],
        30,
        "the log grows and the loss plot is redrawn",
    )
    assert nb.status() == "Running", "the log and plot moved while the run was still running"
    nb.screenshot("running")

    # The notebook stays usable: another cell runs while the run goes on.
    nb.run_cell(2)
    wait_for(lambda: "meanwhile 42" in nb.output_text(2), 30, "another cell's output appears during the run")
    assert nb.status() == "Running", "the other cell ran while the run was still running"

    # The log area keeps its tail in view (the newest line is visible without scrolling).
    log_box = widget.locator(".lb-widget-log")
    wait_for(lambda: log_box.evaluate("e => e.scrollHeight > e.clientHeight + 20"), 30, "the log overflows its box")
    wait_for(lambda: log_box.evaluate(TAIL_IN_VIEW), 10, "the log box shows its newest line")

    # The end: final status, exit code, files.
    wait_for(lambda: nb.status() in TERMINAL, 60, "the run ends")
    assert nb.status() == "Completed"
    footer = widget.locator(".lb-widget-footer")
    wait_for(lambda: "exit code" in footer.inner_text(), 10, "the footer shows the outcome")
    footer_text = footer.inner_text()
    assert "Completed" in footer_text and "exit code 0" in footer_text
    assert "outputs/result.txt" in footer_text
    assert "training finished" in nb.log_text()
    assert widget.locator(".lb-widget-cancel").is_hidden(), "Cancel goes away once the run has ended"
    nb.screenshot("completed")

    # The runner's system metrics sit in a closed group of their own, drawn when it is opened.
    system_plots = widget.locator("img.lb-widget-system-plot")
    assert system_plots.count() >= 3 and not widget.locator(".lb-widget-system img").first.is_visible()
    widget.get_by_text("System metrics (CPU, memory, I/O, GPU)").click()
    wait_for(
        lambda: system_plots.evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)"),
        30,
        "the opened group shows its plots",
    )
    nb.screenshot("system")

    run_id = nb.run_id()
    assert launchbay.get_run(run_id, store=lab.store).status == "Completed"

    # %launchbay show re-opens a widget for the finished run.
    nb.run_cell(3)
    wait_for(lambda: nb.panel.locator(".lb-run-widget").count() == 2, 30, "%launchbay show displays a widget")
    wait_for(
        lambda: "exit code 0" in nb.widget(1).locator(".lb-widget-footer").inner_text(),
        30,
        "the re-opened widget shows the outcome",
    )
    assert nb.run_id(1) == run_id and nb.status(1) == "Completed"
    assert "training finished" in nb.log_text(1)
    assert len(nb.plot_sources(1)) == 2
    nb.screenshot("reopened", index=1)


def test_cancel_button_stops_the_run(open_notebook: Callable[..., NotebookPage], lab: Lab) -> None:
    import launchbay

    nb = open_notebook("cancel", CANCEL_CELLS)
    nb.run_cell(0)
    nb.run_cell(1)
    nb.widget().wait_for(timeout=60_000)
    wait_for(lambda: nb.status() == "Running" and "tick 3" in nb.log_text(), 60, "the run is running and logging")
    run_id = nb.run_id()
    handle = launchbay.get_run(run_id, store=lab.store)

    def process_ids() -> dict[str, Any] | None:
        state = handle.record().target_state
        return state if state.get("runner_pid") and state.get("child_pgid") else None

    state = wait_for(process_ids, 10, "the runner records its process ids")
    runner_pid, child_pgid = int(state["runner_pid"]), int(state["child_pgid"])
    assert pid_alive(runner_pid) and process_group_alive(child_pgid)

    nb.widget().locator(".lb-widget-cancel").click()
    wait_for(lambda: nb.status() == "Canceled", 15, "the widget shows Canceled after Cancel is clicked")
    footer = nb.widget().locator(".lb-widget-footer")
    wait_for(lambda: "Canceled" in footer.inner_text(), 10, "the footer shows the outcome")
    nb.screenshot("canceled")

    assert handle.status == "Canceled"
    wait_for(
        lambda: not pid_alive(runner_pid) and not process_group_alive(child_pgid),
        10,
        "the runner and the run's processes are gone",
    )
    assert "tick 1199" not in handle.get_log()


SWEEP_CELLS = [
    "%load_ext launchbay",
    """%%submit -e browser --sweep "lr=loguniform(1e-4, 1e-1) bs=choice(16, 32) metric=loss runs=4 concurrent=2 seed=3"
import math, time
from launchbay import Run
run = Run.get_context()
time.sleep(2)
for step in range(5):
    run.log("loss", (math.log10(lr) + 2) ** 2 + 1 / (step + 1) + bs / 1000, step=step)
    time.sleep(0.1)""",
    "sweep = _\nsweep.wait()\nsweep.table()",
]
BROKEN_IMAGES = "w => [...w.querySelectorAll('img')].filter(i => i.offsetParent !== null && !i.naturalWidth).length"


def test_a_cell_sweep_shows_k_of_n_and_its_plots_once_results_arrive(
    open_notebook: Callable[..., NotebookPage], lab: Lab
) -> None:
    nb = open_notebook("sweep", SWEEP_CELLS)
    nb.run_cell(0)
    nb.run_cell(1)
    widget = nb.panel.locator(".lb-sweep-widget")
    widget.wait_for(timeout=60_000)
    header = widget.locator(".widget-html").first
    wait_for(lambda: re.search(r"\b[12] of 4 runs", header.inner_text()), 30, "the header counts k of N runs")
    assert widget.evaluate(BROKEN_IMAGES) == 0, "no broken image before the first result"
    nb.screenshot_of(widget, "sweep-running")
    wait_for(lambda: "4 of 4 runs" in header.inner_text() and "Completed" in header.inner_text(), 90, "the end")
    wait_for(lambda: widget.locator("img").count() == 2 and widget.evaluate(BROKEN_IMAGES) == 0, 20, "two plots")
    cells = widget.locator(".lb-sweep-table td").all_inner_texts()
    lrs = [c for c in cells if re.fullmatch(r"0\.0[0-9.e-]+", c)]
    assert lrs and all(len(c.replace("0.", "", 1).lstrip("0")) <= 4 for c in lrs), cells  # rounded for reading
    nb.screenshot_of(widget, "sweep-completed")
    nb.run_cell(2)
    table = nb.panel.locator(".jp-CodeCell").nth(2).locator("table.lb-sweep-table")
    table.wait_for(timeout=90_000)
    assert table.locator("tr").count() == 5  # a header and four runs, best first


STALE_CELLS = [
    "%load_ext launchbay",
    """%%submit -e browser --name outlives-kernel --max-duration 120
import time
for i in range(600):
    print(f"tick {i}", flush=True)
    time.sleep(0.1)""",
]


def test_a_widget_left_by_a_restarted_kernel_says_so_and_how_to_reattach(
    open_notebook: Callable[..., NotebookPage], lab: Lab
) -> None:
    import launchbay
    from launchbay.ipython.widgets import STALE_S

    nb = open_notebook("stale", STALE_CELLS)
    nb.run_cell(0)
    nb.run_cell(1)
    nb.widget().wait_for(timeout=60_000)
    wait_for(lambda: nb.status() == "Running", 60, "the run is running")
    run_id = nb.run_id()
    notice = nb.widget().locator(".lb-widget-stale")
    time.sleep(STALE_S + 2)
    assert notice.is_hidden(), "a widget its kernel keeps updating never shows the notice"

    nb.page.locator(PANEL).locator(".jp-CodeCell").first.locator(".jp-InputArea-prompt").click()
    nb.page.keyboard.press("0")
    nb.page.keyboard.press("0")  # JupyterLab's "restart the kernel" shortcut, then confirm
    nb.page.locator(".jp-Dialog .jp-mod-accept").click()
    restarted = time.monotonic()
    wait_for(notice.is_visible, STALE_S + 15, "the frozen widget says it lost its kernel")
    seen_after = time.monotonic() - restarted
    text = notice.inner_text()
    assert f"%launchbay show {run_id}" in text and "can no longer cancel the run" in text
    assert nb.widget().locator(".lb-widget-cancel").is_hidden(), "the dead Cancel button goes away"
    print(f"notice shown {seen_after:.1f} s after the restart was confirmed")
    nb.screenshot("kernel-restarted")
    handle = launchbay.get_run(run_id, store=lab.store)
    assert handle.status == "Running", "the run itself goes on"
    handle.cancel()


FIRST_PLOT_CELLS = [
    "%load_ext launchbay",
    """%%submit -e browser --name first-plot --max-duration 120
import time
from launchbay import Run

run = Run.get_context()
for step in range(300):
    run.log("loss", 1.0 / (1 + step), step=step)
    print(f"step {step}", flush=True)
    time.sleep(0.2)""",
]
# Every <img> of a run widget that the page showed without a picture (a broken-image icon), seen as it
# happens: an image whose load failed while it was on screen, or one on screen that has no picture.
WATCH_BROKEN_IMAGES = """() => {
  window.lbBrokenImages = [];
  const note = (img, why) => {
    if (img.closest('.lb-run-widget') && img.offsetParent !== null) {
      window.lbBrokenImages.push(why + ' ' + img.className);
    }
  };
  const failed = e => { if (e.target instanceof HTMLImageElement) note(e.target, 'failed'); };
  document.addEventListener('error', failed, true);
  const look = () => {
    for (const img of document.querySelectorAll('.lb-run-widget img')) {
      if (img.complete && img.naturalWidth === 0) note(img, 'empty');
    }
    requestAnimationFrame(look);
  };
  look();
}"""
# The Cancel button's label is shown whole: nothing of it is cut off by the button's own width.
CANCEL_FITS = "b => b.scrollWidth <= b.clientWidth && b.getBoundingClientRect().width >= 60"


def test_a_running_widget_shows_no_broken_image_and_a_whole_cancel_button(
    open_notebook: Callable[..., NotebookPage], lab: Lab
) -> None:
    nb = open_notebook("first-plot", FIRST_PLOT_CELLS)
    nb.page.set_viewport_size({"width": 1280, "height": 900})
    nb.page.evaluate(WATCH_BROKEN_IMAGES)
    nb.run_cell(0)
    nb.run_cell(1)
    widget = nb.widget()
    widget.wait_for(timeout=60_000)
    cancel = widget.locator(".lb-widget-cancel")
    wait_for(lambda: nb.status() == "Running" and cancel.is_visible(), 60, "the run is running with its Cancel button")
    nb.screenshot("running-1280")
    wait_for(lambda: nb.plot_sources(), 60, "the loss plot appears")
    wait_for(
        lambda: widget.locator("img.lb-widget-plot").evaluate_all("imgs => imgs.every(i => i.naturalWidth > 0)"),
        30,
        "the loss plot is drawn",
    )
    assert nb.page.evaluate("window.lbBrokenImages") == [], "no broken-image icon before the first plot"
    assert cancel.inner_text().strip() == "Cancel" and cancel.evaluate(CANCEL_FITS), "Cancel is readable at 1280 px"
    nb.screenshot("plot-1280")

    # A narrow notebook (a 700 px window): the header wraps, Cancel stays whole and on screen.
    nb.page.set_viewport_size({"width": 700, "height": 900})
    wait_for(lambda: cancel.evaluate(CANCEL_FITS), 10, "Cancel is readable in a narrow notebook")
    box, panel = cancel.bounding_box(), nb.panel.bounding_box()
    assert box is not None and panel is not None and box["x"] + box["width"] <= panel["x"] + panel["width"]
    nb.screenshot("plot-700")
    cancel.click()
    wait_for(lambda: nb.status() == "Canceled", 30, "the run is canceled")


PIPELINE_CELLS = [
    "%load_ext launchbay",
    "%%submit --step prep --pipeline browserpipe --output d=outputs/d\n"
    "import os\nos.makedirs('outputs/d')\nopen('outputs/d/x', 'w').write('1')",
    "%%submit --step use --pipeline browserpipe --input d=prep.d\n"
    "import os\nprint('read', open(os.environ['LAUNCHBAY_INPUT_D'] + '/x').read())",
    "%launchbay pipeline submit browserpipe",
]


def test_a_pipeline_of_cells_shows_its_live_dag_and_a_click_on_a_step_opens_its_run(
    open_notebook: Callable[..., NotebookPage], lab: Lab
) -> None:
    nb = open_notebook("pipeline", PIPELINE_CELLS)
    for index in range(4):
        nb.run_cell(index)
    widget = nb.panel.locator(".lb-pipeline-widget")
    widget.wait_for(timeout=60_000)
    header = widget.locator(".widget-html").first
    wait_for(lambda: "Completed" in header.inner_text() and "2 of 2 steps done" in header.inner_text(), 90, "the end")
    box = widget.locator('.lb-dag-step[data-step="use"]')
    wait_for(lambda: box.get_attribute("data-status") == "Completed", 10, "the step's box says Completed")
    assert widget.locator(".lb-dag-edge").count() == 1
    nb.screenshot_of(widget, "pipeline-dag")
    run_id = box.get_attribute("data-run-id")
    box.click()
    opened = widget.locator(".lb-run-widget")
    opened.wait_for(timeout=30_000)
    wait_for(lambda: run_id in opened.locator(".lb-widget-header").inner_text(), 20, "the step's run opens")
    wait_for(lambda: "read 1" in opened.locator(".lb-widget-log").inner_text(), 20, "with its log")
    nb.screenshot_of(widget, "pipeline-step-opened")
