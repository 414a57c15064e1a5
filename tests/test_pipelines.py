"""Real pipelines of local runs: steps as children of a pipeline run, outputs feeding inputs, reuse with reasons."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import CLI, write
from launchbay import Param, Step, pipeline
from launchbay.errors import ConfigError
from launchbay.pipelines import get_pipeline, rerun_pipeline

PREP = """
import pathlib
pathlib.Path("outputs/clean").mkdir(parents=True, exist_ok=True)
pathlib.Path("outputs/clean/data.txt").write_text("1 2 3\\n")
"""
TRAIN = """
import os, pathlib, sys
data = open(os.path.join(os.environ["LAUNCHBAY_INPUT_DATA"], "data.txt")).read()
pathlib.Path("outputs/model").mkdir(parents=True, exist_ok=True)
pathlib.Path("outputs/model/m.txt").write_text("model of " + data.strip() + " with " + " ".join(sys.argv[1:]))
"""
EVAL = """
import os
print("evaluating", open(os.path.join(os.environ["LAUNCHBAY_INPUT_MODEL"], "m.txt")).read())
"""


def three_steps(lr: float = 0.1, train_target: str | None = None) -> list[Step]:
    return [
        Step("prep", "prep.py", outputs={"clean": "outputs/clean"}),
        Step(
            "train",
            "train.py",
            inputs={"data": "prep.clean"},
            args=["--lr", Param("lr", lr)],
            outputs={"model": "outputs/model"},
            target=train_target,
        ),
        Step("eval", "eval.py", inputs={"model": "train.model"}),
    ]


def by_name(steps: list[dict]) -> dict[str, dict]:
    return {s["name"]: s for s in steps}


@pytest.fixture
def demo(project: Path) -> Path:
    write(project, "prep.py", PREP)
    write(project, "train.py", TRAIN)
    write(project, "eval.py", EVAL)
    return project


@pytest.mark.slow
def test_a_pipeline_runs_its_steps_in_order_and_a_rerun_reuses_every_step(demo: Path) -> None:
    handle = pipeline(three_steps(), experiment="mnist").submit()
    assert handle.wait(timeout=90) == "Completed"
    steps = by_name(handle.steps)
    assert [s["status"] for s in steps.values()] == ["Completed"] * 3
    assert all(s["reused_from"] is None and s["reason"] == "first run of this step" for s in steps.values())
    children = handle.session.store.children(handle.run_id)
    assert sorted(children) == sorted(s["run_id"] for s in steps.values())  # the steps are the pipeline's children
    train = handle.get_step("train").record()
    assert train.arguments == ["--lr", "0.1"] and train.parent_run_id == handle.run_id
    # the downstream step read the upstream's output dataset version, as any data input
    assert "evaluating model of 1 2 3 with --lr 0.1" in handle.get_step("eval").get_log()

    started = time.time()
    again = pipeline(three_steps(), experiment="mnist").submit()
    assert again.wait(timeout=60) == "Completed"
    assert time.time() - started < 5
    reused = by_name(again.steps)
    assert {n: s["reused_from"] for n, s in reused.items()} == {n: s["run_id"] for n, s in steps.items()}
    assert handle.session.store.children(again.run_id) == []  # nothing ran twice


@pytest.mark.slow
def test_after_one_file_changes_only_that_step_runs_and_says_why(demo: Path) -> None:
    first = pipeline(three_steps(), experiment="mnist").submit()
    assert first.wait(timeout=90) == "Completed"
    write(demo, "eval.py", EVAL + "\nprint('and more')\n")
    second = rerun_pipeline(first.run_id)
    assert second.wait(timeout=90) == "Completed"
    steps = by_name(second.steps)
    assert steps["prep"]["reused_from"] and steps["train"]["reused_from"]
    assert steps["eval"]["reused_from"] is None and steps["eval"]["reason"] == "eval.py changed"

    third = rerun_pipeline(second.run_id, params={"lr": 0.01})
    assert third.wait(timeout=90) == "Completed"
    steps = by_name(third.steps)
    assert steps["prep"]["reused_from"]
    assert steps["train"]["reason"] == "parameter lr 0.1 → 0.01"
    assert steps["eval"]["reason"].startswith("input model: version 1 → version 2")

    fourth = rerun_pipeline(third.run_id, from_step="train")
    assert fourth.wait(timeout=90) == "Completed"
    steps = by_name(fourth.steps)
    assert steps["prep"]["reused_from"] and not steps["train"]["reused_from"] and not steps["eval"]["reused_from"]


@pytest.mark.slow
def test_a_failed_step_stops_only_its_dependents_with_the_reason(demo: Path) -> None:
    write(demo, "broken.py", "raise SystemExit('no data')\n")
    write(demo, "side.py", "print('independent')\n")
    steps = [
        Step("prep", "broken.py", outputs={"clean": "outputs/clean"}),
        Step("train", "train.py", inputs={"data": "prep.clean"}, args=["--lr", "1"]),
        Step("side", "side.py"),
    ]
    handle = pipeline(steps, experiment="mnist").submit()
    assert handle.wait(timeout=90) == "Failed"
    result = by_name(handle.steps)
    assert result["prep"]["status"] == "Failed"
    assert result["side"]["status"] == "Completed"  # independent of the failure
    assert result["train"] == {**result["train"], "status": "NotStarted", "run_id": None}
    assert result["train"]["reason"] == "not started: step prep did not complete"
    assert "prep" in (handle.record().error or {})["message"]


@pytest.mark.slow
def test_cancel_stops_every_running_step(demo: Path) -> None:
    write(demo, "slow.py", "import time\ntime.sleep(60)\n")
    steps = [
        Step("a", "slow.py"),
        Step("b", "slow.py", allow_reuse=False),
        Step("c", "eval.py", inputs={"model": "a.x"}),
    ]
    steps[0] = Step("a", "slow.py", outputs={"x": "outputs/x"})
    handle = pipeline(steps, experiment="mnist").submit()
    deadline = time.time() + 30
    while time.time() < deadline and sum(1 for s in handle.steps if s["status"] == "Running") < 2:
        time.sleep(0.1)
    handle.cancel()
    assert handle.wait(timeout=30) == "Canceled"
    result = by_name(handle.steps)
    for name in ("a", "b"):
        assert handle.get_step(name).record().status.value == "Canceled"
    assert result["c"]["status"] == "NotStarted"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([Step("a", "prep.py"), Step("a", "eval.py")], "Two steps are named 'a'"),
        ([Step("a", "prep.py", inputs={"x": "b.out"})], "there is no step 'b'"),
        ([Step("a", "prep.py"), Step("b", "eval.py", inputs={"x": "a.nope"})], "step 'a' has no output 'nope'"),
        (
            [
                Step("a", "prep.py", inputs={"x": "b.o"}, outputs={"o": "outputs/o"}),
                Step("b", "eval.py", inputs={"x": "a.o"}, outputs={"o": "outputs/o"}),
            ],
            "cycle: a -> b -> a",
        ),
        ([Step("a", "prep.py", args=["${params.nope}"])], "uses parameter 'nope'"),
    ],
)
def test_a_bad_graph_is_one_line_before_anything_runs(demo: Path, steps: list[Step], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        pipeline(steps, experiment="mnist")


def test_an_unknown_target_or_parameter_records_nothing(demo: Path) -> None:
    with pytest.raises(ConfigError, match="gpu-box"):
        pipeline(three_steps(train_target="gpu-box"), experiment="mnist").submit()
    with pytest.raises(ConfigError, match="Parameter 'momentum' does not exist"):
        pipeline(three_steps(), experiment="mnist").submit({"momentum": 0.9})
    from launchbay.session import open_session

    assert open_session().store.list_runs() == []


PIPELINE_YAML = """
name: demo
params: {lr: 0.1}
steps:
  prep:  {script: prep.py, outputs: {clean: outputs/clean}}
  train: {script: train.py, args: [--lr, "${params.lr}"], inputs: {data: prep.clean},
          outputs: {model: outputs/model}, target: local}
  eval:  {script: eval.py, inputs: {model: train.model}, allow_reuse: true}
"""


@pytest.mark.slow
def test_the_cli_runs_shows_reruns_and_cancels_the_file_form(demo: Path) -> None:
    cli = CLI(demo)
    write(demo, "pipeline.yaml", PIPELINE_YAML)
    started = cli("pipeline", "run", "pipeline.yaml", "--param", "lr=0.5", "--detach", "--json", check=True)
    run_id = json.loads(started.stdout)["run_id"]
    assert get_pipeline(run_id).wait(timeout=90) == "Completed"
    shown = json.loads(cli("pipeline", "show", run_id, "--json", check=True).stdout)
    assert shown["run_id"] == run_id and shown["status"] == "Completed"
    assert [s["name"] for s in shown["steps"]] == ["prep", "train", "eval"]
    assert set(shown["steps"][0]) == {"name", "status", "run_id", "reused_from", "reason"}
    assert get_pipeline(run_id).get_step("train").record().arguments == ["--lr", "0.5"]

    again = json.loads(cli("pipeline", "rerun", run_id, "--detach", "--json", check=True).stdout)["run_id"]
    assert get_pipeline(again).wait(timeout=60) == "Completed"
    text = cli("pipeline", "show", again, check=True).stdout
    assert text.count("reused") >= 3, text

    fresh = cli("pipeline", "rerun", run_id, "--no-reuse", check=True)  # waits, one line per step change
    assert "eval" in fresh.stdout and "Completed" in fresh.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps:\n  a: {script: prep.py\n", "line 3, column 1"),
        ("steps:\n  a: {script: prep.py}\n  a: {script: eval.py}\n", "Two steps are named 'a'"),
        ("steps:\n  a: {script: prep.py, args: ['${params.lr}']}\n", "uses parameter 'lr'"),
        ("steps:\n  a: {script: prep.py}\n  b: {script: eval.py, inputs: {m: a.model}}\n", "has no output 'model'"),
    ],
)
def test_the_cli_refuses_a_bad_file_in_one_line(demo: Path, text: str, message: str) -> None:
    write(demo, "bad.yaml", text)
    result = CLI(demo)("pipeline", "run", "bad.yaml")
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unknown_parameter_on_the_command_line_is_refused(demo: Path) -> None:
    write(demo, "pipeline.yaml", PIPELINE_YAML)
    result = CLI(demo)("pipeline", "run", "pipeline.yaml", "--param", "momentum=0.9")
    assert result.returncode != 0 and "Parameter 'momentum' does not exist" in result.stderr


@pytest.mark.slow
def test_a_pipeline_spans_local_and_docker_and_the_docker_step_reads_the_local_steps_output(demo: Path) -> None:
    from conftest import BASE_IMAGE, docker_ready, need_service, remove_containers

    need_service(docker_ready(BASE_IMAGE), "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    write(demo, "launchbay.toml", f'[targets.box]\ntype = "docker"\nimage = "{BASE_IMAGE}"\n')
    try:
        handle = pipeline(three_steps(train_target="box"), experiment="mnist").submit()
        assert handle.wait(timeout=180) == "Completed", handle.steps
        train = handle.get_step("train").record()
        assert train.target == "box" and train.target_type == "docker"
        assert "evaluating model of 1 2 3 with --lr 0.1" in handle.get_step("eval").get_log()
        again = rerun_pipeline(handle.run_id)
        assert again.wait(timeout=60) == "Completed"
        assert all(s["reused_from"] for s in again.steps)
    finally:
        from launchbay.store import open_store

        remove_containers(str(open_store().root))


@pytest.mark.slow
def test_a_rerun_after_the_controller_was_killed_resumes_and_runs_no_step_twice(demo: Path) -> None:
    import os
    import signal

    from conftest import pid_alive, wait_for

    write(demo, "slowprep.py", "import time\ntime.sleep(3)\n" + PREP)
    steps = three_steps()
    steps[0] = Step("prep", "slowprep.py", outputs={"clean": "outputs/clean"})
    handle = pipeline(steps, experiment="mnist").submit()
    wait_for(lambda: by_name(handle.steps)["prep"]["status"] == "Running", timeout=30)
    pid = wait_for(lambda: handle.record().target_state.get("runner_pid"))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid))
    assert handle.record().status.value == "Failed" and "died" in handle.record().error["message"]  # type: ignore[index]
    resumed = rerun_pipeline(handle.run_id)
    assert resumed.run_id == handle.run_id  # the same record goes on
    assert resumed.wait(timeout=90) == "Completed"
    runs = handle.session.store.children(handle.run_id)
    assert len(runs) == 3  # prep ran once: the resumed controller adopted it while it ran
    assert by_name(resumed.steps)["prep"]["reason"] == "kept on resume"


SPAN = """
import json, os, sys, time
start = time.time()
time.sleep(1.0)
with open(os.environ["SPANS"], "a") as fh:
    fh.write(json.dumps([sys.argv[1], start, time.time()]) + "\\n")
"""


@pytest.mark.slow
def test_steps_on_a_target_with_a_concurrency_bound_run_no_more_at_once_than_it_allows(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import toml_table

    (demo / "launchbay.toml").write_text(toml_table("one", {"type": "local", "max_concurrent_runs": 1}))
    write(demo, "span.py", SPAN)
    spans = tmp_path / "spans.jsonl"
    monkeypatch.setenv("SPANS", str(spans))
    fan = [
        Step(f"part{i}", "span.py", args=[f"part{i}"], inputs={"data": "prep.clean"}, target="one") for i in range(3)
    ]
    handle = pipeline([Step("prep", "prep.py", outputs={"clean": "outputs/clean"}), *fan], experiment="bound").submit()
    assert handle.wait(timeout=120) == "Completed", handle.steps
    rows = sorted(json.loads(line) for line in spans.read_text().splitlines())
    assert [r[0] for r in rows] == ["part0", "part1", "part2"]
    ordered = sorted(rows, key=lambda r: r[1])
    assert all(a[2] <= b[1] for a, b in zip(ordered, ordered[1:], strict=False)), ordered  # one at a time

    listed = json.loads(CLI(demo)("runs", "--parent", handle.run_id, "--json", check=True).stdout)
    assert [(s["name"], s["status"], s["target"]) for s in listed] == [
        ("prep", "Completed", "local"), *[(f"part{i}", "Completed", "one") for i in range(3)],
    ]  # fmt: skip
    assert {s["run_id"] for s in listed} == set(handle.session.store.children(handle.run_id))
    text = CLI(demo)("runs", "--parent", handle.run_id, check=True).stdout
    assert text.splitlines()[0].split()[:2] == ["prep", "Completed"]
