"""Which registry an image comes from, and the credentials launchbay may use there.

``[images]`` in launchbay.toml::

    [images]
    registry = "registry.example.com:5000"      # built environment images are pushed here, and pulled
                                                # from here before anything is built
    [images.credentials."registry.example.com:5000"]
    username = "${REGISTRY_USER}"               # ${ENV} references: no secret in the file
    password = "${REGISTRY_PASSWORD}"

A registry without credentials there gets those of the Docker config (``~/.docker/config.json``
or ``$DOCKER_CONFIG``: what ``docker login`` wrote, credential helpers included). Credentials are
handed to the daemon for one pull or push and never written anywhere by launchbay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import ProjectConfig
from ..errors import ConfigError

DOCKER_HUB = "docker.io"
_KEYS = {"registry": "where built environment images are pushed and pulled", "credentials": "a table per registry"}


@dataclass(frozen=True)
class ImageSettings:
    """``[images]``, checked: the registry built images go to, and credentials per registry."""

    registry: str | None = None
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)

    def auth_for(self, registry: str) -> dict[str, str] | None:
        """The credentials for ``registry``: launchbay.toml's, else the Docker config's, else None."""
        found = self.credentials.get(registry)
        if found is not None:
            return {"username": found["username"], "password": found["password"]}
        return docker_config_auth(registry)

    def source(self, registry: str) -> str:
        """Where the credentials for ``registry`` come from, for a message (never the values)."""
        if registry in self.credentials:
            return f'[images.credentials."{registry}"] of launchbay.toml'
        return "the Docker config (docker login)" if docker_config_auth(registry) else "none"


def image_settings(config: ProjectConfig) -> ImageSettings:
    """``[images]`` of ``config``; anything launchbay cannot use is one line naming the key."""
    data = config.images or {}
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        known = "; ".join(f"{k} ({v})" for k, v in _KEYS.items())
        raise ConfigError(f"[images] has unknown key(s) {', '.join(unknown)}; known keys: {known}.")
    registry = data.get("registry")
    if registry is not None and (not isinstance(registry, str) or not registry.strip() or "/" in registry.strip("/")):
        raise ConfigError(f'[images] registry must be a registry address such as "127.0.0.1:5000", not {registry!r}.')
    credentials: dict[str, dict[str, str]] = {}
    for host, entry in (data.get("credentials") or {}).items():
        if not isinstance(entry, dict) or not {"username", "password"} <= set(entry):
            raise ConfigError(
                f'[images.credentials."{host}"] needs username and password, e.g. password = "${{REGISTRY_PASSWORD}}".'
            )
        credentials[str(host)] = {"username": str(entry["username"]), "password": str(entry["password"])}
    return ImageSettings(registry.strip().rstrip("/") if registry else None, credentials)


def registry_of(image: str) -> str:
    """The registry an image reference names (``docker.io`` when its first part is no host)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def split_tag(image: str) -> tuple[str, str | None]:
    """``repo[:tag]`` or ``repo@digest`` as (repository, tag or digest); a port is not a tag."""
    if "@" in image:
        repo, _, digest = image.partition("@")
        return repo, digest
    repo, colon, tag = image.rpartition(":")
    if colon and "/" not in tag:
        return repo, tag
    return image, None


def docker_config_auth(registry: str) -> dict[str, str] | None:
    """What ``docker login registry`` left in the Docker config (read afresh: a login counts at once)."""
    try:
        from docker import auth
    except ImportError:
        return None
    try:
        found: Any = auth.resolve_authconfig(auth.load_config(), registry)
    except Exception:  # noqa: BLE001 - an unreadable config or a failing helper: no credentials from it
        return None
    if not found or not (found.get("Username") or found.get("username")):
        return None
    return {
        "username": str(found.get("Username") or found.get("username")),
        "password": str(found.get("Password") or found.get("password") or ""),
    }
