"""The embedded store refuses to open on a network file system (SQLite's locks are not safe there).

No NFS, SMB or sshfs server can run on these machines, so the refusal is shown with a mount table
written as the kernel writes ``/proc/self/mountinfo`` (an NFS home, a local root); the store on
this machine's own disk is opened through the real table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from launchbay.errors import StoreError
from launchbay.store import RunStore, netfs, open_store

MOUNTS = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:44 / /home rw,relatime shared:20 - nfs4 files.example:/export/home rw,vers=4.2
41 40 0:45 / /home/maya/local\\040disk rw,relatime shared:21 - ext4 /dev/sdb1 rw
"""


def test_the_mount_holding_a_path_is_the_longest_mount_point_above_it() -> None:
    assert netfs.fs_type(Path("/home/maya/proj/.launchbay"), MOUNTS) == "nfs4"
    assert netfs.fs_type(Path("/home/maya/local disk/proj/.launchbay"), MOUNTS) == "ext4"
    assert netfs.fs_type(Path("/tmp/proj/.launchbay"), MOUNTS) == "ext4"
    assert netfs.fs_type(Path("/homework/.launchbay"), MOUNTS) == "ext4"  # /home is not a prefix of it


def test_a_store_on_nfs_is_one_line_pointing_to_the_team_store_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTS.replace(" /home ", f" {tmp_path} "))
    monkeypatch.setattr(netfs, "MOUNTINFO", table)
    monkeypatch.delenv("LAUNCHBAY_ALLOW_NETWORK_FS", raising=False)
    with pytest.raises(
        StoreError, match=r"network file system \(nfs4\).*team store.*LAUNCHBAY_ALLOW_NETWORK_FS=1"
    ) as e:
        open_store(tmp_path / "proj" / ".launchbay")
    assert "\n" not in str(e.value) and not (tmp_path / "proj").exists()  # nothing made there
    monkeypatch.setenv("LAUNCHBAY_ALLOW_NETWORK_FS", "1")
    with open_store(tmp_path / "proj" / ".launchbay") as store:
        assert isinstance(store, RunStore)


def test_a_store_on_this_machines_disk_opens_as_ever(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAUNCHBAY_ALLOW_NETWORK_FS", raising=False)
    assert netfs.fs_type(tmp_path, netfs.MOUNTINFO.read_text()) not in netfs.NETWORK_TYPES
    with open_store(tmp_path / ".launchbay") as store:
        assert isinstance(store, RunStore)
