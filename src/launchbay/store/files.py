"""A run's files and its log, served only from inside the run's ``files/`` folder."""

from __future__ import annotations

import os
from pathlib import Path

from .. import runfolder as rf
from ..errors import RunNotFoundError
from .records import RunRecord


class RunFiles:
    """Listing and reading a run's files (outputs, logs); a link leading outside is never followed."""

    def files_dir(self, run: RunRecord) -> Path:
        return run.run_dir / rf.FILES

    def file_names(self, run: RunRecord) -> list[str]:
        """The run's files; a symlink is listed only when it stays inside the run's files."""
        root = self.files_dir(run)
        if not root.is_dir() or root.is_symlink():
            return []
        names = []
        for folder, _dirs, files in os.walk(root):  # never descends into linked folders
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink() or inside(self.files_dir(run), path.relative_to(root)) is not None:
                    names.append(str(path.relative_to(root)))
        return sorted(names)

    def file_path(self, run: RunRecord, name: str) -> Path:
        """The file of a run named ``name``, refusing anything outside the run's files."""
        candidate = None if name.startswith("/") or "\x00" in name else inside(self.files_dir(run), Path(name))
        if candidate is None or not candidate.is_file():
            raise RunNotFoundError(
                f"Run {run.run_id} has no file {name!r}; list its files with `launchbay files {run.run_id}`."
            )
        return candidate

    def log_path(self, run: RunRecord) -> Path:
        return self.files_dir(run) / rf.STD_LOG

    def read_log(self, run: RunRecord, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        """Bytes of the run's output after ``offset`` (up to ``max_bytes``) and the next offset.

        A log that is (or lies under) a symlink leading out of the run's files is refused."""
        path = inside(self.files_dir(run), Path(rf.STD_LOG))
        if path is None:
            raise RunNotFoundError(
                f"Run {run.run_id}'s log is a link to outside its folder; launchbay serves only files inside it."
            )
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(max_bytes)
        except (FileNotFoundError, IsADirectoryError):
            return b"", offset
        return data, offset + len(data)


def inside(root: Path, rel: Path) -> Path | None:
    """``root / rel`` with every link resolved, or None when that leaves ``root`` (a planted symlink)."""
    real_root = root.resolve()
    candidate = (real_root / rel).resolve()
    return candidate if candidate == real_root or candidate.is_relative_to(real_root) else None
