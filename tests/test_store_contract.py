"""The store contract (``launchbay.store.Store``), run once per backend that exists.

Each row of ``BACKENDS`` opens a store; every test here holds for every row: the embedded store
(SQLite index, folder blobs); the same index over an in-memory remote blob store read through the
local cache (``CachedBlobs``), which proves the blob seam; SQLite over S3 blobs; and the team
store, PostgreSQL (a throwaway cluster, a schema per test) with folder blobs and with S3 blobs.
S3 here is moto's standalone server, an S3 *emulator* spoken to over real HTTP by boto3 (no real
S3-compatible server installs on these machines). The store folders (the team store's local
folder too) have quotes, a space and a newline in their path.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from launchbay.errors import RunNotFoundError, StoreError
from launchbay.ingest import ingest_run
from launchbay.models import RunSpec, RunStatus
from launchbay.store import ENTRY_POINT_GROUP, RunRecord, RunStore, Store, open_store
from launchbay.store.blobcache import CachedBlobs
from launchbay.store.model_rows import ModelVersion
from launchbay.store.postgres import PostgresStore
from launchbay.store.records import DatasetVersion, RunInput
from launchbay.store.remote import S3Blobs
from launchbay.store.repair import repair


class MemoryBlobs(CachedBlobs):
    """A remote blob store that lives in a dict: every read goes through the local cache."""

    def __init__(self, cache_dir: Path) -> None:
        super().__init__(cache_dir)
        self.remote: dict[str, bytes] = {}

    @property
    def location(self) -> str:
        return "memory:"

    def _exists(self, digest: str) -> bool:
        return digest in self.remote

    def _upload(self, digest: str, source: Path) -> None:
        self.remote[digest] = source.read_bytes()

    def _download(self, digest: str, dest: Path) -> None:
        dest.write_bytes(self.remote[digest])

    def _list(self) -> Iterator[tuple[str, int]]:
        return iter([(d, len(data)) for d, data in self.remote.items()])

    def _delete(self, digest: str) -> None:
        self.remote.pop(digest, None)


Opener = Callable[[Path, pytest.FixtureRequest], Store]


def _folder(root: Path, request: pytest.FixtureRequest) -> Store:
    return RunStore(root)


def _memory_blobs(root: Path, request: pytest.FixtureRequest) -> Store:
    return RunStore(root, blobs=MemoryBlobs(root / "cache" / "blobs"))


def _s3(root: Path, request: pytest.FixtureRequest) -> S3Blobs:
    url, settings = request.getfixturevalue("team_s3")
    return S3Blobs(url, root / "cache" / "blobs", settings)


def _sqlite_s3(root: Path, request: pytest.FixtureRequest) -> Store:
    return RunStore(root, blobs=_s3(root, request))


def _pg_folder(root: Path, request: pytest.FixtureRequest) -> Store:
    return PostgresStore(request.getfixturevalue("team_pg"), cache_dir=root)


def _pg_s3(root: Path, request: pytest.FixtureRequest) -> Store:
    return PostgresStore(request.getfixturevalue("team_pg"), cache_dir=root, blobs=_s3(root, request))


BACKENDS: dict[str, Opener] = {
    "sqlite+folder": _folder,
    "sqlite+memory-blobs": _memory_blobs,
    "sqlite+s3": _sqlite_s3,
    "postgres+folder": _pg_folder,
    "postgres+s3": _pg_s3,
}


SERVICES = {"sqlite+s3": ["s3"], "postgres+folder": ["postgres"], "postgres+s3": ["postgres", "s3"]}


@pytest.fixture(
    params=[pytest.param(name, marks=[getattr(pytest.mark, m) for m in SERVICES.get(name, [])]) for name in BACKENDS]
)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    root = tmp_path / 'it\'s a "store"\nwith a newline' / ".launchbay"
    make = BACKENDS[request.param]
    return lambda: make(root, request)


@pytest.fixture
def store(opener: Callable[[], Store]) -> Iterator[Store]:
    with opener() as opened:
        yield opened


def new_run(store: Store, experiment: str = "exp", **params: object) -> RunRecord:
    spec = RunSpec(script="train.py", experiment=experiment, params=dict(params), tags={"team": "a"})
    return store.create_run(spec, target_type="local", snapshot_id=None, properties={})


def test_create_get_list_and_filter(store: Store) -> None:
    first = new_run(store, "alpha", lr=0.1)
    second = new_run(store, "beta", lr=0.01)
    third = new_run(store, "alpha", lr=0.01)
    assert store.get_run(first.run_id).run_id == first.run_id
    assert store.resolve_run_id(second.run_id) == second.run_id
    assert (store.run_dir(first.run_id) / "run.json").is_file()
    assert {r.run_id for r in store.list_runs()} == {first.run_id, second.run_id, third.run_id}
    assert [r.run_id for r in store.list_runs(experiment="alpha")] == [third.run_id, first.run_id]
    assert [r.run_id for r in store.list_runs(param=("lr", 0.01))] == [third.run_id, second.run_id]
    assert store.count_runs(experiment="alpha") == 2
    assert store.list_runs(limit=1, offset=1)[0].run_id == second.run_id
    store.end_run(second.pk, RunStatus.COMPLETED)
    assert [r.run_id for r in store.list_runs(status="Completed")] == [second.run_id]
    assert store.statuses([first.run_id, second.run_id]) == {
        first.run_id: RunStatus.QUEUED,
        second.run_id: RunStatus.COMPLETED,
    }
    assert dict(store.experiments()) == {"alpha": 2, "beta": 1}
    assert store.get_run(first.run_id).tags == {"team": "a"}
    with pytest.raises(RunNotFoundError):
        store.get_run("no-such-run")


def test_a_batch_is_all_or_nothing(store: Store) -> None:
    one, two = new_run(store), new_run(store)
    with pytest.raises(RuntimeError), store.batch() as batch:
        batch.run(one.pk).set_tag("k", "v")
        batch.run(two.pk).transition(RunStatus.RUNNING, started=time.time())
        batch.run(two.pk).append_points("loss", [("loss", 1.0, 0, time.time())])
        raise RuntimeError("half-way")
    assert "k" not in store.get_run(one.run_id).tags
    assert store.get_run(two.run_id).status is RunStatus.QUEUED
    assert store.series_count(two.run_id, "loss") == 0
    with store.batch() as batch:
        batch.run(one.pk).set_tag("k", "v")
        batch.run(two.pk).transition(RunStatus.RUNNING, started=time.time())
    assert store.get_run(one.run_id).tags["k"] == "v"
    assert store.get_run(two.run_id).status is RunStatus.RUNNING


def test_a_terminal_status_is_never_left(store: Store) -> None:
    run = new_run(store)
    assert store.end_run(run.pk, RunStatus.CANCELED)
    assert not store.end_run(run.pk, RunStatus.FAILED)
    assert not store.update_run(run.pk, status=RunStatus.RUNNING.value)
    with store.write(run.pk) as writer:
        assert not writer.transition(RunStatus.COMPLETED, exit_code=0)
        assert not writer.reopen()  # only a Failed run is queued again
    record = store.get_run(run.run_id)
    assert record.status is RunStatus.CANCELED and record.exit_code is None
    failed = new_run(store)
    store.end_run(failed.pk, RunStatus.FAILED, {"message": "died", "traceback": ""})
    assert store.reopen_run(failed.pk)
    assert store.get_run(failed.run_id).status is RunStatus.QUEUED


def test_journal_offsets_are_claimed_once(store: Store) -> None:
    run = new_run(store)
    with store.write(run.pk) as writer:
        assert writer.claim_offsets({"events.jnl": (0, 120)})
    with store.write(run.pk) as writer:  # a second reader of the same bytes
        assert not writer.claim_offsets({"events.jnl": (0, 120)})
    with store.write(run.pk) as writer:
        assert writer.claim_offsets({"events.jnl": (120, 200)})
    assert store.journal_position(run.pk)[0] == {"events.jnl": 200}


def test_series_append_and_read_after_a_step(store: Store) -> None:
    run = new_run(store)
    now = time.time()
    with store.write(run.pk) as writer:
        writer.append_points("loss", [("loss", 1.0 / (i + 1), i, now) for i in range(10)])
    with store.write(run.pk) as writer:
        writer.append_points("loss", [("loss", 0.01, None, now)])  # no step: the next one
        writer.append_points("count", [("count", 2**60 + 1, 0, now)])
    record = store.get_run(run.run_id)
    series = store.read_series(record, "loss")
    assert series.steps.tolist() == list(range(11))
    assert series.values.tolist()[-1] == 0.01
    assert store.read_series(record, "loss", after_step=7).steps.tolist() == [8, 9, 10]
    assert store.read_series(record, "count").values.tolist() == [2**60 + 1]  # an int series stays exact
    summary = {s["name"]: s for s in store.metric_summaries(record)}
    assert summary["loss"]["count"] == 11 and summary["loss"]["min"] == 0.01
    assert store.series_count(run.run_id, "loss") == 11
    assert store.last_values([record], "loss") == {record.pk: 0.01}
    assert store.point_count() == 12
    store.verify_series(record, "loss")


def test_a_sweeps_children_their_rows_and_text_search(store: Store) -> None:
    sweep = new_run(store, "hp")
    trials = []
    for lr in (0.1, 0.01, 0.001):
        spec = RunSpec(script="train.py", experiment="hp", params={"lr": lr, "opt": "Adam"}, parent_run_id=sweep.run_id)
        trials.append(store.create_run(spec, target_type="local", snapshot_id=None, properties={}))
    store.set_tag(trials[0].pk, "best", "yes")
    store.end_run(trials[1].pk, RunStatus.COMPLETED)
    assert store.children(sweep.run_id) == [t.run_id for t in trials]
    assert store.children(sweep.run_id, unfinished=True, newest_first=True) == [trials[2].run_id, trials[0].run_id]
    rows = store.child_rows(sweep.run_id)
    assert [(r.run_id, r.status, r.params, r.tags) for r in rows] == [
        (trials[0].run_id, RunStatus.QUEUED, {"lr": 0.1, "opt": "Adam"}, {"best": "yes"}),
        (trials[1].run_id, RunStatus.COMPLETED, {"lr": 0.01, "opt": "Adam"}, {}),
        (trials[2].run_id, RunStatus.QUEUED, {"lr": 0.001, "opt": "Adam"}, {}),
    ]
    assert [r.run_id for r in store.list_runs(parent=sweep.run_id)] == [t.run_id for t in reversed(trials)]
    assert {r.run_id for r in store.list_runs(text="ADAM")} == {t.run_id for t in trials}  # any case
    assert [r.run_id for r in store.list_runs(text="0.001")] == [trials[2].run_id]  # a param's value
    now = time.time()
    with store.batch() as batch:
        for i, trial in enumerate(trials):
            batch.run(trial.pk).append_points("acc", [("acc", 0.5 + i / 10, 0, now)])
    assert store.last_values(rows, "acc") == {t.pk: 0.5 + i / 10 for i, t in enumerate(trials)}
    assert [r.run_id for r in store.list_runs(metric_above=("acc", 0.65))] == [trials[2].run_id]
    assert store.get_run(trials[0].run_id).primary_metric == {"name": "acc", "value": 0.5, "step": 0}
    assert store.get_run(trials[0].run_id).created_by  # who made it: LAUNCHBAY_USER, else the login name


def test_model_versions_are_numbered_and_registered_once(store: Store) -> None:
    run = new_run(store)
    manifest = store.blobs.put_bytes(b'{"files": []}')

    def version(path: str) -> ModelVersion:
        return ModelVersion("clf", 0, run.run_id, run.experiment, path, "file", manifest, 1, 3)

    assert store.add_model_version(run, version("a.pkl"), "record:1") == 1
    assert store.add_model_version(run, version("a.pkl"), "record:1") is None  # the same record again
    assert store.add_model_version(run, version("b.pkl"), None) == 2
    latest = store.model_version("clf")
    assert latest is not None and latest.version == 2 and latest.path == "b.pkl"
    assert [v.ref for v in store.model_versions(run_id=run.run_id)] == ["clf:1", "clf:2"]
    store.delete_model_version("clf", 1)
    assert [v.version for v in store.model_versions(name="clf")] == [2]
    assert store.model_manifests() == [manifest]


def test_dataset_versions_are_numbered_by_content(store: Store) -> None:
    def version(digest: str, files: int = 3) -> DatasetVersion:
        return DatasetVersion("mnist", 0, digest, "folder", "/data/mnist", "/data/mnist", files, 300)

    a, b = "a" * 64, "b" * 64
    assert store.add_dataset_version(version(a)) == (1, True)
    assert store.add_dataset_version(version(a)) == (1, False)  # the same content is the same version
    assert store.add_dataset_version(version(b, files=4)) == (2, True)
    latest = store.dataset_version("mnist")
    assert latest is not None and (latest.version, latest.hash, latest.files) == (2, b, 4)
    first = store.dataset_version("mnist", 1)
    assert first is not None and first.hash == a and first.created > 0
    assert store.dataset_version("mnist", 3) is None and store.dataset_version("cifar") is None
    assert [v.ref for v in store.dataset_versions()] == ["mnist:1", "mnist:2"]
    store.delete_dataset_version("mnist", 1)
    assert [v.ref for v in store.dataset_versions("mnist")] == ["mnist:2"]
    assert store.add_dataset_version(version(a)) == (3, True)  # numbers are never given out twice
    store.delete_dataset_version("mnist", 2)
    store.delete_dataset_version("mnist", 3)
    assert store.dataset_versions() == []


def test_a_queue_gives_each_free_slot_once_in_order(store: Store, opener: Callable[[], Store]) -> None:
    """A target with 2 slots: the first two runs take them at once, the rest wait in order (priority
    first); a slot frees when its run ends; claims from several connections never give one slot twice."""

    def enqueue(run: RunRecord, priority: int = 0, claimer: str = "me") -> bool:
        kw = {"target": "gpu", "experiment": "exp", "target_limit": 2, "experiment_limit": None}
        return store.enqueue(run.pk, priority=priority, claimer=claimer, **kw)  # type: ignore[arg-type]

    runs = [new_run(store) for _ in range(6)]
    assert [enqueue(r) for r in runs[:3]] == [True, True, False]
    store.queue_started(runs[0].pk)
    store.queue_started(runs[1].pk)
    assert enqueue(runs[3], priority=5) is False
    assert enqueue(runs[4]) is False and enqueue(runs[5]) is False
    assert [e.run_id for e in store.queue_entries("gpu")] == [runs[i].run_id for i in (3, 2, 4, 5)]
    assert [e.position for e in store.queue_entries()] == [1, 2, 3, 4]
    assert [store.queue_state(r.pk) for r in runs[:3]] == ["started", "started", "waiting"]
    assert store.claim_queued("me") == []  # both slots are held
    assert store.move_to_top(runs[5].pk) and not store.move_to_top(runs[0].pk)
    assert store.dequeue(runs[4].pk) and not store.dequeue(runs[0].pk)  # a waiting run leaves; a held one stays
    store.end_run(runs[0].pk, RunStatus.COMPLETED)
    assert store.claim_queued("me") == [runs[5].run_id]  # the one moved to the top
    assert store.release_claims(["me"]) == 1  # its claimer died before starting it: back in line, at its place
    assert store.queue_claimers() == []
    assert [e.run_id for e in store.queue_entries()][0] == runs[5].run_id

    claimed: list[str] = []
    store.end_run(runs[1].pk, RunStatus.FAILED)  # now 2 slots are free, 3 runs wait: 8 claimers race for them

    def claim(n: int) -> None:
        with opener() as other:
            claimed.extend(other.claim_queued(f"claimer-{n}"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted([runs[5].run_id, runs[3].run_id])
    assert store.queue_waiting() == 3  # two claimed (not started yet), one waiting
    for run_id in claimed:
        store.queue_started(store.get_run(run_id).pk)
    assert [e.run_id for e in store.queue_entries()] == [runs[2].run_id]


def test_a_schedule_due_time_is_fired_once(store: Store) -> None:
    """A fire is taken by compare and set: the second taker of the same due time gets nothing."""
    from launchbay.store.records import Schedule

    assert store.add_schedule(Schedule("nightly", "cron 0 3 * * *", ["submit", "train.py"], "/w", next_fire=100.0))
    assert not store.add_schedule(Schedule("nightly", "every 1m", ["runs"], "/w"))  # the name is taken
    first = store.claim_fire("nightly", 100.0, 200.0, "fired")
    assert first is not None and store.claim_fire("nightly", 100.0, 200.0, "fired") is None
    store.set_fire_run(first, run_id="run-1")
    store.set_fire_run(first, run_id="run-2")  # the first run a fire made stays its run
    assert [(f.due, f.outcome, f.run_id) for f in store.schedule_fires("nightly")] == [(100.0, "fired", "run-1")]
    assert store.update_schedule("nightly", paused=True)
    assert store.claim_fire("nightly", 200.0, 300.0, "fired") is None  # paused: nothing fires
    found = store.schedule("nightly")
    assert found is not None and found.paused and found.next_fire == 200.0 and found.command == ["submit", "train.py"]
    assert store.remove_schedule("nightly") and store.schedules() == [] and not store.remove_schedule("nightly")
    assert store.add_schedule(Schedule("retrain", "on-change dataset:raw", ["submit", "t.py"], "/w", seen=1))
    taken = store.claim_change("retrain", 1, 3, "dataset raw version 3")
    assert taken is not None and store.claim_change("retrain", 1, 3) is None  # version 3 fires it once
    found = store.schedule("retrain")
    assert found is not None and found.seen == 3
    assert [(f.due, f.message) for f in store.schedule_fires("retrain")] == [(3.0, "dataset raw version 3")]


def test_run_inputs_are_the_lineage_of_a_run(store: Store) -> None:
    run, other = new_run(store), new_run(store)
    digest = "c" * 64
    train = RunInput("train", "./data/train", digest, "folder", "mount", 3, 300, 0, "/data/train", "mnist", 1)
    store.add_run_inputs(run.run_id, [train, RunInput("ref", "https://h/ref.csv", "d" * 64, "file", "download", 1, 9)])
    store.add_run_inputs(other.run_id, [RunInput("x", "dataset:mnist", digest, "folder", "mount", 3, 300)])
    assert [i.name for i in store.run_inputs(run.run_id)] == ["ref", "train"]
    store.set_input_bytes_sent(run.run_id, "train", 300)
    got = {i.name: i for i in store.run_inputs(run.run_id)}
    assert got["train"].bytes_sent == 300 and got["train"].dataset == "mnist" and got["train"].dataset_version == 1
    assert got["ref"].to_dict()["version"] == "d" * 64 and got["ref"].mode == "download"
    assert store.runs_with_data(digest) == [run.run_id, other.run_id]
    assert set(store.data_manifests()) == {digest, "d" * 64}
    store.end_run(other.pk, RunStatus.COMPLETED)
    assert store.remove_finished_run(other.pk)
    assert store.runs_with_data(digest) == [run.run_id]  # a removed run's lineage goes with it
    with pytest.raises(StoreError):  # one name twice: nothing of the batch is written
        store.add_run_inputs(other.run_id, [train, train])


def test_blobs_round_trip_through_the_interface(store: Store, tmp_path: Path) -> None:
    data = b"print('hello')\n"
    digest = store.blobs.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.blobs.has(digest) and store.blobs.read_bytes(digest) == data
    with store.blobs.open(digest) as fh:
        assert fh.read() == data
    assert store.blobs.local_path(digest).read_bytes() == data
    folder = store.blobs.local_folder([digest])
    assert (folder / digest[:2] / digest[2:]).read_bytes() == data  # the layout a runner reads
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 10_000)
    other = hashlib.sha256(source.read_bytes()).hexdigest()
    assert store.blobs.put_file(source, other) and not store.blobs.put_file(source, other)
    assert dict(store.blobs.sizes()) == {digest: len(data), other: 10_000}
    assert store.blobs.missing({digest, other, "0" * 64}, {}) == {"0" * 64}
    store.blobs.remove(other)
    assert not store.blobs.has(other)
    manifest = store.blobs.put_bytes(b'{"files": [], "id": 1}')
    assert store.snapshot_manifest(manifest) == {"files": [], "id": 1}
    listed = b"listed as absent"  # store copy stores what a listing said is missing
    store.blobs.put_absent(source, other)
    store.blobs.put_absent(listed, hashlib.sha256(listed).hexdigest())
    assert store.blobs.read_bytes(other) == source.read_bytes()
    assert store.blobs.read_bytes(hashlib.sha256(listed).hexdigest()) == listed


def _filled(store: Store) -> RunRecord:
    """A run with what a copy must carry: tags, params, an int and a float series, records, lineage, a
    model registered from one of its records, a dataset version, a schedule with a fire."""
    from launchbay.store.records import Schedule

    parent = new_run(store, "alpha", lr=0.5, layers=[1, 2])
    run = store.create_run(
        RunSpec(script="t.py", experiment="alpha", parent_run_id=parent.run_id, params={"n": 3}),
        target_type="local",
        snapshot_id=None,
        properties={"launchbay.rerun_of": parent.run_id},
        created_by="maya",
    )
    with store.write(run.pk) as writer:
        writer.append_points("loss", [(None, 0.5 + i / 3, i, 1000.0 + i) for i in range(50)])
        writer.append_points("epoch", [(None, i, i, 2000.0 + i) for i in range(5)])
        writer.add_record("table", "t", '{"a": [1]}', 5.0)
        writer.add_record("model", "clf", '{"path": "m.pkl"}', 6.0)
        writer.set_tag("best", "yes")
    store.end_run(run.pk, RunStatus.COMPLETED)
    record_id = store.db.execute("SELECT id FROM records WHERE kind='model'").fetchone()[0]  # type: ignore[attr-defined]
    manifest = store.blobs.put_bytes(b'{"files": []}')
    version = ModelVersion("clf", 0, run.run_id, run.experiment, "m.pkl", "file", manifest, 1, 3)
    assert store.add_model_version(store.get_run(run.run_id), version, f"record:{record_id}") == 1
    store.add_dataset_version(DatasetVersion("mnist", 0, "a" * 64, "folder", "/data", "/data", 3, 300))
    store.add_run_inputs(run.run_id, [RunInput("train", "dataset:mnist", "a" * 64, "folder", "mount", 3, 300)])
    store.add_schedule(Schedule("nightly", "every 1h", ["submit", "t.py"], "/w", next_fire=100.0))
    store.claim_fire("nightly", 100.0, 3700.0, "fired")
    return store.get_run(run.run_id)


def test_runs_and_their_catalog_travel_to_another_store_as_rows(store: Store, tmp_path: Path) -> None:
    """``export_runs`` / ``import_runs`` and ``export_catalog`` / ``import_catalog`` (``store copy``), both
    ways between this backend and the embedded store: every row comes back as it was, points exactly,
    a model keeps its number and still names its record (so it never registers twice), a schedule
    arrives paused; importing again adds nothing."""
    run = _filled(store)
    ids = store.all_run_ids()
    assert len(ids) == 2 and ids[-1] == run.run_id  # oldest first
    with RunStore(tmp_path / "other") as other:
        assert other.import_runs(store.export_runs(ids)) == ids
        assert other.import_runs(store.export_runs(ids)) == []  # a run id it has is skipped
        first = other.import_catalog(store.export_catalog())
        assert (first.added, first.conflicts) == (3, [])
        assert other.import_catalog(store.export_catalog()).added == 0
        for there, back in ((store, other), (other, store)):
            if back is store:  # and back: into this backend, from scratch
                for run_id in reversed(ids):
                    store.remove_finished_run(store.get_run(run_id).pk) or store.delete_run(run_id)
                store.delete_model_version("clf", 1)
                assert store.import_runs(other.export_runs(ids)) == ids
                assert store.import_catalog(other.export_catalog()).added == 1  # the model; the rest is there
            copied = back.get_run(run.run_id)
            for field in ("status", "experiment", "parent_run_id", "created_by", "tags", "params", "properties"):
                assert getattr(copied, field) == getattr(run, field), field
            assert (copied.created, copied.ended) == (run.created, run.ended)
            for name in ("loss", "epoch"):
                a, b = there.read_series(there.get_run(run.run_id), name), back.read_series(copied, name)
                assert a.steps.tolist() == b.steps.tolist() and a.values.tolist() == b.values.tolist()
                assert a.timestamps.tolist() == b.timestamps.tolist() and a.integer == b.integer
            assert back.read_records(copied) == there.read_records(there.get_run(run.run_id))
            assert [i.name for i in back.run_inputs(run.run_id)] == ["train"]
            model = back.model_version("clf", 1)
            assert model is not None and model.run_id == run.run_id
            assert back.pending_model_records(copied, "model", "model_error") == []  # its record is registered
            schedule = back.schedule("nightly")
            assert back is store or (schedule is not None and schedule.paused)
            assert [v.ref for v in back.dataset_versions()] == ["mnist:1"]


def test_repair_rebuilds_the_index_from_run_folders(opener: Callable[[], Store]) -> None:
    """The embedded index is rebuilt from its run folders; a team store's is PostgreSQL's (run folders
    are spread over machines), so repair refuses its local folder in one line and changes nothing."""
    with opener() as store:
        kept = new_run(store, lr=0.5)
        store.end_run(kept.pk, RunStatus.COMPLETED)
        root = store.runs_dir.parent
        team = isinstance(store, PostgresStore)
    if team:
        with pytest.raises(StoreError, match=r"team store postgresql://.*PostgreSQL backups"):
            repair(root, replay=ingest_run)
        assert not (root / "index.sqlite").exists()
    else:
        repair(root, replay=ingest_run)
    with opener() as store:
        record = store.get_run(kept.run_id)
        assert record.status is RunStatus.COMPLETED and record.params == {"lr": 0.5}


def test_a_store_scheme_registered_through_the_entry_point_group_opens_by_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "throwaway_store.py").write_text(
        "from pathlib import Path\n"
        "from launchbay.store import RunStore, StoreBackend\n\n"
        "class Backend(StoreBackend):\n"
        "    def open(self, location, start=None):\n"
        "        return RunStore(Path(location.removeprefix('throwaway://')))\n"
    )
    dist = plugin / "throwaway_store-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: throwaway-store\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nthrowaway = throwaway_store:Backend\n")
    monkeypatch.syspath_prepend(str(plugin))
    importlib.invalidate_caches()
    folder = tmp_path / "thrown away"
    with open_store(f"throwaway://{folder}") as store:
        assert isinstance(store, RunStore) and store.runs_dir == folder / "runs"
        run_id = new_run(store).run_id
    with open_store(folder.as_uri()) as store:  # file: is the folder itself
        assert store.get_run(run_id).run_id == run_id
    with open_store(folder) as store:  # and so is a bare path
        assert store.get_run(run_id).run_id == run_id
    sys.modules.pop("throwaway_store", None)
    with pytest.raises(StoreError, match=r"No store backend for nosuch: .*throwaway:"):
        open_store("nosuch://somewhere")
