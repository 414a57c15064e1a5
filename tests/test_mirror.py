"""The one mirror routine brings a run folder back the same way whatever the transport.

These tests drive it with the local-folder adapter (the others differ only in how
they read the far side): append-only files grow by their new bytes, the heartbeat
and rewritten files come whole, and a run's final event arrives after its files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launchbay import runfolder as rf
from launchbay.targets import mirror as mirror_module
from launchbay.targets.mirror import Chunk, LocalFolder, RayLog, Source, apply, mirror


def _write(path: Path, data: bytes, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab" if append else "wb") as fh:
        fh.write(data)


def _same(far: Path, near: Path) -> None:
    for path in far.rglob("*"):
        if path.is_file():
            rel = path.relative_to(far)
            assert (near / rel).read_bytes() == path.read_bytes(), rel


@pytest.fixture
def far(tmp_path: Path) -> Path:
    run = tmp_path / "far"
    _write(run / rf.EVENTS_PATH, b'{"type": "status", "status": "Running"}\n')
    _write(run / rf.HEARTBEAT_PATH, b"1.5")
    _write(run / rf.STD_LOG_PATH, b"hello\n")
    _write(run / rf.JOURNAL / "p1-1.jnl", b"\x00" * 100)
    _write(run / rf.FILES / rf.OUTPUTS / "model.txt", b"v1")
    return run


def test_a_copy_catches_up_with_appends_rewrites_and_new_files(far: Path, tmp_path: Path) -> None:
    near = tmp_path / "near"
    mirror(LocalFolder(far), near, everything=True)
    _same(far, near)

    _write(far / rf.STD_LOG_PATH, b"more\n", append=True)
    _write(far / rf.JOURNAL / "p1-1.jnl", b"\x01" * 50, append=True)
    _write(far / rf.HEARTBEAT_PATH, b"22.25")  # rewritten whole, longer
    _write(far / rf.FILES / rf.OUTPUTS / "model.txt", b"v2!")  # rewritten, not appended
    _write(far / rf.FILES / rf.LOGS / "new.txt", b"new")
    mirror(LocalFolder(far), near, everything=True)
    _same(far, near)


def test_lines_written_while_preparing_stay_ahead_of_the_far_log(far: Path, tmp_path: Path) -> None:
    """An environment check written into the copy's log before the run started on the host is
    kept, and the host's output follows it whole, however the two lengths compare."""
    near = tmp_path / "near"
    rf.log_line(near, "environment tiny (b0d5): checking on root@127.0.0.1:2222")
    ours = (near / rf.STD_LOG_PATH).read_bytes()
    mirror(LocalFolder(far), near)
    _write(far / rf.STD_LOG_PATH, b"tiny 0.1 hello from env /remote/envs/ae4c1d72/venv\n" * 3, append=True)
    mirror(LocalFolder(far), near, everything=True)
    assert (near / rf.STD_LOG_PATH).read_bytes() == ours + (far / rf.STD_LOG_PATH).read_bytes()
    mirror(LocalFolder(far), near, everything=True)  # up to date: nothing doubled
    assert (near / rf.STD_LOG_PATH).read_bytes() == ours + (far / rf.STD_LOG_PATH).read_bytes()


def test_a_copy_mirrored_before_the_prefix_was_kept_is_not_doubled(far: Path, tmp_path: Path) -> None:
    near = tmp_path / "near"
    mirror(LocalFolder(far), near, everything=True)
    (near / rf.MIRROR_LOG_PREFIX).unlink()  # as a copy made by an earlier launchbay
    _write(far / rf.STD_LOG_PATH, b"more\n", append=True)
    mirror(LocalFolder(far), near, everything=True)
    assert (near / rf.STD_LOG_PATH).read_bytes() == b"hello\nmore\n"


def test_append_only_files_get_only_their_new_bytes(far: Path, tmp_path: Path) -> None:
    """A journal file is never sent whole again: what the copy has stays as it is."""
    near = tmp_path / "near"
    mirror(LocalFolder(far), near, everything=True)
    _write(near / rf.JOURNAL / "p1-1.jnl", b"\xff" * 100)  # not what the far side has, same size
    _write(far / rf.JOURNAL / "p1-1.jnl", b"\x02" * 10, append=True)
    mirror(LocalFolder(far), near, everything=True)
    assert (near / rf.JOURNAL / "p1-1.jnl").read_bytes() == b"\xff" * 100 + b"\x02" * 10


def test_a_pass_bigger_than_one_round_trip_takes_several(
    far: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each round trip brings at most LIMIT bytes; events longer than that arrive whole too."""
    monkeypatch.setattr(mirror_module, "LIMIT", 64)
    _write(far / rf.FILES / rf.OUTPUTS / "big.bin", bytes(range(256)) * 4)
    _write(far / rf.EVENTS_PATH, b'{"type": "status", "status": "Running"}\n' * 5, append=True)
    near = tmp_path / "near"
    mirror(LocalFolder(far), near, everything=True)
    _same(far, near)


def test_the_final_event_is_written_after_every_file_the_run_kept(
    far: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live pass that finds the run's end brings every file first, then writes the event."""
    near = tmp_path / "near"
    mirror(LocalFolder(far), near, everything=True)
    _write(far / rf.FILES / rf.OUTPUTS / "late.txt", b"kept just before the end")
    _write(far / rf.EVENTS_PATH, rf.final_event_line("Completed", ""), append=True)
    written: list[str] = []

    def recording_apply(local: Path, chunks: list[Chunk], log_start: int = 0) -> None:
        written.extend(c.rel for c in chunks)
        apply(local, chunks, log_start)

    monkeypatch.setattr(mirror_module, "apply", recording_apply)
    monkeypatch.setitem(mirror_module._files_at, str(near), float("inf"))  # a live pass: outputs not due
    mirror(LocalFolder(far), near)
    assert written.index("files/outputs/late.txt") < written.index(rf.EVENTS_PATH)
    assert rf.has_final_event(near)
    _same(far, near)


def test_a_pushed_source_is_applied_in_its_own_order(tmp_path: Path) -> None:
    class Pushed(Source):
        pushed = True

        def fetch(self, known: dict, folders: tuple[str, ...], limit: int) -> tuple[list[Chunk], bool]:
            return [Chunk(rf.STD_LOG_PATH, 0, b"abc"), Chunk(rf.STD_LOG_PATH, 3, b"def")], False

    mirror(Pushed(), tmp_path)
    assert (tmp_path / rf.STD_LOG_PATH).read_bytes() == b"abcdef"


def test_chunks_outside_the_journal_and_files_are_ignored(tmp_path: Path) -> None:
    apply(tmp_path, [Chunk("../escape.txt", 0, b"x"), Chunk("runner.json", 0, b"x"), Chunk("files/../x", 0, b"x")])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ray_log_lines_become_chunks_and_the_rest_the_runner_log(tmp_path: Path) -> None:
    text = f'runner says hi\n@lb1 0 {rf.STD_LOG_PATH} t "x\\n"\n@lb1 end 0\n'
    assert RayLog.parse(tmp_path, text) == [Chunk(rf.STD_LOG_PATH, 0, b"x\n")]
    assert (tmp_path / rf.JOURNAL / rf.RUNNER_LOG).read_text() == "runner says hi\n"


def test_the_substitute_final_event_starts_on_a_line_of_its_own(tmp_path: Path) -> None:
    """A runner killed mid-line leaves half an event; the target's end must still parse."""
    _write(tmp_path / rf.EVENTS_PATH, b'{"type": "status", "status": "Running"}\n{"type": "sta')
    rf.write_final_event(tmp_path, "Failed", "Container gone.", "tail")
    last = json.loads((tmp_path / rf.EVENTS_PATH).read_text().splitlines()[-1])
    assert last["status"] == "Failed" and last["final"] is True
    assert last["error"] == {"message": "Container gone.", "traceback": "tail"}
    assert rf.has_final_event(tmp_path)
