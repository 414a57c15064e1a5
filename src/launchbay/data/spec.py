"""``NAME=SOURCE[:mount|:download]``: what one data input asks for, read once for every front end.

The CLI's ``--input``, the magics' ``--input``, ``launchbay.submit(inputs=...)`` and launchbay.toml's
``[inputs.NAME] path = ...`` all end up here. A source is a local file or folder, an ``http(s)://``
URL, an ``s3://bucket/prefix`` URL or a named dataset (``dataset:NAME`` or ``dataset:NAME:VERSION``).
``:mount`` (the default) is a read-only view of the data; ``:download`` a private writable copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import DataInputError

MODES = ("mount", "download")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class InputSpec:
    """One input as asked for: its name in the run, where it comes from, and how the run gets it."""

    name: str
    source: str
    mode: str = "mount"

    @property
    def kind(self) -> str:
        """``path``, ``url``, ``s3`` or ``dataset``."""
        lower = self.source.lower()
        if lower.startswith(("http://", "https://")):
            return "url"
        if lower.startswith("s3://"):
            return "s3"
        if lower.startswith("dataset:"):
            return "dataset"
        return "path"

    @property
    def env_var(self) -> str:
        """``$LAUNCHBAY_INPUT_<NAME>``: the name upper-cased, anything but letters and digits as ``_``."""
        return env_var(self.name)

    def to_text(self) -> str:
        return f"{self.name}={self.source}" + ("" if self.mode == "mount" else f":{self.mode}")


def env_var(name: str) -> str:
    return "LAUNCHBAY_INPUT_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def check_name(name: str, where: str = "--input") -> str:
    if not _NAME.match(name):
        raise DataInputError(
            f"{where}: {name!r} is not an input name; use letters, digits, '_' or '-' "
            "(starting with a letter), e.g. --input train=./data/train."
        )
    return name


def split_mode(source: str) -> tuple[str, str]:
    """``SOURCE:download`` -> (SOURCE, "download"); no suffix: (SOURCE, "mount")."""
    for mode in MODES:
        if source.endswith(":" + mode):
            return source[: -len(mode) - 1], mode
    return source, "mount"


def parse_input(text: str, where: str = "--input") -> InputSpec:
    """``NAME=SOURCE[:mount|:download]`` as an ``InputSpec``; one clear line when it is not that."""
    name, eq, rest = text.partition("=")
    if not eq or not rest:
        raise DataInputError(
            f"{where} {text!r}: write NAME=SOURCE, e.g. --input train=./data/train "
            "or --input ref=https://example.org/ref.csv:download."
        )
    source, mode = split_mode(rest)
    if not source:
        raise DataInputError(f"{where} {text!r} names no source before :{mode}.")
    return InputSpec(check_name(name.strip(), where), source, mode)


def from_mapping(inputs: Mapping[str, Any], where: str = "inputs=") -> list[InputSpec]:
    """``{"train": "./data/train", "ref": "https://...:download"}`` (a value may be a launchbay Dataset too)."""
    out = []
    for name, value in inputs.items():
        source = getattr(value, "launchbay_source", value)  # the Azure ML layer's Dataset
        if not isinstance(source, str) or not source:
            raise DataInputError(f"{where} {name!r}: the source must be a path, URL or dataset:NAME, not {value!r}.")
        source, mode = split_mode(source)
        mode = getattr(value, "launchbay_mode", None) or mode
        out.append(InputSpec(check_name(str(name), where), source, mode))
    return out


def from_config(section: Mapping[str, Any], path: object) -> list[InputSpec]:
    """launchbay.toml's ``[inputs.NAME]`` tables: ``path`` (or ``source``/``url``) and an optional ``mode``."""
    out = []
    for name, table in section.items():
        where = f"[inputs.{name}] in {path}"
        if isinstance(table, str):
            table = {"path": table}
        if not isinstance(table, Mapping):
            raise DataInputError(f'{where} must be a table, e.g. path = "data/train".')
        source = table.get("path") or table.get("source") or table.get("url")
        if not isinstance(source, str) or not source:
            raise DataInputError(f'{where} has no path; set path = "data/train" (or a URL, or "dataset:NAME").')
        source, mode = split_mode(source)
        mode = str(table.get("mode") or mode)
        if mode not in MODES:
            raise DataInputError(f'{where}: mode = {mode!r}; use "mount" (read-only) or "download" (a private copy).')
        out.append(InputSpec(check_name(str(name), where), source, mode))
    return out


def merge(defaults: Iterable[InputSpec], given: Iterable[InputSpec]) -> list[InputSpec]:
    """The project's inputs, each replaced by a given one of the same name; two given ones with one
    name are refused (which one did the user mean?)."""
    chosen: dict[str, InputSpec] = {}
    for spec in given:
        if spec.name in chosen:
            raise DataInputError(
                f"Two inputs are named {spec.name!r} ({chosen[spec.name].source} and {spec.source}); "
                "give each input its own name."
            )
        clash = next((c for c in chosen.values() if c.env_var == spec.env_var), None)
        if clash is not None:
            raise DataInputError(
                f"Inputs {clash.name!r} and {spec.name!r} would both be ${spec.env_var}; rename one of them."
            )
        chosen[spec.name] = spec
    merged = {d.name: d for d in defaults if d.name not in chosen}
    merged.update(chosen)
    return list(merged.values())
