"""v1's estimators: ``azureml.train.estimator.Estimator`` and the framework ones (``azureml.train.dnn.PyTorch``,
``TensorFlow``, ``Chainer``; ``azureml.train.sklearn.SKLearn``), deprecated already in v1.

An estimator is a ScriptRunConfig said another way, and is submitted as one (``experiment.submit(est)``,
``HyperDriveConfig(estimator=est)``): ``entry_script`` is the script; ``script_params`` are flattened as v1
did (``{'--lr': 0.1, '--verbose': ''}`` → ``--lr 0.1 --verbose``: an empty string or None is a bare flag);
``pip_packages``, ``conda_packages`` (PyPI names, as for any v1 environment), the conda and pip files and
``custom_docker_image`` make its environment; ``node_count``, ``process_count_per_node`` and
``distributed_training`` (``MpiConfiguration()``, ``PyTorchConfiguration()``, ``TensorflowConfiguration()``,
or v1's older ``distributed_backend='mpi'|'nccl'|'gloo'|'ps'``) its distributed launch.

A framework estimator adds its framework as a pinned pip requirement (``FRAMEWORKS``: v1's versions and
the current ones; default the newest). A ``pip_packages`` entry naming the framework replaces the pin,
and ``user_managed=True`` installs nothing (the interpreter as it is), as in v1. ``use_gpu`` is kept for
the record: the GPUs a run gets are the target's (``gpus`` on Docker, ``gpus_per_node`` on Slurm).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .environment import CondaDependencies, Environment
from .runconfig import (
    DEFAULT_MAX_RUN_S,
    MpiConfiguration,
    PyTorchConfiguration,
    ScriptRunConfig,
    TensorflowConfiguration,
)
from .unsupported import module_getattr, not_supported

#: framework → (its pip name, {framework_version: the pinned requirement}); the last version is the default
FRAMEWORKS: dict[str, tuple[str, dict[str, str]]] = {
    "PyTorch": (
        "torch",
        {
            v: f"torch=={v}.*"
            for v in (
                # v1's own versions (their wheels are for Python <= 3.8), then the current ones
                *("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6"),
                *("1.7", "1.8", "1.9", "1.10", "1.11", "1.12", "1.13"),
                *(f"2.{minor}" for minor in range(15)),
            )
        },
    ),
    "TensorFlow": (
        "tensorflow",
        {
            v: f"tensorflow=={v}.*"
            for v in (
                *("1.10", "1.12", "1.13", "2.0", "2.1", "2.2"),  # v1's
                *(f"2.{minor}" for minor in range(3, 21)),
            )
        },
    ),
    "Chainer": ("chainer", {v: f"chainer=={v}" for v in ("5.1.0", "6.0.0", "7.0.0", "7.8.1")}),
    "SKLearn": (
        "scikit-learn",
        {
            "0.20.3": "scikit-learn==0.20.3",  # v1's only version
            **{v: f"scikit-learn=={v}.*" for v in ("0.22", "0.23", "0.24", *(f"1.{minor}" for minor in range(10)))},
        },
    ),
}

#: v1's ``distributed_backend`` strings → the configuration they meant
BACKENDS = {"mpi": "mpi", "nccl": "pytorch", "gloo": "pytorch", "ps": "tensorflow", "parameter_server": "tensorflow"}


def flatten_script_params(script_params: dict[str, Any] | None) -> list[str]:
    """v1's flattening: each key, then its value unless the value is ``''`` or None (a bare flag)."""
    arguments: list[str] = []
    for key, value in (script_params or {}).items():
        arguments.append(str(key))
        if value is None or value == "":
            continue
        if isinstance(value, (list, tuple)):
            arguments += [str(v) for v in value]
        else:
            arguments.append(str(value))
    return arguments


def framework_requirement(framework: str, version: str | None) -> str:
    """The pinned requirement of ``framework`` at ``version`` (default: the newest known); one clear line else."""
    _package, pins = FRAMEWORKS[framework]
    if version is None:
        return list(pins.values())[-1]
    found = pins.get(str(version).strip())
    if found is None:
        raise ConfigError(
            f"{framework}(framework_version={version!r}): launchbay knows {', '.join(pins)}; pick one, or leave "
            f"framework_version out and pin your own with pip_packages=['{_package}==...']."
        )
    return found


def _warn_deprecated(name: str) -> None:
    """v1 warned that estimators are deprecated; so does launchbay, in one line."""
    print(
        f"launchbay: warning: the {name} estimator is deprecated (as in Azure ML v1); it runs as a ScriptRunConfig. "
        "Use ScriptRunConfig(source_directory, script, arguments, environment) instead.",
        file=sys.stderr,
        flush=True,
    )


def _package_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


class Estimator:
    """v1's generic estimator (``azureml.train.estimator.Estimator``)."""

    _framework: str | None = None

    def __init__(
        self,
        source_directory: str,
        *,
        compute_target: Any = None,
        vm_size: str | None = None,
        vm_priority: str | None = None,
        entry_script: str | None = None,
        script_params: dict[str, Any] | None = None,
        node_count: int = 1,
        process_count_per_node: int = 1,
        distributed_backend: str | None = None,
        distributed_training: Any = None,
        use_gpu: bool = False,
        use_docker: bool = True,
        custom_docker_base_image: str | None = None,
        custom_docker_image: str | None = None,
        image_registry_details: Any = None,
        user_managed: bool = False,
        conda_packages: list[str] | None = None,
        pip_packages: list[str] | None = None,
        conda_dependencies_file_path: str | None = None,
        pip_requirements_file_path: str | None = None,
        conda_dependencies_file: str | None = None,
        pip_requirements_file: str | None = None,
        environment_variables: dict[str, str] | None = None,
        environment_definition: Environment | None = None,
        inputs: Any = None,
        source_directory_data_store: Any = None,
        shm_size: str | None = None,
        resume_from: Any = None,
        max_run_duration_seconds: int | None = None,
        framework_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        _warn_deprecated(name)
        if not entry_script:
            raise ConfigError(f"{name} needs entry_script='train.py': the script to run in source_directory.")
        for given, what, why in (
            (inputs, "inputs", "Read data by path (in the project folder or mounted on the target)."),
            (source_directory_data_store, "source_directory_data_store", "The snapshot is launchbay's own."),
            (image_registry_details, "image_registry_details", "Name an image the Docker daemon has."),
            (resume_from, "resume_from", "Pull the checkpoint into the project folder instead."),
        ):
            if given:
                not_supported(f"{name}({what}=...)", why)
        self.source_directory = source_directory
        self.entry_script = entry_script
        self.script_params = dict(script_params or {})
        self.use_gpu = bool(use_gpu)
        self.framework_version = framework_version
        environment = environment_definition or self._environment(
            user_managed=user_managed,
            conda_packages=list(conda_packages or []),
            pip_packages=list(pip_packages or []),
            conda_file=conda_dependencies_file or conda_dependencies_file_path,
            pip_file=pip_requirements_file or pip_requirements_file_path,
            image=custom_docker_image or custom_docker_base_image,
            variables=dict(environment_variables or {}),
        )
        self._config = ScriptRunConfig(
            source_directory=source_directory,
            script=entry_script,
            arguments=flatten_script_params(script_params),
            compute_target=compute_target,
            environment=environment,
            distributed_job_config=self._distributed(
                distributed_training, distributed_backend, int(node_count or 1), int(process_count_per_node or 1)
            ),
            max_run_duration_seconds=max_run_duration_seconds or DEFAULT_MAX_RUN_S,
        )

    # -- what it becomes --------------------------------------------------------------------------------
    @property
    def run_config(self) -> Any:
        """v1's ``estimator.run_config``: the RunConfiguration (target, environment, environment_variables...)."""
        return self._config.run_config

    @property
    def script_run_config(self) -> ScriptRunConfig:
        """The ScriptRunConfig this estimator is submitted as (also by ``HyperDriveConfig(estimator=...)``)."""
        return self._config

    def _environment(
        self,
        *,
        user_managed: bool,
        conda_packages: list[str],
        pip_packages: list[str],
        conda_file: str | None,
        pip_file: str | None,
        image: str | None,
        variables: dict[str, str],
    ) -> Environment | None:
        name = f"{type(self).__name__}-env"
        conda_file, pip_file = self._in_source(conda_file), self._in_source(pip_file)
        if conda_file:
            environment = Environment.from_conda_specification(name, conda_file)
        elif pip_file:
            environment = Environment.from_pip_requirements(name, pip_file)
        else:
            environment = Environment(name)
        framework = self._framework_pins(user_managed, pip_packages)
        if user_managed:
            environment.python.user_managed_dependencies = True
        elif framework or pip_packages or conda_packages or conda_file or pip_file:
            deps = environment.python.conda_dependencies or CondaDependencies()
            for package in conda_packages:
                deps.add_conda_package(package)
            for package in [*framework, *pip_packages]:
                deps.add_pip_package(package)
            environment.python.conda_dependencies = deps
            environment.python.user_managed_dependencies = False
        else:  # nothing to install: the interpreter as it is, as a ScriptRunConfig without an environment
            environment.python.user_managed_dependencies = True
        if image:
            environment.docker.base_image = image
        environment.environment_variables.update({str(k): str(v) for k, v in variables.items()})
        if environment.python.user_managed_dependencies and not image and not variables:
            return None
        return environment

    def _in_source(self, path: str | None) -> str | None:
        """v1 read ``conda_dependencies_file``/``pip_requirements_file`` relative to source_directory."""
        if not path or Path(path).is_absolute() or Path(path).is_file():
            return path
        inside = Path(self.source_directory) / path
        return str(inside) if inside.is_file() else path

    def _framework_pins(self, user_managed: bool, pip_packages: list[str]) -> list[str]:
        """The framework's pinned requirement; none for the plain Estimator, with user_managed, or when
        ``pip_packages`` already names the framework (that pin wins). An unknown version is refused even so."""
        if self._framework is None:
            return []
        pin = framework_requirement(self._framework, self.framework_version)
        package = FRAMEWORKS[self._framework][0]
        if user_managed or any(_package_name(p) == package for p in pip_packages):
            return []
        return [pin]

    def _distributed(self, config: Any, backend: str | None, node_count: int, per_node: int) -> Any:
        if config is None and backend:
            kind = BACKENDS.get(str(backend).lower())
            if kind is None:
                raise ConfigError(
                    f"{type(self).__name__}(distributed_backend={backend!r}): use one of {', '.join(BACKENDS)}, "
                    "or distributed_training=MpiConfiguration()."
                )
            config = {"mpi": MpiConfiguration, "pytorch": PyTorchConfiguration, "tensorflow": TensorflowConfiguration}[
                kind
            ]()
        if config is None:
            if node_count > 1 or per_node > 1:  # v1 ran several processes under MPI
                return MpiConfiguration(process_count_per_node=per_node, node_count=node_count)
            return None
        if isinstance(config, MpiConfiguration):
            if config.process_count_per_node == 1 and per_node > 1:
                config.process_count_per_node = per_node
            config.node_count = max(int(config.node_count or 1), node_count)
        elif isinstance(config, PyTorchConfiguration):
            config.node_count = max(int(config.node_count or 1), node_count)
            if config.process_count is None:
                config.process_count = per_node * config.node_count
        return config

    def _submit_to(self, experiment: Any, tags: dict[str, str]) -> Any:
        return self._config._submit_to(experiment, tags)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(entry_script={self.entry_script!r}, source_directory={self.source_directory!r})"


class PyTorch(Estimator):
    """``azureml.train.dnn.PyTorch``: an Estimator with ``torch`` pinned by ``framework_version``."""

    _framework = "PyTorch"


class TensorFlow(Estimator):
    """``azureml.train.dnn.TensorFlow``: ``tensorflow`` pinned; ``worker_count``/``parameter_server_count``
    (v1's ``distributed_backend='ps'`` arguments) make a TensorflowConfiguration."""

    _framework = "TensorFlow"

    def __init__(
        self, source_directory: str, *, worker_count: int = 1, parameter_server_count: int = 1, **kwargs: Any
    ) -> None:
        if (
            kwargs.get("distributed_backend") in ("ps", "parameter_server")
            and kwargs.get("distributed_training") is None
        ):
            kwargs["distributed_training"] = TensorflowConfiguration(worker_count, parameter_server_count)
            kwargs.pop("distributed_backend")
        super().__init__(source_directory, **kwargs)


class Chainer(Estimator):
    """``azureml.train.dnn.Chainer``: ``chainer`` pinned by ``framework_version``."""

    _framework = "Chainer"


class SKLearn(Estimator):
    """``azureml.train.sklearn.SKLearn``: ``scikit-learn`` pinned; one process, as in v1."""

    _framework = "SKLearn"

    def __init__(self, source_directory: str, **kwargs: Any) -> None:
        if kwargs.get("distributed_training") is not None or int(kwargs.get("node_count") or 1) > 1:
            raise ConfigError("SKLearn runs one process (as in v1); leave out distributed_training and node_count.")
        super().__init__(source_directory, **kwargs)


def __getattr__(name: str) -> Any:
    module_getattr("azureml.train.estimator", name)


__all__ = ["Estimator", "MpiConfiguration", "PyTorchConfiguration", "TensorflowConfiguration"]
