"""A submit's data inputs: merged with launchbay.toml's, checked and hashed before the run is written,
then recorded as the run's lineage (the two steps ``Session.submit`` calls)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ProjectConfig
from ..models import RunSpec
from ..store import RunRecord, Store
from ..store.records import RunInput
from .resolve import ResolvedInput, absolute, resolve
from .spec import InputSpec, from_config, merge, parse_input
from .urls import redact_url

if TYPE_CHECKING:
    from ..targets import Target


def run_inputs(
    store: Store,
    config: ProjectConfig,
    spec: RunSpec,
    target: Target,  # type: ignore[type-arg]
    say: Callable[[str], None] | None = None,
) -> tuple[RunSpec, list[ResolvedInput]]:
    """The spec with every input it gets (the project's, unless it names its own; paths made absolute)
    and each input resolved. One ``DataInputError`` line, and nothing written, when one cannot be used."""
    here = Path.cwd()
    given = [absolute(parse_input(f"{n}={s}", "input"), here) for n, s in spec.inputs.items()]
    project = from_config(config.inputs, config.path) if config.inputs else []
    base = config.root or here
    specs = merge([absolute(p, base) for p in project], given)
    if not specs:
        return spec, []
    spec = replace(spec, inputs={s.name: _text(s) for s in specs})
    target.check_inputs(spec)
    return spec, [resolve(store, s, say, config.s3) for s in specs]


def _text(spec: InputSpec) -> str:
    return spec.source + ("" if spec.mode == "mount" else f":{spec.mode}")


def record_inputs(store: Store, record: RunRecord, inputs: list[ResolvedInput]) -> None:
    """The run's lineage: each input's version (its manifest kept as a blob) with the run."""
    if not inputs:
        return
    for item in inputs:
        store.blobs.put_bytes(item.manifest.to_bytes())
    rows = [item.record() for item in inputs]
    store.add_run_inputs(record.run_id, rows)
    keep_in_run_file(store, record, rows)


def keep_in_run_file(store: Store, record: RunRecord, rows: list[RunInput]) -> None:
    """The lineage in run.json too, so ``launchbay store repair`` rebuilds it with the run."""
    from dataclasses import asdict

    from ..store import runfile

    kept = (runfile.read(record.run_dir) or {}).get("data") or []
    runfile.update(record.run_dir, data=[*kept, *(asdict(r) for r in rows)])


def stored_inputs(inputs: dict[str, str]) -> dict[str, str]:
    """The spec's inputs as the store keeps them: a URL's credentials masked."""
    return {name: redact_url(source) for name, source in inputs.items()}


def inputs_argument(values: list[str] | None) -> dict[str, str]:
    """``--input NAME=SOURCE`` (repeatable) as the spec's mapping; two with one name are refused."""
    specs = [parse_input(v) for v in values or []]
    merge([], specs)  # refuses a name given twice
    return {s.name: _text(s) for s in specs}


__all__ = ["inputs_argument", "record_inputs", "run_inputs", "stored_inputs"]


def same_inputs(store: Store, run_id: str, say: Callable[[str], None] | None = None) -> list[ResolvedInput]:
    """A re-run's inputs: the versions the first run read, each checked where it is; one line (no run
    written) when one of them changed or is gone since."""
    from ..errors import DataInputError
    from .hashing import hash_source
    from .manifest import Manifest

    out = []
    for item in store.run_inputs(run_id):
        location = Path(str(item.location))
        current = hash_source(store.cache_dir, location, item.name, say=say, skip=(store.cache_dir,))
        if current.version != item.hash:
            raise DataInputError(
                f"Input {item.name!r} of run {run_id} ({item.source}) changed since that run read it "
                f"(version {item.hash[:12]}, now {current.version[:12]}); "
                "submit the script again to use the data as it is."
            )
        manifest = Manifest.from_bytes(store.blobs.read_bytes(item.hash))
        out.append(
            ResolvedInput(item.name, item.source, item.mode, location, manifest, item.dataset, item.dataset_version)
        )
    return out
