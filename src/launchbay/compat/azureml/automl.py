"""``azureml.train.automl``: AutoMLConfig over launchbay's AutoML (launchbay/automl/).

``experiment.submit(AutoMLConfig(task=..., primary_metric=..., training_data=..., label_column_name=...,
experiment_timeout_minutes=..., compute_target=...))`` starts a launchbay AutoML run (a detached controller,
each trial a child run on the compute target) and returns an :class:`AutoMLRun`; ``run.get_output()`` is
(best run, fitted pipeline). v1's metric names are launchbay's; v1's model names (LightGBM,
RandomForest, ...) map to FLAML's. ``training_data`` is a ``Dataset.Tabular.from_delimited_files(path)``,
a dataset, or a file path; settings v1 had and launchbay has not (featurization configs, ONNX, model
explanations) are one clear line rather than silently ignored.
"""

from __future__ import annotations

from typing import Any

from .run import Run
from .unsupported import module_getattr, not_supported

_IGNORED = {"debug_log", "verbosity", "enable_early_stopping", "path", "model_explainability", "enable_stack_ensemble",
            "enable_voting_ensemble", "iteration_timeout_minutes", "max_cores_per_iteration", "enable_dnn",
            "_experiment_timeout_s"}  # fmt: skip


class ForecastingParameters:
    """v1's forecasting settings: the time column and how far ahead."""

    def __init__(self, time_column_name: str | None = None, forecast_horizon: int | str = 1, **kwargs: Any) -> None:
        if forecast_horizon == "auto":
            forecast_horizon = 1
        self.time_column_name, self.forecast_horizon = time_column_name, int(forecast_horizon)


class AutoMLConfig:
    """v1's AutoML settings; ``experiment.submit(config)`` runs them on launchbay."""

    def __init__(
        self,
        task: str,
        primary_metric: str | None = None,
        *,
        training_data: Any = None,
        label_column_name: str | None = None,
        validation_data: Any = None,
        n_cross_validations: int | None = None,
        experiment_timeout_minutes: float | None = None,
        experiment_exit_score: float | None = None,
        iterations: int | None = None,
        max_concurrent_iterations: int = 1,
        allowed_models: list[str] | None = None,
        blocked_models: list[str] | None = None,
        compute_target: Any = None,
        featurization: Any = "auto",
        forecasting_parameters: ForecastingParameters | None = None,
        time_column_name: str | None = None,
        forecast_horizon: int | None = None,
        enable_onnx_compatible_models: bool = False,
        **kwargs: Any,
    ) -> None:
        if featurization not in ("auto", None):
            not_supported(
                "AutoMLConfig(featurization=...) other than 'auto'",
                "launchbay featurizes every table the same way (see launchbay.automated.featurize); drop the setting.",
            )
        if enable_onnx_compatible_models:
            not_supported(
                "AutoMLConfig(enable_onnx_compatible_models=True)", "The model is a pickled sklearn pipeline."
            )
        unknown = sorted(set(kwargs) - _IGNORED)
        if unknown:
            not_supported(f"AutoMLConfig({', '.join(unknown)}=...)", "launchbay's AutoML has no such setting.")
        if forecasting_parameters is not None:
            time_column_name = time_column_name or forecasting_parameters.time_column_name
            forecast_horizon = forecast_horizon or forecasting_parameters.forecast_horizon
        self.task = task
        self.settings: dict[str, Any] = {
            "task": task,
            "primary_metric": primary_metric,
            "training_data": training_data,
            "label_column_name": label_column_name,
            "validation_data": validation_data,
            "n_cross_validations": n_cross_validations,
            "experiment_timeout_minutes": experiment_timeout_minutes or 15,
            "experiment_exit_score": experiment_exit_score,
            "iterations": iterations,
            "max_concurrent_iterations": max_concurrent_iterations,
            "allowed_models": allowed_models,
            "blocked_models": blocked_models,
            "time_column_name": time_column_name,
            "forecast_horizon": forecast_horizon,
        }
        if kwargs.get("_experiment_timeout_s") is not None:  # the tests' short budget
            self.settings["_experiment_timeout_s"] = float(kwargs["_experiment_timeout_s"])
        self.compute_target = compute_target

    def _submit_to(self, experiment: Any, tags: dict[str, str]) -> AutoMLRun:
        from ...automated import automl

        session = experiment.workspace.session()
        target = self.compute_target
        name = str(getattr(target, "name", target) or "") or None
        handle = automl(
            **self.settings,
            target=session.default_target(name),
            experiment=experiment.name,
            store=experiment.workspace._store,
        )
        return AutoMLRun(experiment, handle.run_id)


class AutoMLRun(Run):
    """The AutoML parent run: its trials, the best one and its fitted pipeline."""

    @property
    def handle(self) -> Any:
        from ...automated import get_automl

        return get_automl(self.id, store=self.experiment.workspace._store)

    def get_output(self, iteration: int | None = None, metric: str | None = None) -> tuple[Run, Any]:
        """(best run, fitted model); with ``iteration``, that trial's run and model."""
        from ...automated.featurize import load_model
        from ...automated.names import MODEL_FILE

        if iteration is None and metric is None:
            best, model = self.handle.get_output()
            return Run(self.experiment, best.run_id), model
        if metric is not None:
            not_supported("AutoMLRun.get_output(metric=...)", "The best run is by the primary metric.")
        trial = next((t for t in self.handle.state()["trials"] if t["index"] == iteration), None)
        if trial is None or not trial["run_id"]:
            from ...errors import ConfigError

            raise ConfigError(f"AutoML run {self.id} has no iteration {iteration}.")
        run = Run(self.experiment, trial["run_id"])
        return run, load_model(run._handle.file_path(MODEL_FILE))

    def get_children(self, *args: Any, **kwargs: Any) -> list[Run]:
        return [Run(self.experiment, t["run_id"]) for t in self.handle.state()["trials"] if t["run_id"]]

    def get_best_child(self, metric: str | None = None, onnx_compatible: bool = False, **kwargs: Any) -> Run:
        return self.get_output()[0]

    def wait_for_completion(
        self, show_output: bool = False, wait_post_processing: bool = False, raise_on_error: bool = True
    ) -> dict[str, Any]:
        if show_output:
            print(f"AutoML run {self.id}: trials run as launchbay runs; `launchbay automl show {self.id}` lists them.")
        return super().wait_for_completion(raise_on_error=raise_on_error)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.handle)


def __getattr__(name: str) -> Any:
    module_getattr("azureml.train.automl", name)


__all__ = ["AutoMLConfig", "AutoMLRun", "ForecastingParameters"]
