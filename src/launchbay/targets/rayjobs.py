"""Ray's Jobs REST API, in plain HTTP (stdlib only, no Ray import), the cluster's CPUs and the sizes its settings take.

Why not Ray's SDK: importing it takes 3-6 s, paid on every ``launchbay show`` of a
Ray run. The package upload is the same ``PUT /api/packages/gcs/...`` the SDK makes.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import TargetError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_bytes(value: Any) -> int:
    """``4000000000``, ``"4GB"`` or ``"512 MiB"`` as a number of bytes."""
    if isinstance(value, (int, float)):
        return int(value)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise TargetError(f'memory = {value!r} is not a size; write bytes or e.g. "4GB" in launchbay.toml.')
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


class JobsAPI:
    """The few calls of Ray's Jobs REST API a run needs after submission (stdlib HTTP, no Ray import)."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.address = address.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: bytes | None = None, content_type: str = "") -> Any:
        if body is None and method in ("POST", "PUT"):
            body = b""
        request = urllib.request.Request(self.address + path, method=method, data=body)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = response.read()
                return json.loads(data) if data.strip()[:1] in (b"{", b"[") else None
        except urllib.error.HTTPError as exc:
            if exc.code == 413:
                raise TargetError(
                    f"Ray's Jobs API at {self.address} refused the run's package as too large (HTTP 413); "
                    "leave big files out of the snapshot (.launchbayignore)."
                ) from exc
            detail = exc.read().decode("utf-8", "replace").strip().splitlines()
            raise TargetError(
                f"Ray's Jobs API at {self.address} answered {exc.code} to {method} {path}: "
                f"{detail[-1] if detail else exc.reason}."
            ) from exc
        except (OSError, ValueError) as exc:
            raise TargetError(
                f"Cannot reach Ray's Jobs API at {self.address} ({exc}); start the cluster (`ray start --head`) "
                "or fix `address` in launchbay.toml."
            ) from exc

    def upload_package(self, package: Path) -> str:
        """Put a zip into the cluster's package store (as Ray's SDK does); returns its ``gcs://`` URI."""
        data = package.read_bytes()
        name = f"_ray_pkg_{hashlib.sha1(data).hexdigest()}.zip"
        try:
            self._call("GET", f"/api/packages/gcs/{name}")  # also pins it until the job starts
        except TargetError:
            self._call("PUT", f"/api/packages/gcs/{name}", data)
        return f"gcs://{name}"

    def submit(self, request: dict[str, Any]) -> str:
        body = json.dumps(request).encode()
        return str(self._call("POST", "/api/jobs/", body, "application/json")["submission_id"])

    def version(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/version") or {})

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/jobs/{job_id}") or {})

    def logs(self, job_id: str) -> str:
        return str(self._call("GET", f"/api/jobs/{job_id}/logs")["logs"])

    def stop(self, job_id: str) -> bool:
        return bool((self._call("POST", f"/api/jobs/{job_id}/stop") or {}).get("stopped"))


def cluster_cpus(address: str) -> tuple[float | None, float | None]:
    """The CPUs of the Ray cluster's largest node and of all its nodes (None when the dashboard does not say)."""
    try:
        with urllib.request.urlopen(address.rstrip("/") + "/api/cluster_status", timeout=5) as resp:
            data = json.load(resp)
        types = data["data"]["clusterStatus"]["loadMetricsReport"]["nodeTypes"]
        largest = max(float(resources.get("CPU", 0)) for resources, _count in types)
        return largest, sum(float(resources.get("CPU", 0)) * count for resources, count in types)
    except Exception:  # an older or unreachable dashboard: the job's own start-up will say
        return None, None
