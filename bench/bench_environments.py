"""Environment and Docker target overhead: launchbay submit next to running the same thing by hand.

Rows, each the median of ``--repeats`` runs after one warm-up (the environment
is built before timing starts, so every launchbay row is a cache hit):

* ``python script.py`` with the environment's venv python, vs a local-target
  submit with that cached environment (Python API, and the ``launchbay`` CLI),
  and a submit with no environment (the same script minus ``import six``);
* ``docker run --rm IMAGE python3 script.py`` of the environment's image, vs a
  Docker-target submit with that cached environment (Python API).

"first line" is the time from the start of the command (or the submit call) to
the moment the script's first line runs (the script prints ``time.time()``);
"completion" is until the command returns (or ``wait()`` sees the run ended).
The Docker rows need a daemon and ``LAUNCHBAY_TEST_BASE_IMAGE``
(``scripts/services/start.sh docker``); without them they are skipped.

    python bench/bench_environments.py [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCRIPT = "import time\nprint('first', repr(time.time()), flush=True)\nimport six\nprint('done', six.__version__)\n"


def log(msg: str) -> None:
    print(f"[bench_environments] {msg}", file=sys.stderr, flush=True)


def first_line_ts(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("first "):
            return float(line.split()[1])
    raise RuntimeError(f"no first line in output: {text[-500:]!r}")


def by_hand(command: list[str], cwd: Path) -> tuple[float, float]:
    start = time.time()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    end = time.time()
    return first_line_ts(proc.stdout) - start, end - start


def with_api(submit: Callable[[], Any]) -> tuple[float, float, float]:
    """(first line, completion, time inside submit()) for one API submit."""
    start = time.time()
    handle = submit()
    submitted = time.time()
    status = handle.wait(poll_s=0.005)
    end = time.time()
    if status != "Completed":
        raise RuntimeError(f"run {handle.run_id} ended {status}: {handle.get_log()[-500:]}")
    return first_line_ts(handle.get_log()) - start, end - start, submitted - start


def with_cli(project: Path, target: str) -> tuple[float, float]:
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "launchbay", "submit", "-t", target, "--env", "six", "script.py"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    end = time.time()
    return first_line_ts(proc.stdout) - start, end - start


def median_of(fn: Callable[[], tuple[float, ...]], repeats: int) -> list[float]:
    fn()  # warm-up (page cache, interpreter, docker layers)
    samples = [fn() for _ in range(repeats)]
    return [statistics.median(col) * 1000 for col in zip(*samples, strict=True)]


def docker_ready(image: str) -> bool:
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.images.get(image)
        return True
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="launchbay-bench-env-"))
    project = tmp / "proj"
    project.mkdir()
    os.environ["LAUNCHBAY_STORE"] = str(tmp / "store")
    base = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE", "")
    use_docker = bool(base) and docker_ready(base)
    (project / "launchbay.toml").write_text(
        '[environments.six]\npip = ["six"]\n'
        + (f'\n[targets.box]\ntype = "docker"\nimage = "{base}"\n' if use_docker else "")
    )
    (project / "script.py").write_text(SCRIPT)
    (project / "plain.py").write_text(SCRIPT.replace("import six\n", "").replace(", six.__version__", ""))
    os.chdir(project)

    from launchbay.config import load_config
    from launchbay.environments.spec import resolve_environment
    from launchbay.environments.venv import ensure_venv
    from launchbay.models import RunSpec
    from launchbay.session import Session
    from launchbay.store import open_store

    session = Session(open_store(), load_config(project))
    log("building the environment once (not timed)")
    env = resolve_environment("six", session.config, project)
    assert env is not None
    venv = ensure_venv(session.store.root, env, log)
    rows: list[dict[str, Any]] = []

    def row(name: str, values: list[float], submit_ms: float | None = None) -> None:
        rows.append(
            {
                "case": name,
                "first_line_ms": round(values[0], 1),
                "completion_ms": round(values[1], 1),
                "submit_call_ms": None if submit_ms is None else round(submit_ms, 1),
            }
        )
        log(f"{name}: {values[0]:.0f} ms / {values[1]:.0f} ms")

    # the cache hit itself: resolve the name, hash, find the ready marker
    hit = []
    for _ in range(200):
        t0 = time.perf_counter()
        spec = resolve_environment("six", session.config, project)
        assert spec is not None
        ensure_venv(session.store.root, spec)
        hit.append((time.perf_counter() - t0) * 1000)
    cache_hit_ms = statistics.median(hit)

    row(
        "python script.py (the env's venv python)",
        median_of(lambda: by_hand([venv.python, "script.py"], project), args.repeats),
    )
    api = median_of(
        lambda: with_api(lambda: session.submit(RunSpec("script.py", environment="six"), project)), args.repeats
    )
    row("launchbay local submit, cached env (API)", api[:2], api[2])
    plain = median_of(lambda: with_api(lambda: session.submit(RunSpec("plain.py"), project)), args.repeats)
    row("launchbay local submit, no env (API; plain.py)", plain[:2], plain[2])
    row("launchbay submit CLI, local, cached env", median_of(lambda: with_cli(project, "local"), args.repeats))

    image_hit_ms = None
    if use_docker:
        import docker

        from launchbay.environments.image import ensure_image

        client = docker.from_env()
        docker_env = env.with_image(base)
        built = ensure_image(client, docker_env, session.store.root, "local daemon", log)
        hits = []
        for _ in range(50):
            t0 = time.perf_counter()
            ensure_image(client, docker_env, session.store.root, "local daemon")
            hits.append((time.perf_counter() - t0) * 1000)
        image_hit_ms = statistics.median(hits)
        mount = f"{project}:/w:ro"
        row(
            f"docker run --rm {built.tag} python3 script.py",
            median_of(
                lambda: by_hand(
                    [
                        "docker",
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "-v",
                        mount,
                        "-w",
                        "/w",
                        built.tag,
                        "python3",
                        "script.py",
                    ],
                    project,
                ),
                args.repeats,
            ),
        )
        dock = median_of(
            lambda: with_api(lambda: session.submit(RunSpec("script.py", target="box", environment="six"), project)),
            args.repeats,
        )
        row("launchbay docker submit, cached env (API)", dock[:2], dock[2])
        row("launchbay submit CLI, docker, cached env", median_of(lambda: with_cli(project, "box"), args.repeats))
    else:
        log("no Docker daemon or LAUNCHBAY_TEST_BASE_IMAGE: Docker rows skipped")

    os.chdir(tmp.parent)
    shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "repeats": args.repeats,
        "load_average": round(os.getloadavg()[0], 1),
        "rows": rows,
        "env_cache_hit_ms": round(cache_hit_ms, 2),
        "image_cache_hit_ms": None if image_hit_ms is None else round(image_hit_ms, 2),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':{width}} {'first line':>11} {'completion':>11} {'submit()':>9}")
    for r in rows:
        submit = "" if r["submit_call_ms"] is None else f"{r['submit_call_ms']:.0f} ms"
        print(f"{r['case']:{width}} {r['first_line_ms']:>8.0f} ms {r['completion_ms']:>8.0f} ms {submit:>9}")
    print(f"\nenvironment cache hit (resolve + hash + ready marker): {cache_hit_ms:.2f} ms (median of 200)")
    if image_hit_ms is not None:
        print(f"image cache hit (resolve done; one image lookup on the daemon): {image_hit_ms:.2f} ms (median of 50)")
    load = os.getloadavg()[0]
    print(f"median of {args.repeats} after a warm-up; {os.cpu_count()} CPUs, load average {load:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
