"""Which backend opens a store URI: a registry of schemes, open to other packages.

``open_store(uri)`` looks at the URI's scheme. A bare path, or ``file:``, is the embedded store
(sqlite.py), exactly as launchbay always opened a folder; a path that merely holds a colon stays a
path. Any other scheme is a ``StoreBackend`` named by an entry point of the ``launchbay.stores``
group (``postgresql = "somepkg.store:Backend"`` in that package's pyproject.toml), loaded only when
a URI asks for it, so a broken plugin costs nothing until it is used and then says which it is.
The built-in schemes are named here too, in the same "module:attribute" form: a runner that ships
launchbay inside a snapshot has no package metadata to find them in.
"""

from __future__ import annotations

import importlib
import os
import re
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import LAUNCHBAY_STORE
from ..errors import LaunchbayError, StoreError

if TYPE_CHECKING:
    from .base import Store

ENTRY_POINT_GROUP = "launchbay.stores"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_BUILT_IN = {
    "file": "launchbay.store.sqlite:FolderBackend",
    "postgresql": "launchbay.store.postgres:PostgresBackend",
    "postgres": "launchbay.store.postgres:PostgresBackend",
}


class StoreBackend(ABC):
    """Opens the stores of one URI scheme; an entry point of ``launchbay.stores`` names a subclass."""

    @abstractmethod
    def open(self, location: str | None, start: Path | None = None) -> Store:
        """The store at ``location`` (the whole URI; None: discover it from ``start``), migrated and ready."""

    def error(self, exc: BaseException, location: str | None) -> LaunchbayError | None:
        """The launchbay error for a driver error that escaped this backend's stores (None: not ours)."""
        return None


def scheme_of(location: str) -> str:
    """The URI scheme of ``location``, lower case; ``""`` for a bare path."""
    found = _SCHEME.match(location)
    return found.group(1).lower() if found else ""


def schemes() -> list[str]:
    """Every scheme a store URI may have here: the built-ins and those of installed packages."""
    return sorted({*_BUILT_IN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def backend_for(location: str | None) -> StoreBackend:
    """The backend that opens ``location`` (see the module docstring)."""
    scheme = scheme_of(location or "")
    if scheme in ("", "file"):
        return _load("file", _BUILT_IN["file"])
    if scheme in _BUILT_IN:
        return _load(scheme, _BUILT_IN[scheme])
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        return _load(scheme, ep.value)
    if "://" not in (location or ""):
        return _load("file", _BUILT_IN["file"])  # a folder whose name holds a colon, as before
    known = ", ".join(s + ":" for s in schemes())
    raise StoreError(
        f"No store backend for {scheme}: URIs (store {location!r}); launchbay knows {known} and folder paths."
        f" Install the package that provides {scheme}: (an entry point in the"
        f" {ENTRY_POINT_GROUP!r} group), or pass a folder with --store / LAUNCHBAY_STORE."
    )


def _load(scheme: str, reference: str) -> StoreBackend:
    module_name, _, attribute = reference.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise StoreError(
            f"The store backend for {scheme}: ({reference}) cannot be loaded: {exc}. Reinstall the package that"
            " provides it."
        ) from exc
    backend = found() if isinstance(found, type) else found
    if not isinstance(backend, StoreBackend):
        raise StoreError(
            f"The store backend for {scheme}: ({reference}) is a {type(backend).__name__}, not a StoreBackend;"
            " fix that package's launchbay.stores entry point."
        )
    return backend


def open_store(uri: str | os.PathLike[str] | None = None, *, start: str | os.PathLike[str] | None = None) -> Store:
    """The store at ``uri``, else ``LAUNCHBAY_STORE``, else the nearest ``.launchbay/`` at or above
    ``start`` (default: the current folder), created there on first use."""
    here = Path(start).resolve() if start else None
    location = str(uri) if uri else LAUNCHBAY_STORE.get() or configured_store(here)
    return backend_for(location).open(location, here)


def configured_store(start: Path | None) -> str | None:
    """``[store] url`` of the project's launchbay.toml (a relative folder is the project's), or None.

    A launchbay.toml that cannot be read names no store here: the session that loads it says why
    (and a command that only reads the store goes on, as it does without a team store)."""
    from ..config import load_config
    from ..errors import ConfigError

    try:
        config = load_config(start)
    except ConfigError:
        return None
    url = config.store.get("url")
    if not url:
        return None
    url = str(url)
    if not scheme_of(url) and config.root is not None and not Path(url).expanduser().is_absolute():
        return str(config.root / url)
    return url


def escaped_error(exc: BaseException, uri: str | None) -> LaunchbayError | None:
    """The one-line error for a driver error that reached a front end, from the backend of ``uri``
    (else ``LAUNCHBAY_STORE``, else the embedded store); None when it is no store's failure."""
    location = uri or LAUNCHBAY_STORE.get()
    try:
        backend = backend_for(location)
    except LaunchbayError:
        return None
    return backend.error(exc, location)
