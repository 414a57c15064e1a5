"""The snapshot budget: is a snapshot over it, what to leave out, and the message that says so.

A folder that is too big is usually one stray folder (``node_modules``, a data set, a
checkpoint): the message ranks what could be left out — never the folder the run starts in
(the notebook's or the script's) nor anything inside it, unless nothing else is big enough
— and gives the exact lines to add to the project's ``.launchbayignore``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import SnapshotTooLargeError

IGNORE_FILE = ".launchbayignore"
DESCEND_SHARE = 0.9  # a folder one of whose subfolders holds this share is named by that subfolder
RANKED = 5


class _File(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class Budget:
    max_bytes: int
    max_files: int

    @classmethod
    def from_config(cls, snapshot_settings: dict[str, Any]) -> Budget:
        """``[snapshot] max_bytes / max_files`` in launchbay.toml, else the environment variables."""
        from .config import LAUNCHBAY_SNAPSHOT_MAX_BYTES, LAUNCHBAY_SNAPSHOT_MAX_FILES

        return cls(
            int(snapshot_settings.get("max_bytes", LAUNCHBAY_SNAPSHOT_MAX_BYTES.get())),
            int(snapshot_settings.get("max_files", LAUNCHBAY_SNAPSHOT_MAX_FILES.get())),
        )

    def exceeded_by(self, files: Sequence[_File]) -> bool:
        return len(files) > self.max_files or sum(f.size for f in files) > self.max_bytes

    def describe(self) -> str:
        return f"{human_bytes(self.max_bytes)} / {plural(self.max_files, 'file')}"


@dataclass(frozen=True)
class Offender:
    """A folder (``a/b/``) or file that could be left out, with what leaving it out saves."""

    path: str
    bytes: int
    files: int
    inside_entry: bool = False

    @property
    def line(self) -> str:
        """The ignore line for the root's ``.launchbayignore`` (anchored: only this one)."""
        return "/" + self.path

    def describe(self) -> str:
        if self.path.endswith("/"):
            return f"{self.path} ({human_bytes(self.bytes)} in {plural(self.files, 'file')})"
        return f"{self.path} ({human_bytes(self.bytes)})"


def entry_folder(entry: str) -> str:
    """``"notebooks/"`` for ``"notebooks/"`` or ``"notebooks/train.py"``; ``""`` for the root."""
    if not entry or entry in (".", "./"):
        return ""
    if entry.endswith("/"):
        folder = os.path.normpath(entry)
    else:
        folder = os.path.dirname(os.path.normpath(entry))
    return "" if folder in ("", ".") else folder.replace(os.sep, "/") + "/"


def offenders(files: Sequence[_File], entry: str = "", by_files: bool = False) -> list[Offender]:
    """What could be left out, biggest first, none overlapping; outside the entry's folder first."""
    folder_bytes: dict[str, int] = defaultdict(int)
    folder_files: dict[str, int] = defaultdict(int)
    children: dict[str, set[str]] = defaultdict(set)
    loose: dict[str, list[_File]] = defaultdict(list)  # files directly in a folder
    for f in files:
        parts = f.path.split("/")
        parent = ""
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth]) + "/"
            folder_bytes[folder] += f.size
            folder_files[folder] += 1
            children[parent].add(folder)
            parent = folder
        loose[parent].append(f)
    home = entry_folder(entry)
    entry_file = "" if entry.endswith("/") else os.path.normpath(entry).replace(os.sep, "/") if entry else ""

    def weight(o: Offender) -> int:
        return o.files if by_files else o.bytes

    def folder_offender(folder: str, inside: bool) -> Offender:
        return Offender(folder, folder_bytes[folder], folder_files[folder], inside)

    found: list[Offender] = []

    def visit(folder: str, inside: bool) -> None:
        """Offer what is in ``folder``; go into the entry's folder and the folders holding it."""
        for f in loose[folder]:
            if f.path != entry_file:
                found.append(Offender(f.path, f.size, 1, inside))
        for sub in sorted(children[folder]):
            if home.startswith(sub):  # the entry's folder or one above it: never offered whole
                visit(sub, inside or sub == home)
                continue
            found.append(_narrowest(folder_offender(sub, inside), children, folder_offender, weight))

    visit("", home == "")
    found.sort(key=lambda o: (o.inside_entry, -weight(o), o.path))
    return found


def _narrowest(offender: Offender, children: dict[str, set[str]], make: Any, weight: Any) -> Offender:
    """``web/node_modules/`` rather than ``web/`` when nearly all (but not all) of ``web/`` is in there."""
    while True:
        subs = [make(s, offender.inside_entry) for s in children[offender.path]]
        biggest = max(subs, key=weight, default=None)
        if biggest is None or not DESCEND_SHARE * weight(offender) <= weight(biggest) < weight(offender):
            return offender
        offender = biggest


def plan(files: Sequence[_File], budget: Budget, entry: str = "") -> tuple[list[Offender], list[Offender]]:
    """(the ranking, the fewest of them whose removal brings the snapshot within the budget)."""
    total_bytes, total_files = sum(f.size for f in files), len(files)
    ranking = offenders(files, entry, by_files=total_files > budget.max_files and total_bytes <= budget.max_bytes)
    chosen: list[Offender] = []
    for o in ranking:
        if total_bytes <= budget.max_bytes and total_files <= budget.max_files:
            break
        chosen.append(o)
        total_bytes -= o.bytes
        total_files -= o.files
    return ranking, chosen


def budget_error(root: Path, files: Sequence[_File], budget: Budget, entry: str = "") -> SnapshotTooLargeError:
    return SnapshotTooLargeError(budget_message(root, files, budget, entry))


def budget_message(root: Path, files: Sequence[_File], budget: Budget, entry: str = "") -> str:
    """One paragraph: how big, the biggest things outside the entry's folder, the lines to add and where."""
    total = sum(f.size for f in files)
    ranking, chosen = plan(files, budget, entry)
    home = entry_folder(entry)
    where = f" outside {home} (where the run starts)" if home else ""
    text = (
        f"The snapshot of {root} is {human_bytes(total)} in {plural(len(files), 'file')}, over the budget of "
        f"{budget.describe()}."
    )
    by_files = len(files) > budget.max_files and total <= budget.max_bytes
    worth = [o for o in ranking if (o.files / len(files) if by_files else o.bytes / max(total, 1)) >= 0.01]
    shown = [o for o in worth if not o.inside_entry][:RANKED] or worth[:RANKED]
    if shown:
        text += f" Biggest{where}: " + ", ".join(o.describe() for o in shown) + "."
    left_bytes = total - sum(o.bytes for o in chosen)
    left_files = len(files) - sum(o.files for o in chosen)
    fits = left_bytes <= budget.max_bytes and left_files <= budget.max_files
    if chosen and fits:
        lines = "\n".join(f"    {o.line}" for o in chosen)
        text += (
            f" To leave {'it' if len(chosen) == 1 else 'them'} out, add "
            f"{'this line' if len(chosen) == 1 else 'these lines'} to {root / IGNORE_FILE}:\n{lines}\n"
            f"(then it is {human_bytes(left_bytes)} in {plural(left_files, 'file')}; a .launchbayignore adds to the "
            "folder's .gitignore). Or raise the budget"
        )
    else:
        text += " Move large data out of the project folder, or raise the budget"
    return (
        text + " ([snapshot] max_bytes / max_files in launchbay.toml, or LAUNCHBAY_SNAPSHOT_MAX_BYTES / "
        "LAUNCHBAY_SNAPSHOT_MAX_FILES). `launchbay snapshot --dry-run` lists every file and why."
    )
