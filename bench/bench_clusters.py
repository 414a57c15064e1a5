"""Cluster targets: submit-to-first-log-line latency, launchbay next to the engine's own tool.

For each engine, the same one-line script (``print('first line')``) is submitted
``--repeats`` times and the clock runs from the submit call until that line is
readable where the submitter looks for it:

- Ray: launchbay's Ray target (line read from the local store) | ``ray job submit
  --no-wait`` (the CLI, a fresh process, as a user types it) then polling the job's
  log over the Jobs API | Ray's SDK in-process (``JobSubmissionClient.submit_job``
  then ``get_job_logs``), the floor without the CLI's start-up.
- Slurm: launchbay's Slurm target | plain ``sbatch`` of a script writing the line,
  polling its output file.

Needs the test services (``scripts/services/start.sh ray slurm`` and
``source $LAUNCHBAY_SERVICES_DIR/env.sh``). Progress goes to stderr; stdout has a
table (``--json``: one JSON object). Every poll sleeps ``--poll`` seconds.

    python bench/bench_clusters.py [--repeats 5] [--only ray|slurm] [--json]
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
import urllib.request
from collections.abc import Callable
from pathlib import Path

LINE = "first line"
SCRIPT = f"print({LINE!r}, flush=True)\n"


def log(msg: str) -> None:
    print(f"[bench_clusters] {msg}", file=sys.stderr, flush=True)


def poll(check: Callable[[], bool], interval: float, timeout: float = 120) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("the first log line did not arrive")
        time.sleep(interval)


def repeat(name: str, once: Callable[[], float], repeats: int) -> list[float]:
    times = []
    for i in range(repeats):
        times.append(once())
        log(f"{name} #{i + 1}: {times[-1]:.3f} s")
    return times


# -- Ray ------------------------------------------------------------------------------------------------
def ray_job_log(address: str, job_id: str) -> str:
    with urllib.request.urlopen(f"{address}/api/jobs/{job_id}/logs", timeout=10) as response:
        return str(json.loads(response.read())["logs"])


def ray_job_status(address: str, job_id: str) -> str:
    with urllib.request.urlopen(f"{address}/api/jobs/{job_id}", timeout=10) as response:
        return str(json.loads(response.read())["status"])


def wait_ray_job(address: str, job_id: str) -> None:
    poll(lambda: ray_job_status(address, job_id) in ("SUCCEEDED", "FAILED", "STOPPED"), 0.2)


def bench_ray(address: str, root: Path, scratch: Path, repeats: int, interval: float) -> dict[str, list[float]]:
    import launchbay

    (root / "launchbay.toml").write_text(f'[targets.ray]\ntype = "ray"\naddress = "{address}"\n')
    plain = scratch / "plain-ray"
    plain.mkdir()
    (plain / "hello.py").write_text(SCRIPT)
    ray_cli = str(Path(sys.executable).with_name("ray"))

    def via_launchbay() -> float:
        start = time.perf_counter()
        handle = launchbay.submit("hello.py", target="ray")
        poll(lambda: LINE in handle.get_log(), interval)
        elapsed = time.perf_counter() - start
        handle.wait()
        return elapsed

    stamp = int(time.time())
    counter = iter(range(1_000_000))

    def via_cli() -> float:
        job_id = f"bench-cli-{stamp}-{next(counter)}"
        start = time.perf_counter()
        subprocess.run(
            [
                ray_cli,
                "job",
                "submit",
                "--address",
                address,
                "--no-wait",
                "--submission-id",
                job_id,
                "--working-dir",
                str(plain),
                "--",
                "python",
                "hello.py",
            ],
            capture_output=True,
            check=True,
        )
        poll(lambda: LINE in ray_job_log(address, job_id), interval)
        elapsed = time.perf_counter() - start
        wait_ray_job(address, job_id)
        return elapsed

    from ray.job_submission import JobSubmissionClient  # imported once, outside the clock

    client = JobSubmissionClient(address)

    def via_sdk() -> float:
        start = time.perf_counter()
        job_id = client.submit_job(entrypoint="python hello.py", runtime_env={"working_dir": str(plain)})
        poll(lambda: LINE in client.get_job_logs(job_id), interval)
        elapsed = time.perf_counter() - start
        wait_ray_job(address, job_id)
        return elapsed

    return {
        "launchbay": repeat("ray launchbay", via_launchbay, repeats),
        "ray job submit (CLI)": repeat("ray cli", via_cli, repeats),
        "Ray SDK in-process": repeat("ray sdk", via_sdk, repeats),
    }


# -- Slurm ------------------------------------------------------------------------------------------------
def bench_slurm(root: Path, scratch: Path, repeats: int, interval: float) -> dict[str, list[float]]:
    import launchbay

    (root / "launchbay.toml").write_text(f'[targets.slurm]\ntype = "slurm"\npython = "{sys.executable}"\n')
    plain = scratch / "plain-sbatch"
    plain.mkdir()
    (plain / "job.sh").write_text(f"#!/bin/sh\n#SBATCH --job-name=bench-plain\necho '{LINE}'\n")

    def via_launchbay() -> float:
        start = time.perf_counter()
        handle = launchbay.submit("hello.py", target="slurm")
        poll(lambda: LINE in handle.get_log(), interval)
        elapsed = time.perf_counter() - start
        handle.wait()
        return elapsed

    counter = iter(range(1_000_000))

    def via_sbatch() -> float:
        out = plain / f"out-{next(counter)}.txt"
        start = time.perf_counter()
        subprocess.run(
            ["sbatch", "--parsable", f"--output={out}", str(plain / "job.sh")],
            cwd=plain,
            capture_output=True,
            check=True,
        )

        def seen() -> bool:
            try:
                return LINE in out.read_text()
            except FileNotFoundError:
                return False

        poll(seen, interval)
        return time.perf_counter() - start

    return {
        "launchbay": repeat("slurm launchbay", via_launchbay, repeats),
        "sbatch": repeat("slurm sbatch", via_sbatch, repeats),
    }


# -- report ---------------------------------------------------------------------------------------------
def table(results: dict[str, dict[str, list[float]]]) -> str:
    lines = [f"{'engine':7} {'how':24} {'median s':>9} {'min s':>7} {'max s':>7} {'vs launchbay':>13}"]
    for engine, rows in results.items():
        ours = statistics.median(rows["launchbay"])
        for how, times in rows.items():
            median = statistics.median(times)
            ratio = "" if how == "launchbay" else f"{ours / median:.2f}x"
            lines.append(f"{engine:7} {how:24} {median:9.3f} {min(times):7.3f} {max(times):7.3f} {ratio:>13}")
    lines.append("(vs launchbay: launchbay's median divided by that row's median; above 1 means launchbay is slower)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between two looks for the line")
    parser.add_argument("--only", choices=("ray", "slurm"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    address = os.environ.get("LAUNCHBAY_TEST_RAY_ADDRESS", "")
    engines = [args.only] if args.only else ["ray", "slurm"]
    if "ray" in engines and not address:
        log("LAUNCHBAY_TEST_RAY_ADDRESS is not set: start Ray (scripts/services/start.sh ray) and source env.sh")
        return 2
    if "slurm" in engines and not (os.environ.get("LAUNCHBAY_TEST_SLURM") and shutil.which("sbatch")):
        log("Slurm is not set up: scripts/services/start.sh slurm, then source env.sh")
        return 2
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-clusters-") as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        (root / "hello.py").write_text(SCRIPT)
        os.environ["LAUNCHBAY_STORE"] = str(Path(tmp) / "store")
        os.chdir(root)
        if "ray" in engines:
            results["ray"] = bench_ray(address, root, Path(tmp), args.repeats, args.poll)
        if "slurm" in engines:
            results["slurm"] = bench_slurm(root, Path(tmp), args.repeats, args.poll)
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"first_log_line_s": results, "load_average_1m": load, "cpus": os.cpu_count()}, indent=1))
    else:
        print(table(results))
        print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
