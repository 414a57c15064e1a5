"""The Slurm target: each run is a batch job whose script ``exec``s the runner.

The run folder the job writes to must be visible from the compute nodes:
- no ``shared_dir``: the store's own run folder (a store on a shared filesystem,
  or a single-node cluster); nothing is copied back, ``sync`` has nothing to do;
- ``shared_dir = "/scratch/me/launchbay"``: the run folder is
  ``<shared_dir>/<run_id>``, the project files are written to its ``work/``,
  and ``sync`` copies the new bytes back into the store.

Slurm forgets finished jobs (no accounting database, or after ``MinJobAge``), so
the run's journal stays the source of truth; squeue (then sacct, where there is
one) only says whether the job is still queued or running. Until the runner
starts, the run stays Queued. ``[targets.NAME]`` settings: see ``sbatch.OPTIONS``
plus ``extra_sbatch`` (list), ``shared_dir``, ``python`` (on the nodes,
default ``python3``) and ``host`` (not supported yet).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from ..errors import TargetError
from ..runner import HEARTBEAT_INTERVAL_S
from ..store import RunRecord
from .base import Target
from .runtime import RUNTIME_DIR, write_runtime
from .sbatch import SCRIPT_NAME, render_sbatch

#: squeue states in which the job (and so the runner, once it starts) is still alive
ALIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "RESIZING", "REQUEUED",
                "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
_APPEND_ONLY = ("journal/events.jsonl", "files/user_logs/std_log.txt")


class SlurmTarget(Target):
    type_name = "slurm"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.settings.get("host"):
            raise TargetError(
                f"[targets.{self.name}] sets host = {self.settings['host']!r}, but submitting to Slurm through SSH "
                "is not supported yet; run launchbay on the login node, or remove `host`."
            )

    # -- commands -------------------------------------------------------------------------------
    def _slurm(self, *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        try:
            proc = subprocess.run(
                list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise TargetError(
                f"`{argv[0]}` was not found on this machine; run launchbay where the Slurm commands are installed."
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise TargetError(f"`{argv[0]}` did not answer in 60 s; is slurmctld up? Try `sinfo`.") from exc
        return proc.returncode, proc.stdout, proc.stderr.strip()

    def job_state(self, job_id: str) -> tuple[str | None, str]:
        """(state, reason) of a job, state None when Slurm no longer knows it."""
        code, out, err = self._slurm("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%r")
        if code == 0 and out.strip():
            state, _, reason = out.strip().splitlines()[0].partition("|")
            return state.strip(), reason.strip()
        if code != 0 and "invalid job id" not in err.lower():
            raise TargetError(f"squeue failed: {err or code}. Is slurmctld running? Try `sinfo`.")
        if shutil.which("sacct"):
            code, out, _ = self._slurm("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State")
            if code == 0 and out.strip():
                return out.split()[0], ""
        return None, ""

    # -- launch ---------------------------------------------------------------------------------
    def remote_dir(self, record: RunRecord) -> Path:
        """The run folder as the compute nodes see it."""
        known = record.target_state.get("slurm_run_dir")
        if known:
            return Path(known)
        shared = self.settings.get("shared_dir")
        return Path(str(shared)).expanduser() / record.run_id if shared else record.run_dir

    def start(self, record: RunRecord, runner_config: dict[str, Any], secret_env: dict[str, str]) -> None:
        remote = self.remote_dir(record)
        direct = remote == record.run_dir
        try:
            if not direct:
                runner_config["snapshot"] = {}  # the files go straight into the run folder's work/
                self._materialise(record, remote / "work")
            job_id = self._submit(record, remote, runner_config, secret_env)
        except BaseException:
            if not direct:
                shutil.rmtree(remote, ignore_errors=True)
            raise
        self.store.merge_target_state(record.pk, slurm_job_id=job_id, slurm_run_dir=str(remote))
        record.target_state.update(slurm_job_id=job_id, slurm_run_dir=str(remote))

    def _materialise(self, record: RunRecord, work: Path) -> None:
        if not record.snapshot_id:
            work.mkdir(parents=True, exist_ok=True)
            return
        for entry in self.store.snapshot_manifest(record.snapshot_id)["files"]:
            dest = work / entry["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.store.blobs.path(entry["sha256"]), dest)
            if entry.get("mode", 0o644) & 0o111:
                dest.chmod(0o755)

    def _submit(
        self, record: RunRecord, remote: Path, runner_config: dict[str, Any], secret_env: dict[str, str]
    ) -> str:
        runner_config["pythonpath"] = [RUNTIME_DIR]
        try:
            (remote / "journal").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TargetError(f"Cannot create the run folder {remote} ({exc.strerror}); check shared_dir.") from exc
        write_runtime(remote)
        script = render_sbatch(
            run_id=record.run_id, run_dir=str(remote), python=str(self.settings.get("python") or "python3"),
            settings=self.settings, target=self.name,
        )
        for folder in {remote, record.run_dir}:
            self.write_runner_config(folder, runner_config)
            (folder / SCRIPT_NAME).write_text(script)
        env = dict(os.environ)
        env.update(secret_env)  # sbatch passes its environment to the job: secrets stay out of the script
        code, out, err = self._slurm("sbatch", "--parsable", SCRIPT_NAME, cwd=remote, env=env)
        if code != 0:
            raise TargetError(f"sbatch refused the run: {err or out or code}. Check [targets.{self.name}].")
        return out.strip().split(";")[0]

    # -- follow ---------------------------------------------------------------------------------
    def sync(self, record: RunRecord) -> None:
        remote = self.remote_dir(record)
        if remote != record.run_dir:
            mirror(remote, record.run_dir)

    def runner_alive(self, record: RunRecord) -> bool | None:
        job_id = record.target_state.get("slurm_job_id")
        if not job_id:
            return None
        try:
            state, reason = self.job_state(str(job_id))
        except TargetError:
            return None
        if state in ALIVE_STATES:
            return True
        remote = self.remote_dir(record)
        events = _events(remote)
        if not any(e.get("type") == "runner" for e in events):
            self._record_end(remote, str(job_id), state, reason)
            self.sync(record)
            return False
        if record.heartbeat and time.time() - record.heartbeat < 3 * HEARTBEAT_INTERVAL_S:
            return None  # Slurm has let go of the job, the runner may still be writing its end
        return False

    def _record_end(self, remote: Path, job_id: str, state: str | None, reason: str) -> None:
        """The job ended before the runner started (canceled while queued, no python on the node...)."""
        out_file = remote / "journal" / f"slurm-{job_id}.out"
        tail = ""
        if out_file.is_file():
            tail = "\n".join(out_file.read_text(errors="replace").strip().splitlines()[-20:])
        if state == "CANCELLED":
            status, message = "Canceled", "Canceled by request (the Slurm job was canceled before it started)."
        else:
            said = f"{state} ({reason})" if reason and reason != "None" else (state or "unknown to Slurm")
            status, message = "Failed", f"The Slurm job {job_id} ended {said} before the runner started."
        event = {"type": "status", "status": status, "final": True, "exit_code": None, "ts": time.time(),
                 "error": {"message": message, "traceback": tail}}
        with open(remote / "journal" / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")

    def cancel(self, record: RunRecord) -> None:
        remote = self.remote_dir(record)
        try:
            (remote / "cancel").touch()
        except OSError:
            pass
        self.force_stop(record)

    def force_stop(self, record: RunRecord) -> None:
        job_id = record.target_state.get("slurm_job_id")
        if not job_id:
            return
        code, _, err = self._slurm("scancel", str(job_id))
        if code != 0 and "invalid job id" not in err.lower() and "already completing" not in err.lower():
            raise TargetError(f"scancel {job_id} failed: {err}.")

    def check(self) -> dict[str, Any]:
        try:
            code, out, err = self._slurm("sinfo", "-h", "-o", "%P|%a|%D|%c|%G")
        except TargetError as exc:
            return {"reachable": False, "error": str(exc)}
        if code != 0:
            return {"reachable": False, "error": f"sinfo failed: {err}"}
        partitions = []
        for line in out.strip().splitlines():
            name, avail, nodes, cpus, gres = (line.split("|") + [""] * 5)[:5]
            partitions.append({"partition": name, "state": avail, "nodes": nodes, "cpus": cpus, "gres": gres})
        return {"reachable": True, "partitions": partitions}

    def describe(self, record: RunRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "slurm_job_id": record.target_state.get("slurm_job_id"),
            "slurm_run_dir": record.target_state.get("slurm_run_dir"),
        }
        if out["slurm_job_id"]:
            try:
                state, reason = self.job_state(str(out["slurm_job_id"]))
                out.update(slurm_state=state or "finished (forgotten by Slurm)", slurm_reason=reason)
            except TargetError as exc:
                out["slurm_state"] = f"unknown ({exc})"
        script = record.run_dir / SCRIPT_NAME
        if script.is_file():
            out["rendered_sbatch"] = script.read_text()
        return out


def _events(run_dir: Path) -> list[dict[str, Any]]:
    try:
        lines = (run_dir / "journal" / "events.jsonl").read_text(errors="replace").splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def mirror(src: Path, dst: Path) -> None:
    """Copy what is new under ``src``'s journal/ and files/ into ``dst``: appended tails, changed files whole.

    events.jsonl goes first: whatever the runner wrote before its final event
    (outputs, metrics) is then already there to be copied in the same pass.
    """
    names = ["journal/events.jsonl"]
    for top in ("journal", "files"):
        for folder, _dirs, files in os.walk(src / top):
            for name in sorted(files):
                rel = os.path.relpath(os.path.join(folder, name), src).replace(os.sep, "/")
                if rel != "journal/events.jsonl" and not name.endswith(".tmp"):
                    names.append(rel)
    for rel in names:
        source, dest = src / rel, dst / rel
        try:
            st = source.stat()
        except OSError:
            continue
        try:
            have = dest.stat()
            if (have.st_size, have.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
                continue
            done = have.st_size
        except OSError:
            done = -1
        dest.parent.mkdir(parents=True, exist_ok=True)
        append_only = rel in _APPEND_ONLY or (rel.startswith("journal/") and rel.endswith(".bin"))
        if append_only and 0 <= done <= st.st_size:
            with open(source, "rb") as fin, open(dest, "ab") as fout:
                fin.seek(done)
                fout.write(fin.read(st.st_size - done))
        else:
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
