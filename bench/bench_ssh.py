"""SSH target benchmark: bytes sent per submit, and submit-to-first-log-line latency.

Needs the test sshd (``scripts/services/start.sh sshd``, then source its env.sh).
Everything goes to a fresh temp dir (project, store and remote workdir). Progress
goes to stderr; stdout carries exactly one JSON object.

    python bench/bench_ssh.py [--files 200] [--file-kb 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def log(msg: str) -> None:
    print(f"[bench_ssh] {msg}", file=sys.stderr, flush=True)


def write_project(root: Path, workdir: Path, files: int, file_kb: int) -> None:
    env = {k: os.environ[f"LAUNCHBAY_TEST_SSH_{k}"] for k in ("HOST", "PORT", "USER", "KEY", "KNOWN_HOSTS")}
    (root / "launchbay.toml").write_text(
        "[targets.gpu-box]\n"
        f'type = "ssh"\nhost = "{env["HOST"]}"\nport = {env["PORT"]}\nuser = "{env["USER"]}"\n'
        f'identity_file = "{env["KEY"]}"\nknown_hosts = "{env["KNOWN_HOSTS"]}"\nworkdir = "{workdir}"\n'
    )
    data = root / "data"
    data.mkdir()
    for i in range(files):
        (data / f"part{i:04d}.bin").write_bytes(os.urandom(file_kb * 1024))
    (root / "hello.py").write_text("print('first line', flush=True)\n")


def first_line_latency(launchbay: object, repeats: int) -> list[float]:
    """Seconds from the submit call until the run's first log line is readable locally."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        handle = launchbay.submit("hello.py", target="gpu-box")  # type: ignore[attr-defined]
        while "first line" not in handle.get_log():
            time.sleep(0.01)
        out.append(time.perf_counter() - start)
        handle.wait()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-kb", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if not os.environ.get("LAUNCHBAY_TEST_SSH_HOST"):
        log("LAUNCHBAY_TEST_SSH_* not set: start the sshd (scripts/services/start.sh sshd) and source env.sh")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        root, workdir = Path(tmp) / "proj", Path(tmp) / "remote"
        root.mkdir()
        write_project(root, workdir, args.files, args.file_kb)
        os.environ["LAUNCHBAY_STORE"] = str(Path(tmp) / "store")
        os.chdir(root)
        import launchbay

        log(f"first submit: {args.files} files of {args.file_kb} KiB")
        t0 = time.perf_counter()
        first = launchbay.submit("hello.py", target="gpu-box")
        first_submit_s = time.perf_counter() - t0
        first.wait()
        (root / "data" / "part0007.bin").write_bytes(os.urandom(args.file_kb * 1024))
        log("second submit: one file changed")
        t0 = time.perf_counter()
        second = launchbay.submit("hello.py", target="gpu-box")
        second_submit_s = time.perf_counter() - t0
        second.wait()
        up1, up2 = first.record().target_state["upload"], second.record().target_state["upload"]
        log(f"latency: {args.repeats} submits of a one-line script (warm connection)")
        warm = first_line_latency(launchbay, args.repeats)
        log("latency: a fresh process per submit (cold connection)")
        cold = []
        code = (
            "import time, launchbay; t = time.perf_counter(); h = launchbay.submit('hello.py', target='gpu-box')\n"
            "while 'first line' not in h.get_log(): time.sleep(0.01)\n"
            "print(time.perf_counter() - t); h.wait()"
        )
        for _ in range(max(1, args.repeats // 2)):
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            cold.append(float(done.stdout.strip()))
    result = {
        "snapshot": {"files": args.files + 2, "bytes": args.files * args.file_kb * 1024},
        "first_submit": {**up1, "submit_call_s": round(first_submit_s, 3)},
        "second_submit_one_file_changed": {**up2, "submit_call_s": round(second_submit_s, 3)},
        "first_log_line_s": {
            "warm_median": round(statistics.median(warm), 3),
            "warm_all": [round(x, 3) for x in warm],
            "cold_median": round(statistics.median(cold), 3),
            "cold_all": [round(x, 3) for x in cold],
        },
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
