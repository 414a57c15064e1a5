"""v1 ``Model``: launchbay's model registry under v1's names (filled in with the registry)."""

from __future__ import annotations

from typing import Any

from .unsupported import module_getattr, not_supported


class Model:
    """A registered model version."""

    @classmethod
    def latest_by_name(cls, workspace: Any) -> dict[str, Any]:
        return {}

    @classmethod
    def _register_from_run(
        cls, run: Any, name: str, path: str | None, tags: Any, properties: Any, description: str | None
    ) -> Model:
        not_supported("Run.register_model", "This launchbay version has no model registry.")

    def deploy(self, *args: Any, **kwargs: Any) -> Any:
        not_supported("Model.deploy", "Deployment is not part of launchbay; serve the model's files yourself.")


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core.model", name)


__all__ = ["Model"]
