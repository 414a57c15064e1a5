"""The REST API behind the JupyterLab sidebar, through a real Jupyter server (pytest-jupyter).

The store holds real runs made with ``launchbay.submit`` on the local target:
two finished ones with different code and params, a failed one, and (per test)
running ones for the live log, metrics, changes and cancel.

pytest-jupyter's fixtures are imported into this module only (not loaded with
``pytest_plugins``): its autouse event-loop fixtures would otherwise wrap every
test of the session, and fight the Playwright loop of the browser tests. So the
tests here are plain functions that drive ``jp_fetch`` on pytest-jupyter's loop.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import time
import urllib.parse
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_jupyter.jupyter_core import (  # noqa: F401  (fixtures, for this module only)
    echo_kernel_spec,
    jp_asyncio_loop,
    jp_config_dir,
    jp_data_dir,
    jp_env_config_path,
    jp_env_jupyter_path,
    jp_environ,
    jp_home_dir,
    jp_kernel_dir,
    jp_runtime_dir,
    jp_system_config_path,
    jp_system_jupyter_path,
)
from pytest_jupyter.jupyter_server import (  # noqa: F401
    jp_argv,
    jp_auth_header,
    jp_base_url,
    jp_configurable_serverapp,
    jp_fetch,
    jp_http_port,
    jp_logging_stream,
    jp_nbconvert_templates,
    jp_root_dir,
    jp_server_cleanup,
    jp_serverapp,
    jp_web_app,
)
from pytest_jupyter.pytest_tornasync import http_server, http_server_client, http_server_port  # noqa: F401
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

import launchbay
from conftest import pid_alive, write
from launchbay.server.handlers import ROUTES
from launchbay.store import open_store

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
    first.register_model("served", path="outputs/model.txt", tags={"lr": "0.1"})
    run_dir = store / "runs" / first.run_id
    (run_dir / "secret.txt").write_text(SECRET)
    (base / "secret.txt").write_text(SECRET)
    (run_dir / "files" / "outputs" / "escape.txt").symlink_to(base / "secret.txt")
    return {
        "store": store,
        "project": project,
        "first": first.run_id,
        "second": second.run_id,
        "failed": failed.run_id,
        "base": base,
    }


@pytest.fixture
def jp_server_config(store_runs: dict[str, Any]) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"launchbay": True}},
            "LaunchbayServer": {"store": str(store_runs["store"])},
        }
    )


class Api:
    """Synchronous calls to the test server: each request runs pytest-jupyter's loop until it is answered."""

    def __init__(self, loop: Any, fetch: Any, client: Any, base_url: str, auth: dict[str, str]) -> None:
        self.loop, self.fetch, self.client, self.base_url, self.auth = loop, fetch, client, base_url, auth

    def run(self, awaitable: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(awaitable)

    def request(
        self, *parts: str, method: str = "GET", body: str | bytes | None = None, params: dict[str, Any] | None = None
    ) -> HTTPResponse:
        """Through ``jp_fetch`` (with the token; each part URL-escaped)."""
        if method == "POST" and body is None:
            body = b""
        return self.run(self.fetch(API, *parts, method=method, body=body, params=params or {}, raise_error=False))

    def get(self, *parts: str, params: dict[str, Any] | None = None) -> Any:
        response = self.request(*parts, params=params)
        assert response.code == 200, (parts, response.code, response.body)
        return json.loads(response.body)

    def post(self, *parts: str, body: str | bytes | None = None) -> Any:
        response = self.request(*parts, method="POST", body=body)
        assert response.code == 200, (parts, response.code, response.body)
        return json.loads(response.body)

    def error(
        self, *parts: str, method: str = "GET", body: str | None = None, params: dict[str, Any] | None = None
    ) -> tuple[int, str]:
        """(status, message) of a request that must fail with a JSON message."""
        response = self.request(*parts, method=method, body=body, params=params)
        message = json.loads(response.body)["message"]
        assert isinstance(message, str) and message
        return response.code, message

    def raw(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> HTTPResponse:
        """A request with the path exactly as given (no quoting); ``headers=None`` sends the token."""
        return self.run(
            self.client.fetch(
                self.base_url + API + "/" + path,
                headers=self.auth if headers is None else headers,
                method=method,
                body=b"" if method == "POST" else None,
                raise_error=False,
                follow_redirects=False,
            )
        )

    def poll(self, predicate: Any, timeout: float = 30.0) -> Any:
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError("condition not reached in time")


@pytest.fixture
def api(  # noqa: F811  (the parameters are the fixtures imported above)
    jp_asyncio_loop: Any,  # noqa: F811
    jp_fetch: Any,  # noqa: F811
    http_server_client: Any,  # noqa: F811
    jp_base_url: str,  # noqa: F811
    jp_auth_header: dict[str, str],  # noqa: F811
) -> Api:
    return Api(jp_asyncio_loop, jp_fetch, http_server_client, jp_base_url, jp_auth_header)


def submit_slow(store_runs: dict[str, Any], script: str, text: str) -> launchbay.RunHandle:
    write(store_runs["project"], script, text)
    return launchbay.submit(script, store=store_runs["store"], source_dir=store_runs["project"], experiment="live")


# -- the contract ------------------------------------------------------------------------------
def test_every_openapi_path_has_a_handler_and_back() -> None:
    spec = yaml.safe_load((Path(launchbay.__file__).parent / "server" / "openapi.yaml").read_text())
    documented = {re.sub(r"\{[^}]+\}", "X", p).strip("/") for p in spec["paths"]}
    routed = {re.sub(r"\([^)]*\)", "X", pattern) for pattern, _ in ROUTES}
    assert documented == routed


def test_openapi_file_is_served(api: Api) -> None:
    response = api.request("openapi.yaml")
    assert yaml.safe_load(response.body)["info"]["title"] == "launchbay REST API"


# -- authentication ----------------------------------------------------------------------------
def test_every_endpoint_requires_authentication(api: Api, store_runs: dict[str, Any]) -> None:
    rid = store_runs["first"]
    gets = [
        "runs",
        "experiments",
        "users",
        f"runs/{rid}",
        f"runs/{rid}/log",
        f"runs/{rid}/metrics",
        f"runs/{rid}/metrics/loss",
        f"runs/{rid}/logged",
        f"runs/{rid}/files",
        f"runs/{rid}/files/outputs/model.txt",
        f"compare?runs={rid},{store_runs['second']}",
        "changes?since=0",
        "targets",
        "models",
        "models/served",
        "openapi.yaml",
    ]
    not_a_pipeline = [f"runs/{rid}/pipeline"]  # with the token: a plain run is answered 400, "not a pipeline"
    posts = [f"runs/{rid}/cancel", f"runs/{rid}/rerun", f"runs/{rid}/tensorboard"]
    for pattern, _handler in ROUTES:  # every route is tried
        assert any(re.fullmatch(pattern, path.split("?")[0]) for path in gets + not_a_pipeline + posts), pattern
    for path in gets:
        assert api.raw(path).code == 200, path  # with the token: the same requests succeed
    for path in not_a_pipeline:
        assert api.raw(path).code == 400, path
    store = open_store(store_runs["store"])
    before = store.count_runs()
    for headers in ({}, {"Authorization": "token wrong-token"}):
        for path in gets + not_a_pipeline:
            response = api.raw(path, headers)
            assert response.code == 403, (path, response.code)
            assert b"model" not in response.body and rid.encode() not in response.body
        for path in posts:
            response = api.raw(path, headers, method="POST")
            assert response.code == 403, (path, response.code)
    assert store.count_runs() == before  # the refused re-run did not happen


# -- models ------------------------------------------------------------------------------------
def test_models_are_listed_with_their_versions_and_runs(api: Api, store_runs: dict[str, Any]) -> None:
    (listed,) = api.get("models")["models"]
    assert (listed["name"], listed["latest_version"], listed["versions"]) == ("served", 1, 1)
    assert listed["run_id"] == store_runs["first"] and listed["tags"] == {"lr": "0.1"}
    (version,) = api.get("models/served")["versions"]
    assert version["path"] == "outputs/model.txt" and version["kind"] == "file"
    assert version["metrics"]["loss"] == pytest.approx(1 / 500)
    code, message = api.error("models/nope")
    assert code == 404 and "No model 'nope'" in message
    code, message = api.error("models/bad name")
    assert code == 400 and "is not a model name" in message


# -- listing -----------------------------------------------------------------------------------
def test_runs_are_listed_newest_first_with_filters_and_pages(api: Api, store_runs: dict[str, Any]) -> None:
    page = api.get("runs", params={"experiment": "server-test"})
    ids = [r["run_id"] for r in page["runs"]]
    assert ids[-2:] == [store_runs["second"], store_runs["first"]]
    first = page["runs"][-1]
    assert first["status"] == "Completed" and first["name"] == "first" and first["target"] == "local"
    assert first["primary_metric"]["name"] == "loss" and first["started"] and first["duration_s"] > 0
    assert "target_state" not in first
    failed = api.get("runs", params={"status": "Failed"})
    assert [r["run_id"] for r in failed["runs"]] == [store_runs["failed"]] and failed["total"] == 1
    by_text = api.get("runs", params={"q": "SECOND"})
    assert [r["run_id"] for r in by_text["runs"]] == [store_runs["second"]]
    by_param = api.get("runs", params={"q": "0.01", "experiment": "server-test"})
    assert store_runs["second"] in [r["run_id"] for r in by_param["runs"]]
    one = api.get("runs", params={"experiment": "server-test", "limit": 1, "offset": 1})
    assert len(one["runs"]) == 1 and one["total"] == page["total"] and one["runs"][0]["run_id"] == ids[1]
    assert (api.error("runs", params={"limit": "lots"}))[0] == 400
    assert (api.error("runs", params={"limit": 0}))[0] == 400
    code, message = api.error("runs", params={"status": "Sleeping"})
    assert code == 400 and "Completed" in message
    me = first["created_by"]  # who made them: [user] name, else the login name
    assert me and api.get("runs", params={"user": me})["total"] == page["total"] + 1  # and the failed one
    assert api.get("runs", params={"user": f"not-{me}"}) == {"runs": [], "total": 0}
    users = api.get("users")  # the sidebar's user filter: everyone with a run, and who this server is
    assert users["users"] == [{"name": me, "runs": page["total"] + 1}] and users["me"] == me


def test_experiments_and_targets(api: Api) -> None:
    experiments = {e["name"]: e["runs"] for e in (api.get("experiments"))["experiments"]}
    assert experiments["other"] == 1 and experiments["server-test"] >= 2
    targets = (api.get("targets"))["targets"]
    assert {"name": "local", "type": "local"} in targets


def test_run_details(api: Api, store_runs: dict[str, Any]) -> None:
    run = api.get("runs", store_runs["first"])
    assert run["arguments"] == ["--lr", "0.1"] and run["params"] == {"lr": 0.1, "layers": 2}
    git = run["properties"]["git"]
    assert re.fullmatch("[0-9a-f]{40}", git["commit"]) and git["dirty"] is False and git["branch"]
    assert (api.get("runs", store_runs["second"]))["properties"]["git"]["dirty"] is True
    assert run["snapshot"]["files"] >= 3 and run["snapshot"]["id"]
    assert run["spec"]["script"] == "train.py" and run["exit_code"] == 0
    failed = api.get("runs", store_runs["failed"])
    assert (
        failed["status"] == "Failed"
        and "ZeroDivisionError" in failed["error"]["traceback"] + failed["error"]["message"]
    )
    code, message = api.error("runs", "no-such-run")
    assert code == 404 and "no-such-run" in message


def test_run_details_show_the_environment_the_target_resolved(api: Api, store_runs: dict[str, Any]) -> None:
    """Targets record the environment (name, hash, built) in target_state: the sidebar shows that."""
    store = open_store(store_runs["store"])
    record = store.get_run(store_runs["failed"])
    store.merge_target_state(record.pk, environment={"name": "six", "hash": "ab" * 32, "built": True})
    assert api.get("runs", store_runs["failed"])["environment"] == {"name": "six", "hash": "ab" * 32, "built": True}


# -- log, metrics, files -----------------------------------------------------------------------
def test_log_is_read_by_byte_offset(api: Api, store_runs: dict[str, Any]) -> None:
    whole = api.get("runs", store_runs["first"], "log")
    assert "training done ééé" in whole["text"] and whole["status"] == "Completed"
    size = len(whole["text"].encode())
    assert whole["offset"] == size
    cut = whole["text"].encode().index("é".encode()) + 1  # inside a two-byte character
    rest = api.get("runs", store_runs["first"], "log", params={"offset": cut})
    assert rest["offset"] == size and rest["text"].startswith("\ufffd")
    done = api.get("runs", store_runs["first"], "log", params={"offset": size})
    assert done == {"text": "", "offset": size, "status": "Completed"}
    assert (api.error("runs", store_runs["first"], "log", params={"offset": -1}))[0] == 400


def test_metrics_summaries_series_after_step_and_downsampling(api: Api, store_runs: dict[str, Any]) -> None:
    rid = store_runs["first"]
    summaries = {m["name"]: m for m in (api.get("runs", rid, "metrics"))["metrics"]}
    assert summaries["loss"]["count"] == 500 and summaries["loss"]["last_step"] == 499
    assert summaries["loss"]["last"] == pytest.approx(1 / 500)
    full = api.get("runs", rid, "metrics", "loss")
    assert full["steps"] == list(range(500)) and full["values"][321] == 5.0
    tail = api.get("runs", rid, "metrics", "loss", params={"after_step": 495})
    assert tail["steps"] == [496, 497, 498, 499]
    small = api.get("runs", rid, "metrics", "loss", params={"buckets": 20})
    assert len(small["steps"]) <= 40 and small["steps"] == sorted(small["steps"])
    assert 5.0 in small["values"] and 321 in small["steps"]  # the spike survives downsampling
    assert small["values"][0] == 1.0
    name = urllib.parse.quote("val/acc", safe="")  # as the sidebar sends it
    response = api.raw(f"runs/{rid}/metrics/{name}")
    assert json.loads(response.body) == {"name": "val/acc", "steps": [0], "values": [0.5]}
    assert (api.error("runs", rid, "metrics", "nope"))[0] == 404
    assert (api.error("runs", rid, "metrics", "loss", params={"buckets": 0}))[0] == 400
    assert (api.error("runs", rid, "metrics", "loss", params={"after_step": "x"}))[0] == 400


def test_images_tables_rows_and_lists_are_served(api: Api, store_runs: dict[str, Any]) -> None:
    pixel = b"\x89PNG\r\n\x1a\n" + b"a PNG's first bytes, and no picture"
    (store_runs["project"] / "pixel.png").write_bytes(pixel)
    handle = submit_slow(
        store_runs,
        "logs_all.py",
        """
        from launchbay import Run
        run = Run.get_context()
        run.log_row("pr", p=0.9, r=0.5)
        run.log_row("pr", p=0.8, r=float("nan"), f1=0.7)
        run.log_table("confusion", {"label": ["cat", "dog"], "cat": [5, 1]})
        run.log_list("acc", [0.5, float("inf")])
        run.log_image("sample", path="pixel.png")
        run.log_image("sample", path="pixel.png")
        """,
    )
    assert handle.wait(timeout=60) == "Completed"
    rid = handle.run_id
    answer = api.get("runs", rid, "logged")
    by_name = {e["name"]: e for e in answer["logged"]}
    assert [(e["name"], e["kind"]) for e in answer["logged"]] == [
        ("pr", "rows"),
        ("confusion", "table"),
        ("acc", "list"),
        ("sample", "image"),
    ]
    assert by_name["pr"]["columns"] == {"p": [0.9, 0.8], "r": [0.5, "NaN"], "f1": [None, 0.7]}
    assert by_name["pr"]["row_count"] == 2
    assert by_name["acc"]["values"] == [0.5, "Infinity"]
    images = by_name["sample"]["images"]
    assert [(i["step"], i["file"]) for i in images] == [(0, "images/sample_1.png"), (1, "images/sample_2.png")]
    assert api.raw(f"runs/{rid}/files/{images[1]['file']}").body == pixel
    assert api.get("runs", rid, "logged", params={"since": answer["version"]}) == {
        "version": answer["version"],
        "changed": False,
        "logged": [],
    }
    cut = {e["name"]: e for e in api.get("runs", rid, "logged", params={"max_rows": 1})["logged"]}
    assert cut["pr"]["columns"]["p"] == [0.8] and cut["pr"]["row_count"] == 2
    assert (api.error("runs", rid, "logged", params={"since": "x"}))[0] == 400
    assert (api.error("runs", "nosuch", "logged"))[0] == 404


def test_out_of_range_parameters_are_a_400_not_a_500(api: Api, store_runs: dict[str, Any]) -> None:
    rid = store_runs["first"]
    huge = [10**20, "1e20", -1, "-1e20", 2**63, "nan", "inf", "1e400"]
    for value in huge:
        assert api.error("runs", params={"offset": value})[0] == 400, value
        assert api.error("runs", params={"limit": value})[0] == 400, value
        assert api.error("runs", rid, "log", params={"offset": value})[0] == 400, value
        assert api.error("runs", rid, "metrics", "loss", params={"buckets": value})[0] == 400, value
    for value in ["1e20", "-1e20", "nan", "inf", "1e400", 2**63]:
        assert api.error("runs", rid, "metrics", "loss", params={"after_step": value})[0] == 400, value
        assert api.error("changes", params={"since": value})[0] == 400, value
    assert api.get("runs", params={"offset": 2**53})["runs"] == []
    assert api.get("runs", rid, "metrics", "loss", params={"after_step": -(2**53)})["steps"][:2] == [0, 1]


def test_files_are_listed_and_downloaded(api: Api, store_runs: dict[str, Any]) -> None:
    rid = store_runs["first"]
    files = {f["name"]: f["size"] for f in (api.get("runs", rid, "files"))["files"]}
    assert files["outputs/model.txt"] == len("weights 1\n")
    assert "outputs/sub dir/naïve #1.txt" in files and "user_logs/std_log.txt" in files
    assert "outputs/escape.txt" not in files  # a symlink out of the run is not listed
    response = api.request("runs", rid, "files", "outputs", "model.txt")
    assert response.body == b"weights 1\n"
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''model.txt"
    odd = api.request("runs", rid, "files", "outputs", "sub dir", "naïve #1.txt")
    assert odd.body == b"odd name\n"
    assert (api.error("runs", rid, "files", "outputs", "missing.txt"))[0] == 404


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


def test_paths_outside_the_run_files_are_refused(api: Api, store_runs: dict[str, Any]) -> None:
    rid = store_runs["first"]
    base = str(store_runs["base"]).strip("/")
    for variant in TRAVERSALS:
        path = variant.format(base=base)
        response = api.raw(f"runs/{rid}/files/{path}")
        assert response.code in (400, 404), (path, response.code)
        assert SECRET.encode() not in response.body and b"root:" not in response.body, path
    for run_ref in ("..", "..%2F..", "%2e%2e", "%2E%2E%2F%2E%2E%2Fetc", "..%2F" + rid):
        response = api.raw(f"runs/{run_ref}/files/secret.txt")
        assert response.code in (400, 404), (run_ref, response.code)
        assert SECRET.encode() not in response.body
    response = api.raw(f"runs/{rid}/files/..%2Fsecret.txt")
    assert response.code == 400 and "not a path inside" in json.loads(response.body)["message"]


# -- compare, changes, rerun, cancel -----------------------------------------------------------
def test_compare_shows_param_differences_and_the_code_diff(api: Api, store_runs: dict[str, Any]) -> None:
    first, second = store_runs["first"], store_runs["second"]
    result = api.get("compare", params={"runs": f"{first},{second}"})
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
    three = api.get("compare", params={"runs": f"{first},{second},{store_runs['failed']}"})
    assert set(three["params"]["differing"]) == {"lr", "layers"}  # the failed run has no params
    assert (api.error("compare", params={"runs": first}))[0] == 400
    assert (api.error("compare", params={"runs": f"{first},nope"}))[0] == 404


def test_a_running_run_streams_log_metrics_and_status(api: Api, store_runs: dict[str, Any]) -> None:
    since = time.time() - 1
    handle = submit_slow(
        store_runs,
        "ticks.py",
        """
        import time
        from launchbay import Run
        run = Run.get_context()
        for i in range(12):
            print("tick", i, flush=True)
            run.log("progress", i, step=i)
            run.flush()
            time.sleep(0.3)
    """,
    )
    rid = handle.run_id
    changed = api.poll(lambda: api.get("changes", params={"since": since}))
    assert rid in [r["run_id"] for r in changed["runs"]]  # a new run shows up in the cheap poll
    api.poll(lambda: api.get("runs", rid)["status"] == "Running")
    offset, texts, statuses, steps = 0, [], set(), []
    last_step = None
    while True:
        chunk = api.get("runs", rid, "log", params={"offset": offset})
        statuses.add(chunk["status"])
        if chunk["text"]:
            texts.append(chunk["text"])
        offset = chunk["offset"]
        response = api.request(
            "runs", rid, "metrics", "progress", params={} if last_step is None else {"after_step": last_step}
        )
        series = json.loads(response.body) if response.code == 200 else {"steps": []}  # 404 until logged
        if series["steps"]:
            assert last_step is None or min(series["steps"]) > last_step  # only new points come back
            steps.extend(series["steps"])
            last_step = series["steps"][-1]
        if chunk["status"] == "Completed" and not chunk["text"]:
            break
        time.sleep(0.25)
    assert "".join(texts) == "".join(f"tick {i}\n" for i in range(12))  # every byte once, in order
    assert len(texts) > 2, "the log should arrive in several pieces while the run runs"
    assert {"Running", "Completed"} <= statuses
    assert steps == list(range(12))
    now = api.get("changes", params={"since": since})["now"]
    later = api.get("changes", params={"since": now})
    assert rid not in [r["run_id"] for r in later["runs"]]
    assert api.error("changes")[0] == 400


def test_cancel_stops_a_running_run(api: Api, store_runs: dict[str, Any]) -> None:
    handle = submit_slow(
        store_runs,
        "sleeper.py",
        """
        import os, time
        print("pid", os.getpid(), flush=True)
        time.sleep(300)
    """,
    )
    rid = handle.run_id
    log = api.poll(lambda: (lambda text: text if "pid" in text else None)(api.get("runs", rid, "log")["text"]))
    pid = int(log.split()[1])
    assert api.post("runs", rid, "cancel") == {"status": "Canceled"}
    assert api.get("runs", rid)["status"] == "Canceled"
    api.poll(lambda: not pid_alive(pid), timeout=10)
    assert api.post("runs", rid, "cancel") == {"status": "Canceled"}
    assert api.post("runs", store_runs["first"], "cancel") == {"status": "Completed"}
    assert api.error("runs", "nope", "cancel", method="POST")[0] == 404


def test_tensorboard_is_started_over_a_run_and_its_link_returned(api: Api, store_runs: dict[str, Any]) -> None:
    import importlib.util
    import urllib.request

    from conftest import need_service
    from launchbay.tboard import stop_all

    need_service(importlib.util.find_spec("tensorboard") is not None, "tensorboard (pip install tensorboard)")
    rid = store_runs["first"]
    try:
        url = api.post("runs", rid, "tensorboard")["url"]
        assert url.startswith("http://127.0.0.1:")
        assert api.post("runs", rid, "tensorboard")["url"] == url  # one server per run, reused
        with urllib.request.urlopen(url + "data/logdir", timeout=10) as response:
            assert response.status == 200
    finally:
        stop_all()
    assert api.error("runs", "nope", "tensorboard", method="POST")[0] == 404


def test_rerun_submits_the_same_snapshot_again(api: Api, store_runs: dict[str, Any]) -> None:
    first = store_runs["first"]
    original = api.get("runs", first)
    response = api.request("runs", first, "rerun", method="POST", body=json.dumps({"target": None}))
    new_id = json.loads(response.body)["run_id"]
    assert new_id != first
    assert launchbay.get_run(new_id, store=store_runs["store"]).wait(timeout=60) == "Completed"
    rerun = api.get("runs", new_id)
    assert rerun["snapshot"]["id"] == original["snapshot"]["id"]
    assert rerun["arguments"] == original["arguments"] and rerun["target"] == "local"
    assert rerun["tags"]["launchbay.rerun_of"] == first
    model = api.request("runs", new_id, "files", "outputs", "model.txt")
    assert model.body == b"weights 1\n"  # the first run's code, not the project's current one
    empty = api.request("runs", first, "rerun", method="POST", body=b"")
    assert json.loads(empty.body)["run_id"] not in (first, new_id)
    code, message = api.error("runs", first, "rerun", method="POST", body=json.dumps({"target": "gpu"}))
    assert code == 400 and "gpu" in message
    code, _ = api.error("runs", first, "rerun", method="POST", body="{not json")
    assert code == 400
    code, _ = api.error("runs", first, "rerun", method="POST", body=json.dumps({"target": 3}))
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


def test_run_details_list_the_data_a_run_read_with_its_version(api: Api, store_runs: dict[str, Any]) -> None:
    """The sidebar's run view shows each input's source, version, files, bytes and mode."""
    project: Path = store_runs["project"]
    data = project.parent / "server-data"
    data.mkdir(exist_ok=True)
    (data / "a.csv").write_text("x\n1\n")
    handle = launchbay.submit("fail.py", store=store_runs["store"], source_dir=project, inputs={"train": str(data)})
    handle.wait(timeout=60)
    run = api.get("runs", handle.run_id)
    [item] = run["inputs"]
    assert (item["name"], item["source"], item["files"], item["bytes"], item["mode"]) == (
        "train",
        str(data),
        1,
        4,
        "mount",
    )
    assert len(item["version"]) == 64 and run["outputs"] == []
