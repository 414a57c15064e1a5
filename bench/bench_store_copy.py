"""``launchbay store copy``: an embedded store of N synthetic runs into the team store, runs/s.

    source /tmp/launchbay-services/env.sh    # PostgreSQL and the S3 emulator of scripts/services/start.sh
    .venv/bin/python bench/bench_store_copy.py [N] [--to folder|team]

Each run: 20 points of one series, 3 params, 2 tags, one small output file and a log, Completed;
every run shares one snapshot (20 files). ``--to team`` (the default): PostgreSQL (a fresh schema,
dropped afterwards) with blobs in the S3 emulator (a fresh prefix); ``--to folder``: another embedded
store, for a machine without the services. The copy is timed as ``copy_store`` runs it (the CLI adds
only its start-up); then a second copy, which skips every run, is timed too. The synthetic runs'
points are in the index (a real run's sealed points are read out of its run folder: a little more).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunStore, Store
from launchbay.store.copy import copy_store

PG = os.environ.get("LAUNCHBAY_TEST_PG", "")
S3 = {k: os.environ.get(f"LAUNCHBAY_TEST_S3_{k}", "") for k in ("ENDPOINT", "BUCKET", "KEY_ID", "SECRET")}


def build(root: Path, runs: int) -> RunStore:
    store = RunStore(root)
    source = root.parent / "project"
    source.mkdir()
    entries = []
    for i in range(20):
        path = source / f"mod{i}.py"
        path.write_text(f"VALUE = {i}\n" * 50)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        store.blobs.put_file(path, digest)
        entries.append({"path": path.name, "sha256": digest, "size": path.stat().st_size, "mode": 0o644})
    from launchbay.store.manifests import manifest_bytes

    snapshot_id = store.blobs.put_bytes(manifest_bytes(entries))
    store.add_snapshot(snapshot_id, len(entries), sum(e["size"] for e in entries), str(source))
    started = time.perf_counter()
    for first in range(0, runs, 200):
        made = []
        for i in range(first, min(first + 200, runs)):
            spec = RunSpec(
                script="train.py",
                experiment=f"exp{i % 10}",
                params={"lr": 0.001 * (i % 7), "layers": i % 5, "opt": "adam"},
                tags={"team": "a", "batch": str(first)},
            )
            record = store.create_run(spec, target_type="local", snapshot_id=snapshot_id, properties={})
            outputs = record.run_dir / "files" / "outputs"
            outputs.mkdir(parents=True)
            (outputs / "result.txt").write_text(f"run {i}: accuracy {0.5 + i / (2 * runs):.4f}\n")
            (record.run_dir / "files" / "user_logs").mkdir()
            (record.run_dir / "files" / "user_logs" / "std_log.txt").write_text(f"epoch 1 of run {i}\n")
            made.append(record)
        with store.batch() as batch:
            for record in made:
                run = batch.run(record.pk)
                run.transition(RunStatus.RUNNING, started=record.created)
                run.append_points("loss", [(None, 1.0 / (s + 1), s, record.created + s) for s in range(20)])
                run.transition(RunStatus.COMPLETED, ended=record.created + 20)
        print(f"  built {first + len(made):,}/{runs:,} runs", file=sys.stderr, end="\r")
    print(f"built {runs:,} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return store


def team(base: Path) -> tuple[Store, str]:
    import psycopg

    from launchbay.store.postgres import PostgresStore
    from launchbay.store.remote import S3Blobs

    if not (PG and all(S3.values())):
        sys.exit("--to team needs LAUNCHBAY_TEST_PG and LAUNCHBAY_TEST_S3_*: source /tmp/launchbay-services/env.sh")
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    settings = {"endpoint": S3["ENDPOINT"], "access_key_id": S3["KEY_ID"], "secret_access_key": S3["SECRET"]}
    settings["region"] = "us-east-1"
    blobs = S3Blobs(f"s3://{S3['BUCKET']}/{schema}", base / "team" / "cache" / "blobs", settings)
    url = f"{PG}?options={quote(f'-csearch_path={schema}')}"
    return PostgresStore(url, cache_dir=base / "team", blobs=blobs), schema


def progress(done: int, total: int) -> None:
    print(f"  copied {done:,}/{total:,} runs", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=10_000, help="how many synthetic runs")
    parser.add_argument("--to", choices=("team", "folder"), default="team", help="PostgreSQL + S3, or a folder")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-copy-"))
    schema = None
    try:
        source = build(base / "source", args.runs)
        dest, schema = team(base) if args.to == "team" else (RunStore(base / "dest"), None)
        with source, dest:
            started = time.perf_counter()
            report = copy_store(source, dest, progress)
            seconds = time.perf_counter() - started
            again = time.perf_counter()
            second = copy_store(source, dest)
            again_s = time.perf_counter() - again
        assert report.copied == args.runs and not report.problems, report.to_dict()
        assert second.skipped == args.runs and second.copied == 0
        where = "PostgreSQL + S3 emulator" if args.to == "team" else "an embedded store"
        print(f"store copy, {args.runs:,} runs into {where}: {seconds:.1f} s, {args.runs / seconds:,.0f} runs/s")
        print(f"  blobs stored: {report.blobs:,}; the second copy (skips every run): {again_s:.2f} s")
        print(f"  load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if schema:
            import psycopg

            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
