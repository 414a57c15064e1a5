"""Azure ML v1 pipelines run on launchbay with the one added line: ``PythonScriptStep``s passing
``PipelineData`` and ``OutputFileDatasetConfig`` between them, a ``PipelineParameter``, ``allow_reuse``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import write
from test_azureml_compat import OPT_IN, run_control

PREP = """
    import argparse, os
    from azureml.core import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "rows.txt"), "w") as fh:
        fh.write("1 2 3\\n")
    Run.get_context().log("rows", 3)
"""
TRAIN = """
    import argparse, os
    from azureml.core import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("--data")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--model")
    args = parser.parse_args()
    rows = open(os.path.join(args.data, "rows.txt")).read().split()
    os.makedirs(args.model, exist_ok=True)
    with open(os.path.join(args.model, "model.txt"), "w") as fh:
        fh.write(f"{len(rows)} rows at lr {args.lr}")
    Run.get_context().log("loss", args.lr / len(rows))
    Run.get_context().tag("mode", os.environ["MODE"])  # the runconfig's environment variables reach the step
"""
SCORE = """
    import argparse, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    args = parser.parse_args()
    print("scoring with", open(os.path.join(args.model, "model.txt")).read())
"""
CONTROL = """
    import json
    from azureml.core import Experiment, Workspace
    from azureml.core.runconfig import RunConfiguration
    from azureml.data import OutputFileDatasetConfig
    from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
    from azureml.pipeline.steps import PythonScriptStep

    ws = Workspace.from_config()
    rows = PipelineData("rows")
    model = OutputFileDatasetConfig(name="model")
    lr = PipelineParameter(name="lr", default_value=0.1)
    config = RunConfiguration()
    config.environment_variables = {"MODE": "v1"}
    steps = [
        PythonScriptStep(name="prep data", script_name="prep.py", source_directory="scripts",
                         arguments=["--out", rows], outputs=[rows], compute_target="local"),
        PythonScriptStep(name="train", script_name="train.py", source_directory="scripts",
                         arguments=["--data", rows, "--lr", lr, "--model", model], inputs=[rows],
                         runconfig=config, allow_reuse=True),
        PythonScriptStep(name="score", script_name="score.py", source_directory="scripts",
                         arguments=["--model", model.as_input("model")], allow_reuse=False),
    ]
    pipeline = Pipeline(workspace=ws, steps=steps)
    problems = pipeline.validate()
    experiment = Experiment(ws, "v1-pipeline")
    run = experiment.submit(pipeline, pipeline_parameters={"lr": 0.6})
    status = run.wait_for_completion(show_output=True)
    train = run.find_step_run("train")[0]
    train.get_output_data("model").download("got")
    again = experiment.submit(pipeline, pipeline_parameters={"lr": 0.6})
    again.wait_for_completion(show_output=False)
    try:
        pipeline.publish(name="nightly")
        published = None
    except Exception as exc:
        published = str(exc)
    print("RESULT " + json.dumps({
        "problems": problems, "status": status, "id": run.id,
        "steps": [s.name for s in run.get_steps()],
        "train": {"metrics": train.get_metrics(), "arguments": train.get_details()["runDefinition"]["arguments"],
                  "parent": train.parent.id, "mode": train.get_tags().get("mode")},
        "model": open("got/outputs/model/model.txt").read(),
        "score_log": run.find_step_run("score")[0].get_job_log(),
        "again": {s.name: s.reused_from for s in again.get_steps()},
        "first": {s.name: s.id for s in run.get_steps()},
        "published": published,
    }))
"""


@pytest.mark.slow
def test_a_v1_pipeline_of_three_python_script_steps_runs_and_reruns_with_reuse(project: Path, cli) -> None:  # noqa: ANN001
    write(project / "scripts", "prep.py", PREP)
    write(project / "scripts", "train.py", TRAIN)
    write(project / "scripts", "score.py", SCORE)
    write(project, "control.py", OPT_IN + textwrap.dedent(CONTROL))
    result = run_control(project)
    assert result["problems"] == []
    assert result["status"] == "Completed", result["stdout"]
    # wait_for_completion(show_output=True) printed one line per step change
    assert f"PipelineRunId: {result['id']}" in result["stdout"] and "PipelineRun Status: Completed" in result["stdout"]
    assert "prep_data" in result["stdout"] and "first run of this step" in result["stdout"]
    assert result["steps"] == ["prep_data", "train", "score"]
    # the PipelineParameter's value reached the script; the PipelineData/OutputFileDatasetConfig became paths
    train = result["train"]
    assert train["metrics"]["loss"] == pytest.approx(0.2) and train["parent"] == result["id"]
    assert train["mode"] == "v1"
    assert train["arguments"][:4] == ["--data", "DatasetConsumptionConfig:rows", "--lr", "0.6"]
    assert train["arguments"][4:] == ["--model", "outputs/model"]
    assert result["model"] == "3 rows at lr 0.6"
    assert "scoring with 3 rows at lr 0.6" in result["score_log"]
    # submitted again unchanged: prep and train are reused, score (allow_reuse=False) runs again
    first = result["first"]
    assert result["again"] == {"prep_data": first["prep_data"], "train": first["train"], "score": None}
    assert "Pipeline.publish (Azure ML v1) is not available on launchbay" in result["published"]
    shown = json.loads(cli("pipeline", "show", result["id"], "--json", check=True).stdout)
    assert [(s["name"], s["status"]) for s in shown["steps"]] == [
        ("prep_data", "Completed"), ("train", "Completed"), ("score", "Completed"),
    ]  # fmt: skip


MISTAKES = """
    import json
    from azureml.core import Workspace
    from azureml.data import OutputFileDatasetConfig
    from azureml.pipeline.core import Pipeline, PipelineData
    from azureml.pipeline.steps import PythonScriptStep

    ws = Workspace.from_config()
    orphan, shared = PipelineData("orphan"), OutputFileDatasetConfig(name="shared")
    found = []
    for steps in (
        [PythonScriptStep(name="a", script_name="a.py", arguments=["--x", orphan], inputs=[orphan])],
        [PythonScriptStep(name="a", script_name="a.py", arguments=[shared]),
         PythonScriptStep(name="b", script_name="a.py", arguments=[shared])],
        [PythonScriptStep(name="a", script_name="a.py", compute_target="nowhere")],
        [PythonScriptStep(name="a", script_name="missing.py")],
    ):
        found += Pipeline(workspace=ws, steps=steps).validate()
    print("RESULT " + json.dumps({"problems": found}))
"""


def test_a_v1_pipeline_that_cannot_run_says_why_in_one_line_each(project: Path, cli) -> None:  # noqa: ANN001
    write(project, "a.py", "print('a')\n")
    write(project, "control.py", OPT_IN + textwrap.dedent(MISTAKES))
    problems = run_control(project)["problems"]
    assert len(problems) == 4 and all("\n" not in p for p in problems)
    assert "'orphan' is read by a step but no step writes it" in problems[0]
    assert "'shared' is written by two steps (a, b)" in problems[1] and ".as_input()" in problems[1]
    assert "nowhere" in problems[2]
    assert "missing.py" in problems[3]
    assert cli.json("runs") == []  # nothing was recorded
