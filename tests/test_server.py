"""The REST API behind the JupyterLab sidebar, through a real Jupyter server (pytest-jupyter).

The store holds real runs made with ``launchbay.submit`` on the local target:
two finished ones with different code and params, a failed one, and (per test)
running ones for the live log, metrics, changes and cancel.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

import launchbay
from conftest import write
from launchbay.server.handlers import ROUTES
from launchbay.store import open_store

pytest_plugins = ["pytest_jupyter.jupyter_server"]

API = "launchbay/api"
SECRET = "TOPSECRET-launchbay-7f3a"

TRAIN = textwrap.dedent("""
    import os
    from launchbay import Run
    run = Run.get_context()
    for i in range(500):
        run.log("loss", 5.0 if i == 321 else 1.0 / (i + 1), step=i)
    run.log("val/acc", 0.5, step=0)
    os.makedirs("outputs/sub dir", exist_ok=True)
    open("outputs/model.txt", "w").write("weights {version}\\n")
    open("outputs/sub dir/naïve #1.txt", "w").write("odd name\\n")
    print("training done", "é" * 3)
""")


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def store_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store with two completed runs (different code and params) and a failed one."""
    base = tmp_path_factory.mktemp("lbserver")
    store = base / "store"
    project = base / "proj"
    project.mkdir()
    write(project, "train.py", TRAIN.format(version=1))
    write(project, "fail.py", "print('about to fail', flush=True)\nraise ZeroDivisionError('boom')\n")
    write(project, "logo.bin", "")
    (project / "logo.bin").write_bytes(bytes(range(256)))
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
    common = {"store": store, "source_dir": project, "experiment": "server-test"}
    first = launchbay.submit("train.py", ["--lr", "0.1"], params={"lr": 0.1, "layers": 2}, name="first", **common)
    first.wait(timeout=60)
    write(project, "train.py", TRAIN.format(version=2) + "\nprint('second version')\n")
    (project / "logo.bin").write_bytes(bytes(range(255, -1, -1)))
    second = launchbay.submit("train.py", ["--lr", "0.01"], params={"lr": 0.01, "layers": 2}, name="second", **common)
    failed = launchbay.submit("fail.py", experiment="other", store=store, source_dir=project)
    assert second.wait(timeout=60) == "Completed" and failed.wait(timeout=60) == "Failed"
    assert first.status == "Completed"
    run_dir = store / "runs" / first.run_id
    (run_dir / "secret.txt").write_text(SECRET)
    (base / "secret.txt").write_text(SECRET)
    (run_dir / "files" / "outputs" / "escape.txt").symlink_to(base / "secret.txt")
    return {"store": store, "project": project, "first": first.run_id, "second": second.run_id,
            "failed": failed.run_id, "base": base}


@pytest.fixture
def jp_server_config(store_runs: dict[str, Any]) -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"launchbay": True}},
        "LaunchbayServer": {"store": str(store_runs["store"])},
    })


async def get(jp_fetch: Any, *parts: str, params: dict[str, Any] | None = None) -> Any:
    response = await jp_fetch(API, *parts, params=params or {})
    assert response.code == 200
    return json.loads(response.body)


async def error(jp_fetch: Any, *parts: str, method: str = "GET", body: str | None = None,
                params: dict[str, Any] | None = None) -> tuple[int, str]:
    response = await jp_fetch(API, *parts, method=method, body=body, params=params or {}, raise_error=False)
    message = json.loads(response.body)["message"]
    assert isinstance(message, str) and message
    return response.code, message


async def raw(client: Any, base_url: str, path: str, headers: dict[str, str] | None = None,
              method: str = "GET") -> HTTPResponse:
    """A request with the path exactly as given (no client-side quoting)."""
    body = b"" if method == "POST" else None
    return await client.fetch(base_url + API + "/" + path, headers=headers or {}, method=method, body=body,
                              raise_error=False, follow_redirects=False)


def submit_slow(store_runs: dict[str, Any], script: str, text: str, **kw: Any) -> launchbay.RunHandle:
    write(store_runs["project"], script, text)
    return launchbay.submit(script, store=store_runs["store"], source_dir=store_runs["project"],
                            experiment="live", **kw)


async def poll(predicate: Any, timeout: float = 30.0) -> Any:
    import asyncio

    deadline = time.time() + timeout
    while time.time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


# -- the contract ------------------------------------------------------------------------------
def test_every_openapi_path_has_a_handler_and_back() -> None:
    spec = yaml.safe_load((Path(launchbay.__file__).parent / "server" / "openapi.yaml").read_text())
    documented = {re.sub(r"\{[^}]+\}", "X", p).strip("/") for p in spec["paths"]}
    routed = {re.sub(r"\([^)]*\)", "X", pattern) for pattern, _ in ROUTES}
    assert documented == routed


async def test_openapi_file_is_served(jp_fetch: Any) -> None:
    response = await jp_fetch(API, "openapi.yaml")
    assert yaml.safe_load(response.body)["info"]["title"] == "launchbay REST API"


# -- authentication ----------------------------------------------------------------------------
async def test_every_endpoint_requires_authentication(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, store_runs: dict[str, Any]
) -> None:
    rid = store_runs["first"]
    gets = ["runs", "experiments", f"runs/{rid}", f"runs/{rid}/log", f"runs/{rid}/metrics",
            f"runs/{rid}/metrics/loss", f"runs/{rid}/files", f"runs/{rid}/files/outputs/model.txt",
            f"compare?runs={rid},{store_runs['second']}", "changes?since=0", "targets", "openapi.yaml"]
    posts = [f"runs/{rid}/cancel", f"runs/{rid}/rerun"]
    for pattern, _handler in ROUTES:  # every route is tried
        assert any(re.fullmatch(pattern, path.split("?")[0]) for path in gets + posts), pattern
    store = open_store(store_runs["store"])
    before = store.count_runs()
    for headers in ({}, {"Authorization": "token wrong-token"}):
        for path in gets:
            response = await raw(http_server_client, jp_base_url, path, headers)
            assert response.code == 403, (path, response.code)
            assert b"model" not in response.body and rid.encode() not in response.body
        for path in posts:
            response = await raw(http_server_client, jp_base_url, path, headers, method="POST")
            assert response.code == 403, (path, response.code)
    assert store.count_runs() == before  # the refused re-run did not happen


# -- listing -----------------------------------------------------------------------------------
async def test_runs_are_listed_newest_first_with_filters_and_pages(
    jp_fetch: Any, store_runs: dict[str, Any]
) -> None:
    page = await get(jp_fetch, "runs", params={"experiment": "server-test"})
    ids = [r["run_id"] for r in page["runs"]]
    assert ids[-2:] == [store_runs["second"], store_runs["first"]]
    first = page["runs"][-1]
    assert first["status"] == "Completed" and first["name"] == "first" and first["target"] == "local"
    assert first["primary_metric"]["name"] == "loss" and first["started"] and first["duration_s"] > 0
    assert "target_state" not in first
    failed = await get(jp_fetch, "runs", params={"status": "Failed"})
    assert [r["run_id"] for r in failed["runs"]] == [store_runs["failed"]] and failed["total"] == 1
    by_text = await get(jp_fetch, "runs", params={"q": "SECOND"})
    assert [r["run_id"] for r in by_text["runs"]] == [store_runs["second"]]
    by_param = await get(jp_fetch, "runs", params={"q": "0.01", "experiment": "server-test"})
    assert store_runs["second"] in [r["run_id"] for r in by_param["runs"]]
    one = await get(jp_fetch, "runs", params={"experiment": "server-test", "limit": 1, "offset": 1})
    assert len(one["runs"]) == 1 and one["total"] == page["total"] and one["runs"][0]["run_id"] == ids[1]
    assert (await error(jp_fetch, "runs", params={"limit": "lots"}))[0] == 400
    assert (await error(jp_fetch, "runs", params={"limit": 0}))[0] == 400
    code, message = await error(jp_fetch, "runs", params={"status": "Sleeping"})
    assert code == 400 and "Completed" in message


async def test_experiments_and_targets(jp_fetch: Any) -> None:
    experiments = {e["name"]: e["runs"] for e in (await get(jp_fetch, "experiments"))["experiments"]}
    assert experiments["other"] == 1 and experiments["server-test"] >= 2
    targets = (await get(jp_fetch, "targets"))["targets"]
    assert {"name": "local", "type": "local"} in targets


async def test_run_details(jp_fetch: Any, store_runs: dict[str, Any]) -> None:
    run = await get(jp_fetch, "runs", store_runs["first"])
    assert run["arguments"] == ["--lr", "0.1"] and run["params"] == {"lr": 0.1, "layers": 2}
    git = run["properties"]["git"]
    assert re.fullmatch("[0-9a-f]{40}", git["commit"]) and git["dirty"] is False and git["branch"]
    assert (await get(jp_fetch, "runs", store_runs["second"]))["properties"]["git"]["dirty"] is True
    assert run["snapshot"]["files"] >= 3 and run["snapshot"]["id"]
    assert run["spec"]["script"] == "train.py" and run["exit_code"] == 0
    failed = await get(jp_fetch, "runs", store_runs["failed"])
    assert failed["status"] == "Failed" and "ZeroDivisionError" in failed["error"]["traceback"] + failed[
        "error"]["message"]
    code, message = await error(jp_fetch, "runs", "no-such-run")
    assert code == 404 and "no-such-run" in message


# -- log, metrics, files -----------------------------------------------------------------------
async def test_log_is_read_by_byte_offset(jp_fetch: Any, store_runs: dict[str, Any]) -> None:
    whole = await get(jp_fetch, "runs", store_runs["first"], "log")
    assert "training done ééé" in whole["text"] and whole["status"] == "Completed"
    size = len(whole["text"].encode())
    assert whole["offset"] == size
    cut = whole["text"].encode().index("é".encode()) + 1  # inside a two-byte character
    rest = await get(jp_fetch, "runs", store_runs["first"], "log", params={"offset": cut})
    assert rest["offset"] == size and rest["text"].startswith("\ufffd")
    done = await get(jp_fetch, "runs", store_runs["first"], "log", params={"offset": size})
    assert done == {"text": "", "offset": size, "status": "Completed"}
    assert (await error(jp_fetch, "runs", store_runs["first"], "log", params={"offset": -1}))[0] == 400


async def test_metrics_summaries_series_after_step_and_downsampling(
    jp_fetch: Any, http_server_client: Any, jp_base_url: str, jp_auth_header: dict[str, str],
    store_runs: dict[str, Any],
) -> None:
    rid = store_runs["first"]
    summaries = {m["name"]: m for m in (await get(jp_fetch, "runs", rid, "metrics"))["metrics"]}
    assert summaries["loss"]["count"] == 500 and summaries["loss"]["last_step"] == 499
    assert summaries["loss"]["last"] == pytest.approx(1 / 500)
    full = await get(jp_fetch, "runs", rid, "metrics", "loss")
    assert full["steps"] == list(range(500)) and full["values"][321] == 5.0
    tail = await get(jp_fetch, "runs", rid, "metrics", "loss", params={"after_step": 495})
    assert tail["steps"] == [496, 497, 498, 499]
    small = await get(jp_fetch, "runs", rid, "metrics", "loss", params={"buckets": 20})
    assert len(small["steps"]) <= 40 and small["steps"] == sorted(small["steps"])
    assert 5.0 in small["values"] and 321 in small["steps"]  # the spike survives downsampling
    assert small["values"][0] == 1.0
    name = urllib.parse.quote("val/acc", safe="")  # as the sidebar sends it
    response = await raw(http_server_client, jp_base_url, f"runs/{rid}/metrics/{name}", jp_auth_header)
    assert json.loads(response.body) == {"name": "val/acc", "steps": [0], "values": [0.5]}
    assert (await error(jp_fetch, "runs", rid, "metrics", "nope"))[0] == 404
    assert (await error(jp_fetch, "runs", rid, "metrics", "loss", params={"buckets": 0}))[0] == 400
    assert (await error(jp_fetch, "runs", rid, "metrics", "loss", params={"after_step": "x"}))[0] == 400


async def test_files_are_listed_and_downloaded(jp_fetch: Any, store_runs: dict[str, Any]) -> None:
    rid = store_runs["first"]
    files = {f["name"]: f["size"] for f in (await get(jp_fetch, "runs", rid, "files"))["files"]}
    assert files["outputs/model.txt"] == len("weights 1\n")
    assert "outputs/sub dir/naïve #1.txt" in files and "user_logs/std_log.txt" in files
    assert "outputs/escape.txt" not in files  # a symlink out of the run is not listed
    response = await jp_fetch(API, "runs", rid, "files", "outputs", "model.txt")
    assert response.body == b"weights 1\n"
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''model.txt"
    odd = await jp_fetch(API, "runs", rid, "files", "outputs", "sub dir", "naïve #1.txt")
    assert odd.body == b"odd name\n"
    assert (await error(jp_fetch, "runs", rid, "files", "outputs", "missing.txt"))[0] == 404


TRAVERSALS = [
    "../secret.txt",
    "..%2Fsecret.txt",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "outputs/../../secret.txt",
    "outputs%2F..%2F..%2Fsecret.txt",
    "outputs/%2e%2e/%2e%2e/secret.txt",
    "../../../../secret.txt",
    "..%5Csecret.txt",
    "%252e%252e%252fsecret.txt",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "%2F{base}%2Fsecret.txt",
    "{base}/secret.txt",
    "outputs/escape.txt",
    "outputs%2Fescape.txt",
    "secret.txt%00.txt",
]


async def test_paths_outside_the_run_files_are_refused(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, jp_auth_header: dict[str, str],
    store_runs: dict[str, Any],
) -> None:
    rid = store_runs["first"]
    base = str(store_runs["base"]).strip("/")
    for variant in TRAVERSALS:
        path = variant.format(base=base)
        response = await raw(http_server_client, jp_base_url, f"runs/{rid}/files/{path}", jp_auth_header)
        assert response.code in (400, 404), (path, response.code)
        assert SECRET.encode() not in response.body and b"root:" not in response.body, path
    for run_ref in ("..", "..%2F..", "%2e%2e", "%2E%2E%2F%2E%2E%2Fetc", "..%2F" + rid):
        response = await raw(http_server_client, jp_base_url, f"runs/{run_ref}/files/secret.txt", jp_auth_header)
        assert response.code in (400, 404), (run_ref, response.code)
        assert SECRET.encode() not in response.body
    response = await raw(http_server_client, jp_base_url, f"runs/{rid}/files/..%2Fsecret.txt", jp_auth_header)
    assert response.code == 400 and "not a path inside" in json.loads(response.body)["message"]


# -- compare, changes, rerun, cancel -----------------------------------------------------------
async def test_compare_shows_param_differences_and_the_code_diff(
    jp_fetch: Any, store_runs: dict[str, Any]
) -> None:
    first, second = store_runs["first"], store_runs["second"]
    result = await get(jp_fetch, "compare", params={"runs": f"{first},{second}"})
    assert [r["run_id"] for r in result["runs"]] == [first, second]
    assert result["params"] == {"keys": ["layers", "lr"], "differing": ["lr"]}
    files = {f["path"]: f for f in result["diff"]["files"]}
    assert set(files) == {"train.py", "logo.bin"}
    train = files["train.py"]
    assert train["status"] == "modified"
    assert '-open("outputs/model.txt", "w").write("weights 1\\n")' in train["unified"]
    assert '+open("outputs/model.txt", "w").write("weights 2\\n")' in train["unified"]
    assert "+print('second version')" in train["unified"]
    assert files["logo.bin"]["unified"] == "" and files["logo.bin"]["binary"] is True
    three = await get(jp_fetch, "compare", params={"runs": f"{first},{second},{store_runs['failed']}"})
    assert set(three["params"]["differing"]) == {"lr", "layers"}  # the failed run has no params
    assert (await error(jp_fetch, "compare", params={"runs": first}))[0] == 400
    assert (await error(jp_fetch, "compare", params={"runs": f"{first},nope"}))[0] == 404


async def test_a_running_run_streams_log_metrics_and_status(jp_fetch: Any, store_runs: dict[str, Any]) -> None:
    since = time.time() - 1
    handle = submit_slow(store_runs, "ticks.py", """
        import time
        from launchbay import Run
        run = Run.get_context()
        for i in range(12):
            print("tick", i, flush=True)
            run.log("progress", i, step=i)
            run.flush()
            time.sleep(0.3)
    """)
    rid = handle.run_id
    changed = await poll(lambda: get(jp_fetch, "changes", params={"since": since}))
    assert rid in [r["run_id"] for r in changed["runs"]]
    running = await poll(lambda: _status_is(jp_fetch, rid, "Running"))
    assert running
    offset, texts, statuses, steps = 0, [], set(), []
    last_step = None
    while True:
        chunk = await get(jp_fetch, "runs", rid, "log", params={"offset": offset})
        statuses.add(chunk["status"])
        if chunk["text"]:
            texts.append(chunk["text"])
        offset = chunk["offset"]
        params = {} if last_step is None else {"after_step": last_step}
        try:
            series = await get(jp_fetch, "runs", rid, "metrics", "progress", params=params)
        except Exception:  # not logged yet
            series = {"steps": []}
        if series["steps"]:
            assert last_step is None or min(series["steps"]) > last_step
            steps.extend(series["steps"])
            last_step = series["steps"][-1]
        if chunk["status"] == "Completed" and not chunk["text"]:
            break
        await _sleep(0.25)
    assert "".join(texts) == "".join(f"tick {i}\n" for i in range(12))
    assert len(texts) > 2, "the log should arrive in several pieces while the run runs"
    assert {"Running", "Completed"} <= statuses
    assert steps == list(range(12))
    now = (await get(jp_fetch, "changes", params={"since": since}))["now"]
    later = await get(jp_fetch, "changes", params={"since": now})
    assert rid not in [r["run_id"] for r in later["runs"]]
    assert (await error(jp_fetch, "changes"))[0] == 400


async def _status_is(jp_fetch: Any, rid: str, status: str) -> bool:
    return bool((await get(jp_fetch, "runs", rid))["status"] == status)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_cancel_stops_a_running_run(jp_fetch: Any, store_runs: dict[str, Any]) -> None:
    handle = submit_slow(store_runs, "sleeper.py", """
        import os, time
        print("pid", os.getpid(), flush=True)
        time.sleep(300)
    """)
    rid = handle.run_id
    log = await poll(lambda: _log_has(jp_fetch, rid, "pid"))
    pid = int(log.split()[1])
    response = await jp_fetch(API, "runs", rid, "cancel", method="POST", body=b"")
    assert json.loads(response.body) == {"status": "Canceled"}
    assert (await get(jp_fetch, "runs", rid))["status"] == "Canceled"
    await poll(lambda: _dead(pid), timeout=10)
    again = await jp_fetch(API, "runs", rid, "cancel", method="POST", body=b"")
    assert json.loads(again.body) == {"status": "Canceled"}
    finished = await jp_fetch(API, "runs", store_runs["first"], "cancel", method="POST", body=b"")
    assert json.loads(finished.body) == {"status": "Completed"}
    assert (await error(jp_fetch, "runs", "nope", "cancel", method="POST", body=""))[0] == 404


async def _log_has(jp_fetch: Any, rid: str, text: str) -> str | None:
    log = (await get(jp_fetch, "runs", rid, "log"))["text"]
    return log if text in log else None


async def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


async def test_rerun_submits_the_same_snapshot_again(jp_fetch: Any, store_runs: dict[str, Any]) -> None:
    first = store_runs["first"]
    original = await get(jp_fetch, "runs", first)
    response = await jp_fetch(API, "runs", first, "rerun", method="POST", body=json.dumps({"target": None}))
    new_id = json.loads(response.body)["run_id"]
    assert new_id != first
    assert launchbay.get_run(new_id, store=store_runs["store"]).wait(timeout=60) == "Completed"
    rerun = await get(jp_fetch, "runs", new_id)
    assert rerun["snapshot"]["id"] == original["snapshot"]["id"]
    assert rerun["arguments"] == original["arguments"] and rerun["target"] == "local"
    assert rerun["tags"]["launchbay.rerun_of"] == first
    model = await jp_fetch(API, "runs", new_id, "files", "outputs", "model.txt")
    assert model.body == b"weights 1\n"  # the first run's code, not the project's current one
    empty = await jp_fetch(API, "runs", first, "rerun", method="POST", body=b"")
    assert json.loads(empty.body)["run_id"] not in (first, new_id)
    code, message = await error(jp_fetch, "runs", first, "rerun", method="POST", body=json.dumps({"target": "gpu"}))
    assert code == 400 and "gpu" in message
    code, _ = await error(jp_fetch, "runs", first, "rerun", method="POST", body="{not json")
    assert code == 400
    code, _ = await error(jp_fetch, "runs", first, "rerun", method="POST", body=json.dumps({"target": 3}))
    assert code == 400


def test_the_store_comes_from_launchbay_store_when_not_configured(
    store_runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from launchbay.server.service import LaunchbayService

    monkeypatch.setenv("LAUNCHBAY_STORE", str(store_runs["store"]))
    assert LaunchbayService.open(None, tmp_path).store.root == store_runs["store"].resolve()
    monkeypatch.delenv("LAUNCHBAY_STORE")
    (tmp_path / ".launchbay").mkdir()
    (tmp_path / "sub").mkdir()
    assert LaunchbayService.open(None, tmp_path / "sub").store.root == (tmp_path / ".launchbay").resolve()
    assert os.path.isdir(tmp_path / ".launchbay")
