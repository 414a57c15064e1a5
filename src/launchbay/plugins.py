"""launchbay's entry-point groups: what another package adds to launchbay by declaring it, not by editing it.

A group maps names to ``"module:attribute"`` references (``importlib.metadata`` entry
points, as ipyparallel's launchers and submitit's plugins are found). launchbay's own
rows are declared in pyproject.toml and again in ``OWN`` below (a test pins the two
together), so a source checkout whose installed metadata predates a row still finds it.
A name that launchbay itself uses keeps launchbay's row: a plugin adds names, it never
changes what ``type = "local"`` means.

Groups: ``launchbay.targets`` (a compute target type: a ``Target`` subclass),
``launchbay.controls`` (a kind of record that is control on top of runs, as a sweep is:
a class taking the store and a ``control_for(record)``, satisfying ``RunControl``) and
``launchbay.runtime`` (an extra folder shipped in a run's ``runtime/``: a function
returning relative path -> text).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

TARGETS = "launchbay.targets"
CONTROLS = "launchbay.controls"
RUNTIME = "launchbay.runtime"

OWN: dict[str, dict[str, str]] = {
    TARGETS: {
        "local": "launchbay.targets.local:LocalTarget",
        "docker": "launchbay.targets.docker:DockerTarget",
        "ssh": "launchbay.targets.ssh:SSHTarget",
        "ray": "launchbay.targets.ray:RayTarget",
        "slurm": "launchbay.targets.slurm:SlurmTarget",
    },
    CONTROLS: {
        "sweep": "launchbay.sweeps.control:SweepControl",
        "pipeline": "launchbay.pipelines.control:PipelineControl",
        "automl": "launchbay.automated.control:AutoMLControl",
    },
    RUNTIME: {
        "azureml_alias": "launchbay.compat.azureml.alias:alias_files",
    },
}


def own(group: str, name: str) -> str | None:
    """launchbay's own row for ``name``, without reading any installed metadata (the fast path)."""
    return OWN.get(group, {}).get(name)


def rows(group: str) -> dict[str, str]:
    """Every row of ``group``: launchbay's own first, in their order, then other packages', by name."""
    found = dict(OWN.get(group, {}))
    others = {ep.name: ep.value for ep in entry_points(group=group) if ep.name not in found}
    return {**found, **dict(sorted(others.items()))}


def target_types() -> list[str]:
    """The target types a ``[targets.NAME]`` section may name: the built-ins, then installed plugins'."""
    return list(rows(TARGETS))


def load(reference: str) -> Any:
    """The object a ``"module:attribute"`` row names (its module imported now)."""
    module_name, _, attribute = reference.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else []:
        value = getattr(value, part)
    return value
