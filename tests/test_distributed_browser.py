"""A distributed run in the JupyterLab sidebar (real JupyterLab + Chromium): rank 0's log, a rank picker.

JupyterLab loads this checkout's labextension build (``src/launchbay/labextension``,
built with ``jlpm build``) ahead of the venv's copy, as the other browser tests do.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import launchbay
from conftest import CHROMIUM_ARGS, need_service
from test_sidebar_browser import ARTIFACTS, CHROMIUM, SIDEBAR, VISIBLE, Lab, row

pytestmark = pytest.mark.browser
BUILD = Path(launchbay.__file__).resolve().parent / "labextension"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    need_service(Path(CHROMIUM).is_file(), f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    assert (BUILD / "package.json").is_file(), f"{BUILD} is missing: build the labextension (jlpm build)"
    lab = Lab(tmp_path_factory.mktemp("lab"))
    lab.project.mkdir()
    lab.first = lab.submit(
        "hello.py",
        "import os\nfor i in range(3):\n    print('hello', i, 'from rank', os.environ['RANK'], flush=True)\n",
        distributed="pytorch:2",
        experiment="dist",
    )
    assert lab.first.wait(timeout=60) == "Completed"
    lab.start()  # with this checkout's build ahead of the venv's (conftest.checkout_labextensions)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 950},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{lab.url}/lab?reset")
            page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
            page.locator('.jp-SideBar .lm-TabBar-tab[data-id="launchbay-sidebar"]').click()
            page.wait_for_selector(f"{SIDEBAR} .lb-run-row")
            yield page
        finally:
            context.close()


def test_the_run_view_shows_rank_0_and_picks_another_rank(page: Any, lab: Lab) -> None:
    page.click(f"{row(lab.first.run_id)} .lb-run-name")
    view = f'{VISIBLE} .lb-run-view[data-run-id="{lab.first.run_id}"]'
    log = f"document.querySelector('{view} pre.lb-log').textContent"
    page.wait_for_function(f"{log}.includes('hello 2 from rank 0')")
    assert "from rank 1" not in page.inner_text(f"{view} pre.lb-log")
    assert "pytorch: 2 processes" in page.inner_text(f"{view} .lb-overview")
    assert page.locator(f"{view} select.lb-rank-picker option").all_inner_texts() == ["rank 0", "rank 1"]
    page.select_option(f"{view} select.lb-rank-picker", "1")
    page.wait_for_function(f"{log}.includes('hello 2 from rank 1')")
    text = page.inner_text(f"{view} pre.lb-log")
    assert "from rank 0" not in text and text.count("hello 0 from rank 1") == 1
    page.screenshot(path=str(ARTIFACTS / "distributed-rank-picker.png"))
