"""Reuse keys: a step is reused when what decides its result is the same as a Completed earlier step's.

The key's parts are hashes that already exist: the step's code (the snapshot's files, less the OTHER steps'
scripts, so editing train.py does not re-run prep, and less the notebooks), the environment, the command line,
the parameters it
uses and the versions of its inputs. Kept as the child run's tags, they also say what changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

KEY_TAG = "launchbay.pipeline.key"
PARTS_TAG = "launchbay.pipeline.parts"
STEP_TAG = "launchbay.pipeline.step"
PIPELINE_TAG = "launchbay.pipeline"
NAME_TAG = "launchbay.pipeline.name"


def code_hash(manifest: Mapping[str, Any], script: str, other_scripts: set[str]) -> str:
    """The snapshot's files less the other steps' scripts and the notebooks (saving the notebook whose cells
    are the steps must not re-run them all; a step's cell is its own file here)."""
    lines = [
        f"{e['path']}\0{e['sha256']}"
        for e in manifest["files"]
        if e["path"] not in other_scripts and not e["path"].endswith(".ipynb")
    ]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def script_hash(manifest: Mapping[str, Any], script: str) -> str | None:
    for e in manifest["files"]:
        if e["path"] == script:
            return str(e["sha256"])
    return None


def environment_hash(name: str | None, definition: Any, target_type: str, env: Mapping[str, str] | None = None) -> str:
    """The environment's name and definition, the target's type and the step's variables (when it has any:
    the keys of steps without variables stay what they were)."""
    data: dict[str, Any] = {"name": name, "definition": definition, "target": target_type}
    if env:
        data["env"] = dict(env)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def make_parts(
    *, code: str, script: str, script_sha: str | None, environment: str, command: list[str],
    params: Mapping[str, Any], inputs: Mapping[str, str], labels: Mapping[str, str],
) -> dict[str, Any]:  # fmt: skip
    return {
        "code": code,
        "script": script,
        "script_sha": script_sha,
        "environment": environment,
        "command": command,
        "params": dict(params),
        "inputs": dict(inputs),  # name -> content hash (the key)
        "labels": dict(labels),  # name -> "version N" (what a person reads)
    }


def key_of(parts: Mapping[str, Any]) -> str:
    keyed = {k: parts[k] for k in ("code", "environment", "command", "params", "inputs")}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()


def what_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """Why a step ran, in words: the first run of it, or each part that differs from its last run."""
    if old is None:
        return "first run of this step"
    reasons = []
    if old.get("script_sha") != new.get("script_sha"):
        reasons.append(f"{new['script']} changed")
    elif old.get("code") != new.get("code"):
        reasons.append("code changed (a file other than the steps' scripts)")
    if old.get("environment") != new.get("environment"):
        reasons.append("environment changed")
    for name in sorted(set(old.get("params") or {}) | set(new.get("params") or {})):
        a, b = (old.get("params") or {}).get(name), (new.get("params") or {}).get(name)
        if a != b:
            reasons.append(f"parameter {name} {a} → {b}")
    for name in sorted(set(old.get("inputs") or {}) | set(new.get("inputs") or {})):
        a, b = (old.get("inputs") or {}).get(name), (new.get("inputs") or {}).get(name)
        if a != b:
            labels_a, labels_b = old.get("labels") or {}, new.get("labels") or {}
            reasons.append(f"input {name}: {_short(labels_a.get(name) or a)} → {_short(labels_b.get(name) or b)}")
    if not reasons and old.get("command") != new.get("command"):
        reasons.append(f"command line changed: {' '.join(old.get('command') or [])} → {' '.join(new['command'])}")
    return "; ".join(reasons) or "same key as an earlier step that did not complete"


def _short(version: str | None) -> str:
    """A dataset version as ``NAME version N`` stays; a hash is cut to 12 characters."""
    if version is None:
        return "none"
    return version if " " in version else version[:12]
