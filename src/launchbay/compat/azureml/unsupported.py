"""What Azure ML v1 had and launchbay does not, and the launchbay way to say instead of it."""

from __future__ import annotations

import importlib
from typing import NoReturn

from ...errors import NotSupportedError

#: what the layer covers, for a v1 name it does not: said in the message (pip users have no README)
COVERED = (
    "azureml.core (Workspace, Experiment, ScriptRunConfig, Environment, Run, Model, ComputeTarget, Dataset), "
    "azureml.train.hyperdrive (HyperDriveConfig, its samplings and policies), "
    "azureml.train.automl (AutoMLConfig, AutoMLRun), the estimators "
    "(azureml.train.estimator.Estimator, azureml.train.dnn.PyTorch/TensorFlow/Chainer, "
    "azureml.train.sklearn.SKLearn), azureml.pipeline (Pipeline, PipelineData, PipelineParameter, "
    "PythonScriptStep), azureml.data.OutputFileDatasetConfig, azureml.widgets (RunDetails) and azureml.exceptions"
)
LAUNCHBAY_WAY = (
    "For the rest use launchbay itself: launchbay.submit('train.py', target='NAME', environment='NAME'), "
    "launchbay.sweep(...), launchbay.automl(...), launchbay.get_run(ID); `launchbay --help` lists the commands."
)

#: v1 feature (module prefix or class name) → the launchbay alternative
ALTERNATIVES = {
    "azureml.automl": "Of AutoML the layer has azureml.train.automl (AutoMLConfig, AutoMLRun) and "
    "azureml.automl.core.forecasting_parameters (ForecastingParameters); or use launchbay.automl(...).",
    "azureml.pipeline.core.schedule": "Run a pipeline on a timetable with `launchbay schedule` "
    "(a schedule's command: `launchbay pipeline run pipeline.yaml`).",
    "azureml.data": "This part of azureml.data (datastores, tabular datasets) is not covered; name files with "
    "azureml.core.Dataset.File.from_files(path) (a folder, file or URL) or Dataset.get_by_name(ws, NAME), "
    "pass data between pipeline steps with azureml.data.OutputFileDatasetConfig, "
    "or give a run data with launchbay's --input NAME=SOURCE.",
    "azureml.core.datastore": "Datastores are not part of launchbay; name the files with "
    "Dataset.File.from_files(path) (a folder, file or URL) instead.",
    "azureml.core.webservice": "Deployment is not part of launchbay; register the model "
    "(run.register_model) and serve it with the tool of your choice.",
    "azureml.core.image": "Deployment images are not part of launchbay; register the model "
    "(run.register_model) and serve it with the tool of your choice.",
    "azureml.deploy": "Deployment is not part of launchbay; register the model and serve it yourself.",
    "azureml.core.databricks": "Databricks steps are not part of launchbay; use a Ray, Slurm or SSH target.",
    "azureml.contrib": "azureml.contrib is not covered; use launchbay's target types (local, docker, ssh, ray, slurm).",
    "azureml.tensorboard": "Use `launchbay tensorboard RUN` to look at a run's ./logs with TensorBoard.",
    "azureml.mlflow": "launchbay keeps metrics itself: run.log(...) in the run, run.get_metrics() afterwards.",
    "Datastore": "Datastores are not part of launchbay; name the files with "
    "Dataset.File.from_files(path) (a folder, file or URL) instead.",
    "Webservice": "Deployment is not part of launchbay; register the model (run.register_model) and serve it yourself.",
    "InferenceConfig": "Deployment is not part of launchbay; register the model and serve it yourself.",
    "PublishedPipeline": "Pipelines are not published on launchbay; submit the Pipeline again with "
    "experiment.submit(pipeline) (unchanged steps are reused), or `launchbay pipeline rerun RUN`.",
    "PipelineEndpoint": "Pipelines are not published on launchbay; submit the Pipeline again with "
    "experiment.submit(pipeline) (unchanged steps are reused), or `launchbay pipeline rerun RUN`.",
    "Schedule": "Run a pipeline on a timetable with `launchbay schedule`.",
    "ParallelRunStep": "Use a PythonScriptStep per shard (steps that do not depend on each other run in "
    "parallel), or launchbay.sweep over the shards.",
    "HyperDriveStep": "Run the sweep before or after the pipeline (experiment.submit(HyperDriveConfig(...))).",
    "DatabricksStep": "Databricks steps are not part of launchbay; use a PythonScriptStep on a Ray, Slurm "
    "or SSH target.",
    "Keyvault": "Keep secrets in environment variables; launchbay.toml can reference them as ${NAME}.",
    "LinkedService": "Linked services are not part of launchbay; reach other services from your script "
    "with their own client libraries, credentials in environment variables (${NAME} in launchbay.toml).",
    "PrivateEndPointConfig": "launchbay has no cloud networking; targets are your own machines.",
}


def module_message(name: str) -> str:
    for prefix in sorted(ALTERNATIVES, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return f"{name} (Azure ML v1) is not available on launchbay. {ALTERNATIVES[prefix]}"
    return (
        f"{name} (Azure ML v1) is not covered by launchbay's compatibility layer, which has {COVERED}. {LAUNCHBAY_WAY}"
    )


def attribute_message(module: str, attr: str) -> str:
    hint = ALTERNATIVES.get(attr)
    if hint:
        return f"{module}.{attr} (Azure ML v1) is not available on launchbay. {hint}"
    what = f"{module}.{attr} (Azure ML v1) is not covered by launchbay's compatibility layer"
    return f"{what}; {_has(module)}. {LAUNCHBAY_WAY}"


def _has(module: str) -> str:
    """What the v1 module ``module`` offers here: its names, or the layer's modules for one without a list."""
    from .modules import MODULES

    names = getattr(importlib.import_module(MODULES[module]), "__all__", None) if module in MODULES else None
    if not names:
        return f"the layer has {COVERED}"
    return f"{module} has {', '.join(sorted(names))}"


def module_getattr(module: str, attr: str) -> NoReturn:
    """A v1 module's ``__getattr__``: dunders stay AttributeErrors, v1 names explain themselves."""
    if attr.startswith("__") and attr.endswith("__"):
        raise AttributeError(attr)
    raise NotSupportedError(attribute_message(module, attr))


def not_supported(what: str, alternative: str) -> NoReturn:
    raise NotSupportedError(f"{what} (Azure ML v1) is not available on launchbay. {alternative}")
