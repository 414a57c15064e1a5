"""Re-run a past run from what the store kept, or write its snapshot back out as files.

One implementation for the CLI (``launchbay rerun|restore``), ``RunHandle.rerun`` and
the sidebar's Re-run button. A re-run gets the old run's exact snapshot (not the
folder as it is now), its environment (by content hash), its arguments and every
other setting of its spec, unless overridden; it records ``launchbay.rerun_of``.
Everything it needs is checked before a run is recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import secrets
from .errors import ConfigError, SubmitError, UnknownEnvironmentError
from .models import RunSpec
from .store import RunRecord, Store
from .store.manifests import missing_blobs, outside, read_manifest, write_files

if TYPE_CHECKING:
    from .handle import RunHandle
    from .session import Session

RERUN_OF = "launchbay.rerun_of"
RESUME_OF = "launchbay.resume_of"
#: the input a resumed run gets: the outputs/ its first run left (``$LAUNCHBAY_INPUT_CHECKPOINT``)
CHECKPOINT = "checkpoint"


def rerun(
    session: Session,
    ref: str,
    target: str | None = None,
    arguments: Sequence[str] | None = None,
    resume: bool = False,
) -> RunHandle:
    """Submit run ``ref`` again; raises (naming what is missing) before anything is recorded.

    ``resume``: go on from where it stopped: the new run gets the old run's ``outputs/`` as the input
    ``checkpoint`` (``$LAUNCHBAY_INPUT_CHECKPOINT``), and records ``launchbay.resume_of``."""
    from .snapshot import Snapshot

    store = session.store
    old = store.get_run(ref)
    link = RESUME_OF if resume else RERUN_OF
    checkpoint = checkpoint_of(session, old) if resume else None
    check_snapshot(store, old)
    spec = RunSpec.from_json(old.spec)
    if arguments is None and any(secrets.REDACTED in a for a in spec.arguments):
        raise SubmitError(
            f"Run {old.run_id}'s arguments held secrets, which the store keeps only as ***; "
            "give the arguments again (launchbay rerun RUN -- ARGS...)."
        )
    env_vars = {k: v for k, v in spec.env_vars.items() if v != secrets.REDACTED}
    spec = replace(
        spec,
        target=target or old.target,
        env_vars=env_vars,
        environment=same_environment(session, old),
        arguments=spec.arguments if arguments is None else tuple(str(a) for a in arguments),
        tags={**{k: v for k, v in spec.tags.items() if k not in (RERUN_OF, RESUME_OF)}, link: old.run_id},
    )
    if checkpoint is not None:
        spec = replace(spec, inputs={**spec.inputs, CHECKPOINT: str(checkpoint)})
    spec, target_obj = session.check(spec)  # a distributed run stays distributed
    from .data.runs import same_inputs

    inputs = same_inputs(store, old.run_id)  # the very versions the run read, checked where they are
    if checkpoint is not None:
        from .data.resolve import resolve
        from .data.spec import InputSpec

        inputs = [i for i in inputs if i.name != CHECKPOINT]  # a resumed run's own checkpoint: the newer one
        inputs.append(resolve(store, InputSpec(CHECKPOINT, str(checkpoint))))
    if inputs:
        target_obj.check_inputs(spec)
    assert old.snapshot_id is not None
    manifest = read_manifest(store, old.snapshot_id)
    files = manifest["files"]
    snapshot = Snapshot(
        old.snapshot_id,
        Path(old.properties.get("launchbay.source_dir", ".")),
        len(files),
        sum(f["size"] for f in files),
        0,
        0,
        [],
        manifest,
    )
    properties = {k: v for k, v in old.properties.items() if k not in (RERUN_OF, RESUME_OF)}
    properties[link] = old.run_id

    def still_whole() -> None:  # no gc between the check above and the run row
        if missing_blobs(store, snapshot.id):
            check_snapshot(store, old)

    return session.launch(spec, snapshot, properties, target=target_obj, before_record=still_whole, inputs=inputs)


def checkpoint_of(session: Session, old: RunRecord) -> Path:
    """The outputs/ a run left, to resume from: the run must have ended, and left something there."""
    from . import runfolder as rf

    old = session.refresh(old)
    if not old.status.is_terminal():
        raise SubmitError(
            f"Run {old.run_id} is still {old.status.value}; cancel it first (launchbay cancel {old.run_id}), "
            "then resume it from what it wrote."
        )
    outputs = session.store.files_dir(old) / rf.OUTPUTS
    if not outputs.is_dir() or not any(p.is_file() for p in outputs.rglob("*")):
        raise SubmitError(
            f"Run {old.run_id} left nothing in outputs/ to resume from; a run resumes from the checkpoints "
            "it writes there (outputs/ckpt.pt, say). Use launchbay rerun to start it over."
        )
    return outputs


def check_snapshot(store: Store, old: RunRecord) -> None:
    if not old.snapshot_id:
        raise SubmitError(f"Run {old.run_id} has no snapshot, so it cannot be re-run or restored.")
    missing = missing_blobs(store, old.snapshot_id)
    if missing == ["manifest"]:
        raise SubmitError(
            f"Cannot use run {old.run_id}'s snapshot {old.snapshot_id[:12]}: its manifest blob is gone from "
            f"{store.blobs.location}; nothing was submitted."
        )
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise SubmitError(
            f"Cannot use run {old.run_id}'s snapshot {old.snapshot_id[:12]}: {len(missing)} of its files are gone "
            f"from the store's blobs: {shown}; nothing was submitted."
        )


def same_environment(session: Session, old: RunRecord) -> str | None:
    """The environment reference that rebuilds exactly the old run's environment (by hash)."""
    from .environments.cache import env_dir
    from .environments.spec import resolve_environment

    name = old.spec.get("environment")
    state = old.target_state.get("environment")
    if not isinstance(state, dict) or not state.get("hash"):
        return str(name) if name else None
    wanted = str(state["hash"])
    source = old.properties.get("launchbay.source_dir")
    if name:
        try:
            current = resolve_environment(str(name), session.config, Path(source) if source else None)
        except ConfigError:
            current = None
        if current is not None and current.hash == wanted:
            return str(name)
    spec_file = env_dir(session.store.cache_dir, wanted) / "spec.json"
    try:
        data = json.loads(spec_file.read_text())
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict):
        inline = {k: data[k] for k in ("pip", "python", "image", "env", "user_managed", "installer") if k in data}
        return json.dumps(inline)
    if state.get("image") and state.get("user_managed"):
        return json.dumps({"image": state["image"], "user_managed": True})
    raise UnknownEnvironmentError(
        f"Cannot re-run {old.run_id} with its environment {name or 'inline'} ({wanted[:16]}): its definition "
        f"{spec_file} is gone and launchbay.toml no longer defines an environment with that hash; "
        "nothing was submitted."
    )


def restore(store: Store, ref: str, dest: str | Path) -> list[Path]:
    """Write run ``ref``'s snapshot as files into ``dest`` (a new or empty folder): every file or,
    when one cannot be written, none (an empty folder is left empty, a new one is not made)."""
    old = store.get_run(ref)
    check_snapshot(store, old)
    folder = Path(dest)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"{folder} exists and is not an empty folder; restore into a new folder (-o NEW_DIR).")
    assert old.snapshot_id is not None
    files = read_manifest(store, old.snapshot_id)["files"]
    what = f"Run {old.run_id}'s snapshot"
    if outside(files, folder):
        write_files(store, files, folder, what)  # refuses before writing anything, naming those paths
    made: list[Path] = []  # the folders this restore creates, removed again if it fails
    staging: Path | None = None
    try:
        for parent in (*reversed(folder.absolute().parents), folder.absolute()):
            if not parent.is_dir():
                parent.mkdir()
                made.append(parent)
        # written aside (inside the folder: on its disk), then moved in, so that a failure leaves no files
        staging = Path(tempfile.mkdtemp(prefix=".launchbay-restoring-", dir=folder))
        write_files(store, files, staging, what)
        for child in sorted(os.listdir(staging)):
            os.rename(staging / child, folder / child)
        staging.rmdir()
    except OSError as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for made_folder in reversed(made):
            shutil.rmtree(made_folder, ignore_errors=True)
        where = str(exc.filename or folder)
        if staging is not None:
            where = where.replace(str(staging), str(folder.absolute()))
        raise ConfigError(
            f"Cannot restore run {old.run_id}'s snapshot into {folder}: {exc.strerror or exc} ({where}). "
            "Nothing was written; restore into a folder you can write, on a disk with room (-o NEW_DIR)."
        ) from exc
    root = folder.resolve()
    return [root / entry["path"] for entry in files]


def rerun_of(record: RunRecord) -> Any:
    """The run this one re-ran, or None."""
    return record.properties.get(RERUN_OF) or record.tags.get(RERUN_OF)
