"""v1 ``Model``: launchbay's model registry (``launchbay models``) under v1's names.

Registering follows launchbay: a model version comes from a run's files
(``run.register_model(model_name, model_path="outputs/model.pkl")``, inside the run or
afterwards), so it keeps its run, metrics, environment and snapshot. v1's
``Model.register(ws, model_path=LOCAL_FILE, ...)`` of a file no run wrote is refused with
that way out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .unsupported import module_getattr, not_supported


class Model:
    """A registered model version: ``Model(ws, name, version=None)`` is the latest when no version is given."""

    def __init__(
        self,
        workspace: Any,
        name: str | None = None,
        id: str | None = None,
        version: int | None = None,
        tags: Any = None,
        properties: Any = None,
        run_id: str | None = None,
    ) -> None:
        from ...api import get_model

        if id and not name:
            name, _, ref_version = str(id).partition(":")
            version = version or (int(ref_version) if ref_version else None)
        if not name:
            raise ConfigError("Model(ws, name=...) needs the model's name.")
        self.workspace = workspace
        self._model = get_model(name, version, store=getattr(workspace, "_store", None))
        self.name, self.version = self._model.name, self._model.version
        self.id = f"{self.name}:{self.version}"
        self.run_id = self._model.run_id
        self.tags = dict(self._model.tags)
        self.properties = {f"metric.{k}": v for k, v in (self._model.metrics or {}).items()}
        self.description = self._model.description

    @classmethod
    def _from(cls, workspace: Any, launchbay_model: Any) -> Model:
        return cls(workspace, launchbay_model.name, version=launchbay_model.version)

    @classmethod
    def _register_from_run(
        cls, run: Any, name: str, path: str | None, tags: Any, properties: Any, description: str | None
    ) -> Model:
        if not path:
            raise ConfigError("register_model needs model_path, e.g. model_path='outputs/model.pkl'.")
        model = run.handle.register_model(name, path=path, tags=tags, description=description)
        return cls._from(run.experiment.workspace, model)

    @staticmethod
    def register(
        workspace: Any,
        model_path: str,
        model_name: str,
        tags: Any = None,
        properties: Any = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Model:
        not_supported(
            "Model.register of a local file",
            "launchbay registers models from a run's files, so each version keeps its run, metrics and code: "
            f"run.register_model(model_name={model_name!r}, model_path='outputs/...') on the run that wrote it.",
        )

    @staticmethod
    def list(workspace: Any, name: str | None = None, **kwargs: Any) -> list[Model]:
        from ...api import models

        rows = models(store=getattr(workspace, "_store", None))
        return [Model(workspace, row["name"]) for row in rows if name in (None, row["name"])]

    @classmethod
    def latest_by_name(cls, workspace: Any) -> dict[str, Model]:
        return {m.name: m for m in cls.list(workspace)}

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: Any = None) -> str:
        from ...api import get_model

        store = getattr(_workspace, "_store", None)
        return str(get_model(model_name, version, store=store).path)

    def download(self, target_dir: str = ".", exist_ok: bool = False, exists_ok: bool | None = None) -> str:
        target = Path(target_dir)
        if target.joinpath(Path(self._model.details.get("path", "")).name).exists() and not (exist_ok or exists_ok):
            raise ConfigError(f"{target_dir} already holds the model's file; pass exist_ok=True to overwrite it.")
        return str(self._model.download(target_dir))

    def add_tags(self, tags: dict[str, Any]) -> None:
        not_supported("Model.add_tags", "Tags are set when registering: run.register_model(..., tags={...}).")

    def deploy(self, *args: Any, **kwargs: Any) -> Any:
        not_supported("Model.deploy", "Deployment is not part of launchbay; serve the model's files yourself.")

    def __repr__(self) -> str:
        return f"Model(workspace={self.workspace!r}, name={self.name}, id={self.id}, version={self.version})"


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core.model", name)


__all__ = ["Model"]
