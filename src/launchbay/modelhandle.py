"""``launchbay.get_model`` and the ``Model`` handle: a registered model version by name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .registry import MODEL_USE, ModelRegistry, ModelVersion
from .store import Store, open_store


class Model:
    """One version of a registered model. ``.path`` is a read-only local copy; ``.download(dir)`` a copy of yours."""

    def __init__(self, version: ModelVersion, store: Store) -> None:
        self._version = version
        self._store = store
        self.name, self.version = version.name, version.version
        self.run_id, self.tags, self.metrics = version.run_id, version.tags, version.metrics
        self.description = version.description

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version}, run_id={self.run_id!r})"

    @classmethod
    def register(
        cls,
        run: Any,
        name: str,
        path: str,
        *,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Model:
        """Register ``path`` of a finished run (a RunHandle or a run id) as the next version of ``name``."""
        from .api import get_run

        handle = get_run(run) if isinstance(run, str) else run
        return handle.register_model(name, path=path, tags=tags, description=description)  # type: ignore[no-any-return]

    @property
    def details(self) -> dict[str, Any]:
        return self._version.to_dict()

    @property
    def path(self) -> Path:
        """The model file (or folder) in the store's cache, written once; do not modify it."""
        self._note_use()
        return ModelRegistry(self._store).local_path(self._version)

    def download(self, target_dir: str | os.PathLike[str] = ".") -> Path:
        """Write the model's file (or folder) into ``target_dir``; returns its path there."""
        self._note_use()
        return ModelRegistry(self._store).download(self._version, Path(target_dir))

    def _note_use(self) -> None:
        """Inside a run, record that this run loaded this version (``models delete`` then asks --force)."""
        if not os.environ.get("LAUNCHBAY_RUN_ID"):
            return
        from .tracking.inrun import Run

        run = Run.get_context()
        if not run.offline:
            run._record(MODEL_USE, self._version.ref, {"name": self.name, "version": self.version})


def get_model(name: str, version: int | None = None, *, store: str | os.PathLike[str] | None = None) -> Model:
    """The latest version of model ``name`` (or ``version``); ``name`` may also be ``NAME:VERSION``."""
    from .registry import parse_ref

    parsed, ref_version = parse_ref(name)
    store_obj = open_store(store)
    return Model(ModelRegistry(store_obj).get(parsed, version or ref_version), store_obj)


def models(*, store: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every registered model: its latest version's details and how many versions it has."""
    with open_store(store) as opened:
        return ModelRegistry(opened).models()
