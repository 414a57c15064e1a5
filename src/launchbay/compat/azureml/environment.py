"""v1 ``Environment`` and ``CondaDependencies``, turned into a launchbay environment at submit.

A v1 environment becomes an inline launchbay environment (the JSON form ``--env`` takes):
pip packages as they are, conda packages under their PyPI names (see
``launchbay.environments.conda``), the Python pin, ``docker.base_image`` and
``environment_variables``. ``user_managed_dependencies=True`` runs on the interpreter as
it is (``python.interpreter_path`` when given).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...environments.conda import CondaFile, add_conda_dependency, check_refused, read_conda_file
from ...environments.spec import read_requirements
from .unsupported import module_getattr, not_supported

#: v1 curated environments launchbay knows: name → what the run needs (installed with pip)
CURATED = {
    "AzureML-Minimal": [],
    "AzureML-Tutorial": ["numpy", "pandas", "scikit-learn", "matplotlib"],
    "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu": ["scikit-learn"],
    "AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu": ["torch"],
    "AzureML-PyTorch-1.6-CPU": ["torch"],
    "AzureML-TensorFlow-2.3-CPU": ["tensorflow"],
}


class CondaDependencies:
    """v1's conda specification: conda packages, pip packages, a Python version."""

    def __init__(self, conda_dependencies_file_path: str | None = None, _underlying_structure: Any = None) -> None:
        self.conda_packages: list[str] = []
        self.pip_packages: list[str] = []
        self.python_version: str | None = None
        self._path = conda_dependencies_file_path
        self._as_read: list[str] | None = None
        if conda_dependencies_file_path:
            parsed = read_conda_file(Path(conda_dependencies_file_path).read_text())
            check_refused(parsed, Path(conda_dependencies_file_path).stem, conda_dependencies_file_path)
            self.pip_packages = list(parsed.pip)  # conda packages already under their PyPI names
            self.python_version = parsed.python
            self._as_read = list(self.pip_packages)

    def unchanged_file(self) -> str | None:
        """The file this was read from, while nothing was added: launchbay then reads the file itself."""
        if self._path and self._as_read == self.pip_packages and not self.conda_packages:
            return str(Path(self._path).resolve())
        return None

    @classmethod
    def create(
        cls,
        pip_indexurl: str | None = None,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        deps = cls()
        deps.pip_packages = [p for p in (pip_packages or []) if not p.lower().startswith("azureml")]
        deps.conda_packages = list(conda_packages or [])
        deps.python_version = python_version
        return deps

    def add_conda_package(self, conda_package: str) -> None:
        self.conda_packages.append(conda_package)

    def add_pip_package(self, pip_package: str) -> None:
        if not pip_package.lower().startswith("azureml"):  # launchbay stands in for the SDK
            self.pip_packages.append(pip_package)

    def set_python_version(self, version: str) -> None:
        self.python_version = version

    def requirements(self, name: str) -> tuple[list[str], list[str]]:
        """pip lines for everything (conda names mapped) and the build-log notes; refuses what pip can't do."""
        parsed = CondaFile(pip=[], python=self.python_version)
        for dep in self.conda_packages:
            add_conda_dependency(parsed, dep)
        check_refused(parsed, name, "its CondaDependencies")
        return parsed.pip + list(self.pip_packages), parsed.notes

    def serialize_to_string(self) -> str:
        lines = ["dependencies:"]
        if self.python_version:
            lines.append(f"  - python={self.python_version}")
        lines += [f"  - {p}" for p in self.conda_packages]
        if self.pip_packages:
            lines += ["  - pip:"] + [f"    - {p}" for p in self.pip_packages]
        return "\n".join(lines) + "\n"

    def save(self, path: str) -> str:
        Path(path).write_text(self.serialize_to_string())
        return path

    save_to_file = save


class PythonSection:
    """``env.python``: who manages the packages, which interpreter, which conda spec."""

    def __init__(self) -> None:
        self.user_managed_dependencies = False
        self.interpreter_path = "python"
        self.conda_dependencies: CondaDependencies | None = None
        self.conda_dependencies_file: str | None = None


class DockerSection:
    """``env.docker``: the base image (used on Docker targets)."""

    def __init__(self) -> None:
        self.enabled = False
        self.base_image: str | None = None
        self.base_dockerfile: str | None = None
        self.shm_size: str | None = None
        self.arguments: list[str] = []


class Environment:
    """A v1 environment: what software the run needs, by name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.version: str | None = None
        self.python = PythonSection()
        self.docker = DockerSection()
        self.environment_variables: dict[str, str] = {}
        self.inferencing_stack_version = None
        self._launchbay_name: str | None = None  # an [environments.NAME] of launchbay.toml

    # -- constructors -----------------------------------------------------------------------------
    @classmethod
    def from_conda_specification(cls, name: str, file_path: str) -> Environment:
        env = cls(name)
        env.python.conda_dependencies = CondaDependencies(file_path)
        return env

    @classmethod
    def from_pip_requirements(cls, name: str, file_path: str, pip_version: str | None = None) -> Environment:
        env = cls(name)
        deps = CondaDependencies()
        deps.pip_packages = read_requirements(Path(file_path).read_text())
        env.python.conda_dependencies = deps
        return env

    @classmethod
    def from_existing_conda_environment(cls, name: str, conda_environment_name: str) -> Environment:
        not_supported(
            "Environment.from_existing_conda_environment",
            "Point the environment at that interpreter instead: env.python.user_managed_dependencies = True; "
            "env.python.interpreter_path = '/path/to/envs/NAME/bin/python'.",
        )

    @classmethod
    def from_dockerfile(cls, name: str, dockerfile: str, **kwargs: Any) -> Environment:
        """The image of ``dockerfile`` (its text, or its path) as it is: built once per content hash."""
        env = cls(name)
        env.docker.base_image = None
        env.docker.base_dockerfile = dockerfile
        env.python.user_managed_dependencies = True
        return env

    @classmethod
    def get(cls, workspace: Any, name: str, version: str | None = None, label: str | None = None) -> Environment:
        """A curated v1 environment launchbay knows, or one from launchbay.toml (``[environments.NAME]``);
        any other name is an ``UnknownEnvironmentError`` naming the known ones."""
        from ...config import load_config
        from ...errors import UnknownEnvironmentError

        if name in CURATED:
            env = cls(name)
            env.python.conda_dependencies = CondaDependencies.create(pip_packages=CURATED[name])
            env.python.user_managed_dependencies = not CURATED[name]
            return env
        config = load_config()
        if name not in config.environments:
            declared = ", ".join(sorted(config.environments)) or "none"
            where = f"in {config.path}" if config.path else "(no launchbay.toml found)"
            raise UnknownEnvironmentError(
                f"Environment.get: no environment {name!r}. Curated ones launchbay knows: {', '.join(CURATED)}; "
                f"[environments.NAME] {where}: {declared}. Use one of those, or declare "
                f'[environments.{name}] (e.g. pip = ["scikit-learn"]) in launchbay.toml.'
            )
        env = cls(name)
        env._launchbay_name = name
        return env

    @classmethod
    def list(cls, workspace: Any = None) -> dict[str, Environment]:
        return {name: cls.get(workspace, name) for name in CURATED}

    def register(self, workspace: Any) -> Environment:
        """Nothing to register: launchbay caches built environments by the hash of their content."""
        return self

    def build(self, workspace: Any = None, image_build_compute: Any = None) -> Any:
        return self

    def build_local(self, workspace: Any = None, platform: Any = None, **kwargs: Any) -> Any:
        return self

    def clone(self, new_name: str) -> Environment:
        import copy

        env = copy.deepcopy(self)
        env.name = new_name
        return env

    # -- launchbay ------------------------------------------------------------------------------------
    def to_launchbay(self) -> str:
        """The inline environment (JSON) launchbay builds, caches and records for the run."""
        if self._launchbay_name:
            return self._launchbay_name
        data: dict[str, Any] = {}
        deps = self.python.conda_dependencies
        if self.python.conda_dependencies_file:
            deps = CondaDependencies(self.python.conda_dependencies_file)
        if self.python.user_managed_dependencies:
            data["user_managed"] = True
            if self.python.interpreter_path and self.python.interpreter_path != "python":
                data["python"] = self.python.interpreter_path
        elif deps is not None and deps.unchanged_file():
            data["conda"] = deps.unchanged_file()  # the build log then shows each conda -> pip name
        elif deps is not None:
            pip, _notes = deps.requirements(self.name)
            data["pip"] = pip
            if deps.python_version:
                data["python"] = deps.python_version
            data["user_managed"] = not pip
        else:
            data["user_managed"] = True
        if self.docker.base_dockerfile:  # its text or its path: built once per content hash, packages on top
            data["dockerfile"] = _dockerfile_text(self.docker.base_dockerfile)
        elif self.docker.base_image:
            data["image"] = self.docker.base_image
        if self.environment_variables:
            data["env"] = {str(k): str(v) for k, v in self.environment_variables.items()}
        return json.dumps(data, sort_keys=True)

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r})"


def _dockerfile_text(value: str) -> str:
    """v1 took a Dockerfile's text or its path; launchbay's environment gets the text (what is hashed)."""
    path = Path(value)
    if "\n" not in value and path.is_file():
        return path.read_text().strip() + "\n"
    return value.strip() + "\n"  # with its line break, even a one-line FROM is read as text


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core.environment", name)


__all__ = ["CondaDependencies", "DockerSection", "Environment", "PythonSection"]
