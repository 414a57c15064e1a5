"""Data inputs benchmark (issue 26): a many-file dataset to the SSH target against ``rsync -a`` of the same
folder to the same host, measured in the same run; a second submit of it unchanged; one changed 1 MB file;
and the submit overhead of the dataset on the local and Docker targets (no copy).

Needs the test sshd (and Docker for the Docker row): ``source /tmp/launchbay-services/env.sh``. Everything
goes to a fresh temp dir. Progress goes to stderr; stdout carries exactly one JSON object.

    python bench/bench_data.py [--files 20000] [--mb 2000]     # the issue's 2 GB, 20,000 files
    python bench/bench_data.py --files 2000 --mb 200            # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def log(msg: str) -> None:
    print(f"[bench_data] {msg}", file=sys.stderr, flush=True)


SSH = {k: os.environ.get(f"LAUNCHBAY_TEST_SSH_{k}", "") for k in ("HOST", "PORT", "USER", "KEY", "KNOWN_HOSTS")}
READ = (
    "import os\npath = os.environ.get('LAUNCHBAY_INPUT_DATA', '.')\n"
    "print('files', sum(len(f) for _, _, f in os.walk(path)))\n"
)


def make_dataset(folder: Path, files: int, total_mb: int) -> None:
    size = max(1, total_mb * 1_000_000 // files)
    block = os.urandom(1 << 20)
    past = time.time() - 3600
    for i in range(files):
        sub = folder / f"d{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"f{i:05d}.bin"
        with open(path, "wb") as fh:
            fh.write(i.to_bytes(8, "little"))
            left = size - 8
            while left > 0:
                fh.write(block[: min(left, len(block))])
                left -= len(block)
        os.utime(path, (past, past))


def ssh_argv() -> list[str]:
    return [
        "ssh",
        "-p",
        SSH["PORT"] or "22",
        "-i",
        SSH["KEY"],
        "-o",
        f"UserKnownHostsFile={SSH['KNOWN_HOSTS']}",
        "-o",
        "BatchMode=yes",
    ]


def rsync_seconds(source: Path, dest: str) -> float:
    ssh = " ".join(shlex.quote(a) for a in ssh_argv())
    start = time.perf_counter()
    subprocess.run(
        ["rsync", "-a", "-e", ssh, f"{source}/", f"{SSH['USER']}@{SSH['HOST']}:{dest}/"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def submit(launchbay: Any, target: str, inputs: dict[str, str] | None) -> tuple[float, Any]:
    start = time.perf_counter()
    handle = launchbay.submit("read.py", target=target, inputs=inputs or {}, system_metrics_interval_s=0)
    took = time.perf_counter() - start
    status = handle.wait(timeout=1800)
    assert status == "Completed", handle.get_log()
    return took, handle


def sent(handle: Any) -> int:
    return sum(int(i["bytes_sent"]) for i in handle.get_details()["inputs"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--mb", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"files": args.files, "mb": args.mb}
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        root = Path(tmp)
        data, proj = root / "data", root / "proj"
        proj.mkdir()
        (proj / "read.py").write_text(READ)
        log(f"making {args.files} files, {args.mb} MB")
        make_dataset(data, args.files, args.mb)
        targets = []
        if SSH["HOST"]:
            targets.append(
                "[targets.gpu-box]\n"
                f'type = "ssh"\nhost = "{SSH["HOST"]}"\nport = {SSH["PORT"] or 22}\nuser = "{SSH["USER"]}"\n'
                f'identity_file = "{SSH["KEY"]}"\nknown_hosts = "{SSH["KNOWN_HOSTS"]}"\n'
                f'workdir = "{root / "remote"}"\ndata_cache = "{root / "host-cache"}"\n'
            )
        image = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE")
        if image and shutil.which("docker"):
            targets.append(f'[targets.box]\ntype = "docker"\nimage = "{image}"\n')
        (proj / "launchbay.toml").write_text("\n".join(targets))
        os.environ["LAUNCHBAY_STORE"] = str(root / "store")
        os.chdir(proj)
        import launchbay
        from launchbay.data.hashing import hash_source

        started = time.perf_counter()
        hash_source(root / "store", data, "data")
        result["first_hash_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        hash_source(root / "store", data, "data")
        result["recheck_unchanged_s"] = round(time.perf_counter() - started, 3)
        log(f"hash: first {result['first_hash_s']} s, unchanged re-check {result['recheck_unchanged_s']} s")

        for name in ("local", *(["box"] if image and shutil.which("docker") else [])):
            bare = min(submit(launchbay, name, None)[0] for _ in range(args.repeats))
            with_data = min(submit(launchbay, name, {"data": str(data)})[0] for _ in range(args.repeats))
            result[f"{name}_submit_s"] = {"without": round(bare, 3), "with": round(with_data, 3)}
            log(f"{name}: submit {bare:.3f} s without the data, {with_data:.3f} s with it")

        if SSH["HOST"]:
            rsync = rsync_seconds(data, str(root / "rsync-copy"))
            bare = min(submit(launchbay, "gpu-box", None)[0] for _ in range(args.repeats))
            first_s, first = submit(launchbay, "gpu-box", {"data": str(data)})
            second_s, second = submit(launchbay, "gpu-box", {"data": str(data)})
            changed = data / "d07" / "f00007.bin"
            changed.write_bytes(os.urandom(1_000_000))
            os.utime(changed, (time.time() - 60, time.time() - 60))
            third_s, third = submit(launchbay, "gpu-box", {"data": str(data)})
            result["ssh"] = {
                "rsync_s": round(rsync, 3),
                "first_submit_s": round(first_s, 3),
                "first_vs_rsync_speed": round(rsync / first_s, 3),
                "first_bytes_sent": sent(first),
                "bare_submit_s": round(bare, 3),
                "unchanged_submit_s": round(second_s, 3),
                "unchanged_bytes_sent": sent(second),
                "one_changed_bytes_sent": sent(third),
                "one_changed_submit_s": round(third_s, 3),
            }
            log(json.dumps(result["ssh"]))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
