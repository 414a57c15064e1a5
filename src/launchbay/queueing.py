"""Run queues: ``max_concurrent_runs`` on a target or an experiment, and who starts a queued run.

A run of a target (``[targets.NAME] max_concurrent_runs = N``) or experiment (``[experiments.NAME]
max_concurrent_runs = N``) with a limit enters its queue when it is recorded (store/queue_rows.py).
When a slot is free and nobody waits ahead, the submitter starts it at once, as any run; otherwise it
stays ``Queued`` with its position, and the store's supervisor (supervisor.py: one per store on this
machine, started here on demand, lock-guarded, gone when no run waits) starts it when a slot frees.

What a queued run needs to start later that the store keeps only redacted (secret variables and
arguments) is kept until then in ``CACHE/queue/RUN_ID.json`` on this machine, readable by its owner
only, and deleted once the run leaves the queue.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ProjectConfig, load_config
from .errors import ConfigError, LaunchbayError
from .models import RunSpec, RunStatus

if TYPE_CHECKING:
    from .snapshot import Snapshot
    from .store import RunRecord, Store
    from .targets import Target

LIMIT_KEY = "max_concurrent_runs"
SUPERVISOR_LOCK = "supervisor.lock"
SUPERVISOR_LOG = "supervisor.log"
QUEUE_DIR = "queue"


def claimer_id() -> str:
    """Who claims a slot: this host and process (a dead claimer's claims go back in line)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_claimers(claimers: list[str]) -> list[str]:
    """The claimers among these that were processes of this host and are gone."""
    host = socket.gethostname()
    dead = []
    for claimer in claimers:
        name, _, pid = claimer.rpartition(":")
        if name == host and pid.isdigit() and not _pid_alive(int(pid)):
            dead.append(claimer)
    return dead


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def check_limit(value: Any, where: str) -> int:
    """A limit is a whole number ≥ 1; anything else is one line naming the setting."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} {LIMIT_KEY} must be a whole number ≥ 1, not {value!r}; leave it out for no limit.")
    return value


def limits(config: ProjectConfig, spec: RunSpec) -> tuple[int | None, int | None]:
    """The run's target limit and experiment limit (None: none), checked."""
    target_limit = experiment_limit = None
    settings = config.targets.get(spec.target) or {}
    if LIMIT_KEY in settings:
        target_limit = check_limit(settings[LIMIT_KEY], f"[targets.{spec.target}]")
    section = config.experiments.get(spec.experiment) or {}
    if LIMIT_KEY in section:
        experiment_limit = check_limit(section[LIMIT_KEY], f"[experiments.{spec.experiment}]")
    return target_limit, experiment_limit


def check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigError(f"--priority must be a whole number (higher starts first), not {priority!r}.")
    return priority


def enter_queue(
    store: Store, record: RunRecord, spec: RunSpec, config: ProjectConfig, priority: int = 0
) -> bool | None:
    """Put a recorded run in its queue: None when no limit applies, True when it may start now (this
    process starts it), False when it waits (its spec is kept for the supervisor, which is started)."""
    target_limit, experiment_limit = limits(config, spec)
    if target_limit is None and experiment_limit is None:
        return None
    keep_spec(store, record, spec, config)  # before the row: whoever claims it finds what it needs
    now = store.enqueue(
        record.pk,
        target=spec.target,
        experiment=spec.experiment,
        target_limit=target_limit,
        experiment_limit=experiment_limit,
        priority=priority,
        claimer=claimer_id(),
    )
    if not now:
        ensure_supervisor(store)
    return now


def keep_spec(store: Store, record: RunRecord, spec: RunSpec, config: ProjectConfig) -> None:
    folder = store.cache_dir / QUEUE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    body = {"spec": spec.to_json(), "project": str(config.root) if config.root else None}
    path = folder / f"{record.run_id}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh)


def forget_spec(store: Store, run_id: str) -> None:
    try:
        (store.cache_dir / QUEUE_DIR / f"{run_id}.json").unlink()
    except FileNotFoundError:
        pass


def kept_spec(store: Store, record: RunRecord) -> tuple[RunSpec, ProjectConfig]:
    """The spec and configuration a queued run starts with (the stored spec, secrets left out, when the
    queued submit happened on another machine)."""
    path = store.cache_dir / QUEUE_DIR / f"{record.run_id}.json"
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        from . import secrets

        spec = RunSpec.from_json(record.spec)
        env = {k: v for k, v in spec.env_vars.items() if v != secrets.REDACTED}
        source = record.properties.get("launchbay.source_dir")
        return RunSpec.from_json({**spec.to_json(), "env_vars": env}), load_config(Path(source) if source else None)
    project = body.get("project")
    config = load_config(Path(project)) if project else ProjectConfig()
    return RunSpec.from_json(body["spec"]), config


def start_claimed(store: Store, run_id: str, make: Any = None) -> RunRecord:
    """Start a run whose slot this process claimed; a start that fails ends the run Failed (freeing its slot).

    ``make(name, config)`` makes the target (default: ``targets.make_target`` on the store)."""
    from . import runfolder as rf
    from .targets import make_target

    record = store.get_run(run_id)
    store.update_run(record.pk, heartbeat=time.time())  # queued for long: its start is not a lost heartbeat
    try:
        spec, config = kept_spec(store, record)
        target: Target[Any, Any] = (make or (lambda n, c: make_target(n, c, store)))(record.target, config)
        target.launch(record, spec, stored_snapshot(store, record), lambda m: rf.log_line(record.run_dir, m))
    except Exception as exc:
        message = str(exc) if isinstance(exc, LaunchbayError) else f"{type(exc).__name__}: {exc}"
        error = {"message": f"Could not start the queued run: {message}", "traceback": ""}
        store.end_run(record.pk, RunStatus.FAILED, error)
    else:
        store.queue_started(record.pk)
    forget_spec(store, run_id)
    return store.get_run(run_id)


def stored_snapshot(store: Store, record: RunRecord) -> Snapshot:
    """The snapshot a recorded run was taken with, as a launch wants it (from the store's manifest)."""
    from .snapshot import Snapshot

    manifest = store.snapshot_manifest(record.snapshot_id or "")
    files = manifest["files"]
    source = Path(record.properties.get("launchbay.source_dir", "."))
    size = sum(f["size"] for f in files)
    return Snapshot(record.snapshot_id or "", source, len(files), size, 0, 0, [], manifest)


# -- the supervisor: one per store on this machine --------------------------------------------------------
def supervisor_running(store: Store) -> bool:
    """Does a supervisor hold this store's lock right now?"""
    path = store.cache_dir / SUPERVISOR_LOCK
    if not path.exists():
        return False
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def ensure_supervisor(store: Store) -> bool:
    """Start the store's supervisor unless one runs; True when one was started. (Two that start at once
    are harmless: the second finds the lock taken and exits.)"""
    if supervisor_running(store):
        return False
    from .targets.local import with_launchbay_path

    store.cache_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "launchbay.supervisor", "--detach", store.uri]
    with open(store.cache_dir / SUPERVISOR_LOG, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=with_launchbay_path(dict(os.environ)),
            close_fds=True,
            start_new_session=True,
        )
    proc.wait()  # it forks itself away at once
    return True


# -- runs the supervisor follows on a team store -----------------------------------------------------------
#: statuses of a started run that nobody may be watching
_UNDERWAY = (RunStatus.PREPARING, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.FINALIZING)


def followed_runs(store: Store) -> list[RunRecord]:
    """A team store's unfinished runs that this machine made on a target other than ``local``: their
    journals are read from here only (a local run's runner ingests its own), so the supervisor catches
    them up while every notebook and terminal is closed, and colleagues see them end."""
    from . import runfolder as rf

    if not store.shared:
        return []
    runs: list[RunRecord] = []
    for status in _UNDERWAY:
        for record in store.list_runs(status=status.value, limit=None, details=False):
            if record.target_type != "local" and (record.run_dir / rf.RUN_RECORD).is_file():
                runs.append(record)
    return runs


def follow(store: Store, record: RunRecord) -> None:
    """After a launch: on a team store, a run on another target gets the supervisor to follow it."""
    if store.shared and record.target_type != "local":
        ensure_supervisor(store)


def queue_json(entry: Any) -> dict[str, Any]:
    """One row of ``launchbay queue --json``."""
    from .models import iso

    return {
        "run_id": entry.run_id,
        "position": entry.position,
        "priority": entry.priority,
        "submitted": iso(entry.submitted),
        "target": entry.target,
        "experiment": entry.experiment,
    }


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def queued_text(entry: Any) -> str:
    """What a person reads for a waiting run: ``Queued, 2nd for gpu-box``."""
    return f"Queued, {ordinal(entry.position)} for {entry.pool}"


def systemd_unit(store_uri: str) -> str:
    """A systemd user unit that keeps this store's supervisor running (after a reboot too, with
    ``loginctl enable-linger``), for ``~/.config/systemd/user/launchbay-supervisor.service``."""
    return (
        "# launchbay supervisor: starts queued runs and fires schedules with nobody logged in.\n"
        "# Install: launchbay supervise --install > ~/.config/systemd/user/launchbay-supervisor.service\n"
        "#          systemctl --user daemon-reload && systemctl --user enable --now launchbay-supervisor\n"
        "#          loginctl enable-linger $USER   # so it starts at boot, before anyone logs in\n"
        "[Unit]\n"
        f"Description=launchbay supervisor (queues and schedules) for {store_uri}\n"
        "\n"
        "[Service]\n"
        f"ExecStart={sys.executable} -m launchbay.supervisor --stay {_quoted(store_uri)}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def _quoted(text: str) -> str:
    """A systemd ExecStart word: quoted when it holds a space or a quote."""
    if any(c in text for c in " \t\"'\\"):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
