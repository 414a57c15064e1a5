"""MLflow's side of the team-store ingest figure (``bench/bench_team_store.py``): ``log_batch`` into PostgreSQL.

Run with the interpreter of the venv made by ``setup.sh`` (plus ``psycopg[binary]``). ``--runs`` processes at
once, each logging ``--points`` points of one metric to its own run through ``MlflowClient.log_batch`` (1,000
metrics a call, MLflow's limit), into the same PostgreSQL server launchbay's team store uses, in a schema of
its own. Stdout: one JSON object with ``points_per_s`` (every process's points over the wall time of all).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time


def _log(uri: str, run_id: str, points: int, start_at: float) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    while time.time() < start_at:  # every process begins at once, connections made
        time.sleep(0.001)
    now = int(time.time() * 1000)
    for first in range(0, points, 1000):
        batch = [Metric("loss", i * 0.5, now, i) for i in range(first, min(first + 1000, points))]
        client.log_batch(run_id, metrics=batch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True, help="postgresql+psycopg://... (its own schema in options)")
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--points", type=int, default=20_000)
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=args.uri)  # creates MLflow's tables on first use
    experiment = client.create_experiment(f"ingest-{time.time():.0f}")
    run_ids = [client.create_run(experiment).info.run_id for _ in range(args.runs)]
    start_at = time.time() + 8.0  # spawned processes import MLflow first
    spawn = multiprocessing.get_context("spawn")  # a forked child would share MLflow's pooled connections
    procs = [spawn.Process(target=_log, args=(args.uri, r, args.points, start_at)) for r in run_ids]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    wall = time.time() - start_at
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    counts = [len(client.get_metric_history(r, "loss")) for r in run_ids]
    assert counts == [args.points] * args.runs, counts
    print(json.dumps({"points_per_s": args.runs * args.points / wall, "runs": args.runs, "points": args.points}))


if __name__ == "__main__":
    main()
