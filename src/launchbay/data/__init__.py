"""Data inputs: files a run reads that travel outside its snapshot, sent once per host and recorded.

    spec.py       NAME=SOURCE[:mount|:download] -> InputSpec (CLI, magics, API, launchbay.toml)
    hashing.py    a local file or folder -> Manifest, with a (size, mtime, inode) cache
    manifest.py   Manifest: files, sizes, SHA-256s; its own hash is the version
    urls.py       http(s) sources: downloaded once into the cache, verified, credentials masked
    resolve.py    InputSpec -> ResolvedInput (files on this machine + manifest), before any run exists
    datasets.py   named, numbered versions: add, list, show, lineage, rm
    delivery.py   what a target hands the runner: each input's path on the compute side
    progress.py   files, bytes and rate of long work, at most once a second

A target delivers inputs in its ``prepare`` (targets/base.py calls ``deliver_inputs``); the runner
(runner_inputs.py) exposes them as ``$LAUNCHBAY_INPUT_<NAME>`` and ``run.input_datasets``.
"""

from __future__ import annotations

from .manifest import DataFile, Manifest
from .resolve import ResolvedInput, absolute, resolve
from .spec import InputSpec, env_var, from_config, from_mapping, merge, parse_input

__all__ = [
    "DataFile",
    "InputSpec",
    "Manifest",
    "ResolvedInput",
    "absolute",
    "env_var",
    "from_config",
    "from_mapping",
    "merge",
    "parse_input",
    "resolve",
]
