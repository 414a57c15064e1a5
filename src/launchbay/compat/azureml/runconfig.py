"""v1 ``ScriptRunConfig``, ``RunConfiguration`` and the distributed configurations.

``ScriptRunConfig(...)._submit_to(experiment)`` is ``launchbay.submit(...)`` with the v1
fields mapped: ``compute_target`` → a launchbay target name, ``environment`` → an inline
environment, ``distributed_job_config`` → ``launchbay.PyTorch/Mpi/TensorFlow``,
``max_run_duration_seconds`` → ``max_duration_s``. Runs get ``LAUNCHBAY_AZUREML_COMPAT=1``
so the runner puts ``azureml.core.Run`` on their path.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from . import ENV_FLAG
from .environment import Environment
from .unsupported import module_getattr, not_supported

DEFAULT_MAX_RUN_S = 2592000  # v1's default: 30 days


def say(message: str) -> None:
    """What a submit does while the caller waits (an environment build): the lines ``launchbay submit`` prints."""
    print(f"launchbay: {message}", flush=True)


class PyTorchConfiguration:
    """``process_count`` is the total over all nodes, as in v1."""

    def __init__(
        self, communication_backend: str = "Nccl", process_count: int | None = None, node_count: int = 1, **kwargs: Any
    ) -> None:
        self.communication_backend = communication_backend
        self.process_count = process_count
        self.node_count = node_count

    def to_launchbay(self) -> Any:
        from ...distributed import PyTorch

        nodes = max(1, int(self.node_count or 1))
        per_node = max(1, int(self.process_count or nodes) // nodes)
        return PyTorch(process_count_per_node=per_node, node_count=nodes)


class MpiConfiguration:
    def __init__(self, process_count_per_node: int = 1, node_count: int = 1, **kwargs: Any) -> None:
        self.process_count_per_node = process_count_per_node
        self.node_count = node_count

    def to_launchbay(self) -> Any:
        from ...distributed import Mpi

        return Mpi(process_count_per_node=int(self.process_count_per_node), node_count=int(self.node_count or 1))


class TensorflowConfiguration:
    def __init__(self, worker_count: int = 1, parameter_server_count: int = 1, **kwargs: Any) -> None:
        self.worker_count = worker_count
        self.parameter_server_count = parameter_server_count

    def to_launchbay(self) -> Any:
        from ...distributed import TensorFlow

        return TensorFlow(worker_count=int(self.worker_count), parameter_server_count=int(self.parameter_server_count))


class DockerConfiguration:
    """``use_docker=True`` on the local machine picks the project's Docker target."""

    def __init__(
        self, use_docker: bool = False, shm_size: str | None = None, arguments: Any = None, **kwargs: Any
    ) -> None:
        self.use_docker = use_docker
        self.shm_size = shm_size
        self.arguments = arguments


def argument_list(where: str, arguments: Any) -> list[Any]:
    """The script's arguments as a list, or one ``ConfigError`` saying how to write them."""
    if arguments is None:
        return []
    if isinstance(arguments, str):
        try:
            words: list[Any] = shlex.split(arguments)
        except ValueError:  # unbalanced quotes: show the form only
            words = ["--lr", 0.01]
        raise ConfigError(
            f"{where}(arguments={arguments!r}): arguments are a list, one item per word; write arguments={words!r}."
        )
    if not isinstance(arguments, (list, tuple)):
        raise ConfigError(f"{where}(arguments={arguments!r}): arguments are a list, e.g. arguments=['--lr', 0.01].")
    return list(arguments)


class RunConfiguration:
    """What a run needs besides its code: target, environment, node count, framework."""

    def __init__(
        self,
        script: str | None = None,
        arguments: list[Any] | None = None,
        framework: str | None = None,
        communicator: str | None = None,
        conda_dependencies: Any = None,
        **kwargs: Any,
    ) -> None:
        self.script = script
        self.arguments = argument_list("RunConfiguration", arguments)
        self.target = "local"
        self.framework = framework or "Python"
        self.communicator = communicator or "None"
        self.node_count = 1
        self.max_run_duration_seconds: int | None = None
        self.environment = Environment("launchbay-default")
        self.environment.python.user_managed_dependencies = True
        self.environment._is_default = True  # type: ignore[attr-defined]
        if conda_dependencies is not None:
            self.environment.python.user_managed_dependencies = False
            self.environment.python.conda_dependencies = conda_dependencies
        self.environment_variables: dict[str, str] = {}
        self.docker = DockerConfiguration()
        self.mpi = MpiConfiguration()
        self.tensorflow = TensorflowConfiguration()
        self.pytorch = PyTorchConfiguration()
        self.history = None

    @staticmethod
    def load(path: str, name: str | None = None) -> RunConfiguration:
        """Read a v1 ``.runconfig`` YAML file (``.azureml/NAME.runconfig``)."""
        from .runconfig_file import file_environment, read_runconfig

        data, base = read_runconfig(path, name)
        config = RunConfiguration(script=data.get("script"), arguments=[str(a) for a in data.get("arguments") or []])
        config.target = str(data.get("target") or "local")
        config.framework = str(data.get("framework") or "Python")
        config.communicator = str(data.get("communicator") or "None")
        config.node_count = int(data.get("nodeCount") or 1)
        if data.get("maxRunDurationSeconds"):
            config.max_run_duration_seconds = int(data["maxRunDurationSeconds"])
        environment = file_environment(data, base)
        if environment is not None:
            config.environment = environment
        mpi, torch, tf = data.get("mpi") or {}, data.get("pyTorch") or {}, data.get("tensorflow") or {}
        config.mpi = MpiConfiguration(int(mpi.get("processCountPerNode") or 1), config.node_count)
        config.pytorch = PyTorchConfiguration(
            str(torch.get("communicationBackend") or "Nccl"),
            torch.get("processCount") or int(mpi.get("processCountPerNode") or 1) * config.node_count,
            config.node_count,
        )
        config.tensorflow = TensorflowConfiguration(
            int(tf.get("workerCount") or 1), int(tf.get("parameterServerCount") or 1)
        )
        config._source_directory = str(base)  # type: ignore[attr-defined]
        return config

    def save(self, path: str | None = None, name: str | None = None, separate_environment_yaml: bool = False) -> None:
        not_supported("RunConfiguration.save", "Keep the settings in Python, or in launchbay.toml.")


class ScriptRunConfig:
    """v1's way to say what to run: a script (or a ``python x.py`` command) in a source directory."""

    def __init__(
        self,
        source_directory: str | os.PathLike[str] | None = None,
        script: str | None = None,
        arguments: list[Any] | None = None,
        run_config: RunConfiguration | None = None,
        _telemetry_values: Any = None,
        compute_target: Any = None,
        environment: Environment | None = None,
        distributed_job_config: Any = None,
        resume_from: Any = None,
        max_run_duration_seconds: int | None = DEFAULT_MAX_RUN_S,
        command: list[str] | str | None = None,
        docker_runtime_config: DockerConfiguration | None = None,
    ) -> None:
        self.source_directory = str(source_directory or ".")
        self.run_config = run_config or RunConfiguration()
        self.script = script or self.run_config.script
        self.arguments = (
            argument_list("ScriptRunConfig", arguments) if arguments is not None else list(self.run_config.arguments)
        )
        self.command = command
        if compute_target is not None:
            self.run_config.target = compute_target
        if environment is not None:
            self.run_config.environment = environment
        if max_run_duration_seconds is not None:
            self.run_config.max_run_duration_seconds = max_run_duration_seconds
        if docker_runtime_config is not None:
            self.run_config.docker = docker_runtime_config
        self.distributed_job_config = distributed_job_config
        if resume_from is not None:
            not_supported("ScriptRunConfig(resume_from=...)", "Pull the checkpoint into the project folder instead.")

    # -- launchbay -----------------------------------------------------------------------------------------
    def script_and_arguments(self) -> tuple[str, list[str]]:
        """The script and its arguments; for a command, its program and arguments (``is_command`` says which).

        A command ``python X.py ARGS`` (a list, or a string with no shell syntax) is the script run
        ``X.py ARGS``; any other list runs as it is, any other string under ``/bin/sh -c`` (as v1 ran it)."""
        if self.command:
            tokens = self._python_script()
            if tokens is not None:
                return tokens[1], tokens[2:]
            from ...models import as_command

            if isinstance(self.command, str):
                if self.arguments:
                    raise ConfigError(
                        f"ScriptRunConfig(command={self.command!r}, arguments=...): a command string is run by "
                        "/bin/sh as written; put the arguments in it, or pass command as a list."
                    )
                words = as_command(self.command)
            else:
                words = as_command([str(t) for t in self.command])
            return words[0], [*words[1:], *(str(a) for a in self.arguments)]
        if not self.script:
            raise ConfigError("ScriptRunConfig needs script='train.py' (or command=['bash', 'run.sh', ...]).")
        return self.script, [str(a) for a in self.arguments]

    def is_command(self) -> bool:
        """Is this a command run (``command=['bash', 'run.sh']``) rather than a Python script?"""
        return bool(self.command) and self._python_script() is None

    def _python_script(self) -> list[str] | None:
        """The command's words when it is ``python X.py ARGS`` (run as the script ``X.py``), else None."""
        if isinstance(self.command, str):
            if any(c in self.command for c in "|&;<>()$`*?~\n"):
                return None
            try:
                tokens = shlex.split(self.command)
            except ValueError:
                return None
        else:
            tokens = [str(t) for t in self.command or []]
        if len(tokens) >= 2 and Path(tokens[0]).name.startswith("python") and tokens[1].endswith(".py"):
            return tokens
        return None

    def target_name(self, session: Any) -> str:
        target = self.run_config.target
        name = session.default_target(str(getattr(target, "name", target) or "") or None)
        if self.run_config.docker.use_docker and session.config.target(name).get("type") == "local":
            dockers = [n for n, t in session.config.targets.items() if t.get("type") == "docker"]
            if len(dockers) != 1:
                raise ConfigError(
                    "The run config asks for Docker (use_docker=True) on the local machine; add one "
                    '[targets.NAME] type = "docker" to launchbay.toml (found '
                    f"{len(dockers)}), or pass compute_target='NAME'."
                )
            return dockers[0]
        return name

    def environment_ref(self) -> str | None:
        env = self.run_config.environment
        if env is None:
            return None
        untouched_default = (
            getattr(env, "_is_default", False)
            and env.python.user_managed_dependencies
            and env.python.interpreter_path == "python"
            and not env.docker.base_image
            and not env.environment_variables
        )
        return None if untouched_default else env.to_launchbay()

    def distributed(self) -> Any:
        config = self.distributed_job_config
        if config is None and self.run_config.node_count and int(self.run_config.node_count) > 1:
            framework = str(self.run_config.communicator or "").lower()
            config = MpiConfiguration(node_count=int(self.run_config.node_count)) if framework == "intelmpi" else None
        return config.to_launchbay() if config is not None else None

    def launchbay_arguments(self, experiment: Any, tags: dict[str, str]) -> dict[str, Any]:
        """Keyword arguments for ``launchbay.submit`` (and the sweep's child runs)."""
        session = experiment.workspace.session()
        script, args = self.script_and_arguments()
        kwargs: dict[str, Any] = {
            **({"command": [script, *args]} if self.is_command() else {"script": script, "args": args}),
            "target": self.target_name(session),
            "experiment": experiment.name,
            "source_dir": self.source_directory,
            "environment": self.environment_ref(),
            "max_duration_s": self.run_config.max_run_duration_seconds,
            "tags": tags,
            "env_vars": {**{str(k): str(v) for k, v in self.run_config.environment_variables.items()}, ENV_FLAG: "1"},
            "store": experiment.workspace._store,
        }
        distributed = self.distributed()
        if distributed is not None:
            kwargs["distributed"] = distributed
        if not self.command:
            from .dataset import consumption_inputs

            inputs = consumption_inputs(self.arguments)  # each reaches the script as its path (the runner's part)
            if inputs:
                kwargs["inputs"] = inputs
        return kwargs

    def _submit_to(self, experiment: Any, tags: dict[str, str]) -> Any:
        from ...api import submit
        from .run import Run

        handle = submit(**self.launchbay_arguments(experiment, tags), on_progress=say)
        return Run(experiment, handle.run_id)


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core.runconfig", name)


__all__ = [
    "DockerConfiguration",
    "MpiConfiguration",
    "PyTorchConfiguration",
    "RunConfiguration",
    "ScriptRunConfig",
    "TensorflowConfiguration",
]
