"""The embedded store refuses a network file system: SQLite's locks are not safe there.

NFS, SMB/CIFS, sshfs and their kind either do not implement the POSIX locks SQLite's WAL mode
relies on or implement them loosely, so two machines writing one ``.launchbay/`` on a shared home
can corrupt its index. Opening the embedded store there is one line pointing to the team store
(PostgreSQL + S3), unless ``LAUNCHBAY_ALLOW_NETWORK_FS=1`` says the user knows (one machine only).
The file system is found in ``/proc/self/mountinfo`` (Linux; elsewhere nothing is checked).
"""

from __future__ import annotations

from pathlib import Path

from ..config import LAUNCHBAY_ALLOW_NETWORK_FS
from ..errors import StoreError

NETWORK_TYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "afs", "glusterfs", "fuse.glusterfs"}
)
MOUNTINFO = Path("/proc/self/mountinfo")


def fs_type(path: Path, mountinfo: str) -> str | None:
    """The file-system type of the mount holding ``path`` (an absolute, resolved path), from mountinfo text."""
    target = str(path)
    best, found = -1, None
    for line in mountinfo.splitlines():
        head, dash, tail = line.partition(" - ")
        fields = head.split(" ", 5)
        if not dash or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > best:
            best, found = len(mount_point), tail.split(" ", 1)[0]
    return found


def refuse_network_fs(root: Path) -> None:
    """Raise the one line when ``root`` (the store folder) lies on a network file system."""
    if LAUNCHBAY_ALLOW_NETWORK_FS.get():
        return
    try:
        mountinfo = MOUNTINFO.read_text()
    except OSError:
        return  # not Linux: nothing to go by
    kind = fs_type(root, mountinfo)
    if kind in NETWORK_TYPES:
        raise StoreError(
            f"The store {root} is on a network file system ({kind}), where SQLite's locks are not safe: two"
            " machines writing it can damage its index. Use a team store (a PostgreSQL [store] url and"
            " S3 blobs, see README 'Team store'), move the store to a local disk (--store / LAUNCHBAY_STORE),"
            " or set LAUNCHBAY_ALLOW_NETWORK_FS=1 if only this machine ever uses it."
        )
