"""Tracking cannot be broken from ordinary training code: real runs, real processes, real signals.

Each test submits scripts to the local target and reads what reached the store back
through the Python API, so the whole path (in-run writer → journal → ingest → index)
is exercised.
"""

from __future__ import annotations

import json
import marshal
import math
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import launchbay
from conftest import CLI, wait_for, write
from launchbay.tracking.journalfmt import HEADER, MAGIC, encode

FLUSH = 0.2  # inrun.FLUSH_INTERVAL_S


def series(handle: launchbay.RunHandle, name: str) -> tuple[list[int], list[float]]:
    s = handle.get_metric_series(name)
    return s.steps.tolist(), s.values.tolist()


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def finished(handle: launchbay.RunHandle, timeout: float = 90) -> str:
    return handle.wait(timeout=timeout)


# -- values ---------------------------------------------------------------------------------------
VALUES_SCRIPT = """
import math, sys
from decimal import Decimal
from fractions import Fraction
import numpy as np, torch
from launchbay import Run
run = Run.get_context()
good = [
    ("py_float", 0.1), ("py_int", 7), ("py_true", True), ("py_false", False),
    ("nan", float("nan")), ("inf", float("inf")), ("ninf", float("-inf")), ("negzero", -0.0),
    ("int_2p53", 2**53), ("int_2p70", 2**70), ("int_neg_2p70", -(2**70)),
    ("decimal", Decimal("1.5")), ("fraction", Fraction(3, 4)), ("decimal_nan", Decimal("NaN")),
    ("np_f16", np.float16(0.1)), ("np_f32", np.float32(0.1)), ("np_f64", np.float64(0.1)),
    ("np_mean", np.mean(np.arange(4.0))), ("np_i8", np.int8(-7)), ("np_u64", np.uint64(2**63)),
    ("np_i64", np.int64(-(2**53))), ("np_bool", np.bool_(True)), ("np_0d", np.array(2.5)),
    ("np_0d_int", np.array(3)), ("np_nan32", np.float32("nan")), ("np_negzero", np.float64(-0.0)),
    ("t_f32", torch.tensor(0.1)), ("t_f16", torch.tensor(0.1, dtype=torch.float16)),
    ("t_bf16", torch.tensor(0.1, dtype=torch.bfloat16)), ("t_f64", torch.tensor(0.1, dtype=torch.float64)),
    ("t_i64", torch.tensor(2**53, dtype=torch.int64)), ("t_i32", torch.tensor(-5, dtype=torch.int32)),
    ("t_u8", torch.tensor(200, dtype=torch.uint8)), ("t_bool", torch.tensor(True)),
    ("t_grad", (torch.ones(3, requires_grad=True) * 2).sum()), ("t_1elem", torch.tensor([4.5])),
    ("str", "0.5"), ("str_int", " 42 "), ("int_2p70_plus1", 2**70 + 1), ("decimal_tenth", Decimal("0.1")),
    ("fraction_third", Fraction(1, 3)), ("t_i64_big", torch.tensor(2**53 + 1, dtype=torch.int64)),
    ("int_2p63_less1", 2**63 - 1), ("int_neg_2p63", -(2**63)), ("np_i64_max", np.int64(2**63 - 1)),
]
for name, value in good:
    run.log(name, value, step=1)
    run.log(name, value, step=2**62)
bad = [
    ("text", "abc"), ("none", None), ("array", np.zeros(3)), ("tensor", torch.ones(2)), ("list", [1.0]),
    ("complex", 1j), ("int_huge", 10**400), ("bytes", b"1.5"),
]
for name, value in bad:
    for _ in range(50):  # warned once per metric, not per call
        run.log(name, value)
    run.log(name + "_ok", 1.0)  # the same flush window: untouched
steps = [("step_abc", "abc"), ("step_nan", float("nan")), ("step_2p70", 2**70), ("step_half", 2.5)]
for name, step in steps:
    run.log(name, 1.0, step=step)
    run.log(name, 2.0, step=3)
run.log("step_np", 1.0, step=np.int64(5)); run.log("step_t", 1.0, step=torch.tensor(6))
run.log("step_f", 1.0, step=7.0)
run.log("big_step", 1.0, step=2**63 - 1); run.log("neg_step", 1.0, step=-(2**63))
run.flush(); run.log("big_step", 2.0)  # no step: counted on from the last, past the int64 range
run.log(np.str_("np_name"), 1.0); run.log(42, 1.0)  # names: text in the end
"""

INTEGERS = {
    "py_int": 7, "py_true": 1, "py_false": 0, "int_2p53": 2**53, "np_i8": -7, "np_i64": -(2**53), "np_bool": 1,
    "np_0d_int": 3, "t_i64": 2**53, "t_i32": -5, "t_u8": 200, "t_bool": 1, "t_i64_big": 2**53 + 1,
    "int_2p63_less1": 2**63 - 1, "int_neg_2p63": -(2**63), "np_i64_max": 2**63 - 1,
}  # fmt: skip
EXACT_FLOATS = {
    "py_float": 0.1, "nan": math.nan, "inf": math.inf, "ninf": -math.inf, "negzero": -0.0, "int_2p70": 2.0**70,
    "int_neg_2p70": -(2.0**70), "decimal": 1.5, "fraction": 0.75, "decimal_nan": math.nan, "np_f16": 0.0999755859375,
    "np_f32": 0.10000000149011612, "np_f64": 0.1, "np_mean": 1.5, "np_u64": 2.0**63, "np_0d": 2.5, "np_nan32": math.nan,
    "np_negzero": -0.0, "t_f32": 0.10000000149011612, "t_f16": 0.0999755859375, "t_bf16": 0.10009765625,
    "t_f64": 0.1, "t_grad": 6.0, "t_1elem": 4.5, "str": 0.5, "str_int": 42.0,
}  # fmt: skip
ROUNDED = {"int_2p70_plus1": 2.0**70, "decimal_tenth": 0.1, "fraction_third": 1 / 3}


def test_every_number_is_stored_exactly_or_rounded_and_only_what_is_no_number_is_refused(project: Path) -> None:
    write(project, "values.py", VALUES_SCRIPT)
    handle = launchbay.submit("values.py")
    assert finished(handle) == "Completed", handle.get_log()
    summaries = {s["name"]: s for s in handle.metric_summaries()}
    for name, expected in {**INTEGERS, **EXACT_FLOATS, **ROUNDED}.items():
        steps, values = series(handle, name)
        assert steps == [1, 2**62], name
        assert [type(v) for v in values] == [type(expected)] * 2, (name, values)  # ints stay ints
        assert [bits(v) for v in values] == [bits(expected)] * 2 or (
            math.isnan(expected) and all(map(math.isnan, values))
        ), (name, values)
        assert values == [expected] * 2 or math.isnan(expected), (name, values)  # ints exactly, past 2**53 too
        assert (summaries[name]["integer"], summaries[name]["rounded"]) == (name in INTEGERS, name in ROUNDED), name
    log = handle.get_log()
    properties = handle.record().properties
    for name in ("text", "none", "array", "tensor", "list", "complex", "int_huge", "bytes"):
        assert log.count(f"metric {name!r}") == 1, (name, log)  # one warning, naming the metric
        assert properties[f"launchbay.refused.{name}"].startswith("50 points refused: "), name
        assert series(handle, name + "_ok") == ([0], [1.0])  # a bad value touches no other point
    assert not any(f"launchbay.refused.{name}" in properties for name in (*INTEGERS, *EXACT_FLOATS, *ROUNDED))
    assert "beyond the float64 range" in properties["launchbay.refused.int_huge"]
    for name in ("step_abc", "step_nan", "step_2p70", "step_half"):
        assert series(handle, name) == ([3], [2.0]), name  # only the bad step's point is refused
        assert properties[f"launchbay.refused.{name}"].startswith("1 points refused: step ")
    assert series(handle, "step_np") == ([5], [1.0]) and series(handle, "step_t") == ([6], [1.0])
    assert series(handle, "step_f") == ([7], [1.0])
    assert properties["launchbay.refused.big_step"].startswith("1 points refused: a step without a number")
    assert series(handle, "big_step")[0] == [2**63 - 1] and series(handle, "neg_step")[0] == [-(2**63)]
    assert series(handle, "np_name") == ([0], [1.0]) and series(handle, "42") == ([0], [1.0])


def test_no_value_breaks_the_store_for_other_runs(project: Path, cli: CLI) -> None:
    """The values that used to make every command crash for the whole store."""
    write(
        project,
        "hostile.py",
        """
        import numpy as np
        from launchbay import Run
        run = Run.get_context()
        run.log("loss", np.mean(np.arange(4.0)))
        run.log("huge", 10**400); run.log("big", 2**70 + 1, step=2**70); run.log("abc", 1.0, step="abc")
        run.log_list("l", [np.float64(0.5), np.int64(2), "x", None])
        run.log_row("r", a=np.float32(0.5), b=np.array(3))
        """,
    )
    write(project, "plain.py", "from launchbay import Run\nRun.get_context().log('x', 1.0)\n")
    hostile, plain = launchbay.submit("hostile.py"), launchbay.submit("plain.py")
    assert finished(hostile) == "Completed" and finished(plain) == "Completed"
    assert hostile.get_metrics()["l"] == [0.5, 2, "x", None]
    assert hostile.get_metrics()["r"] == {"a": [0.5], "b": [3]}
    assert series(hostile, "loss") == ([0], [1.5]) and series(plain, "x") == ([0], [1.0])
    for args in (["runs"], ["show", hostile.run_id], ["metrics", hostile.run_id], ["cancel", hostile.run_id]):
        cli(*args, check=True)


def test_a_refusal_under_warnings_as_errors_still_keeps_the_other_points(project: Path) -> None:
    write(
        project,
        "strict.py",
        """
        import warnings
        warnings.simplefilter("error")
        from launchbay import Run
        run = Run.get_context()
        for i in range(100):
            run.log("text", "not a number")
            run.log("loss", float(i), step=i)
        """,
    )
    handle = launchbay.submit("strict.py")
    assert finished(handle) == "Completed", handle.get_log()
    assert series(handle, "loss")[0] == list(range(100))
    assert handle.get_log().count("metric 'text'") == 1
    assert handle.record().properties["launchbay.refused.text"].startswith("100 points refused")


# -- journals ---------------------------------------------------------------------------------------
JOURNAL_SCRIPT = """
import marshal, os, struct, time, zlib
from launchbay import Run
from launchbay.tracking.journalfmt import encode, HEADER, MAGIC
run = Run.get_context()
run.log("good", 1.0, step=0)
run.flush()
journal = os.environ["LAUNCHBAY_JOURNAL_DIR"]
def rec(points): return encode(marshal.dumps(("m", points)))
ok = rec([("good", 2.0, 1, time.time())])
body = marshal.dumps(("m", [("good", 99.0, 99, time.time())]))
crc = zlib.crc32(body, zlib.crc32(struct.pack("<BI", 9, len(body))))
newer = HEADER.pack(MAGIC, 9, len(body), crc) + body  # a later format version, intact
flipped = bytearray(rec([("good", 98.0, 98, time.time())])); flipped[-3] ^= 0xFF  # damaged in the middle
unknown_kind = encode(marshal.dumps((42, ("x", 1, time.time()))))  # not a kind at all
not_marshal = encode(b"\\xff\\xfe garbage")
wrong_shape = encode(marshal.dumps(("m", [("good", 97.0), 5, None])))
bytes_value = encode(marshal.dumps(("m", [("good", b"\\x00" * 8, 3, time.time()), ("good", 4.0, 4, time.time())])))
with open(os.path.join(journal, "p1-1.jnl"), "wb") as fh:
    fh.write(b"garbage before anything" + ok + newer + flipped + unknown_kind + not_marshal + wrong_shape
             + b"\\x00" * 100 + bytes_value + rec([("good", 5.0, 5, time.time())]) + ok[:9])  # cut short at the end
with open(os.path.join(journal, "p2-2.bin"), "wb") as fh:  # the first format, with what old writers wrote
    legacy = marshal.dumps(("m", [("old", 1.0, 0, time.time()), ("old", b"\\x00" * 8, 1, time.time())]))
    fh.write(struct.pack("<I", len(legacy)) + legacy + struct.pack("<I", 10**9) + b"x" * 10)
with open(os.path.join(journal, "events.jsonl"), "a") as fh:
    fh.write("{not json\\n")
    fh.write('{"type": "status", "status": "Exploded", "ts": 1}\\n')
    fh.write('[1, 2]\\n')
    fh.write('{"type": "runner", "pid": "not a pid", "pgid": null, "ts": 1}\\n')
"""


def test_damaged_partial_and_newer_records_are_skipped_counted_and_shown(project: Path, cli: CLI) -> None:
    write(project, "journal.py", JOURNAL_SCRIPT)
    handle = launchbay.submit("journal.py")
    assert finished(handle) == "Completed", handle.get_log()
    assert sorted(zip(*series(handle, "good"))) == [(0, 1.0), (1, 2.0), (4, 4.0), (5, 5.0)]
    assert series(handle, "old") == ([0], [1.0])
    properties = handle.record().properties
    # p1: leading garbage, newer, flipped, unknown kind, not marshal, zeros, cut short (7);
    # p2: the bogus length (1); events: not JSON, unknown status, not an object, bad runner pid (4)
    assert properties["launchbay.unreadable_records"].startswith("12 records could not be read")
    assert properties["launchbay.refused.good"].startswith("1 points refused: a bytes is not a number")
    assert properties["launchbay.refused.old"].startswith("1 points refused")
    assert properties["launchbay.refused.(unnamed)"].startswith("3 points refused")
    shown = cli("show", handle.run_id, check=True).stdout
    assert "12 records could not be read" in shown
    details = cli.json("show", handle.run_id)
    assert isinstance(details, dict) and "launchbay.unreadable_records" in details["properties"]
    cli("runs", check=True)
    cli("metrics", handle.run_id, check=True)


def test_the_record_format_resyncs_after_damage() -> None:
    from launchbay.tracking.journalfmt import decode

    good = encode(marshal.dumps(("m", [])))
    data = b"xx" + MAGIC + b"zz" + good
    outcomes = []
    pos = 0
    while pos < len(data):
        outcome, pos, _ = decode(data, pos, final=True)
        outcomes.append(outcome)
    assert outcomes == ["bad", "bad", "ok"]
    assert decode(good[: HEADER.size + 1], 0, final=False)[0] == "partial"
    assert decode(good[: HEADER.size + 1], 0, final=True)[0] == "bad"


# -- endings ------------------------------------------------------------------------------------------
ENDINGS_SCRIPT = """
import multiprocessing as mp, os, signal, sys, threading, time
from launchbay import Run
N = 20_000

def log_some(tag, n=N):
    run = Run.get_context()
    for i in range(n):
        run.log(tag, float(i), step=i)
    return n

def main(mode):
    if mode == "normal":
        log_some("m")
    elif mode == "exception":
        log_some("m"); raise RuntimeError("the training blew up")
    elif mode == "sys_exit":
        log_some("m"); sys.exit(3)
    elif mode in ("sigterm", "sigint"):
        log_some("m"); os.kill(os.getpid(), signal.SIGTERM if mode == "sigterm" else signal.SIGINT); time.sleep(30)
    elif mode == "threads":
        threads = [threading.Thread(target=log_some, args=(f"t{k}", N // 4)) for k in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
    elif mode == "context_in_thread_then_sigterm":
        t = threading.Thread(target=log_some, args=("m",)); t.start(); t.join()
        os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)
    elif mode.endswith("_process"):
        p = mp.get_context(mode.split("_")[0]).Process(target=log_some, args=("m",)); p.start(); p.join()
        assert p.exitcode == 0
    elif mode == "fork_process_parent_logged":
        log_some("parent", 10)
        p = mp.get_context("fork").Process(target=log_some, args=("m",)); p.start(); p.join()
    elif mode.endswith("_pool"):
        with mp.get_context(mode.split("_")[0]).Pool(3) as pool:
            assert sum(pool.map(log_some, [f"w{k}" for k in range(4)], chunksize=1)) == 4 * N
    elif mode == "fork_executor":
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
            assert sum(ex.map(log_some, [f"w{k}" for k in range(4)])) == 4 * N
    elif mode.endswith("_pool_closed"):
        pool = mp.get_context(mode.split("_")[0]).Pool(2)
        pool.map(log_some, [f"w{k}" for k in range(4)], chunksize=1); pool.close(); pool.join()

if __name__ == "__main__":
    main(sys.argv[1])
"""

ENDINGS = {  # mode: (expected status, {metric: points})
    "normal": ("Completed", {"m": 20_000}),
    "exception": ("Failed", {"m": 20_000}),
    "sys_exit": ("Failed", {"m": 20_000}),
    "sigterm": ("Failed", {"m": 20_000}),
    "sigint": ("Failed", {"m": 20_000}),
    "threads": ("Completed", {f"t{k}": 5_000 for k in range(4)}),
    "context_in_thread_then_sigterm": ("Failed", {"m": 20_000}),
    "fork_process": ("Completed", {"m": 20_000}),
    "fork_process_parent_logged": ("Completed", {"m": 20_000, "parent": 10}),
    "spawn_process": ("Completed", {"m": 20_000}),
    "fork_pool": ("Completed", {f"w{k}": 20_000 for k in range(4)}),
    "spawn_pool": ("Completed", {f"w{k}": 20_000 for k in range(4)}),
    "fork_pool_closed": ("Completed", {f"w{k}": 20_000 for k in range(4)}),
    "fork_executor": ("Completed", {f"w{k}": 20_000 for k in range(4)}),
}


@pytest.mark.slow
def test_every_point_is_kept_on_every_ordinary_ending(project: Path) -> None:
    write(project, "endings.py", ENDINGS_SCRIPT)
    handles = {mode: launchbay.submit("endings.py", args=[mode], name=mode) for mode in ENDINGS}
    kept = {}
    for mode, (status, expected) in ENDINGS.items():
        handle = handles[mode]
        assert finished(handle) == status, (mode, handle.get_log())
        kept[mode] = {name: series(handle, name) for name in expected}
        for name, count in expected.items():
            steps, values = kept[mode][name]
            assert sorted(steps) == list(range(count)), (mode, name, len(steps))
            assert sorted(values) == [float(i) for i in range(count)]
        assert "launchbay.unreadable_records" not in handle.record().properties
    print({mode: sum(len(s[0]) for s in v.values()) for mode, v in kept.items()})


# -- hard endings and signals at any moment ------------------------------------------------------------
STEADY_SCRIPT = """
import json, os, sys, time
from launchbay import Run
run = Run.get_context()
report, mode = sys.argv[1], sys.argv[2]
with open(report + ".pid", "w") as fh:
    fh.write(str(os.getpid()))
i, start = 0, time.time()
while True:
    run.log("m", float(i), step=i)
    i += 1
    if i % 100 == 0:
        time.sleep(0.0005)  # a training loop: ~100k points/s, not a busy spin
        if mode == "os_exit" and time.time() - start > 1.5:
            with open(report, "w") as fh:
                json.dump({"logged": i, "last_ts": time.time()}, fh)
            os._exit(0)
"""


def _lost_window(handle: launchbay.RunHandle, logged: int, end_ts: float) -> tuple[int, float]:
    steps, _ = series(handle, "m")
    assert steps == list(range(len(steps)))  # what is kept is everything up to some point
    ts = handle.get_metric_series("m").timestamps
    return logged - len(steps), end_ts - float(ts[-1])


@pytest.mark.slow
def test_sigkill_and_os_exit_lose_at_most_the_last_flush_interval(project: Path, tmp_path: Path) -> None:
    write(project, "steady.py", STEADY_SCRIPT)
    exiting = launchbay.submit("steady.py", args=[str(tmp_path / "exit.json"), "os_exit"])
    killed = launchbay.submit("steady.py", args=[str(tmp_path / "kill.json"), "kill"])
    pid = int(wait_for(lambda: (tmp_path / "kill.json.pid").exists() and (tmp_path / "kill.json.pid").read_text()))
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    kill_ts = time.time()
    assert finished(exiting) == "Completed" and finished(killed) == "Failed"
    report = json.loads((tmp_path / "exit.json").read_text())
    lost_exit, window_exit = _lost_window(exiting, report["logged"], report["last_ts"])
    _, window_kill = _lost_window(killed, 0, kill_ts)
    print(f"os._exit lost {lost_exit} of {report['logged']} points ({window_exit:.3f} s); SIGKILL {window_kill:.3f} s")
    assert window_exit <= FLUSH + 0.4 and window_kill <= FLUSH + 0.4  # the flush interval, plus a loaded machine


SIGNALS_SCRIPT = """
import os, signal, sys, time
from launchbay import Run
run = Run.get_context()
signal.signal(signal.SIGUSR1, lambda *_: run.flush())  # the user's own handler flushes too
with open(sys.argv[1], "w") as fh:
    fh.write(str(os.getpid()))
i = 0
while True:
    run.log("m", float(i), step=i)
    run.log_row("r", i=i)
    i += 1
    if i % 10 == 0:
        run.flush()  # most of the time is spent inside flush: that is where signals land
"""


@pytest.mark.slow
def test_no_signal_at_any_moment_deadlocks_a_run(project: Path, tmp_path: Path) -> None:
    write(project, "signals.py", SIGNALS_SCRIPT)
    handles = [launchbay.submit("signals.py", args=[str(tmp_path / f"{k}.pid")]) for k in range(6)]
    pids = [int(wait_for(lambda k=k: (tmp_path / f"{k}.pid").exists() and (tmp_path / f"{k}.pid").read_text()))
            for k in range(6)]  # fmt: skip
    for k, pid in enumerate(pids):
        for _ in range(200):  # a storm of the user's signal while it flushes
            os.kill(pid, signal.SIGUSR1)
        time.sleep(0.05 * k)  # then SIGTERM at a different moment in each run
        os.kill(pid, signal.SIGTERM if k % 2 else signal.SIGINT)
    started = time.time()
    for handle in handles:
        assert finished(handle, timeout=30) == "Failed"
        steps, _ = series(handle, "m")
        assert steps == list(range(len(steps))) and len(steps) > 0
        rows = handle.get_metrics()["r"]["i"]
        assert rows == list(range(len(rows)))
        assert "launchbay.unreadable_records" not in handle.record().properties
    assert time.time() - started < 20  # ended by the signal, not by a SIGKILL after a hang


# -- disk full ----------------------------------------------------------------------------------------
DISK_FULL_SCRIPT = """
import os, sys, time
from launchbay import Run
flags = sys.argv[1]
def phase(name, wait_for):
    open(os.path.join(flags, name), "w").close()
    while not os.path.exists(os.path.join(flags, wait_for)):
        time.sleep(0.02)
run = Run.get_context()
for i in range(1000):
    run.log("m", float(i), step=i)
run.flush()
phase("logged", "filled")
for i in range(1000, 6000):
    run.log("m", float(i), step=i)
for i in range(3):
    run.log_row("r", i=i)
run.flush()
for i in range(300):  # more than a pipe holds: the runner must keep reading it
    print("x" * 1000, flush=True)
phase("refused", "freed")
for i in range(6000, 7000):
    run.log("m", float(i), step=i)
run.log_row("r", i=3)
"""


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Any:
    from conftest import need_service

    need_service(os.geteuid() == 0, "root (to mount a small tmpfs)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 4096, 1):  # down to the last byte
            try:
                while os.write(fd, b"\\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_loses_only_what_it_must_and_says_so(project: Path, small_tmpfs: Path, tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    write(project, "full.py", DISK_FULL_SCRIPT)
    store = small_tmpfs / "store"
    handle = launchbay.submit("full.py", args=[str(flags)], store=store)
    wait_for(lambda: (flags / "logged").exists(), timeout=60)
    filler = _fill(small_tmpfs)
    (flags / "filled").touch()
    wait_for(lambda: (flags / "refused").exists(), timeout=60)
    filler.unlink()  # space is back
    (flags / "freed").touch()
    assert finished(handle) == "Completed", handle.get_log()
    steps, values = series(handle, "m")
    assert steps == list(range(1000)) + list(range(6000, 7000)) and values == [float(s) for s in steps]
    rows = handle.get_metrics()["r"]["i"]  # a row is small: it may still fit in the file's last page
    assert rows[-1] == 3 and rows == sorted(rows)
    properties = handle.record().properties
    not_written = 5000 + 3 - (len(rows) - 1)  # each row whole or counted, never cut
    assert properties["launchbay.points_not_written"] == f"disk full: {not_written} points not written"
    assert "launchbay.unreadable_records" not in properties  # nothing half-written
    again = launchbay.submit("full.py", args=[str(flags)], store=store)  # the store works afterwards
    assert finished(again) == "Completed" and len(series(again, "m")[0]) == 7000


# -- many runs at once -----------------------------------------------------------------------------------
MIXED_SCRIPT = """
import numpy as np
from launchbay import Run
run = Run.get_context()
N = 25_000  # x 4 kinds = 100,000 points
f32 = np.arange(N, dtype=np.float32)
for i in range(N):
    run.log("float", i * 0.5, step=i)
    run.log("int", i)  # steps counted by the store
    run.log("numpy", f32[i], step=i)  # resolved in the background
    run.log("special", float("nan") if i % 1000 == 0 else -float(i), step=2**40 + i)
    if i % 5000 == 0:
        run.log_row("rows", i=i)
"""


@pytest.mark.slow
def test_16_concurrent_runs_of_100k_mixed_points_with_readers_get_every_point_back(project: Path) -> None:
    write(project, "mixed.py", MIXED_SCRIPT)
    handles = [launchbay.submit("mixed.py", name=f"r{k}") for k in range(16)]
    errors: list[str] = []
    stop = threading.Event()

    def reader(offset: int) -> None:
        seen: dict[tuple[str, str], int] = {}
        while not stop.is_set():
            for handle in handles[offset::2]:
                again = launchbay.get_run(handle.run_id)
                for name in ("float", "int", "numpy", "special"):
                    steps = again.get_metric_series(name).steps
                    first = 2**40 if name == "special" else 0
                    if len(steps) and not (steps[0] == first and steps[-1] == first + len(steps) - 1):
                        errors.append(f"{name}: not a prefix")
                    if len(steps) < seen.get((handle.run_id, name), 0):
                        errors.append(f"{name}: a reader saw the count go down")
                    seen[(handle.run_id, name)] = len(steps)
            launchbay.runs(limit=20)

    readers = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for thread in readers:
        thread.start()
    try:
        statuses = [finished(handle, timeout=240) for handle in handles]
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert statuses == ["Completed"] * 16 and not errors, errors[:5]
    n = 25_000
    for handle in handles:
        steps, values = series(handle, "float")
        assert steps == list(range(n)) and values == [i * 0.5 for i in range(n)]
        steps, values = series(handle, "int")
        assert steps == list(range(n)) and values == [float(i) for i in range(n)]
        assert series(handle, "numpy")[1] == [float(i) for i in range(n)]
        steps, values = series(handle, "special")
        assert steps == [2**40 + i for i in range(n)]
        assert [bits(v) for v in values] == [bits(math.nan if i % 1000 == 0 else -float(i)) for i in range(n)]
        assert handle.get_metrics()["rows"] == {"i": [0, 5000, 10000, 15000, 20000]}


# -- backlog --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ingesting_a_backlog_takes_bounded_memory(tmp_path: Path) -> None:
    """Peak RSS grows with the piece size, not with the backlog (figures: bench/bench_ingest_memory.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        from bench_ingest_memory import measure
    finally:
        sys.path.pop(0)
    small = measure(str(tmp_path / "small"), 12)
    large = measure(str(tmp_path / "large"), 48)
    assert small["stored"] == small["points"] and large["stored"] == large["points"]
    small_growth = small["peak_rss_mb"] - small["rss_before_mb"]
    large_growth = large["peak_rss_mb"] - large["rss_before_mb"]
    print(f"ingest peak RSS growth: {small_growth:.0f} MB for 12 MB, {large_growth:.0f} MB for 48 MB")
    assert 0 < large_growth < 150 and large_growth < small_growth + 30  # 4x the backlog, about the same memory


CANCEL_SCRIPT = """
import multiprocessing as mp, os, sys, threading, time
from launchbay import Run
flags = sys.argv[1]

def work(tag):
    run = Run.get_context()
    for i in range(10_000):
        run.log(tag, float(i), step=i)
    open(os.path.join(flags, tag), "w").close()
    time.sleep(120)  # still busy when the run is canceled

if __name__ == "__main__":
    pool = mp.get_context("fork").Pool(2)
    pool.map_async(work, ["w0", "w1"], chunksize=1)
    threading.Thread(target=work, args=("thread",), daemon=True).start()
    time.sleep(120)
"""


@pytest.mark.slow
def test_cancel_keeps_what_workers_and_threads_logged(project: Path, tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    write(project, "cancel.py", CANCEL_SCRIPT)
    handle = launchbay.submit("cancel.py", args=[str(flags)])
    wait_for(lambda: all((flags / tag).exists() for tag in ("w0", "w1", "thread")), timeout=60)
    assert handle.cancel() == "Canceled" or finished(handle) == "Canceled"
    assert finished(handle) == "Canceled"
    for tag in ("w0", "w1", "thread"):
        assert series(handle, tag)[0] == list(range(10_000)), tag


STUCK_SCRIPT = """
import os, signal, threading, time
from launchbay import Run
run = Run.get_context()
for i in range(1000):
    run.log("m", float(i), step=i)
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a thread that takes the signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # so the main thread never wakes up for it
os.kill(os.getpid(), signal.SIGTERM)
threading.Event().wait()  # blocked in C for good: the Python handler cannot run
"""

OWN_HANDLER_SCRIPT = """
import os, signal, time
from launchbay import Run
run = Run.get_context()
calls = []
signal.signal(signal.SIGTERM, lambda *_: calls.append(1))  # the user's own graceful shutdown
for i in range(1000):
    run.log("m", float(i), step=i)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(SIGTERM_GRACE_S + 1)
print("still running after SIGTERM:", calls)
"""


def test_a_sigterm_the_main_thread_cannot_handle_still_ends_the_run_with_every_point(project: Path) -> None:
    write(project, "stuck.py", STUCK_SCRIPT)
    started = time.time()
    handle = launchbay.submit("stuck.py")
    assert finished(handle, timeout=30) == "Failed"
    assert handle.get_details()["exit_code"] == 128 + signal.SIGTERM
    assert series(handle, "m")[0] == list(range(1000)) and time.time() - started < 20
    write(project, "own.py", OWN_HANDLER_SCRIPT.replace("SIGTERM_GRACE_S", "2"))
    own = launchbay.submit("own.py")  # a handler of the user's own is left to decide
    assert finished(own, timeout=30) == "Completed"
    assert "still running after SIGTERM: [1]" in own.get_log()
    assert series(own, "m")[0] == list(range(1000))


def test_a_status_written_while_points_are_read_never_ends_the_run_before_its_last_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The script's last flush and the runner's final status can land between the reader's look at the
    points files and its look at the events: the end must come with every point, never before."""
    from launchbay import journal_reader
    from launchbay import runfolder as rf

    def points(first: int, last: int) -> bytes:
        return encode(marshal.dumps(("m", [("loss", float(i), i, time.time()) for i in range(first, last)])))

    journal = tmp_path
    flusher = journal / ("flusher" + rf.RECORDS)
    flusher.write_bytes(points(0, 1000))
    (journal / rf.EVENTS).write_text(json.dumps({"type": "status", "status": "Running", "ts": 1.0}) + "\n")
    read_records = journal_reader._read_records

    def read_then_the_run_ends(*args: Any, **kwargs: Any) -> int:
        used = read_records(*args, **kwargs)
        with open(flusher, "ab") as fh:  # meanwhile: the script's last flush, then the runner's end
            fh.write(points(1000, 1500))
        with open(journal / rf.EVENTS, "a") as fh:
            fh.write(json.dumps({"type": "status", "status": "Completed", "ts": 2.0, "final": True}) + "\n")
        return used

    monkeypatch.setattr(journal_reader, "_read_records", read_then_the_run_ends)
    first = journal_reader.read_piece(journal, {}, final=False)
    assert sum(map(len, first.points.values())) == 1000
    assert [e["status"] for e in first.events] == ["Running"]  # not Completed: 500 points are not in yet
    monkeypatch.setattr(journal_reader, "_read_records", read_records)
    known = {name: end for name, (_, end) in first.offsets.items()}
    second = journal_reader.read_piece(journal, known, final=False)
    assert sum(map(len, second.points.values())) == 500 and second.ends
