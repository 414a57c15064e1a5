"""Which launchbay module implements each Azure ML v1 module (what the import hook resolves)."""

from __future__ import annotations

_PKG = __name__.rpartition(".")[0]
#: v1 module name → the launchbay module that implements it
MODULES = {
    "azureml": f"{_PKG}.root",
    "azureml.core": f"{_PKG}.core",
    "azureml.core.run": f"{_PKG}.core",
    "azureml.core.script_run": f"{_PKG}.core",
    "azureml.core.workspace": f"{_PKG}.workspace",
    "azureml.core.experiment": f"{_PKG}.workspace",
    "azureml.core.script_run_config": f"{_PKG}.runconfig",
    "azureml.core.runconfig": f"{_PKG}.runconfig",
    "azureml.core.environment": f"{_PKG}.environment",
    "azureml.core.conda_dependencies": f"{_PKG}.environment",
    "azureml.core.compute": f"{_PKG}.compute",
    "azureml.core.compute_target": f"{_PKG}.compute",
    "azureml.core.authentication": f"{_PKG}.authentication",
    "azureml.core.model": f"{_PKG}.model",
    "azureml.core.dataset": f"{_PKG}.dataset",
    "azureml.exceptions": f"{_PKG}.exceptions",
    "azureml.train": f"{_PKG}.root",
    "azureml.train.estimator": f"{_PKG}.estimator",
    "azureml.train.dnn": f"{_PKG}.train_dnn",
    "azureml.train.sklearn": f"{_PKG}.train_sklearn",
    "azureml.train.hyperdrive": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.parameter_expressions": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.sampling": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.policy": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.runconfig": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.run": f"{_PKG}.hyperdrive",
    "azureml.train.automl": f"{_PKG}.automl",
    "azureml.train.automl.automlconfig": f"{_PKG}.automl",
    "azureml.train.automl.run": f"{_PKG}.automl",
    "azureml.automl": f"{_PKG}.automl",
    "azureml.automl.core": f"{_PKG}.automl",
    "azureml.automl.core.forecasting_parameters": f"{_PKG}.automl",
    "azureml.widgets": f"{_PKG}.widgets",
}
