"""v1 ``.runconfig`` YAML files (``.azureml/NAME.runconfig``), read for ``RunConfiguration.load``.

Read: ``script``, ``arguments``, ``target``, ``framework``/``communicator``, ``nodeCount``,
``maxRunDurationSeconds``, ``environment`` (``python.userManagedDependencies``,
``python.interpreterPath``, ``python.condaDependencies`` or ``condaDependenciesFile``,
``docker.baseImage``, ``environmentVariables``), ``mpi``, ``pyTorch``, ``tensorflow``.
Everything else in the file is Azure-only and ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .environment import CondaDependencies, Environment


def _find(path: str, name: str | None) -> Path:
    candidates = [Path(path)]
    if name:
        candidates = [Path(path) / f"{name}.runconfig", Path(path) / ".azureml" / f"{name}.runconfig", Path(path)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"No v1 runconfig file at {candidates[0]}; pass the path of a .runconfig YAML file.")


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} is not a readable YAML runconfig ({exc}); fix it and retry.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a v1 runconfig (expected a YAML mapping with script, target, ...).")
    return data


def _environment(data: dict[str, Any], base: Path) -> Environment:
    env = Environment(str(data.get("name") or "runconfig-env"))
    python = data.get("python") or {}
    env.python.user_managed_dependencies = bool(python.get("userManagedDependencies", False))
    env.python.interpreter_path = str(python.get("interpreterPath") or "python")
    conda_file = python.get("condaDependenciesFile")
    conda = python.get("condaDependencies")
    if conda_file:
        env.python.conda_dependencies = CondaDependencies(str(base / str(conda_file)))
    elif isinstance(conda, dict):
        deps = CondaDependencies()
        for item in conda.get("dependencies") or []:
            if isinstance(item, dict):
                deps.pip_packages.extend(str(p) for p in item.get("pip") or [] if not str(p).startswith("azureml"))
            elif str(item).split("=")[0].strip() == "python":
                deps.python_version = str(item).split("=", 1)[1].strip("=") if "=" in str(item) else None
            else:
                deps.conda_packages.append(str(item))
        env.python.conda_dependencies = deps
    else:
        env.python.user_managed_dependencies = True
    docker = data.get("docker") or {}
    if docker.get("baseImage") and docker.get("enabled", True):
        env.docker.base_image = str(docker["baseImage"])
    env.environment_variables = {str(k): str(v) for k, v in (data.get("environmentVariables") or {}).items()}
    return env


def read_runconfig(path: str, name: str | None = None) -> tuple[dict[str, Any], Path]:
    """The file's settings and the folder its paths are relative to (the project, above ``.azureml/``)."""
    found = _find(path, name)
    base = found.parent.parent if found.parent.name == ".azureml" else found.parent
    return _read_yaml(found), base


def file_environment(data: dict[str, Any], base: Path) -> Environment | None:
    """The file's ``environment`` section as an Environment (None when it has none)."""
    return _environment(data["environment"], base) if isinstance(data.get("environment"), dict) else None
