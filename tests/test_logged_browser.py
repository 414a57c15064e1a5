"""Images, tables, rows and lists in a real JupyterLab (Playwright on the system Chromium).

A run logs a picture per epoch, a row per epoch, a confusion table and a list. The
notebook's run widget and the sidebar's run view must both show the latest picture
with a step slider that goes back, the rows and the table as tables, and the list
as a chart. JupyterLab loads the labextension built in this checkout
(``src/launchbay/labextension``) when there is one, ahead of the venv's copy.
Screenshots go to test-artifacts/logged/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import launchbay
from conftest import CHROMIUM_ARGS, checkout_labextensions, free_port, need_service, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "logged"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
VISIBLE = ".jp-MainAreaWidget:not(.lm-mod-hidden)"
SIDEBAR = "#launchbay-sidebar"

LOGGING_CODE = textwrap.dedent("""
    import time
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from launchbay import Run

    run = Run.get_context()
    for epoch in range(3):
        fig, ax = plt.subplots(figsize=(3, 2.2))
        ax.bar(["cat", "dog", "fox"], [epoch + 1, 3 - epoch, 2], color=["C0", "C1", "C2"][epoch])
        ax.set_title(f"samples after epoch {epoch}")
        run.log_image("samples", plot=fig)
        plt.close(fig)
        run.log_row("per_epoch", epoch=epoch, precision=0.6 + 0.1 * epoch, recall=0.5 + 0.05 * epoch)
        run.log("loss", 1.0 / (epoch + 1), step=epoch)
        print("epoch", epoch, flush=True)
        time.sleep(0.5)
    run.log_table("confusion", {"label": ["cat", "dog"], "cat": [41, 3], "dog": [5, 38]})
    run.log_list("lr_schedule", [0.1, 0.05, 0.025, 0.0125, 0.00625])
    print("done", flush=True)
""")


@dataclass
class Lab:
    url: str
    root: Path
    store: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    need_service(CHROMIUM.exists(), "Chromium")
    base = tmp_path_factory.mktemp("lab")
    root, store, workspaces, settings = base / "project", base / "store", base / "workspaces", base / "settings"
    for folder in (root, store, workspaces):
        folder.mkdir()
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    env = dict(os.environ, LAUNCHBAY_STORE=str(store), JUPYTERLAB_SETTINGS_DIR=str(settings))
    env.update(checkout_labextensions(base))
    env.pop("LAUNCHBAY_WIDGETS", None)
    log = open(base / "jupyterlab.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter"),
            "lab",
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
        assert proc.poll() is None, (base / "jupyterlab.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/launchbay/api/targets", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_for(ready, timeout=90, interval=0.3)
        yield Lab(url, root, store)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lb-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1300},
        )
        context.set_default_timeout(30_000)
        try:
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
        finally:
            context.close()
    assert not [e for e in errors if "launchbay" in e or "lb-" in e], errors


def write_notebook(path: Path, cells: list[str]) -> None:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    nb = {
        "cells": [
            {**cell, "id": f"c{i}", "source": source.splitlines(keepends=True)} for i, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


def images_shown(page: Any, selector: str) -> bool:
    """Every <img> under ``selector`` has loaded a real picture."""
    return bool(
        page.eval_on_selector_all(
            selector, "imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 50)"
        )
    )


def test_the_notebook_widget_shows_a_gallery_tables_and_list_plots(page: Any, lab: Lab) -> None:
    write_notebook(
        lab.root / "logged.ipynb", ["%load_ext launchbay", "%%submit -e logged --name gallery\n" + LOGGING_CODE]
    )
    page.goto(f"{lab.url}/lab/tree/logged.ipynb?reset")
    panel = page.locator(PANEL)
    panel.locator(".jp-CodeCell").first.wait_for(timeout=90_000)
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\|\s*Idle")).wait_for(timeout=60_000)
    for index in (0, 1):
        panel.locator(".jp-CodeCell").nth(index).locator(".jp-InputArea-prompt").click()
        page.keyboard.press("Shift+Enter")
    widget = panel.locator(".lb-run-widget")
    widget.wait_for(timeout=60_000)
    status = widget.locator(".lb-widget-header .lb-widget-status")
    page.wait_for_function(
        "() => document.querySelector('.lb-widget-status')?.textContent === 'Completed'", timeout=90_000
    )
    assert status.inner_text() == "Completed"

    gallery = widget.locator(".lb-widget-image")
    gallery.locator("img").wait_for()
    wait_for(lambda: images_shown(page, f"{PANEL} .lb-widget-image img"), timeout=20)
    assert "samples step 2 of 2 (latest)" in gallery.inner_text()
    latest = gallery.locator("img").get_attribute("src")
    slider = gallery.locator(".widget-slider")
    assert slider.is_visible()
    tables = widget.locator(".lb-widget-table")
    per_epoch = widget.locator('.lb-widget-table[data-name="per_epoch"]')
    assert per_epoch.locator("th").all_inner_texts() == ["epoch", "precision", "recall"]
    assert per_epoch.locator("tbody tr").count() == 3
    assert "0.8" in per_epoch.locator("tbody tr").nth(2).inner_text()
    confusion = widget.locator('.lb-widget-table[data-name="confusion"]')
    confusion.locator("tbody tr").nth(1).wait_for(timeout=30_000)  # the last thing logged; may lag on a busy machine
    assert confusion.locator("tbody tr").nth(1).locator("td").all_inner_texts() == ["dog", "3", "38"]
    assert tables.count() == 2
    list_plot = widget.locator("img.lb-widget-list")
    assert list_plot.count() == 1
    wait_for(lambda: images_shown(page, f"{PANEL} img.lb-widget-list"), timeout=10)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(ARTIFACTS / "widget-latest.png"))

    # Dragging the step slider back to the first picture shows it.
    handle = slider.locator(".noUi-handle, .ui-slider-handle").first
    handle.focus()
    for _ in range(2):
        page.keyboard.press("ArrowLeft")
    wait_for(lambda: "samples step 0 of 2" in gallery.inner_text(), timeout=10)
    wait_for(lambda: gallery.locator("img").get_attribute("src") != latest, timeout=10)
    widget.screenshot(path=str(ARTIFACTS / "widget-step0.png"))


def test_the_sidebar_run_view_shows_a_gallery_with_a_step_slider_tables_and_list_charts(page: Any, lab: Lab) -> None:
    project = lab.root / "scripts"
    project.mkdir(exist_ok=True)
    (project / "logs_things.py").write_text(LOGGING_CODE)
    run = launchbay.submit("logs_things.py", store=lab.store, source_dir=project, experiment="logged", name="sidebar")
    assert run.wait(timeout=90) == "Completed"
    page.goto(f"{lab.url}/lab?reset")
    page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="launchbay-sidebar"]').click()
    row = f'{SIDEBAR} .lb-run-row[data-run-id="{run.run_id}"]'
    page.wait_for_selector(row)
    page.click(f"{row} .lb-run-name")
    view = f'{VISIBLE} .lb-run-view[data-run-id="{run.run_id}"]'
    page.wait_for_selector(f'{view} .lb-gallery-item[data-name="samples"] img[src^="blob:"]')
    wait_for(lambda: images_shown(page, f"{view} .lb-gallery-img"), timeout=20)
    item = page.locator(f'{view} .lb-gallery-item[data-name="samples"]')
    assert "samples step 2 of 2 (latest)" in item.inner_text()
    assert "No metrics logged yet." not in page.inner_text(view)
    per_epoch = page.locator(f'{view} .lb-logged-table[data-name="per_epoch"]')
    assert per_epoch.locator("th").all_inner_texts() == ["epoch", "precision", "recall"]
    assert per_epoch.locator("tbody tr").count() == 3
    assert "(rows, 3 rows × 3 columns)" in per_epoch.inner_text()
    confusion = page.locator(f'{view} .lb-logged-table[data-name="confusion"]')
    assert confusion.locator("tbody tr").nth(0).locator("td").all_inner_texts() == ["cat", "41", "5"]
    page.wait_for_selector(f'{view} .lb-logged-list[data-metric="lr_schedule (list)"] polyline')
    page.wait_for_selector(f'{view} .lb-chart[data-metric="loss"] polyline')
    page.locator(f"{view} .lb-metrics-section").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "sidebar-run-view-latest.png"))

    latest = item.locator("img").get_attribute("src")
    slider = item.locator("input.lb-gallery-slider")
    assert slider.is_visible() and slider.get_attribute("max") == "2"
    slider.fill("0")  # as dragging it to the left end does
    page.wait_for_selector(f'{view} .lb-gallery-item[data-name="samples"][data-step="0"]')
    wait_for(lambda: item.locator("img").get_attribute("src") != latest, timeout=10)
    assert "samples step 0 of 2" in item.inner_text()
    page.screenshot(path=str(ARTIFACTS / "sidebar-run-view-step0.png"))
