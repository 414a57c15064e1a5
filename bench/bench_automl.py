"""AutoML (issue 31): launchbay's AutoML (FLAML's search, each trial a launchbay run on the local target)
against FLAML run directly in one process and a default-settings RandomForest, on data that ships with
scikit-learn (breast_cancer, wine, digits: accuracy; diabetes: r2_score). Each gets the same 75/25 split;
the scores are on the 25 % test rows neither search saw; inside its 75 % each validates its trials by its own
default (FLAML: eval_method "auto", cross-validation for tables this small; launchbay: Azure ML v1's, 10 or 3
folds). Also: trials each ran in the budget, and the
per-trial overhead of a launchbay trial (its run's wall time less the fit and scoring time it logged).
Usage: python bench/bench_automl.py [--budget SECONDS] [--concurrent N] [--datasets a,b]."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

DATASETS = {"breast_cancer": "classification", "wine": "classification", "digits": "classification",
            "diabetes": "regression"}  # fmt: skip


def load(name: str):  # type: ignore[no-untyped-def]
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    task = DATASETS[name]
    strata = frame["target"] if task == "classification" else None
    return task, *train_test_split(frame, test_size=0.25, random_state=0, stratify=strata)


def score(task: str, truth, predicted) -> float:  # type: ignore[no-untyped-def]
    from sklearn.metrics import accuracy_score, r2_score

    return float(accuracy_score(truth, predicted) if task == "classification" else r2_score(truth, predicted))


def one(name: str, budget: float, concurrent: int, folder: Path) -> dict[str, float | int | str]:
    from flaml import AutoML
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    import launchbay

    task, train, test = load(name)
    X_train, y_train = train.drop(columns=["target"]), train["target"]
    X_test, y_test = test.drop(columns=["target"]), test["target"]
    metric = "accuracy" if task == "classification" else "r2_score"
    path = folder / f"{name}.csv"
    train.to_csv(path, index=False)

    started = time.perf_counter()
    handle = launchbay.automl(
        task=task,
        training_data=str(path),
        label_column_name="target",
        primary_metric=metric,
        _experiment_timeout_s=budget,
        max_concurrent_iterations=concurrent,
        experiment=name,
    )
    assert handle.wait(timeout=budget * 3 + 120) == "Completed", handle.record().error
    lb_wall = time.perf_counter() - started
    _, model = handle.get_output()
    trials = [t for t in handle.trials() if t["status"] == "Completed"]
    overheads = []
    for t in trials:
        fit = launchbay.get_run(t["run_id"]).get_metrics().get("fit_time_s")
        if isinstance(fit, (int, float)) and t["seconds"]:
            overheads.append(t["seconds"] - fit)

    flaml = AutoML()
    started = time.perf_counter()
    flaml.fit(X_train, y_train, task=task, time_budget=budget, metric="accuracy" if task == "classification" else "r2",
              seed=0, verbose=0, n_jobs=1)  # fmt: skip
    flaml_wall = time.perf_counter() - started
    flaml_trials = len(flaml.config_history)
    flaml_per_trial = flaml_wall / max(1, flaml_trials)

    forest = (RandomForestClassifier if task == "classification" else RandomForestRegressor)(random_state=0)
    forest.fit(X_train, y_train)
    return {
        "dataset": name,
        "metric": metric,
        "launchbay": score(task, y_test, model.predict(X_test)),
        "flaml": score(task, y_test, flaml.predict(X_test)),
        "forest": score(task, y_test, forest.predict(X_test)),
        "lb_trials": len(trials),
        "flaml_trials": flaml_trials,
        "lb_wall": lb_wall,
        "flaml_wall": flaml_wall,
        "overhead": statistics.median(overheads) if overheads else float("nan"),
        "lb_per_trial": statistics.median([t["seconds"] for t in trials]) if trials else float("nan"),
        "flaml_per_trial": flaml_per_trial,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=120, help="seconds each search gets (default 120)")
    parser.add_argument("--concurrent", type=int, default=2, help="launchbay trials at once (default 2)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated (default all four)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lb-bench-automl-"))
    os.chdir(folder)
    os.environ["LAUNCHBAY_STORE"] = str(folder / ".store")
    cpus = os.cpu_count()
    print(
        f"budget {args.budget:g} s each; {args.concurrent} launchbay trials at once; FLAML in one process; {cpus} CPUs"
    )
    print("| dataset | metric | launchbay | FLAML | forest | launchbay / FLAML | trials (lb / FLAML) "
          "| s a trial (lb / FLAML) | lb overhead a trial | wall s (lb / FLAML) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        r = one(name, args.budget, args.concurrent, folder)
        cells = [
            r["dataset"],
            r["metric"],
            f"{r['launchbay']:.4f}",
            f"{r['flaml']:.4f}",
            f"{r['forest']:.4f}",
            f"{float(r['launchbay']) / float(r['flaml']):.4f}",
            f"{r['lb_trials']} / {r['flaml_trials']}",
            f"{r['lb_per_trial']:.2f} / {r['flaml_per_trial']:.3f}",
            f"{r['overhead']:.2f} s",
            f"{r['lb_wall']:.0f} / {r['flaml_wall']:.0f}",
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
