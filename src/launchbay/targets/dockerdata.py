"""Data inputs on a remote Docker daemon: one volume per data version, filled once, mounted read-only.

A version's volume is ``launchbay-data-<hash>``: its files under ``tree/``, then a ``.launchbay-complete``
file holding the version's hash, written last — a volume without it (a fill cut short) is filled again,
never used. Every run of that version on the daemon mounts the volume read-only at
``/launchbay/data/<NAME>`` and reads ``tree/``; a write fails with "Read-only file system". Filling goes
through a helper container that is created, never started, and removed (``put_archive``), so it needs
nothing on the daemon's host but the run's own image.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ..data.manifest import Manifest
from ..data.progress import Progress
from ..store import Store
from ..store.records import RunInput

VOLUME_PREFIX = "launchbay-data-"
MOUNT = "/launchbay/data"
MARKER = ".launchbay-complete"
LABEL = "launchbay.data.version"
BYTES_LABEL = "launchbay.data.bytes"
STORE_LABEL = "launchbay.store"  # the store that made the volume: its gc frees only its own
SOURCE_LABEL = "launchbay.data.source"  # a hash of where the version came from: earlier versions seed a new one

# Run in a helper container with the earlier version at /b and the new one at /v: the files they share.
SEED = r"""
import json, os, shutil, sys
pairs = json.load(open("/v/.launchbay-seed.json"))
for src, dst in pairs:
    dest = os.path.join("/v/tree", dst)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copyfile(os.path.join("/b/tree", src), dest)
    os.chmod(dest, 0o444)
os.unlink("/v/.launchbay-seed.json")
"""


def volume_name(item: RunInput) -> str:
    return VOLUME_PREFIX + item.hash[:40]


def _manifest(store: Store, item: RunInput) -> Manifest:
    return Manifest.from_bytes(store.blobs.read_bytes(item.hash))


def path_inside(store: Store, item: RunInput) -> str:
    """Where the run finds the input in its container."""
    tree = f"{MOUNT}/{item.name}/tree"
    return tree if item.kind == "folder" else f"{tree}/{_manifest(store, item).files[0].path}"


def volume_mounts(inputs: list[RunInput]) -> dict[str, dict[str, str]]:
    return {volume_name(i): {"bind": f"{MOUNT}/{i.name}", "mode": "ro"} for i in inputs}


def _complete(helper: Any, item: RunInput) -> bool:
    from docker.errors import NotFound

    try:
        stream, _ = helper.get_archive(f"/v/{MARKER}")
    except NotFound:
        return False
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(MARKER)
        return member is not None and member.read().decode().strip() == item.hash


def fill_volume(
    client: Any, store: Store, item: RunInput, image: str, user: str, say: Callable[[str], None] | None = None
) -> int:
    """Make the version's volume complete on the daemon; the data bytes sent (0 when it was)."""
    import hashlib

    from docker.errors import NotFound

    name = volume_name(item)
    source = hashlib.sha256(str(item.location).encode()).hexdigest()[:32]
    try:
        client.volumes.get(name)
    except NotFound:
        labels = {
            LABEL: item.hash,
            SOURCE_LABEL: source,
            BYTES_LABEL: str(item.bytes),
            STORE_LABEL: str(store.cache_dir),
        }
        client.volumes.create(name, labels=labels)
    helper = client.containers.create(
        image, command=["true"], volumes={name: {"bind": "/v", "mode": "rw"}}, network_mode="none"
    )
    try:
        if _complete(helper, item):
            return 0
        manifest = _manifest(store, item)
        uid, gid = (int(x) for x in user.split(":")[:2]) if ":" in user else (0, 0)
        seeded = _seed(client, store, item, manifest, image, source, uid, gid)
        progress = Progress(say, f"sending input {item.name!r} to a volume on the Docker daemon")
        location = store_location(item)
        sent = 0
        with tempfile.TemporaryFile(dir=store.cache_dir) as spool:
            with tarfile.open(fileobj=spool, mode="w") as tar:
                for f in manifest.files:
                    if f.path in seeded:
                        continue
                    source = location if manifest.kind == "file" else f"{location}/{f.path}"
                    info = tar.gettarinfo(source, arcname=f"tree/{f.path}")
                    info.uid, info.gid, info.uname, info.gname, info.mode = uid, gid, "", "", 0o444
                    with open(source, "rb") as fh:
                        tar.addfile(info, fh)
                    sent += f.size
                    progress.add(1, f.size)
            spool.seek(0)
            helper.put_archive("/v", spool)
        marker = io.BytesIO()
        with tarfile.open(fileobj=marker, mode="w") as tar:
            data = item.hash.encode()
            info = tarfile.TarInfo(MARKER)
            info.size, info.mtime, info.uid, info.gid = len(data), int(time.time()), uid, gid
            tar.addfile(info, io.BytesIO(data))
        helper.put_archive("/v", marker.getvalue())  # last: only now is the volume complete
        progress.done()
        return sent
    finally:
        helper.remove(force=True)


def _seed(
    client: Any, store: Store, item: RunInput, manifest: Manifest, image: str, source: str, uid: int, gid: int
) -> set[str]:
    """Copy, inside the daemon, the files an earlier complete version of the same source shares with this one
    (a changed file is then the only one sent); the paths seeded."""
    import json

    best: tuple[int, str, dict[str, str]] | None = None
    wanted = {f.sha256: f.path for f in manifest.files}
    for volume in client.volumes.list(filters={"label": f"{SOURCE_LABEL}={source}"}):
        version = str((volume.attrs.get("Labels") or {}).get(LABEL) or "")
        if not version or version == item.hash or not store.blobs.has(version):
            continue
        earlier = Manifest.from_bytes(store.blobs.read_bytes(version))
        shared = {f.sha256: f.path for f in earlier.files if f.sha256 in wanted}
        if shared and (best is None or len(shared) > best[0]):
            best = (len(shared), volume.name, shared)
    if best is None:
        return set()
    _, base, shared = best
    pairs = [[shared[f.sha256], f.path] for f in manifest.files if f.sha256 in shared]
    runner = client.containers.create(
        image,
        command=["python3", "-c", SEED],
        volumes={base: {"bind": "/b", "mode": "ro"}, volume_name(item): {"bind": "/v", "mode": "rw"}},
        network_mode="none",
        user=f"{uid}:{gid}",
    )
    try:
        base_helper_ok = _complete_volume(runner, "/b", base)
        if not base_helper_ok:
            return set()
        plan = io.BytesIO()
        with tarfile.open(fileobj=plan, mode="w") as tar:
            data = json.dumps(pairs).encode()
            info = tarfile.TarInfo(".launchbay-seed.json")
            info.size, info.uid, info.gid, info.mode = len(data), uid, gid, 0o644
            tar.addfile(info, io.BytesIO(data))
        runner.put_archive("/v", plan.getvalue())
        runner.start()
        if int(runner.wait(timeout=600).get("StatusCode", 1)) != 0:
            return set()  # sent whole instead
    finally:
        runner.remove(force=True)
    return {dst for _, dst in pairs}


def _complete_volume(container: Any, mount: str, name: str) -> bool:
    """Is the volume mounted at ``mount`` complete (its marker names its own version)?"""
    from docker.errors import NotFound

    try:
        stream, _ = container.get_archive(f"{mount}/{MARKER}")
    except NotFound:
        return False
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(MARKER)
        return member is not None and name.endswith(member.read().decode().strip()[:40])


def store_location(item: RunInput) -> str:
    return str(item.location)


def collect_volumes(client: Any, store: Store, where: str, keep: set[str], dry_run: bool) -> dict[str, Any]:
    """Remove this store's data volumes of versions not in ``keep`` (a volume a container still uses stays)."""
    from docker.errors import APIError

    kept = {VOLUME_PREFIX + h[:40] for h in keep}
    gone, freed = [], 0
    volumes = client.volumes.list(filters={"label": f"{STORE_LABEL}={store.cache_dir}"})
    for volume in sorted(volumes, key=lambda v: str((v.attrs.get("Labels") or {}).get(LABEL) or v.name)):
        if volume.name in kept or client.containers.list(all=True, filters={"volume": volume.name}):
            continue  # wanted, or a container (a live run) still mounts it
        if not dry_run:
            try:
                volume.remove()
            except APIError:  # in use by a container: kept
                continue
        labels = volume.attrs.get("Labels") or {}
        gone.append(str(labels.get(LABEL) or volume.name))
        freed += int(labels.get(BYTES_LABEL) or 0)
    return {"cache": f"volumes on {where}", "versions": gone, "objects": len(gone), "bytes": freed}
