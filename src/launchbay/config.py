"""Configuration: typed LAUNCHBAY_* variables (declared once) and launchbay.toml.

The project root is the nearest folder holding ``launchbay.toml`` (or a
``pyproject.toml`` with ``[tool.launchbay]``). The store is the nearest ancestor
``.launchbay/`` folder, created in the current folder on first use, unless
``LAUNCHBAY_STORE`` or ``--store`` says otherwise.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import ConfigError, UnknownTargetError
from .plugins import target_types

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")


class EnvVar(Generic[T]):
    """One environment variable, its type and its default, declared in one place."""

    def __init__(self, name: str, parse: Callable[[str], T], default: T, help: str) -> None:
        self.name, self._parse, self.default, self.help = name, parse, default, help

    def get(self) -> T:
        raw = os.environ.get(self.name)
        if raw is None or raw == "":
            return self.default
        try:
            return self._parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{self.name}={raw!r} is not valid ({exc}); fix or unset it.") from exc

    def is_set(self) -> bool:
        return bool(os.environ.get(self.name))


def _opt_str(raw: str) -> str | None:
    return raw


LAUNCHBAY_SCHEDULE: EnvVar[str | None] = EnvVar(
    "LAUNCHBAY_SCHEDULE", _opt_str, None, "Set by the supervisor for a schedule's command: the schedule (a run tag)."
)
LAUNCHBAY_SCHEDULE_FIRE: EnvVar[str | None] = EnvVar(
    "LAUNCHBAY_SCHEDULE_FIRE", _opt_str, None, "Set by the supervisor for a schedule's command: which fire it is."
)
LAUNCHBAY_SCHEDULE_VERSION: EnvVar[str | None] = EnvVar(
    "LAUNCHBAY_SCHEDULE_VERSION", _opt_str, None, "Set for an --on-change schedule's command: DATASET:VERSION."
)
LAUNCHBAY_STORE: EnvVar[str | None] = EnvVar(
    "LAUNCHBAY_STORE", _opt_str, None, "The store: a folder path or a store URI (overrides discovery)."
)
LAUNCHBAY_BLOBS: EnvVar[str | None] = EnvVar(
    "LAUNCHBAY_BLOBS",
    _opt_str,
    None,
    "Where the store keeps blobs: a folder or s3://bucket/prefix (overrides [store] blobs in launchbay.toml).",
)
LAUNCHBAY_ALLOW_NETWORK_FS = EnvVar(
    "LAUNCHBAY_ALLOW_NETWORK_FS",
    lambda raw: raw.strip().lower() not in ("0", "false", "no"),
    False,
    "1: open an embedded store on a network file system anyway (only one machine may use it).",
)
LAUNCHBAY_USER: EnvVar[str | None] = EnvVar(
    "LAUNCHBAY_USER", _opt_str, None, "Who makes runs (created_by): overrides [user] name and the login name."
)
LAUNCHBAY_HEARTBEAT_TIMEOUT = EnvVar(
    "LAUNCHBAY_HEARTBEAT_TIMEOUT",
    float,
    30.0,
    "Seconds without a runner heartbeat after which a run is marked Failed.",
)
LAUNCHBAY_SNAPSHOT_MAX_BYTES = EnvVar("LAUNCHBAY_SNAPSHOT_MAX_BYTES", int, 300 * 1024 * 1024, "Snapshot byte budget.")
LAUNCHBAY_SNAPSHOT_MAX_FILES = EnvVar("LAUNCHBAY_SNAPSHOT_MAX_FILES", int, 2000, "Snapshot file-count budget.")
LAUNCHBAY_CANCEL_GRACE = EnvVar(
    "LAUNCHBAY_CANCEL_GRACE",
    float,
    3.0,
    "Seconds a canceled run gets after SIGTERM before SIGKILL.",
)
LAUNCHBAY_DATA_TIMEOUT = EnvVar(
    "LAUNCHBAY_DATA_TIMEOUT",
    float,
    30.0,
    "Seconds a data input's server (an http(s) URL) may stay silent before the submit is refused.",
)

CONFIG_FILE = "launchbay.toml"
STORE_DIRNAME = ".launchbay"


@dataclass
class ProjectConfig:
    """What launchbay.toml says; empty when there is none."""

    root: Path | None = None
    path: Path | None = None
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    #: ``[inputs.NAME]`` tables: data every run of the project gets unless it names its own (data/spec.py)
    inputs: dict[str, Any] = field(default_factory=dict)
    #: ``azureml_compat = true``: Azure ML v1 code runs on launchbay (see launchbay.compat.azureml)
    azureml_compat: bool = False
    #: target sections as written, ``${VAR}`` references unexpanded (what a run records)
    raw_targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``[store]``: ``url`` (a folder or ``postgresql://...``), ``blobs`` (a folder or ``s3://...``),
    #: ``password`` (a ``${ENV}`` reference), ``cache`` (the team store's local folder)
    store: dict[str, Any] = field(default_factory=dict)
    #: ``[s3]``: ``endpoint``, ``region``, ``access_key_id``, ``secret_access_key`` (``${ENV}`` references)
    s3: dict[str, Any] = field(default_factory=dict)
    #: ``[user]``: ``name`` (what runs record as ``created_by``; default: the login name)
    user: dict[str, Any] = field(default_factory=dict)
    #: ``[experiments.NAME]`` tables: ``max_concurrent_runs`` (queueing.py)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``[images]``: ``registry`` (built images are pushed there) and ``credentials`` per registry
    #: (``${ENV}`` references; environments/registries.py)
    images: dict[str, Any] = field(default_factory=dict)

    def target(self, name: str) -> dict[str, Any]:
        if name == "local" and "local" not in self.targets:
            return {"type": "local"}
        try:
            section = self.targets[name]
        except KeyError:
            known = ", ".join(sorted({"local", *self.targets})) or "local"
            where = f" in {self.path}" if self.path else " (no launchbay.toml found)"
            raise UnknownTargetError(
                f"Unknown target {name!r}{where}; known targets: {known}. "
                f"Add a [targets.{name}] section to launchbay.toml or pick a known one."
            ) from None
        if "type" not in section:
            *most, last = (f'"{kind}"' for kind in target_types())
            raise ConfigError(f"[targets.{name}] in {self.path} has no 'type'; set type = {', '.join(most)} or {last}.")
        return section

    def target_names(self) -> list[str]:
        return sorted({"local", *self.targets})


def find_project_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` with launchbay.toml or [tool.launchbay]."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.launchbay" in pyproject.read_text(errors="replace"):
            return folder
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix that line and try again.") from exc


def load_config(start: Path | None = None) -> ProjectConfig:
    """Load the project configuration that applies to ``start`` (default: cwd)."""
    root = find_project_root(start or Path.cwd())
    if root is None:
        return ProjectConfig()
    path = root / CONFIG_FILE
    if path.is_file():
        data = _read_toml(path)
    else:
        path = root / "pyproject.toml"
        data = _read_toml(path).get("tool", {}).get("launchbay", {})
    raw_targets = data.get("targets", {})
    data = expand_env(data, path)
    for section in (
        "targets",
        "environments",
        "snapshot",
        "defaults",
        "inputs",
        "store",
        "s3",
        "user",
        "experiments",
        "images",
    ):
        value = data.get(section, {})
        if not isinstance(value, dict):
            raise ConfigError(f"'{section}' in {path} must be a table, e.g. [{section}.NAME].")
    for kind in ("targets", "environments", "experiments"):
        for name, value in data.get(kind, {}).items():
            if not isinstance(value, dict):
                raise ConfigError(f"[{kind}.{name}] in {path} must be a table of settings.")
    return ProjectConfig(
        root=root,
        path=path,
        targets=dict(data.get("targets", {})),
        environments=dict(data.get("environments", {})),
        snapshot=dict(data.get("snapshot", {})),
        defaults=dict(data.get("defaults", {})),
        inputs=dict(data.get("inputs", {})),
        azureml_compat=_flag(data, "azureml_compat", path),
        raw_targets=dict(raw_targets) if isinstance(raw_targets, dict) else {},
        store=dict(data.get("store", {})),
        s3=dict(data.get("s3", {})),
        user=dict(data.get("user", {})),
        experiments=dict(data.get("experiments", {})),
        images=dict(data.get("images", {})),
    )


def user_name(config: ProjectConfig | None = None) -> str:
    """Who makes a run (its ``created_by``): LAUNCHBAY_USER, else ``[user] name``, else the login name."""
    explicit = LAUNCHBAY_USER.get() or (config.user.get("name") if config else None)
    if explicit:
        return str(explicit)
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (a container with an unknown uid)
        return f"uid{os.getuid()}"


def _flag(data: dict[str, Any], key: str, path: Path) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} in {path} must be true or false, not {value!r}.")
    return value


_ENV_REF = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def expand_env(value: Any, path: Path, where: str = "") -> Any:
    """Replace ``${NAME}`` in every string of launchbay.toml by that environment variable.

    So no secret needs to be written in the file (``password = "${DB_PASSWORD}"``);
    ``$$`` is a literal ``$``. A variable that is not set is one clear error."""
    if isinstance(value, dict):
        return {k: expand_env(v, path, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def _sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        if not _ENV_NAME.match(name):
            raise ConfigError(f"{where} in {path} has ${{{name}}}, which is not a variable name; write ${{NAME}}.")
        found = os.environ.get(name)
        if found is None:
            raise ConfigError(
                f"{where} in {path} uses ${{{name}}}, but the environment variable {name} is not set. "
                f"Set it (export {name}=...) before starting launchbay."
            )
        return found

    return _ENV_REF.sub(_sub, value)


def find_store_dir(explicit: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """Where the store lives: explicit > LAUNCHBAY_STORE > nearest ancestor .launchbay > cwd.

    A ``file:`` URI names the same folder as its path (``store.open_store`` takes other schemes)."""
    if explicit:
        return Path(_file_path(os.fspath(explicit))).expanduser().resolve()
    env = LAUNCHBAY_STORE.get()
    if env:
        return Path(_file_path(env)).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return here / STORE_DIRNAME


def _file_path(location: str) -> str:
    """``file:///a/b`` and ``file:a/b`` -> their path (percent-escapes decoded); anything else as it is."""
    if not location.lower().startswith("file:"):
        return location
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(location)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"The store {location!r} names another host; a file: store is a folder on this machine.")
    return unquote(parts.path)
