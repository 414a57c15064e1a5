"""The JupyterLab sidebar in a real browser (Playwright on the system Chromium).

JupyterLab runs as installed by ``pip install`` (no extra command): the prebuilt
labextension and the server extension come from the venv. The store holds real
local runs: finished, failed, and running ones submitted while the page is open.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import launchbay
from conftest import CHROMIUM_ARGS, checkout_labextensions, free_port, need_service, pid_alive, wait_for, write

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SIDEBAR = "#launchbay-sidebar"


class Lab:
    """A project folder with a store, and a JupyterLab server on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "proj"
        self.store = root / "store"
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.first: launchbay.RunHandle
        self.second: launchbay.RunHandle
        self.failed: launchbay.RunHandle
        self.sleeper: launchbay.RunHandle

    def submit(self, script: str, text: str, **kw: Any) -> launchbay.RunHandle:
        write(self.project, script, text)
        return launchbay.submit(script, store=self.store, source_dir=self.project, **kw)

    def start(self, base_env: dict[str, str] | None = None) -> None:
        """JupyterLab on the project folder; ``base_env`` instead of this process's environment, and then
        the store is what the project's launchbay.toml names (a team store) rather than ``self.store``."""
        port = free_port()
        env = dict(
            base_env if base_env is not None else {**os.environ, "LAUNCHBAY_STORE": str(self.store)},
            JUPYTER_CONFIG_DIR=str(self.root / "jupyter-config"),
            JUPYTER_RUNTIME_DIR=str(self.root / "jupyter-runtime"),
        )
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(checkout_labextensions(self.root))  # this checkout's TypeScript build, when there is one
        labconfig = self.root / "jupyter-config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)  # no "Jupyter news?" toast over the screenshots
        (labconfig / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
        )
        self.log = open(self.root / "jupyter.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ServerApp.token=",
                "--ServerApp.password=",
                "--ServerApp.ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={self.project}",
                f"--LabApp.workspaces_dir={self.root / 'workspaces'}",
            ],
            cwd=self.project,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.server_log()
            try:
                with urllib.request.urlopen(f"{self.url}/launchbay/api/targets", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(ready, timeout=90, interval=0.5)

    def server_log(self) -> str:
        return (self.root / "jupyter.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    need_service(Path(CHROMIUM).is_file(), f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    shared = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "launchbay-labextension" / "package.json"
    assert shared.is_file(), f"{shared} is missing: `pip install -e .` must build and install the labextension"
    lab = Lab(tmp_path_factory.mktemp("lab"))
    lab.project.mkdir()
    train = textwrap.dedent("""
        import sys
        from launchbay import Run
        run = Run.get_context()
        lr = float(sys.argv[2])
        for i in range(50):
            run.log("loss", 1.0 / (1 + lr * i), step=i)
        print("trained with lr", lr)
    """)
    lab.first = lab.submit(
        "train.py", train, args=["--lr", "0.1"], params={"lr": 0.1, "layers": 2}, experiment="sidebar", name="lr-0.1"
    )
    lab.second = lab.submit(
        "train.py",
        train + "\nprint('version two')\n",
        args=["--lr", "0.01"],
        params={"lr": 0.01, "layers": 2},
        experiment="sidebar",
        name="lr-0.01",
    )
    lab.failed = lab.submit(
        "fail.py",
        "print('failing now', flush=True)\nraise ValueError('bad input')\n",
        experiment="sidebar",
        name="broken",
    )
    lab.sleeper = lab.submit(
        "sleeper.py",
        """
        import os, time
        print("pid", os.getpid(), flush=True)
        for i in range(600):
            print("still running", i, flush=True)
            time.sleep(0.5)
    """,
        experiment="sidebar",
        name="sleeper",
    )
    for handle in (lab.first, lab.second, lab.failed):
        handle.wait(timeout=60)
    assert [lab.first.status, lab.second.status, lab.failed.status] == ["Completed", "Completed", "Failed"]
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()
        for handle in (lab.sleeper,):
            if handle.status not in ("Completed", "Failed", "Canceled"):
                handle.cancel()


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    """JupyterLab open with the launchbay sidebar showing its first page of runs.

    The browser is per test: a Playwright loop left running across tests would be
    taken for the current event loop by pytest-jupyter's fixtures (test_server.py).
    """
    with sidebar_page(lab) as opened:
        yield opened


@contextmanager
def sidebar_page(lab: Lab) -> Iterator[Any]:
    """A headless Chromium on ``lab`` with the launchbay sidebar open on its first page of runs; fails
    the test on any page error of launchbay's."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
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
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_default_timeout(30_000)
            page.goto(f"{lab.url}/lab?reset")
            page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
            page.locator('.jp-SideBar .lm-TabBar-tab[data-id="launchbay-sidebar"]').click()
            page.wait_for_selector(f"{SIDEBAR} .lb-run-row")
            yield page
        finally:
            context.close()
    assert not [e for e in errors if "launchbay" in e or "lb-" in e], errors


def row(run_id: str) -> str:
    return f'{SIDEBAR} .lb-run-row[data-run-id="{run_id}"]'


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"sidebar-{name}.png"))


VISIBLE = ".jp-MainAreaWidget:not(.lm-mod-hidden)"


def test_panel_lists_runs_with_status_and_filters(page: Any, lab: Lab) -> None:
    for handle, status in (
        (lab.first, "Completed"),
        (lab.second, "Completed"),
        (lab.failed, "Failed"),
        (lab.sleeper, "Running"),
    ):
        page.wait_for_selector(f'{row(handle.run_id)}[data-status="{status}"] .lb-status-{status}')
    ids = page.eval_on_selector_all(f"{SIDEBAR} .lb-run-row", "rows => rows.map(r => r.dataset.runId)")
    assert (
        ids.index(lab.sleeper.run_id)
        < ids.index(lab.failed.run_id)
        < ids.index(lab.second.run_id)
        < ids.index(lab.first.run_id)
    )  # newest first
    assert "loss" in page.inner_text(f"{row(lab.first.run_id)} .lb-run-metric")
    assert page.inner_text(f"{row(lab.first.run_id)} .lb-run-target") == "local"
    shot(page, "list")
    page.select_option(f"{SIDEBAR} .lb-filter-status", "Failed")
    page.wait_for_function(
        f"[...document.querySelectorAll('{SIDEBAR} .lb-run-row')].map(r => r.dataset.runId).join() === "
        f"'{lab.failed.run_id}'"
    )
    page.select_option(f"{SIDEBAR} .lb-filter-status", "")
    page.fill(f"{SIDEBAR} .lb-filter-text", "lr-0.01")
    page.wait_for_function(
        f"[...document.querySelectorAll('{SIDEBAR} .lb-run-row')].map(r => r.dataset.runId).join() === "
        f"'{lab.second.run_id}'"
    )
    shot(page, "filtered")


def test_a_running_run_updates_live_in_its_view(page: Any, lab: Lab) -> None:
    ticks = lab.submit(
        "ticks.py",
        """
        import time
        from launchbay import Run
        run = Run.get_context()
        for i in range(24):
            print("tick", i, flush=True)
            run.log("progress", i * i, step=i)
            run.flush()
            time.sleep(0.5)
    """,
        experiment="sidebar",
        name="ticks",
    )
    page.wait_for_selector(row(ticks.run_id))  # a new run appears in the panel by itself
    page.click(f"{row(ticks.run_id)} .lb-run-name")
    view = f'{VISIBLE} .lb-run-view[data-run-id="{ticks.run_id}"]'
    page.wait_for_selector(f'{view} .lb-run-status[data-status="Running"]')
    page.wait_for_function(f"document.querySelector('{view} pre.lb-log').textContent.includes('tick 3')")
    early = page.inner_text(f"{view} pre.lb-log")
    assert "tick 20" not in early
    page.wait_for_selector(f"{view} .lb-chart")
    shot(page, "running")
    page.wait_for_function(f"document.querySelector('{view} pre.lb-log').textContent.includes('tick 12')")
    page.wait_for_selector(f'{view} .lb-run-status[data-status="Completed"]', timeout=40_000)
    page.wait_for_function(f"document.querySelector('{view} pre.lb-log').textContent.includes('tick 23')")
    log = page.inner_text(f"{view} pre.lb-log")
    assert log.strip().splitlines() == [f"tick {i}" for i in range(24)]  # each byte once, in order
    page.wait_for_selector(f'{row(ticks.run_id)}[data-status="Completed"]')
    assert not page.is_visible(f"{view} .lb-cancel")
    page.wait_for_function(f"document.querySelectorAll('{view} .lb-chart polyline').length > 0")
    shot(page, "finished")


def test_comparing_two_runs_shows_their_parameter_difference(page: Any, lab: Lab) -> None:
    for handle in (lab.first, lab.second):
        page.check(f"{row(handle.run_id)} .lb-run-select")
    page.click(f"{SIDEBAR} .lb-compare")
    view = f"{VISIBLE} .lb-compare-view"
    page.wait_for_selector(f'{view} tr.lb-param[data-key="lr"]')
    lr = page.locator(f'{view} tr.lb-param[data-key="lr"]')
    assert "lb-diff" in (lr.get_attribute("class") or "")
    assert lr.locator("td").all_inner_texts() == ["0.1", "0.01"]
    layers = page.locator(f'{view} tr.lb-param[data-key="layers"]')
    assert "lb-diff" not in (layers.get_attribute("class") or "")
    diff = page.inner_text(f'{view} pre.lb-file-diff[data-path="train.py"]')
    assert "+print('version two')" in diff
    page.wait_for_function(f"document.querySelectorAll('{view} .lb-chart polyline').length >= 2")
    shot(page, "compare")


def test_cancel_from_the_panel_stops_a_run(page: Any, lab: Lab) -> None:
    page.wait_for_selector(f'{row(lab.sleeper.run_id)}[data-status="Running"]')
    pid = int(lab.sleeper.get_log().split()[1])
    assert pid_alive(pid)
    page.click(f"{row(lab.sleeper.run_id)} .lb-row-cancel")
    page.wait_for_selector(".jp-Dialog")
    shot(page, "cancel-dialog")
    page.click(".jp-Dialog .jp-mod-warn")
    page.wait_for_selector(f'{row(lab.sleeper.run_id)}[data-status="Canceled"]')
    assert lab.sleeper.status == "Canceled"
    wait_for(lambda: not pid_alive(pid), timeout=10)
    assert page.locator(f"{row(lab.sleeper.run_id)} .lb-row-cancel").count() == 0
    shot(page, "canceled")


def test_cancel_and_rerun_from_the_run_view(page: Any, lab: Lab) -> None:
    waiting = lab.submit(
        "wait.py", "import time\nprint('waiting', flush=True)\ntime.sleep(300)\n", experiment="sidebar", name="waiting"
    )
    page.wait_for_selector(row(waiting.run_id))
    page.click(f"{row(waiting.run_id)} .lb-run-name")
    view = f'{VISIBLE} .lb-run-view[data-run-id="{waiting.run_id}"]'
    page.wait_for_function(f"document.querySelector('{view} pre.lb-log').textContent.includes('waiting')")
    page.click(f"{view} .lb-cancel")
    page.click(".jp-Dialog .jp-mod-warn")
    page.wait_for_selector(f'{view} .lb-run-status[data-status="Canceled"]')
    assert waiting.status == "Canceled"
    page.click(f"{row(lab.first.run_id)} .lb-run-name")
    first = f'{VISIBLE} .lb-run-view[data-run-id="{lab.first.run_id}"]'
    page.click(f"{first} .lb-rerun")
    page.wait_for_selector(".jp-Dialog")
    assert page.input_value(".jp-Dialog input") == "local"  # the same target is offered first
    shot(page, "rerun-dialog")
    page.click(".jp-Dialog .jp-mod-accept")
    page.wait_for_function(
        f"[...document.querySelectorAll('{VISIBLE} .lb-run-view')].some(v => v.dataset.runId !== "
        f"'{lab.first.run_id}' && v.dataset.runId !== '{waiting.run_id}')"
    )
    new_id = page.get_attribute(f"{VISIBLE} .lb-run-view", "data-run-id")
    rerun = launchbay.get_run(new_id, store=lab.store)
    assert rerun.wait(timeout=60) == "Completed"
    assert rerun.get_details()["snapshot"]["id"] == lab.first.get_details()["snapshot"]["id"]
    page.wait_for_selector(f'{row(new_id)}[data-status="Completed"]')
    link = f'{VISIBLE} .lb-run-view[data-run-id="{new_id}"] .lb-run-rerun-of a'
    assert page.text_content(link) == lab.first.run_id  # the re-run names the run it re-ran
    shot(page, "rerun")


def test_the_models_view_lists_versions_linked_to_their_runs(page: Any, lab: Lab) -> None:
    lab.first.register_model("sidebar-model", path="user_logs/std_log.txt", tags={"lr": "0.1"})
    lab.second.register_model("sidebar-model", path="user_logs", description="the whole folder")
    page.click(f"{SIDEBAR} .lb-models-button")
    view = f"{VISIBLE} .lb-models-view"
    page.wait_for_selector(f'{view} .lb-model[data-model="sidebar-model"] tr[data-version="2"]')
    versions = page.eval_on_selector_all(f"{view} tr.lb-model-version", "rows => rows.map(r => r.dataset.version)")
    assert versions == ["2", "1"]
    first = f'{view} tr[data-version="1"]'
    assert "lr=0.1" in page.text_content(first) and "user_logs/std_log.txt" in page.text_content(first)
    shot(page, "models")
    page.click(f"{first} a.lb-run-link")
    page.wait_for_selector(f'{VISIBLE} .lb-run-view[data-run-id="{lab.first.run_id}"]')


@pytest.mark.slow
def test_a_store_with_ten_thousand_runs_pages_and_filters(page: Any, lab: Lab) -> None:
    from launchbay.models import RunSpec
    from launchbay.store import open_store

    store = open_store(lab.store)
    long_ago = time.time() - 86_400
    statuses = ["Completed", "Failed", "Canceled", "Completed"]
    for i in range(10_000):  # recorded directly (no processes), older than the real runs
        spec = RunSpec(script="train.py", experiment="bulk", name=f"bulk-{i:05d}", params={"lr": i % 7})
        record = store.create_run(spec, target_type="local", snapshot_id=None, properties={})
        store.update_run(
            record.pk, status=statuses[i % 4], created=long_ago - i, started=long_ago - i, ended=long_ago - i + 30
        )
    page.click(f"{SIDEBAR} .lb-refresh")
    page.wait_for_function(f"/^50 of \\d{{5}} runs$/.test(document.querySelector('{SIDEBAR} .lb-summary').textContent)")
    total = int(page.inner_text(f"{SIDEBAR} .lb-summary").split()[2])
    assert total >= 10_000
    assert page.locator(f"{SIDEBAR} .lb-run-row").count() == 50  # one page, not 10,000 rows
    page.click(f"{SIDEBAR} .lb-load-more")
    page.wait_for_function(f"document.querySelectorAll('{SIDEBAR} .lb-run-row').length === 100")
    page.fill(f"{SIDEBAR} .lb-filter-text", "bulk-09999")
    page.wait_for_function(f"document.querySelector('{SIDEBAR} .lb-summary').textContent === '1 of 1 runs'")
    assert page.inner_text(f"{SIDEBAR} .lb-run-row .lb-run-name") == "bulk-09999"
    page.fill(f"{SIDEBAR} .lb-filter-text", "bulk-")
    page.select_option(f"{SIDEBAR} .lb-filter-status", "Failed")
    page.wait_for_function(f"document.querySelector('{SIDEBAR} .lb-summary').textContent === '50 of 2500 runs'")
    shot(page, "ten-thousand")


def test_a_run_a_sweep_policy_stopped_shows_as_stopped_early(page: Any, lab: Lab) -> None:
    from launchbay.models import EARLY_TERMINATION_TAG
    from launchbay.store import open_store

    handle = lab.submit("slow.py", "import time\ntime.sleep(300)\n", experiment="sidebar", name="stopped")
    wait_for(lambda: handle.status == "Running", timeout=30)
    store = open_store(lab.store)  # as the sweep controller does: the reason first, then cancel
    store.set_tag(store.get_run(handle.run_id).pk, EARLY_TERMINATION_TAG, "Bandit: best 9 is worse than 0.2")
    handle.cancel()
    badge = f'{row(handle.run_id)}[data-status="Canceled"] .lb-status-stopped-early'
    page.wait_for_selector(badge)
    assert page.inner_text(badge) == "stopped early"
    assert "Bandit" in (page.get_attribute(badge, "title") or "")
    shot(page, "stopped-early")


def test_system_metrics_sit_in_a_closed_group_and_tensorboard_is_offered(page: Any, lab: Lab) -> None:
    busy = lab.submit(
        "busy.py",
        """
        import os, time
        from launchbay import Run
        run = Run.get_context()
        os.makedirs("logs", exist_ok=True)
        open("logs/events.out.tfevents.1.lab", "wb").close()
        for i in range(60):
            run.log("loss", 1 / (i + 1), step=i)
            sum(range(300000))
            time.sleep(0.2)
    """,
        experiment="sidebar",
        name="busy",
        system_metrics_interval_s=0.5,
    )
    page.wait_for_selector(row(busy.run_id))
    page.click(f"{row(busy.run_id)} .lb-run-name")
    view = f'{VISIBLE} .lb-run-view[data-run-id="{busy.run_id}"]'
    page.wait_for_selector(f"{view} details.lb-system-section:not([open])")  # shown, closed
    page.wait_for_selector(f"{view} .lb-tensorboard")  # event files exist: the link is offered
    page.wait_for_selector(f"{view} .lb-metrics-section .lb-chart")
    assert page.locator(f"{view} .lb-metrics-section .lb-chart").count() == 1  # only "loss" among the run's own
    page.click(f"{view} details.lb-system-section summary")
    page.wait_for_function(
        f"document.querySelectorAll('{view} .lb-system-charts .lb-chart polyline').length >= 3", timeout=30_000
    )
    page.locator(f"{view} details.lb-system-section").scroll_into_view_if_needed()
    shot(page, "system-metrics")
    page.click(f"{view} .lb-tensorboard")
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        page.wait_for_selector(f'{view} a.lb-tensorboard-link[href^="http://127.0.0.1:"]', timeout=90_000)
    else:
        page.wait_for_selector(".jp-Dialog")
        assert "pip install tensorboard" in page.inner_text(".jp-Dialog")
        page.click(".jp-Dialog .jp-mod-accept")
    shot(page, "tensorboard")
    busy.cancel()


def test_a_portal_link_opens_its_run_in_the_sidebar(page: Any, lab: Lab) -> None:
    """Azure ML v1's ``run.get_portal_url()`` gives ``/lab?launchbay-run=RUN``: the link opens that run."""
    page.goto(f"{lab.url}/lab?launchbay-run={lab.second.run_id}")
    page.wait_for_selector(f'{VISIBLE} .lb-run-view[data-run-id="{lab.second.run_id}"]', timeout=90_000)
    shot(page, "portal-link")


# The last `n` characters of an element's text are drawn inside its box (not cut off behind an ellipsis).
END_SHOWN = """(e, n) => {
  const text = e.textContent, box = e.getBoundingClientRect();
  const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  let left = n;
  for (const node of nodes.reverse()) {
    for (let i = node.length - 1; i >= 0 && left > 0; i--, left--) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const r = range.getBoundingClientRect();
      if (r.width === 0 || r.left < box.left - 0.5 || r.right > box.right + 0.5) return false;
    }
  }
  return text.length >= n && left === 0;
}"""


def test_long_run_names_show_their_distinguishing_end_and_the_full_name_on_hover(page: Any, lab: Lab) -> None:
    names = ["launchbay-quickstart-train-lr-0.1", "launchbay-quickstart-train-lr-0.001"]
    handles = [lab.submit("hello.py", "print('hello')\n", experiment="sidebar", name=name) for name in names]
    for handle in handles:
        page.wait_for_selector(row(handle.run_id))
    shot(page, "long-names")
    for handle, name in zip(handles, names, strict=True):
        shown = page.locator(f"{row(handle.run_id)} .lb-run-name")
        width = shown.evaluate("e => e.getBoundingClientRect().width")
        assert shown.evaluate(END_SHOWN, len("lr-0.001")), f"the end of {name!r} is visible ({width:.0f} px)"
        assert shown.text_content() == name, "the whole name is in the row (the middle may be elided)"
        assert shown.get_attribute("title") == name, "hovering the name shows it in full"
    page.click(f"{row(handles[1].run_id)} .lb-run-name")  # the name still opens its run
    page.wait_for_selector(f'{VISIBLE} .lb-run-view[data-run-id="{handles[1].run_id}"]')


def test_comparing_two_runs_shows_their_tags_with_differences_marked(page: Any, lab: Lab) -> None:
    from launchbay.store import open_store

    store = open_store(lab.store)
    for handle, tags in (
        (lab.first, {"dataset": "v1", "owner": "maya"}),
        (lab.second, {"dataset": "v2", "owner": "maya"}),
    ):
        for key, value in tags.items():
            store.set_tag(store.get_run(handle.run_id).pk, key, value)
    for handle in (lab.first, lab.second):
        page.check(f"{row(handle.run_id)} .lb-run-select")
    page.click(f"{SIDEBAR} .lb-compare")
    view = f"{VISIBLE} .lb-compare-view"
    page.wait_for_selector(f'{view} tr.lb-param[data-key="lr"]')
    shot(page, "compare-tags")
    dataset = page.locator(f'{view} tr.lb-tag[data-key="dataset"]')
    assert dataset.locator("td").all_inner_texts() == ["v1", "v2"]
    assert "lb-diff" in (dataset.get_attribute("class") or ""), "a tag that differs is marked like a parameter"
    owner = page.locator(f'{view} tr.lb-tag[data-key="owner"]')
    assert owner.locator("td").all_inner_texts() == ["maya", "maya"]
    assert "lb-diff" not in (owner.get_attribute("class") or "")
    assert page.locator(f"{view} tr.lb-compare-sep th").all_inner_texts() == ["Parameters", "Tags"]


def test_a_pipeline_run_view_shows_its_dag_and_a_click_on_a_step_opens_its_run(page: Any, lab: Lab) -> None:
    from launchbay import Step, pipeline

    write(lab.project, "p_prep.py", "import os\nos.makedirs('outputs/d')\nopen('outputs/d/x', 'w').write('1')\n")
    write(lab.project, "p_train.py", "import os\nprint(open(os.environ['LAUNCHBAY_INPUT_D'] + '/x').read())\n")
    write(lab.project, "p_fail.py", "raise SystemExit('no data today')\n")
    steps = [
        Step("prep", "p_prep.py", outputs={"d": "outputs/d"}),
        Step("train", "p_train.py", inputs={"d": "prep.d"}),
        Step("check", "p_fail.py", inputs={"d": "prep.d"}),
    ]
    handle = pipeline(steps, experiment="sidebar-pipeline", source_dir=lab.project, store=lab.store).submit()
    assert handle.wait(timeout=90) == "Failed"
    states = {s["name"]: s for s in handle.steps}
    page.goto(f"{lab.url}/lab?launchbay-run={handle.run_id}")
    view = f'{VISIBLE} .lb-run-view[data-run-id="{handle.run_id}"]'
    page.wait_for_selector(f"{view} .lb-pipeline-section svg .lb-dag-step", timeout=90_000)
    boxes = page.locator(f"{view} .lb-pipeline-section .lb-dag-step")
    shown = {boxes.nth(i).get_attribute("data-step"): boxes.nth(i).get_attribute("data-status") for i in range(3)}
    assert shown == {"prep": "Completed", "train": "Completed", "check": "Failed"}
    assert page.locator(f"{view} .lb-pipeline-section .lb-dag-edge").count() == 2  # the data edges
    reason = page.locator(f'{view} .lb-pipeline-step[data-step="train"] .lb-pipeline-step-reason').text_content()
    assert reason == "first run of this step"
    shot(page, "pipeline-dag")
    page.locator(f'{view} .lb-pipeline-section .lb-dag-step[data-step="train"]').click()
    page.wait_for_selector(f'{VISIBLE} .lb-run-view[data-run-id="{states["train"]["run_id"]}"]')


def test_on_a_shared_store_rows_say_who_made_them_and_the_user_filter_shows_one_persons_runs(
    page: Any, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in this file: the runs of two more people make the module's store a shared one."""
    made = {}
    for who in ("alice", "bob"):
        monkeypatch.setenv("LAUNCHBAY_USER", who)
        made[who] = lab.submit(f"{who}.py", f"print('{who} was here')\n", experiment="team", name=f"by-{who}")
    assert all(h.wait(timeout=60) == "Completed" for h in made.values())
    page.wait_for_selector(f"{row(made['bob'].run_id)} .lb-run-user")  # live: no reload by hand
    assert page.inner_text(f"{row(made['alice'].run_id)} .lb-run-user") == "alice"
    user_filter = f"{SIDEBAR} .lb-filter-user"
    assert page.is_visible(user_filter)
    labels = page.eval_on_selector_all(f"{user_filter} option", "options => options.map(o => o.textContent)")
    assert labels[0] == "Anyone" and labels[1].startswith("Mine (") and "bob (1)" in labels and "alice (1)" in labels
    page.select_option(user_filter, "bob")
    page.wait_for_function(
        f"[...document.querySelectorAll('{SIDEBAR} .lb-run-row')].map(r => r.dataset.runId).join() === "
        f"'{made['bob'].run_id}'"
    )
    shot(page, "user-filter")
    page.select_option(user_filter, "")
    page.wait_for_selector(row(made["alice"].run_id))
