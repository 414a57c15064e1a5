"""Talking to Docker daemons: one cached client per daemon, errors that say what to do, run options.

Kept apart from docker.py (the target's hooks); ``docker_client`` is also what
``launchbay env`` uses to list and prune environment images.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TargetError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError", "timed out"):
        if marker in text:
            return {
                "FileNotFoundError": "the socket does not exist",
                "ConnectionRefusedError": "connection refused",
                "PermissionError": "permission denied on the socket",
                "timed out": "timed out",
            }[marker]
    return text[:200]


def docker_client(host: str, target_name: str = "NAME", ping: bool = False) -> Any:
    """A client for ``host`` (cached per host for the process); ``ping`` checks the daemon answers now."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:
        raise TargetError("The Docker target needs the docker package: pip install 'launchbay[docker]'.") from exc
    if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
        raise TargetError(_no_daemon(host, "the socket does not exist", target_name))
    with _clients_lock:
        cached = _clients.get(host)
    if cached is not None:
        if not ping:
            return cached
        try:
            cached.ping()
            return cached
        except (DockerException, OSError) as exc:
            with _clients_lock:
                _clients.pop(host, None)
            raise TargetError(_no_daemon(host, _short_reason(exc), target_name)) from exc
    try:
        kwargs: dict[str, Any] = {"base_url": host, "timeout": 120}
        if host.startswith("ssh://"):
            try:
                import paramiko  # noqa: F401
            except ImportError:
                kwargs["use_ssh_client"] = True  # the ssh binary instead of paramiko
        client = docker.DockerClient(**kwargs)
        client.ping()
    except (DockerException, OSError) as exc:
        raise TargetError(_no_daemon(host, _short_reason(exc), target_name)) from exc
    with _clients_lock:
        _clients[host] = client
    return client


def _no_daemon(host: str, reason: str, target_name: str) -> str:
    if host.startswith("unix://"):
        return (
            f"No Docker daemon at {host}: {reason}. Start one with `dockerd` (or `sudo systemctl start docker`) "
            f"or set docker_host in [targets.{target_name}]."
        )
    return (
        f"No Docker daemon reachable at {host}: {reason}. Check that the daemon runs there and this machine can "
        f"reach it, or fix docker_host in [targets.{target_name}]."
    )


def device_requests(gpus: Any) -> list[Any]:
    """``gpus = "all"``, a count, or device ids ("0,1") as Docker device requests (like ``--gpus``)."""
    from docker.types import DeviceRequest

    if gpus in (None, "", 0, "0", False):
        return []
    if gpus is True or str(gpus).lower() == "all":
        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    text = str(gpus)
    if text.isdigit():
        return [DeviceRequest(count=int(text), capabilities=[["gpu"]])]
    ids = [part.strip() for part in text.replace("device=", "").split(",") if part.strip()]
    return [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]


def parse_mounts(mounts: Any) -> dict[str, dict[str, str]]:
    """Extra mounts: ``["/data:/data:ro", ...]`` or ``[{source=, target=, mode=}]``."""
    out: dict[str, dict[str, str]] = {}
    if isinstance(mounts, str):
        mounts = [m for m in mounts.split(";") if m.strip()]
    for item in mounts or []:
        if isinstance(item, dict):
            source, dest, mode = item.get("source"), item.get("target"), item.get("mode", "rw")
        else:
            parts = str(item).split(":")
            if len(parts) not in (2, 3):
                raise ConfigError(f"Mount {item!r} should look like '/host/path:/container/path[:ro]'.")
            source, dest, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else "rw"
        if not source or not dest:
            raise ConfigError(f"Mount {item!r} needs both a source and a target path.")
        out[str(Path(str(source)).expanduser().resolve())] = {"bind": str(dest), "mode": str(mode)}
    return out


def api_message(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip().rstrip(".")
