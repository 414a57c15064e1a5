"""Automated ML: a table and a label column in, the best fitted pipeline out; every trial is a launchbay run.

Trial counts are small (``iterations``) so the tests stay quick on two cores; the search itself is FLAML's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import flaml  # noqa: E402, F401  (the test extra has it: a missing FLAML fails here, never skips)
import pandas as pd  # noqa: E402
import pytest

import launchbay
from conftest import SSH_ENV, need_service, ssh_settings, toml_table, wait_for, write
from launchbay.errors import ConfigError


def classification_csv(folder: Path, name: str = "train.csv") -> Path:
    """A table as users have them: text labels, a category, a date, a missing value, a free-text column."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 7, 20, 27, 30]]
    frame = frame.rename(columns=lambda c: str(c).replace(" ", "_"))
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame["site"] = [["north", "south", "east"][i % 3] for i in range(len(frame))]
    frame["seen"] = pd.date_range("2024-01-01", periods=len(frame), freq="D").astype(str)
    frame["note"] = [f"free text number {i}" for i in range(len(frame))]
    frame.loc[3, "mean_radius"] = None
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def regression_csv(folder: Path) -> Path:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    path = folder / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path


def raw_rows(path: Path, label: str, n: int = 5) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns=[label]).head(n)


def test_classification_end_to_end_every_trial_a_run_and_the_best_pipeline_predicts_raw_rows(
    project: Path, tmp_path: Path
) -> None:
    data = classification_csv(project)
    handle = launchbay.automl(
        task="classification",
        training_data=str(data),
        label_column_name="target",
        primary_metric="AUC_weighted",
        iterations=3,
        max_concurrent_iterations=2,
        experiment="cancer",
    )
    assert handle.wait() == "Completed", handle.record().error

    board = handle.leaderboard()
    assert list(board.columns[:3]) == ["run_id", "algorithm", "score"] and len(board) == 3
    scores = [s for s in board["score"] if s is not None]
    assert scores == sorted(scores, reverse=True)  # AUC: higher is better, best first
    for run_id, algorithm in zip(board["run_id"], board["algorithm"]):
        trial = launchbay.get_run(run_id)
        record = trial.record()
        assert record.parent_run_id == handle.run_id and record.status.value == "Completed"
        assert record.spec["params"]["algorithm"] == algorithm
        assert "AUC_weighted" in trial.get_metrics() and "accuracy" in trial.get_metrics()
        assert "outputs/model.pkl" in trial.get_file_names()

    best, model = handle.get_output()
    assert best.run_id == board["run_id"][0] == handle.best_run.run_id
    predicted = model.predict(raw_rows(data, "target"))
    assert set(predicted) <= {"malignant", "benign"} and len(predicted) == 5
    assert model.predict_proba(raw_rows(data, "target")).shape == (5, 2)

    featurization = json.loads(Path(best.download_file("outputs/featurization.json", tmp_path / "f.json")).read_text())
    kinds = {c["name"]: c["kind"] for c in featurization["columns"]}
    assert kinds["site"] == "categorical" and kinds["seen"] == "datetime" and kinds["note"] == "text"
    assert kinds["mean_radius"] == "numeric"

    registered = launchbay.get_model("automl-cancer")
    assert registered.run_id == best.run_id
    assert "train.csv (content" in registered.tags["data"] and registered.tags["algorithm"] == model.algorithm
    path = registered.download(tmp_path / "download")
    loaded = launchbay.automated.load_model(path)
    assert list(loaded.predict(raw_rows(data, "target"))) == list(predicted)

    again = best.rerun()  # the same snapshot, arguments and data: the same score
    assert again.wait() == "Completed"
    assert again.get_metrics()["AUC_weighted"] == best.get_metrics()["AUC_weighted"]


def test_show_json_has_the_leaderboard_best_first(project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    data = classification_csv(project)
    started = cli.json("automl", "--task", "classification", "--data", str(data), "--label", "target",
                       "--metric", "accuracy", "--timeout", "5m", "--iterations", "2", "--detach")  # fmt: skip
    handle = launchbay.get_automl(started["run_id"])
    assert handle.wait() == "Completed"
    shown = cli.json("automl", "show", started["run_id"])
    assert set(shown) >= {"run_id", "status", "task", "primary_metric", "best_run", "best_score", "leaderboard"}
    assert shown["status"] == "Completed" and shown["task"] == "classification"
    assert shown["primary_metric"] == "accuracy" and len(shown["leaderboard"]) == 2
    first = shown["leaderboard"][0]
    assert set(first) >= {"run_id", "algorithm", "score", "params"}
    assert shown["best_run"] == first["run_id"] and shown["best_score"] == first["score"]
    text = cli("automl", "show", started["run_id"], check=True).stdout
    assert f"best: {first['run_id']}" in text


def test_regression_on_the_ssh_target_predicts_raw_rows(project: Path, tmp_path: Path) -> None:
    need_service(all(SSH_ENV.values()), "The test sshd (LAUNCHBAY_TEST_SSH_*)")
    settings = ssh_settings(tmp_path / "remote", python=sys.executable)  # an interpreter with FLAML
    (project / "launchbay.toml").write_text(toml_table("box", settings))
    data = regression_csv(project)
    handle = launchbay.automl(
        task="regression",
        training_data=str(data),
        label_column_name="target",
        primary_metric="normalized_root_mean_squared_error",
        iterations=2,
        allowed_models=["lgbm", "RandomForest"],
        target="box",
    )
    try:
        assert handle.wait() == "Completed", handle.record().error
        board = handle.leaderboard()
        assert set(board["algorithm"]) <= {"lgbm", "rf"}
        errors = list(board["score"])
        assert errors == sorted(errors)  # an error: lower is better, best first
        best, model = handle.get_output()
        assert best.record().target_type == "ssh"
        predicted = model.predict(raw_rows(data, "target"))
        assert predicted.shape == (5,) and predicted.dtype.kind == "f"
    finally:
        from launchbay.targets.ssh import close_connections

        close_connections()


def test_the_azure_ml_v1_form_runs_on_launchbay(project: Path) -> None:
    data = classification_csv(project)
    write(
        project,
        "control.py",
        f"""
        import json
        import launchbay.compat.azureml; launchbay.compat.azureml.install()
        import pandas as pd
        from azureml.core import Dataset, Experiment, Workspace
        from azureml.train.automl import AutoMLConfig

        ws = Workspace.from_config()
        config = AutoMLConfig(
            task="classification",
            primary_metric="norm_macro_recall",
            training_data=Dataset.Tabular.from_delimited_files({str(data)!r}),
            label_column_name="target",
            experiment_timeout_minutes=5,
            iterations=2,
            blocked_models=["XGBoostClassifier"],
            compute_target="local",
        )
        run = Experiment(ws, "v1-automl").submit(config)
        run.wait_for_completion()
        best, fitted = run.get_output()
        rows = pd.read_csv({str(data)!r}).drop(columns=["target"]).head(3)
        print("RESULT " + json.dumps({{"best": best.id, "status": run.get_status(),
              "predicted": list(fitted.predict(rows)), "children": len(run.get_children())}}))
        """,
    )
    proc = subprocess.run([sys.executable, "control.py"], cwd=project, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["status"] == "Completed" and result["children"] == 2
    assert set(result["predicted"]) <= {"malignant", "benign"}
    algorithms = {
        t["algorithm"] for t in launchbay.get_automl(launchbay.get_run(result["best"]).record().parent_run_id).trials()
    }
    assert "xgboost" not in algorithms


BAD = [
    ("missing label", {"label_column_name": "diagnosis"}, "is not in the training data; its columns are"),
    ("one class", {"label_column_name": "one"}, "has one class"),
    ("metric for another task", {"primary_metric": "r2_score"}, "does not fit a classification task"),
    ("unknown metric", {"primary_metric": "AUC"}, "Unknown primary_metric 'AUC'"),
    ("forecast without time", {"task": "forecasting", "label_column_name": "y"}, "needs time_column_name"),
    ("unknown model", {"allowed_models": ["deep_forest"]}, "not a model for classification"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_a_bad_input_is_one_line_before_any_trial(project: Path, case) -> None:  # type: ignore[no-untyped-def]
    _, overrides, message = case
    write(project, "t.csv", "x,y,label,one\n1,2.0,a,k\n2,3.0,b,k\n3,1.0,a,k\n4,5.0,b,k\n")
    given = {"task": "classification", "training_data": "t.csv", "label_column_name": "label", **overrides}
    with pytest.raises(ConfigError, match=message) as caught:
        launchbay.automl(**given)
    assert "\n" not in str(caught.value)
    assert launchbay.runs() == []


@pytest.mark.parametrize("content", ["", "x,label\n"], ids=["empty file", "header only"])
def test_an_empty_file_is_one_line_before_any_trial(project: Path, content: str) -> None:
    write(project, "empty.csv", content)
    with pytest.raises(ConfigError, match="empty"):
        launchbay.automl(training_data="empty.csv", label_column_name="label")
    assert launchbay.runs() == []


def test_cancel_stops_every_trial(project: Path) -> None:
    data = classification_csv(project)
    handle = launchbay.automl(training_data=str(data), label_column_name="target", max_concurrent_iterations=2)
    wait_for(lambda: len([t for t in handle.state()["trials"] if t["run_id"]]) >= 1, timeout=60)
    handle.cancel()
    assert handle.wait(timeout=60) == "Canceled"
    for trial in handle.state()["trials"]:
        if trial["run_id"]:
            assert launchbay.get_run(trial["run_id"]).wait(timeout=30) in ("Canceled", "Completed", "Failed")
    unfinished = [
        r.run_id
        for r in launchbay.runs()
        if launchbay.get_run(r.run_id).status not in ("Canceled", "Completed", "Failed")
    ]
    assert unfinished == []


def test_the_timeout_ends_the_run_and_keeps_the_best_so_far(project: Path) -> None:
    data = classification_csv(project)
    handle = launchbay.automl(training_data=str(data), label_column_name="target", _experiment_timeout_s=45)
    assert handle.wait(timeout=120) == "Completed", handle.record().error
    state = handle.state()
    assert "timeout" in (state["stopped"] or "") and state["best_run"] is not None


def test_the_widget_shows_the_leaderboard_and_the_best_score_over_time() -> None:
    from launchbay.ipython.automl_widget import leaderboard_html, score_over_time

    trials = [
        {"run_id": "r1", "algorithm": "lgbm", "status": "Completed", "score": 0.91, "seconds": 2.0,
         "params": {"n_estimators": 4}, "ended": 2.0},
        {"run_id": "r0", "algorithm": "rf", "status": "Completed", "score": 0.88, "seconds": 1.0,
         "params": {"max_leaves": 4}, "ended": 1.0},
        {"run_id": "r2", "algorithm": "xgboost", "status": "Running", "score": None, "seconds": None,
         "params": {}, "ended": None},
    ]  # fmt: skip
    table = leaderboard_html(trials, "AUC_weighted")
    assert table.index("r1") < table.index("r0") < table.index("r2")
    assert "AUC_weighted" in table and "n_estimators=4" in table and "0.91" in table
    png = score_over_time(trials, "maximize", "AUC_weighted")
    assert png is not None and png[:4] == b"\x89PNG"
    assert score_over_time(trials[2:], "maximize", "AUC_weighted") is None


def trial_rows(handle) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Each trial in the order it was tried: what was tried and how it scored."""
    return [(t["algorithm"], t["params"], t["score"]) for t in sorted(handle.trials(), key=lambda t: t["index"])]


def test_the_same_data_seed_and_settings_give_the_same_trials_and_leaderboard_order(project: Path) -> None:
    data = classification_csv(project)
    settings = {"training_data": str(data), "label_column_name": "target", "iterations": 4, "seed": 7}
    first = launchbay.automl(**settings)
    assert first.wait() == "Completed", first.record().error
    second = launchbay.automl(**settings)
    assert second.wait() == "Completed", second.record().error
    assert trial_rows(first) == trial_rows(second) and len(trial_rows(first)) == 4
    assert list(first.leaderboard()["algorithm"]) == list(second.leaderboard()["algorithm"])


def test_experiment_exit_score_ends_the_run_at_the_first_trial_that_reaches_it(project: Path) -> None:
    data = classification_csv(project)
    handle = launchbay.automl(
        training_data=str(data), label_column_name="target", experiment_exit_score=0.5, iterations=8
    )
    assert handle.wait() == "Completed", handle.record().error
    state = handle.state()
    assert "experiment_exit_score 0.5" in state["stopped"]
    assert len(handle.trials()) == 1 and state["best_score"] >= 0.5  # one trial at a time: the first one did it
    assert launchbay.get_model(f"automl-{handle.record().experiment}").run_id == state["best_run"]


def test_a_forecast_is_validated_on_the_rows_that_come_last_and_predicts_raw_rows(project: Path) -> None:
    import numpy as np

    days = pd.date_range("2024-01-01", periods=240, freq="D")
    sales = 100 + 0.5 * np.arange(240) + 10 * np.sin(np.arange(240) * 2 * np.pi / 7)
    frame = pd.DataFrame({"day": days.astype(str), "promo": [i % 5 == 0 for i in range(240)], "sales": sales})
    frame.sample(frac=1, random_state=3).to_csv(project / "sales.csv", index=False)  # not in time order on disk
    handle = launchbay.automl(
        task="forecasting",
        training_data="sales.csv",
        label_column_name="sales",
        time_column_name="day",
        forecast_horizon=14,
        iterations=2,
        experiment="sales",
    )
    assert handle.wait() == "Completed", handle.record().error
    assert handle.config()["settings"]["primary_metric"] == "normalized_root_mean_squared_error"  # the default
    scores = [s for s in handle.leaderboard()["score"] if s is not None]
    assert scores == sorted(scores)  # normalized RMSE: lower is better, best first
    best, model = handle.get_output()
    assert "normalized_root_mean_squared_error" in best.get_metrics()
    future = pd.DataFrame({"day": pd.date_range("2024-08-28", periods=14, freq="D").astype(str), "promo": False})
    predicted = model.predict(future)
    assert len(predicted) == 14 and all(np.isfinite(predicted))


@pytest.mark.parametrize(
    ("rows", "given", "folds", "holdout"),
    [(500, {}, 10, None), (5_000, {}, 3, None), (25_000, {}, None, 0.1), (500, {"validation_size": 0.25}, None, 0.25),
     (500, {"n_cross_validations": 4}, 4, None)],
    ids=["small: 10 folds", "medium: 3 folds", "large: 10% holdout", "a holdout asked for", "folds asked for"],
)  # fmt: skip
def test_trials_are_scored_as_azure_ml_v1_chose_unless_told(rows: int, given: dict, folds, holdout) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from launchbay.automated.settings import check

    frame = pd.DataFrame({"x": np.arange(rows, dtype=float), "label": ["a", "b"] * (rows // 2)})
    asked = {"n_cross_validations": None, "validation_size": None, **given}
    settings = check(task="classification", frame=frame, label="label", primary_metric=None, timeout_s=60,
                     max_concurrent=1, iterations=None, allowed_models=None, blocked_models=None,
                     validation_frame=None, exit_score=None, time_column=None, forecast_horizon=None, seed=0,
                     **asked)  # fmt: skip
    assert settings.n_cross_validations == folds
    if holdout is not None:
        assert settings.validation_size == holdout
