"""The store's supervisor: starts queued runs as slots free (and fires schedules), with no daemon installed.

On a team store it also follows the runs this machine started on other targets (SSH, Slurm, Docker,
Ray): their journals are read from here only, so it mirrors and ingests them every ``FOLLOW_S``
until they end, with every notebook and terminal closed (``queueing.followed_runs``).

One per store on a machine, guarded by an ``flock`` on ``CACHE/supervisor.lock``; started on demand
(a queued submit, a refresh of a queued run, ``launchbay supervise``) and gone once nothing waits.
Everything it acts on lives in the store, so a supervisor killed with SIGKILL loses nothing: runs it
had claimed but not started go back in line at their place, and the next one takes over.

Usage: ``python -m launchbay.supervisor [--detach] [--stay] STORE``.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from typing import IO

from . import queueing
from .errors import LaunchbayError
from .session import Session, open_session

POLL_S = 0.25  # the runs holding slots are caught up with their journals this often (a freed slot: < 0.5 s)
IDLE_POLL_S = 1.0  # and this often when no run holds a slot (only schedules to watch)
FOLLOW_S = 2.0  # a team store's runs on other targets are caught up this often


class Supervisor:
    def __init__(self, session: Session, stay: bool = False) -> None:
        self.session = session
        self.store = session.store
        self.stay = stay  # ``launchbay supervise`` in the foreground, or a systemd unit: never exits when idle
        self.claimer = queueing.claimer_id()
        from .scheduling import Firer

        self.firer = Firer(self.store)
        self._followed_at = 0.0
        self._following = False

    def tick(self) -> bool:
        """One round: catch up the runs holding slots, give back dead claims, start what fits. Whether
        anything is left to watch."""
        store = self.store
        for entry in store.queue_entries(waiting_only=False):
            if entry.state == "started":
                try:
                    self.session.refresh(entry.run_id)  # its end (ingested here) frees its slot
                except LaunchbayError:
                    pass
        dead = queueing.dead_claimers([c for c in store.queue_claimers() if c != self.claimer])
        store.release_claims(dead)
        for run_id in store.claim_queued(self.claimer):
            queueing.start_claimed(store, run_id)
        self.firer.tick()
        self.follow()
        return store.queue_waiting() > 0

    def follow(self) -> None:
        """Catch up the runs this machine started on other targets of a team store (at most every FOLLOW_S)."""
        if not self.store.shared or time.time() - self._followed_at < FOLLOW_S:
            return
        self._followed_at = time.time()
        followed = queueing.followed_runs(self.store)
        for record in followed:
            try:
                self.session.refresh(record)
            except LaunchbayError:
                pass  # unreachable for now: the next round tries again
        self._following = bool(followed)

    def left_to_do(self) -> bool:
        return self.store.queue_waiting() > 0 or self.firer.active() or self._following

    def run(self, lock: IO[str]) -> int:
        while True:
            busy = self.tick()
            if busy or self.stay or self.firer.active() or self._following:
                time.sleep(POLL_S if busy else IDLE_POLL_S)
                continue
            # nothing waits: let go of the lock, then look once more, so a submit that saw the lock
            # taken just before (and started no supervisor) is never left waiting
            fcntl.flock(lock, fcntl.LOCK_UN)
            if not self.left_to_do():
                return 0
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another supervisor took over


def take_lock(session: Session) -> IO[str] | None:
    """This store's supervisor lock, or None when another process holds it."""
    path = session.store.cache_dir / queueing.SUPERVISOR_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def supervise(store: str | None, stay: bool = False) -> int:
    """Run the supervisor here until nothing waits (``stay``: for good); 0 at once if another one runs."""
    session = open_session(store, on_config_error=lambda exc: None)
    try:
        lock = take_lock(session)
        if lock is None:
            return 0
        with lock:
            return Supervisor(session, stay=stay).run(lock)
    finally:
        session.close()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    detach, stay = "--detach" in args, "--stay" in args
    args = [a for a in args if a not in ("--detach", "--stay")]
    if len(args) != 1:
        print("usage: python -m launchbay.supervisor [--detach] [--stay] STORE", file=sys.stderr)
        return 2
    if detach:
        from .runner import daemonize

        daemonize()
    return supervise(args[0], stay=stay)


if __name__ == "__main__":
    sys.exit(main())
