"""Record an AutoML run and start its controller: one snapshot of the trial files, every trial runs on it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models import RunSpec
from .names import CONFIG_FILE, TRIAL_SCRIPT

if TYPE_CHECKING:
    from ..session import Session
    from .handle import AutoMLHandle
    from .settings import AutoMLSettings


def data_label(resolved: Any) -> str:
    """How the model card names the data: the dataset's version, else the file and its content hash."""
    if resolved.dataset:
        return f"dataset {resolved.dataset} version {resolved.dataset_version}"
    return f"{Path(resolved.location).name} (content {str(resolved.version)[:19]})"


def submit_automl(
    session: Session,
    root: Path,
    settings: AutoMLSettings,
    experiment: str,
    model_name: str,
    inputs: dict[str, str],
    train: Any,
    target: str | None,
    environment: str | None,
) -> AutoMLHandle:
    from ..config import user_name
    from ..gitinfo import git_properties
    from ..snapshot import take_snapshot
    from ..snapshot_budget import Budget
    from .controller import start_controller
    from .handle import AutoMLHandle

    child_target = session.default_target(target)
    session.check(RunSpec(script=TRIAL_SCRIPT, target=child_target, environment=environment))  # target: one line
    budget = Budget.from_config(session.config.snapshot)
    with tempfile.TemporaryDirectory(prefix="launchbay-automl-") as folder:
        snapshot = take_snapshot(
            session.store,
            Path(folder),
            max_bytes=budget.max_bytes,
            max_files=budget.max_files,
            extra_files=trial_files(settings.trial_settings()),
        )
    data = {
        "label": data_label(train),
        "location": str(train.location),
        "source": train.source,
        "version": str(train.version),
        "dataset": train.dataset,
        "dataset_version": train.dataset_version,
    }
    imbalance = settings.imbalance()
    tags = {"launchbay.type": "automl", "launchbay.automl.task": settings.task}
    if imbalance:
        tags["launchbay.automl.imbalance"] = imbalance
    spec = RunSpec(
        script=TRIAL_SCRIPT,
        target="automl",
        experiment=experiment,
        name=f"automl {settings.task} {settings.label}",
        tags=tags,
        params={
            "task": settings.task,
            "label_column_name": settings.label,
            "primary_metric": settings.primary_metric,
            "experiment_timeout_s": settings.timeout_s,
            "max_concurrent_iterations": settings.max_concurrent,
            "iterations": settings.iterations,
            "models": ",".join(settings.models),
            "validation": _validation(settings, "valid" in inputs),
            "data": data["label"],
            "featurization": json.dumps({c: k for c, k in settings.kinds.items()}),
        },
    )
    record = session.store.create_run(
        spec,
        target_type="automl",
        snapshot_id=snapshot.id,
        properties={**git_properties(root), "launchbay.source_dir": str(root)},
        target_state={"target_settings": {"type": "automl"}, "child_target": child_target},
        created_by=user_name(session.config),
    )
    try:
        config = {
            "settings": settings.to_json(),
            "target": child_target,
            "environment": environment,
            "inputs": inputs,
            "data": data,
            "model_name": model_name,
            "imbalance": imbalance,
        }
        (record.run_dir / CONFIG_FILE).write_text(json.dumps(config, indent=1))
        start_controller(session.store.uri, record)
    except BaseException:
        session.store.delete_run(record.run_id)
        raise
    return AutoMLHandle(record.run_id, session)


def _validation(settings: AutoMLSettings, has_valid: bool) -> str:
    if has_valid:
        return "validation_data"
    if settings.task == "forecasting":
        return f"last {settings.forecast_horizon} rows in time x {settings.n_cross_validations or 1}"
    if settings.n_cross_validations:
        return f"{settings.n_cross_validations}-fold cross-validation"
    return f"holdout {settings.validation_size:g}"


def trial_files(trial_settings: dict[str, Any]) -> dict[str, str | bytes]:
    """What every trial's snapshot holds: the trial script, its settings, copies of featurize and metrics."""
    here = Path(__file__).parent
    return {
        "automl_trial.py": (here / "trial.py").read_bytes(),
        "automl_featurize.py": (here / "featurize.py").read_bytes(),
        "automl_metrics.py": (here / "metrics.py").read_bytes(),
        "automl_settings.json": json.dumps(trial_settings, indent=1),
    }
