"""No logged point is dropped for its type: ints within int64 are kept exactly (an integer series),
whatever else converts to a float is kept as that float with its series marked rounded, and only
what is no number is refused, counted on the run's status line."""

from __future__ import annotations

import json
import marshal
from pathlib import Path

import launchbay
from conftest import CLI, write
from launchbay.ingest import ingest_run
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunRecord, RunStore, open_store, sealed
from launchbay.tracking.journalfmt import encode as journal_record

TOKENS = [2**53 + 1 + 7 * i for i in range(3000)]  # token counters, byte counts, ns timestamps: past 2**53

COUNTERS = """
    from decimal import Decimal
    from launchbay import Run
    run = Run.get_context()
    for i in range(3000):
        run.log("tokens", 2**53 + 1 + 7 * i, step=i)
    run.log("lr", "1.5"); run.log("lr", "0.25")
    run.log("price", Decimal("1.1")); run.log("price", Decimal("2.5"))
    run.log("note", "not a number")
"""


def test_3000_ints_past_2p53_and_numeric_strings_and_decimals_all_reach_every_reader(project: Path, cli: CLI) -> None:
    from launchbay.ipython.widgets import RunWidget

    write(project, "counters.py", COUNTERS)
    handle = launchbay.submit("counters.py")
    assert handle.wait(timeout=90) == "Completed", handle.get_log()

    metrics = handle.get_metrics()
    assert metrics["tokens"] == TOKENS and all(type(v) is int for v in metrics["tokens"])  # all 3,000, exact
    assert metrics["lr"] == [1.5, 0.25] and metrics["price"] == [1.1, 2.5]

    data = cli.json("metrics", handle.run_id)
    assert isinstance(data, dict)
    points = data["tokens"]["points"]
    assert [p["value"] for p in points] == TOKENS and [p["step"] for p in points] == list(range(3000))
    assert (data["tokens"]["integer"], data["tokens"]["rounded"]) == (True, False)
    assert (data["lr"]["integer"], data["lr"]["rounded"]) == (False, False)  # "1.5" and "0.25" are exact
    assert (data["price"]["integer"], data["price"]["rounded"]) == (False, True)  # Decimal("1.1") is not
    assert "note" not in data
    lines = {line.split(" ", 1)[0]: line for line in cli("metrics", handle.run_id, check=True).stdout.splitlines()}
    assert lines["tokens"].startswith("tokens (scalar): 3,000 points, ")
    assert "integers, exactly as logged" in lines["tokens"]
    assert "rounded" in lines["price"] and "rounded" not in lines["lr"]

    widget = RunWidget(launchbay.get_run(handle.run_id))
    try:
        assert widget.wait_until_done(30)
        assert widget._series["tokens"].values.tolist() == TOKENS
        assert widget._series["price"].rounded and not widget._series["tokens"].rounded
    finally:
        widget.close()

    assert "Completed (exit code 0) — 1 point refused" in cli("show", handle.run_id, check=True).stdout
    shown = cli.json("show", handle.run_id)
    assert isinstance(shown, dict) and shown["points_refused"] == 1 and shown["status"] == "Completed"
    assert shown["properties"]["launchbay.refused.note"].startswith("1 points refused: the str 'not a number'")
    assert "Completed — 1 point refused" in cli("runs", check=True).stdout


def ended_run(tmp_path: Path, points: list[tuple[str, object, int | None, float]]) -> tuple[RunStore, RunRecord]:
    """A run whose journal holds ``points`` and whose status is already terminal."""
    store = open_store(tmp_path / "store")
    record = store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
    journal = record.run_dir / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    (journal / "p1-1.jnl").write_bytes(journal_record(marshal.dumps(("m", points))))
    store.end_run(record.pk, RunStatus.COMPLETED)
    return store, store.get_run(record.run_id)


def test_an_integer_series_that_gets_a_float_becomes_a_float_series_marked_rounded_where_it_is(
    tmp_path: Path,
) -> None:
    exact, past = [0, 5, 2**53], [2**53 + 1, 2**62 + 3]
    store, record = ended_run(tmp_path, [("n", v, None, 1.0) for v in exact + past])
    original = (record.run_dir / "journal" / "p1-1.jnl").read_bytes()
    ingest_run(store, record)  # ingested and sealed: the ints lie in sealed.series
    assert (record.run_dir / "journal" / sealed.SERIES).is_file()
    assert store.read_series(record, "n").values.tolist() == exact + past
    # a mirror brings one more point, a float: the series so far is packed again as float64
    later = journal_record(marshal.dumps(("m", [("n", 0.5, None, 2.0)])))
    (record.run_dir / "journal" / "p1-1.jnl").write_bytes(original + later)
    ingest_run(store, record)
    series = store.read_series(record, "n")
    assert series.steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert series.values.tolist() == [0.0, 5.0, 2.0**53, 2.0**53, 2.0**62, 0.5]
    assert (series.integer, series.rounded) == (False, True)  # 2**53 + 1 and 2**62 + 3 have no float64


def test_store_repair_keeps_an_integer_series_exact(cli: CLI, project: Path, tmp_path: Path) -> None:
    write(project, "count.py", "from launchbay import Run\nrun = Run.get_context()\n"
          "for i in range(100):\n    run.log('bytes', 2**62 + i)\n")  # fmt: skip
    run_id = cli.json("submit", "count.py", "--wait")["run_id"]  # type: ignore[index]
    store = open_store(tmp_path / "store")
    ingest_run(store, store.get_run(run_id))
    assert (store.get_run(run_id).run_dir / "journal" / sealed.SERIES).is_file()
    store.close()
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (tmp_path / "store" / name).unlink(missing_ok=True)

    report = json.loads(cli("store", "repair", "--json", check=True).stdout)
    assert report["points"] == 100
    data = cli.json("metrics", run_id)
    assert [p["value"] for p in data["bytes"]["points"]] == [2**62 + i for i in range(100)]  # type: ignore[index]
    assert data["bytes"]["integer"] is True  # type: ignore[index]
