"""v1 compute targets → launchbay targets from ``launchbay.toml``; provisioning explains itself.

``ComputeTarget(workspace=ws, name="gpu-box")`` finds ``[targets.gpu-box]``; ``"local"``
always exists. launchbay does not create machines: ``AmlCompute.provisioning_configuration``
and ``ComputeTarget.create`` say which launchbay target type to configure instead.
"""

from __future__ import annotations

from typing import Any

from ...errors import TargetError, UnknownTargetError
from .unsupported import module_getattr, not_supported

_HOW = (
    "launchbay does not provision machines: describe the one you have in launchbay.toml, e.g. "
    '[targets.NAME] type = "ssh" (host, user), "slurm" (partition), "ray" (address) or "docker" (image), '
    "then use ComputeTarget(workspace=ws, name='NAME')."
)


#: v1's exception for a target that is missing or misbehaves: launchbay's TargetError (azureml.exceptions has it too)
ComputeTargetException = TargetError


class ComputeTarget:
    """A launchbay target by name; ``.type`` is its launchbay type (local, docker, ssh, ray, slurm)."""

    def __init__(self, workspace: Any = None, name: str | None = None) -> None:
        from ...config import load_config

        self.workspace = workspace
        self.name = name or "local"
        config = load_config()
        try:
            section = config.target(self.name)
        except UnknownTargetError as exc:
            raise _MissingTarget(str(exc)) from None
        self.type = str(section.get("type", "local"))
        self.provisioning_state = "Succeeded"

    @staticmethod
    def create(workspace: Any, name: str, provisioning_configuration: Any) -> ComputeTarget:
        not_supported("ComputeTarget.create", _HOW)

    def wait_for_completion(self, show_output: bool = False, **kwargs: Any) -> None:
        """Nothing to wait for: a configured target exists as soon as launchbay.toml names it."""

    def get_status(self) -> str:
        return "Succeeded"

    def delete(self) -> None:
        not_supported("ComputeTarget.delete", "Remove its [targets.NAME] section from launchbay.toml.")

    def detach(self) -> None:
        self.delete()

    @staticmethod
    def list(workspace: Any = None) -> list[ComputeTarget]:
        from ...config import load_config

        return [ComputeTarget(workspace, name) for name in load_config().target_names()]

    def __repr__(self) -> str:
        return f"ComputeTarget(name={self.name!r}, type={self.type!r})"


class _MissingTarget(TargetError, UnknownTargetError):
    """v1 scripts catch ComputeTargetException to decide to create the cluster: keep that working."""


class AmlCompute(ComputeTarget):
    """v1's managed cluster. Looking one up by name works; provisioning says what to do instead."""

    @staticmethod
    def provisioning_configuration(*args: Any, **kwargs: Any) -> Any:
        not_supported("AmlCompute.provisioning_configuration", _HOW)

    @staticmethod
    def supported_vmsizes(workspace: Any = None, location: Any = None) -> list[dict[str, Any]]:
        not_supported("AmlCompute.supported_vmsizes", _HOW)


class ComputeInstance(AmlCompute):
    """v1's single-VM compute: the same as AmlCompute here."""


class RemoteCompute(ComputeTarget):
    """v1's attached VM: a launchbay ``type = "ssh"`` target."""

    @staticmethod
    def attach_configuration(*args: Any, **kwargs: Any) -> Any:
        not_supported(
            "RemoteCompute.attach_configuration",
            'Add [targets.NAME] type = "ssh" with host, user (and port, key) to launchbay.toml.',
        )


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core.compute", name)


__all__ = ["AmlCompute", "ComputeInstance", "ComputeTarget", "ComputeTargetException", "RemoteCompute"]
