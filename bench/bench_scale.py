"""A store of 100,000 runs, side by side with MLflow's ``search_runs`` (issue 18: scale).

Run: ``bash bench/run_scale.sh`` (everything), or ``python bench/bench_scale.py`` alone.
The store is built once by ``scale_store.py`` (about 15 minutes on 2 cores) and cached
under /tmp; MLflow's is built by ``mlflow_side/mlflow_scale.py`` in MLflow's own venv.
Figures: ``launchbay runs --limit 50`` as a whole process vs ``python -c pass``; filtering
by a param and a metric in process; the sidebar's runs page over HTTP from a real Jupyter
server with launchbay's server extension; opening the store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomllib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scale_store  # noqa: E402
from table import ms, row  # noqa: E402

PY = sys.executable
FILTER = {"param": ("lr", 0.1), "metric_below": ("loss", 0.2)}


def entry_point() -> str:
    """The ``launchbay`` console script as ``python -c`` code (what the installed script runs)."""
    scripts = tomllib.loads((HERE.parent / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["launchbay"].split(":")
    return f"import sys; from {module} import {func}; sys.exit({func}())"


def best_process(argv: list[str], env: dict[str, str], repeats: int = 7) -> float:
    """The median wall time of a whole process (its output read and thrown away)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cli_runs(store: Path) -> dict[str, float]:
    env = dict(os.environ, LAUNCHBAY_STORE=str(store))
    subprocess.run([PY, "-c", entry_point(), "runs", "--limit", "50"], env=env, check=True, stdout=subprocess.DEVNULL)
    return {
        "python_pass_s": best_process([PY, "-c", "pass"], env),
        "cli_runs_s": best_process([PY, "-c", entry_point(), "runs", "--limit", "50"], env),
        "cli_import_s": best_process([PY, "-c", "import launchbay.cli"], env),
    }


def in_process(store: Path) -> dict[str, Any]:
    from launchbay.store import open_store

    opens = []
    for _ in range(21):
        t = time.perf_counter()
        opened = open_store(store)
        opened.db  # noqa: B018  (the connection is made on first use)
        opens.append(time.perf_counter() - t)
        opened.close()
    db = open_store(store)
    out: dict[str, Any] = {"open_s": statistics.median(opens)}
    for label, limit in (("page", 100), ("all", None)):
        times = []
        for _ in range(7):
            t = time.perf_counter()
            found = db.list_runs(**FILTER, limit=limit)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t)
        assert found and all(r.params["lr"] == 0.1 for r in found)
        out[f"filter_{label}_s"], out[f"filter_{label}_found"] = statistics.median(times), len(found)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        db.list_runs(limit=50)
        times.append(time.perf_counter() - t)
    out["list_page_s"] = statistics.median(times)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Jupyter:
    """A running ``jupyter server`` with launchbay's extension: its API base URL and token."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def get(self, path: str) -> Any:
        """One authenticated GET of ``/launchbay/api/<path>``, its JSON decoded."""
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())


@contextlib.contextmanager
def jupyter_server(store: Path, work: Path) -> Iterator[Jupyter]:
    """A real ``jupyter server`` with the launchbay extension on ``store``, a token, ready to answer."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        LAUNCHBAY_STORE=str(store),
        JUPYTER_CONFIG_DIR=str(work / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(work / "jupyter-runtime"),
    )
    log = open(work / "jupyter.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            f"--IdentityProvider.token={token}",
            "--ServerApp.ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.jpserver_extensions={'launchbay': True}",
            f"--ServerApp.root_dir={work}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Jupyter(f"http://127.0.0.1:{port}/launchbay/api/", token)
    try:
        deadline = time.time() + 90
        while True:
            try:
                server.get("targets")
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError((work / "jupyter.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def http_page(store: Path, work: Path) -> dict[str, float]:
    """The sidebar's first page (and its experiments list) from a real server, with the token."""
    with jupyter_server(store, work) as server:
        page = "runs?limit=50&offset=0"
        first = server.get(page)  # opens the store
        assert len(first["runs"]) == 50 and first["total"] >= 50, first.get("total")
        runs, experiments = [], []
        for _ in range(9):
            time.sleep(1.05)  # as the sidebar polls: each request also catches up unfinished runs
            t = time.perf_counter()
            server.get(page)
            runs.append(time.perf_counter() - t)
            t = time.perf_counter()
            server.get("experiments")
            experiments.append(time.perf_counter() - t)
        return {"http_runs_s": statistics.median(runs), "http_experiments_s": statistics.median(experiments)}


def mlflow_side(runs: int, timeout: float) -> dict[str, Any]:
    venv = Path(os.environ.get("MLFLOW_BENCH_VENV", HERE / ".venv-mlflow"))
    if not (venv / "bin" / "python").exists():
        print("(MLflow venv missing: run bench/mlflow_side/setup.sh)", file=sys.stderr)
        return {}
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            str(HERE / "mlflow_side" / "mlflow_scale.py"),
            "--runs",
            str(runs),
            "--timeout",
            str(timeout),
        ],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=1_000)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--mlflow-timeout", type=float, default=600, help="seconds each MLflow search may take")
    args = parser.parse_args()
    store = scale_store.ensure(args.runs, args.points)
    ours: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, step in (
            ("in process", lambda: in_process(store)),
            ("launchbay runs", lambda: cli_runs(store)),
            ("sidebar over HTTP", lambda: http_page(store, Path(tmp))),
        ):
            print(f"... {name}", file=sys.stderr, flush=True)
            ours.update(step())
    theirs = {} if args.no_mlflow else mlflow_side(args.runs, args.mlflow_timeout)
    print(json.dumps({"launchbay": ours, "mlflow": theirs}), file=sys.stderr)

    n = f"{args.runs // 1000}k"
    bare = ours["python_pass_s"]
    target = 2 * bare + 0.060
    row(
        f"`launchbay runs --limit 50`, {n} runs",
        "<= 2x bare + 60 ms",
        ms(ours["cli_runs_s"]),
        f"python -c pass {ms(bare)}",
        ours["cli_runs_s"] / bare,
        ours["cli_runs_s"] <= target,
    )
    row("  of which `import launchbay.cli`", "", ms(ours["cli_import_s"] - bare), "(over python -c pass)")
    found = f"{ours['filter_page_found']} runs"
    mf_runs = theirs.get("runs", 0)
    mf = f"{mf_runs // 1000}k" if mf_runs else ""

    def search(key: str) -> tuple[str, float | None]:
        value = theirs.get(key)
        if value is None:
            return ("not run" if not theirs else f"> {args.mlflow_timeout:.0f} s ({mf})"), None
        return f"search_runs {ms(value)} ({mf})", value

    text, theirs_s = search("search_filter_page_s")
    row(
        f"filter param + metric, first {found}",
        "<= 30 ms",
        ms(ours["filter_page_s"]),
        text,
        theirs_s / ours["filter_page_s"] if theirs_s else None,
        ours["filter_page_s"] <= 0.030,
    )
    text, theirs_s = search("search_filter_all_s")
    row(
        f"  every match ({ours['filter_all_found']:,} runs)",
        "",
        ms(ours["filter_all_s"]),
        text,
        theirs_s / ours["filter_all_s"] if theirs_s else None,
    )
    text, theirs_s = search("search_page_s")
    row(
        "first 50 runs in process",
        "",
        ms(ours["list_page_s"]),
        text,
        theirs_s / ours["list_page_s"] if theirs_s else None,
    )
    row(
        "sidebar runs page over HTTP (50 runs)",
        "<= 100 ms",
        ms(ours["http_runs_s"]),
        "",
        None,
        ours["http_runs_s"] <= 0.100,
    )
    row("  sidebar experiments list over HTTP", "", ms(ours["http_experiments_s"]))
    row("open the store", "<= 20 ms", ms(ours["open_s"]), "", None, ours["open_s"] <= 0.020)
    if theirs.get("api_runs_per_s"):
        row("  (MLflow API build rate)", "", "", f"{theirs['api_runs_per_s']:,.0f} runs/s")


if __name__ == "__main__":
    main()
