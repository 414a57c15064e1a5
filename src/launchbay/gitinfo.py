"""Git state of the source folder, recorded as run properties (Azure ML's names, our prefix)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .secrets import mask_urls


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_root(folder: Path) -> Path | None:
    top = _git(folder, "rev-parse", "--show-toplevel")
    return Path(top) if top else None


def git_properties(folder: Path) -> dict[str, str]:
    """``launchbay.git.*`` properties, or {} when the folder is not in a repository."""
    status = _git(folder, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:
        return {}
    commit = branch = ""
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
        elif line and not line.startswith("#"):
            dirty = True
    remote = _git(folder, "config", "--get", "remote.origin.url") or str(git_root(folder) or folder)
    remote = mask_urls(remote)  # https://TOKEN@host or user:password@ never reach the store
    return {
        "launchbay.git.repository_uri": remote,
        "launchbay.git.branch": "" if branch == "(detached)" else branch,
        "launchbay.git.commit": "" if commit == "(initial)" else commit,
        "launchbay.git.dirty": "true" if dirty else "false",
    }
