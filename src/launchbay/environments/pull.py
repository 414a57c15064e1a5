"""Pull an image the daemon lacks, and push a built one, saying how far each has got.

What the daemon streams (one JSON object per layer event) becomes a progress line at most once a
second, ``pulling NAME: 1/3 layers, 12.0 of 40.5 MB``, and one line at the end. What the registry
refuses (no such image, bad credentials, unreachable) is one ``TargetError`` line that says what to do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ..errors import TargetError
from .cache import Progress, say
from .registries import ImageSettings, registry_of, split_tag

EVERY_S = 1.0
_DONE = {"Pull complete", "Already exists", "Pushed", "Layer already exists", "Mounted from"}
_AUTH = ("unauthorized", "authentication required", "no basic auth credentials", "denied", "401")
_MISSING = ("manifest unknown", "not found", "does not exist", "repository name not known", "404")


class LayerProgress:
    """Layers seen and finished, bytes moved of bytes known: from the daemon's stream."""

    def __init__(self) -> None:
        self.layers: dict[str, tuple[int, int]] = {}  # id -> (current, total)
        self.done: set[str] = set()
        self.present: set[str] = set()  # layers the daemon had already

    def add(self, event: dict[str, Any]) -> None:
        layer, status = event.get("id"), str(event.get("status") or "")
        if not layer or ":" in str(layer) or status.startswith(("Pulling from", "Digest", "Status")):
            return  # the tag's own lines, not a layer's
        current, total = self.layers.get(layer, (0, 0))
        detail = event.get("progressDetail") or {}
        if status in ("Downloading", "Pushing") and detail.get("total"):
            current, total = int(detail.get("current") or 0), int(detail["total"])
        if any(status.startswith(d) for d in _DONE):
            self.done.add(layer)
            if status in ("Already exists", "Layer already exists"):
                self.present.add(layer)
            elif total:
                current = total
        self.layers[layer] = (current, total)

    @property
    def moved(self) -> int:
        return sum(c for c, _ in self.layers.values())

    @property
    def known(self) -> int:
        return sum(t for _, t in self.layers.values())

    def line(self) -> str:
        return f"{len(self.done)}/{len(self.layers)} layers, {_mb(self.moved)} of {_mb(self.known)} MB"

    def summary(self) -> str:
        if not self.layers:
            return "every layer already here"
        here = f" ({len(self.present)} already here)" if self.present else ""
        return f"{len(self.layers)} layers{here}, {_mb(self.moved)} MB"


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "explanation", None) or exc).strip()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def follow(stream: Iterable[dict[str, Any]], what: str, progress: Progress | None) -> tuple[LayerProgress, str | None]:
    """Read the daemon's stream to its end: the layers, and the error it reported (None: none)."""
    layers, error, said = LayerProgress(), None, 0.0
    for event in stream:
        if event.get("error"):
            error = str(event.get("error")).strip()
            continue
        layers.add(event)
        now = time.monotonic()
        if layers.layers and now - said >= EVERY_S:
            say(progress, f"{what}: {layers.line()}")
            said = now
    return layers, error


def pull(client: Any, image: str, where: str, settings: ImageSettings, progress: Progress | None) -> None:
    """Pull ``image`` onto the daemon at ``where``, or raise one line saying why it could not be."""
    from docker.errors import DockerException

    registry = registry_of(image)
    repo, tag = split_tag(image)
    auth = settings.auth_for(registry)
    started = time.monotonic()
    say(progress, f"pulling {image} from {registry} (onto the daemon at {where})")
    try:
        stream = client.api.pull(repo, tag=tag or "latest", stream=True, decode=True, auth_config=auth)
        layers, error = follow(stream, f"pulling {image}", progress)
    except DockerException as exc:
        error = _message(exc)
    if error:
        raise TargetError(pull_error(image, registry, where, error, settings))
    say(progress, f"pulled {image}: {layers.summary()} in {time.monotonic() - started:.1f} s")


def pull_error(image: str, registry: str, where: str, error: str, settings: ImageSettings) -> str:
    """One line for a pull the registry refused."""
    first = error.splitlines()[0][:200].rstrip(".")
    low = error.lower()
    if any(m in low for m in _AUTH):
        source = settings.source(registry)
        given = f"the credentials from {source}" if source != "none" else "no credentials"
        return (
            f"Docker could not pull {image}: {registry} refused {given} ({first}). Set username and password in "
            f'[images.credentials."{registry}"] of launchbay.toml (as ${{ENV}} references) '
            f"or run `docker login {registry}`."
        )
    if any(m in low for m in _MISSING):
        return (
            f"Docker image {image} is not on the daemon at {where}, and {registry} does not have it ({first}). "
            f"Check the name and tag, push it there, or make it here with `docker build` or `docker import`."
        )
    return (
        f"Docker image {image} is not on the daemon at {where}, and pulling it from {registry} failed ({first}). "
        f"Check that the daemon reaches {registry}, or make the image here with `docker build` or `docker import`."
    )


def ensure_present(client: Any, image: str, where: str, settings: ImageSettings, progress: Progress | None) -> bool:
    """Make sure the daemon has ``image``, pulling it when it lacks it; True when it was pulled."""
    from docker.errors import DockerException, ImageNotFound

    try:
        client.images.get(image)
        return False
    except ImageNotFound:
        pass
    except DockerException as exc:
        raise TargetError(f"Could not look up Docker image {image!r} at {where}: {exc}.") from exc
    pull(client, image, where, settings, progress)
    return True


def try_pull(client: Any, image: str, where: str, settings: ImageSettings, progress: Progress | None) -> bool:
    """Pull ``image`` if its registry has it: False (and a progress line) when it does not or cannot."""
    try:
        pull(client, image, where, settings, progress)
        return True
    except TargetError as exc:
        say(progress, f"not pulled: {exc}")
        return False


def push(client: Any, local: str, remote: str, settings: ImageSettings, progress: Progress | None) -> str | None:
    """Tag ``local`` as ``remote`` and push it; the reason it failed, or None."""
    from docker.errors import DockerException

    registry = registry_of(remote)
    repo, tag = split_tag(remote)
    started = time.monotonic()
    try:
        client.images.get(local).tag(repo, tag=tag)
        stream = client.api.push(repo, tag=tag, stream=True, decode=True, auth_config=settings.auth_for(registry))
        layers, error = follow(stream, f"pushing {remote}", progress)
    except DockerException as exc:
        error = _message(exc)
    if error:
        return error.splitlines()[0][:200]
    say(progress, f"pushed {remote}: {len(layers.layers)} layers in {time.monotonic() - started:.1f} s")
    return None
