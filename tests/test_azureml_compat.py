"""Azure ML SDK v1 control and training scripts run on launchbay with one added line.

The scripts below are written the way the v1 tutorials wrote them; the only launchbay
line is the opt-in at the top of the control script. The training script has none.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import need_service, write

OPT_IN = "import launchbay.compat.azureml; launchbay.compat.azureml.install()\n"

TRAIN = """
    import argparse, os
    from azureml.core import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    run = Run.get_context()
    for epoch in range(args.epochs):
        run.log("loss", args.learning_rate / (epoch + 1))
    run.log_list("accuracies", [0.5, 0.7, 0.9])
    run.log_row("pr", precision=0.9, recall=0.8)
    run.add_properties({"dataset": "digits"})
    run.tag("framework", "none")
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.txt", "w") as fh:
        fh.write("weights")
    print("trained with", args.learning_rate)
"""

MODELS = """
    from azureml.core import Model
    model = run.register_model(model_name="digits", model_path="outputs/model.txt", tags={"area": "v1"})
    in_run = Model(ws, "digits-in-run")
    downloaded = Model(ws, name="digits").download(target_dir="downloaded", exist_ok=True)
    print("RESULT " + json.dumps({
        "models": [model.id, in_run.id, in_run.run_id == run.id, open(downloaded).read(), model.tags],
    }))
"""

CONTROL = """
    import json
    from azureml.core import Environment, Experiment, ScriptRunConfig, Workspace

    ws = Workspace.from_config()
    experiment = Experiment(workspace=ws, name="v1-tutorial")
    env = Environment.from_conda_specification(name="tutorial-env", file_path="env.yml")
    config = ScriptRunConfig(
        source_directory=".",
        script="train.py",
        arguments=["--learning-rate", 0.5, "--epochs", 4],
        compute_target="local",
        environment=env,
    )
    run = experiment.submit(config)
    run.wait_for_completion(show_output=True)
    print("RESULT " + json.dumps({
        "id": run.id,
        "status": run.get_status(),
        "metrics": run.get_metrics(),
        "files": run.get_file_names(),
        "properties": run.get_details()["properties"],
        "tags": run.get_tags(),
    }))
"""

CONDA_ENV = """
    name: tutorial-env
    channels:
      - conda-forge
    dependencies:
      - six
      - pip
      - pip:
        - tomli
"""


def run_control(project: Path, script: str = "control.py", timeout: float = 240) -> dict:
    proc = subprocess.run(
        [sys.executable, script], cwd=project, capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )
    assert proc.returncode == 0, f"control script failed:\n{proc.stdout}\n{proc.stderr}"
    result: dict = {"stdout": proc.stdout}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result.update(json.loads(line[len("RESULT ") :]))
    return result


def test_a_v1_control_script_and_training_script_run_unchanged_on_the_local_target(project: Path) -> None:
    in_run_registration = '    run.register_model(model_name="digits-in-run", model_path="outputs/model.txt")\n'
    write(project, "train.py", TRAIN + in_run_registration)
    write(project, "env.yml", CONDA_ENV)
    write(project, "control.py", OPT_IN + textwrap.dedent(CONTROL) + textwrap.dedent(MODELS))
    write(project, ".azureml/config.json", '{"subscription_id": "x", "resource_group": "rg", "workspace_name": "ws"}')
    result = run_control(project)
    assert result["status"] == "Completed", result["stdout"]
    assert "trained with 0.5" in result["stdout"]  # wait_for_completion(show_output=True) streamed the log
    metrics = result["metrics"]
    assert metrics["loss"] == [0.5, 0.25, 0.5 / 3, 0.125]
    assert metrics["accuracies"] == [0.5, 0.7, 0.9]
    assert metrics["pr"] == {"precision": [0.9], "recall": [0.8]}
    assert "outputs/model.txt" in result["files"]
    assert result["properties"]["dataset"] == "digits"
    assert result["tags"]["framework"] == "none"
    assert result["models"] == ["digits:1", "digits-in-run:1", True, "weights", {"area": "v1"}]


def test_the_conda_file_became_a_real_environment_with_its_conda_packages(project: Path, cli) -> None:  # noqa: ANN001
    write(project, "train.py", "import six, tomli\nprint('six', six.__version__)\n")
    write(project, "env.yml", CONDA_ENV)
    control = CONTROL.replace('arguments=["--learning-rate", 0.5, "--epochs", 4],', "")
    write(project, "control.py", OPT_IN + textwrap.dedent(control))
    result = run_control(project)
    assert result["status"] == "Completed", result["stdout"]
    log = cli("logs", result["id"], check=True).stdout
    assert "six " in log
    build_log = next(project.parent.glob("store/**/env_build.log"), None) or next(
        project.parent.glob("store/**/build.log")
    )
    assert "conda six -> pip six" in build_log.read_text()


def test_in_run_fail_marks_the_run_failed_with_the_message(project: Path) -> None:
    write(project, "train.py", "from azureml.core import Run\nRun.get_context().fail('bad data in shard 3')\n")
    control = CONTROL.replace("environment=env,", "").replace(
        'env = Environment.from_conda_specification(name="tutorial-env", file_path="env.yml")', ""
    )
    control = control.replace(
        "run.wait_for_completion(show_output=True)", "run.wait_for_completion(raise_on_error=False)"
    )
    control = control.replace('"metrics": run.get_metrics(),', '"error": run.get_details().get("error"),')
    write(project, "control.py", OPT_IN + textwrap.dedent(control))
    result = run_control(project)
    assert result["status"] == "Failed"
    assert result["error"]["error"]["message"] == "bad data in shard 3"


def test_what_launchbay_does_not_have_raises_one_clear_error(project: Path) -> None:
    script = OPT_IN + textwrap.dedent(
        """
        from launchbay.errors import NotSupportedError
        from azureml.core import Workspace
        from azureml.core.compute import AmlCompute, ComputeTarget
        from azureml.core.compute_target import ComputeTargetException
        messages = []
        for attempt in (
            lambda: __import__("azureml.pipeline.core", fromlist=["Pipeline"]).PublishedPipeline,
            lambda: __import__("azureml.core.webservice"),
            lambda: Workspace.from_config().get_default_datastore(),
            lambda: AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4),
        ):
            try:
                attempt()
            except NotSupportedError as exc:
                messages.append(str(exc))
        try:
            ComputeTarget(workspace=Workspace.from_config(), name="cpu-cluster")
        except ComputeTargetException as exc:
            messages.append(str(exc))
        print("RESULT " + __import__("json").dumps({"messages": messages}))
        """
    )
    write(project, "control.py", script)
    messages = run_control(project)["messages"]
    assert len(messages) == 5
    assert "Pipelines are not published on launchbay" in messages[0] and "experiment.submit(pipeline)" in messages[0]
    assert "Deployment is not part of launchbay" in messages[1]
    assert "Dataset.File.from_files(path)" in messages[2]
    assert 'type = "ssh"' in messages[3]
    assert "Unknown target 'cpu-cluster'" in messages[4]


DATA_TRAIN = """
    import argparse, hashlib, json, os
    from azureml.core import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("--data")
    parser.add_argument("--ref")
    args = parser.parse_args()
    run = Run.get_context()
    with open(os.path.join(args.data, "digits.csv"), "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    writable = True
    try:
        open(os.path.join(args.ref, "labels.txt"), "a").write("mine")
    except OSError:
        writable = False
    print("SEEN " + json.dumps({"data": args.data, "inputs": run.input_datasets, "sha": digest,
                                "ref_files": sorted(os.listdir(args.ref)), "ref_writable": writable}))
"""

DATA_CONTROL = """
    import json
    from azureml.core import Dataset, Experiment, ScriptRunConfig, Workspace

    ws = Workspace.from_config()
    digits = Dataset.File.from_files("data/digits")
    labels = Dataset.File.from_files(path="data/labels").register(ws, "labels", description="the labels")
    labels = Dataset.get_by_name(ws, "labels")
    config = ScriptRunConfig(
        source_directory="code",
        script="train.py",
        arguments=["--data", digits.as_named_input("train").as_mount(),
                   "--ref", labels.as_named_input("ref").as_download()],
        compute_target="local",
    )
    run = Experiment(ws, "v1-data").submit(config)
    run.wait_for_completion(show_output=True)
    print("RESULT " + json.dumps({"status": run.get_status(), "id": run.id, "datasets": sorted(ws.datasets)}))
"""


def test_v1_file_datasets_reach_the_script_as_mounted_and_downloaded_paths(project: Path, cli) -> None:  # noqa: ANN001
    import hashlib

    write(project, "control.py", OPT_IN + textwrap.dedent(DATA_CONTROL))
    write(project / "code", "train.py", DATA_TRAIN)
    write(project / "data" / "digits", "digits.csv", "pixel,label\n0,7\n")
    write(project / "data" / "labels", "labels.txt", "seven\n")
    result = run_control(project)
    assert result["status"] == "Completed", result["stdout"]
    assert result["datasets"] == ["labels"]
    seen = json.loads(next(ln for ln in result["stdout"].splitlines() if ln.startswith("SEEN "))[5:])
    assert seen["data"] == str(project / "data" / "digits") == seen["inputs"]["train"]  # a mount: read in place
    assert seen["sha"] == hashlib.sha256(b"pixel,label\n0,7\n").hexdigest()
    assert seen["ref_files"] == ["labels.txt"] and seen["ref_writable"]  # a download: the run's own copy
    assert (project / "data" / "labels" / "labels.txt").read_text() == "seven\n"
    details = cli.json("show", result["id"])
    assert {i["name"]: (i["mode"], i["dataset"]) for i in details["inputs"]} == {
        "ref": ("download", "labels"),
        "train": ("mount", None),
    }


def test_an_environment_neither_curated_nor_declared_is_one_clear_error(project: Path) -> None:
    write(project, "launchbay.toml", '[environments.train]\npip = ["six"]\n')
    script = OPT_IN + textwrap.dedent(
        """
        from launchbay.errors import UnknownEnvironmentError
        from azureml.core import Environment, Workspace
        ws = Workspace.from_config()
        found = [Environment.get(ws, "train").name, Environment.get(ws, "AzureML-Minimal").name]
        try:
            Environment.get(ws, "no-such-env")
            error = None
        except UnknownEnvironmentError as exc:
            error = str(exc)
        print("RESULT " + __import__("json").dumps({"found": found, "error": error}))
        """
    )
    write(project, "control.py", script)
    result = run_control(project)
    assert result["found"] == ["train", "AzureML-Minimal"]
    error = result["error"]
    assert error is not None and "no environment 'no-such-env'" in error
    assert "AzureML-Minimal" in error and "AzureML-Tutorial" in error  # the curated ones
    assert "launchbay.toml: train" in error and "[environments.no-such-env]" in error


def test_script_arguments_that_are_not_a_list_are_one_clear_error_and_nothing_runs(project: Path, cli) -> None:  # noqa: ANN001
    write(project, "train.py", "print('must not run')\n")
    script = OPT_IN + textwrap.dedent(
        """
        from launchbay.errors import ConfigError
        from azureml.core import Experiment, ScriptRunConfig, Workspace
        errors = []
        for arguments in (5, "--lr 0.1"):
            try:
                config = ScriptRunConfig(source_directory=".", script="train.py", arguments=arguments)
                Experiment(Workspace.from_config(), "args").submit(config)
            except ConfigError as exc:
                errors.append(str(exc))
        print("RESULT " + __import__("json").dumps({"errors": errors}))
        """
    )
    write(project, "control.py", script)
    errors = run_control(project)["errors"]
    assert errors == [
        "ScriptRunConfig(arguments=5): arguments are a list, e.g. arguments=['--lr', 0.01].",
        "ScriptRunConfig(arguments='--lr 0.1'): arguments are a list, one item per word; "
        "write arguments=['--lr', '0.1'].",
    ]
    assert cli.json("runs") == []  # nothing was submitted


def test_a_real_azureml_package_is_never_shadowed_unless_asked(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "azureml" / "core"
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("REAL = True\n")
    code = textwrap.dedent(
        """
        import warnings, launchbay.compat.azureml as compat
        from launchbay.errors import ConfigError
        try:
            compat.install()
        except ConfigError as exc:
            print("REFUSED", exc)
        import azureml.core
        print("REAL", getattr(azureml.core, "REAL", False))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compat.install(force=True)
        import azureml.core
        print("SHADOWED", hasattr(azureml.core, "ScriptRunConfig"), "|", caught[0].message)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "REFUSED A real azureml package is installed" in out and "install(force=True)" in out
    assert "REAL True" in out
    assert "SHADOWED True | launchbay's Azure ML v1 layer now shadows the installed azureml package" in out


@pytest.mark.parametrize("line", ["from azureml.core import Run", "from azureml.core.run import Run"])
def test_the_in_run_alias_works_where_launchbay_is_not_installed(project: Path, line: str) -> None:
    """The shipped runtime's azureml package: only the stub ``launchbay`` is importable there."""
    from launchbay.targets.runtime import write_runtime

    runtime = write_runtime(project / "rundir")
    code = f"{line}\nr = Run.get_context(allow_offline=True)\nr.log('x', 1)\nprint(type(r).__module__, r.get_status())"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(runtime / "azureml_alias"), str(runtime)])
    prelude = f"import sys; sys.path[:0] = {env['PYTHONPATH'].split(os.pathsep)!r}\n"
    out = subprocess.run(
        [sys.executable, "-I", "-c", prelude + code], capture_output=True, text=True, env=env, cwd=project
    )
    assert out.returncode == 0, out.stderr
    assert "azureml.core.run Running" in out.stdout
    assert "[launchbay offline] x = 1" in out.stdout


RUNCONFIG = """
    script: train.py
    arguments: [--learning-rate, '0.25', --epochs, '2']
    target: local
    framework: Python
    communicator: None
    nodeCount: 1
    maxRunDurationSeconds: 600
    environment:
      name: from-runconfig
      python:
        userManagedDependencies: true
        interpreterPath: python
      environmentVariables:
        GREETING: hello
      docker:
        enabled: false
"""


def test_launchbay_submit_reads_a_v1_runconfig_file(project: Path, cli) -> None:  # noqa: ANN001
    write(project, "train.py", textwrap.dedent(TRAIN) + "print('greeting', os.environ['GREETING'])\n")
    write(project, ".azureml/train.runconfig", RUNCONFIG)
    proc = cli("submit", "--runconfig", ".azureml/train.runconfig", "-e", "cli-v1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "trained with 0.25" in proc.stdout and "greeting hello" in proc.stdout
    run = cli.json("runs")[0]
    assert run["experiment"] == "cli-v1" and run["name"] == "train" and run["arguments"][-1] == "2"
    assert cli.json("metrics", run["run_id"])["loss"]


def test_a_missing_or_broken_runconfig_is_one_clear_line(project: Path, cli) -> None:  # noqa: ANN001
    proc = cli("submit", "--runconfig", "nope.runconfig")
    assert proc.returncode == 2 and "No v1 runconfig file at nope.runconfig" in proc.stderr
    write(project, "bad.runconfig", "script: [unclosed\n")
    proc = cli("submit", "--runconfig", "bad.runconfig")
    assert proc.returncode == 2 and "is not a readable YAML runconfig" in proc.stderr


@pytest.mark.docker
def test_a_v1_control_script_runs_on_a_docker_target_where_launchbay_is_not_installed(project: Path) -> None:
    """The container has Debian's python3 only: ``azureml.core.Run`` comes from the runner's alias."""
    base = os.environ.get("LAUNCHBAY_TEST_BASE_IMAGE", "")
    try:
        import docker

        docker.from_env().images.get(base)
        found = True
    except Exception:
        found = False
    need_service(bool(base) and found, "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    write(project, "launchbay.toml", f'[targets.gpu-cluster]\ntype = "docker"\nimage = "{base}"\n')
    write(project, "train.py", TRAIN)
    control = (
        CONTROL.replace('compute_target="local"', 'compute_target=ComputeTarget(workspace=ws, name="gpu-cluster")')
        .replace('env = Environment.from_conda_specification(name="tutorial-env", file_path="env.yml")', "")
        .replace("environment=env,", "")
        .replace("import json", "import json\n    from azureml.core.compute import ComputeTarget")
    )
    write(project, "control.py", OPT_IN + textwrap.dedent(control))
    result = run_control(project)
    assert result["status"] == "Completed", result["stdout"]
    assert result["metrics"]["loss"] == [0.5, 0.25, 0.5 / 3, 0.125]
    assert result["properties"]["dataset"] == "digits"
    assert "outputs/model.txt" in result["files"]


@pytest.mark.slow
def test_the_migration_notebook_runs_v1_cells_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import nbformat
    from nbclient import NotebookClient

    work = tmp_path / "nb"
    work.mkdir()
    source = Path(__file__).resolve().parent.parent / "notebooks" / "migrating-from-azureml-v1.ipynb"
    shutil.copy(source, work)
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("LAUNCHBAY_WIDGETS", "0")
    nb = nbformat.read(work / source.name, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    text = "\n".join(
        out.get("text", "") or str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )
    assert "epoch 9: loss 0.0282" in text  # the run's log, streamed by wait_for_completion(show_output=True)
    assert "Completed 0.0282 [0.91, 0.87, 0.95]" in text
    assert "outputs/model.txt" in text
    assert "day1-model 1 True" in text
    assert "read 100 rows; same path: True" in text and "Completed 100" in text  # a file dataset, mounted
    assert "best loss" in text and "of 4 runs" in text
    assert "estimator Completed 0.0282" in text  # v1's Estimator, submitted as the ScriptRunConfig above was


@pytest.mark.slow
def test_the_migration_notebook_shows_the_runs_log_once_where_its_widget_streams_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JupyterLab: RunDetails(run).show() streams the log in its widget; the same cell's
    wait_for_completion(show_output=True) printed it again below."""
    import shutil

    import nbformat
    from nbclient import NotebookClient

    work = tmp_path / "nb"
    work.mkdir()
    source = Path(__file__).resolve().parent.parent / "notebooks" / "migrating-from-azureml-v1.ipynb"
    shutil.copy(source, work)
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("LAUNCHBAY_WIDGETS", "1")  # as in JupyterLab: the widgets render
    nb = nbformat.read(work / source.name, as_version=4)
    submit = next(i for i, cell in enumerate(nb.cells) if "RunDetails(run).show()" in cell.source)
    nb.cells = nb.cells[: submit + 1]
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", store_widget_state=True, resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    printed = "".join(out.get("text", "") for out in nb.cells[submit].outputs)
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    in_widgets = "".join(out.get("text", "") for state in states for out in state["state"].get("outputs", []))
    shown = printed + in_widgets
    assert shown.count("epoch 0: loss 0.7000") == 1 and shown.count("epoch 9: loss 0.0282") == 1, (printed, in_widgets)
    assert "epoch 9: loss 0.0282" in in_widgets  # the widget has the whole log when the cell ends


SWEEP_TRAIN = """
    import argparse
    from azureml.core import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float)
    parser.add_argument("--batch-size", type=int)
    args = parser.parse_args()
    run = Run.get_context()
    for epoch in range(6):
        run.log("accuracy", 1 - abs(args.learning_rate - 0.05) * (6 - epoch))
"""

SWEEP_CONTROL = """
    import json
    from azureml.core import Experiment, ScriptRunConfig, Workspace
    from azureml.train.hyperdrive import (
        BanditPolicy, HyperDriveConfig, PrimaryMetricGoal, RandomParameterSampling, choice, loguniform,
    )

    ws = Workspace.from_config()
    src = ScriptRunConfig(source_directory=".", script="train.py", compute_target="local")
    sampling = RandomParameterSampling(
        {"--learning_rate": loguniform(-6, -1), "--batch-size": choice(16, 32)}, properties={"rngSeed": 3}
    )
    hd_config = HyperDriveConfig(
        run_config=src,
        hyperparameter_sampling=sampling,
        policy=BanditPolicy(evaluation_interval=1, slack_factor=0.05, delay_evaluation=1),
        primary_metric_name="accuracy",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=6,
        max_concurrent_runs=3,
    )
    hd_run = Experiment(ws, "v1-hyperdrive").submit(hd_config)
    hd_run.wait_for_completion(show_output=False)
    best = hd_run.get_best_run_by_primary_metric()
    rows = hd_run.get_children_sorted_by_primary_metric()
    print("RESULT " + json.dumps({
        "status": hd_run.get_status(),
        "best": best.id,
        "best_metrics": best.get_metrics(),
        "rows": rows,
    }))
"""


@pytest.mark.slow
def test_a_v1_hyperdrive_sweep_with_a_bandit_policy_runs_on_launchbay(project: Path) -> None:
    write(project, "train.py", SWEEP_TRAIN)
    write(project, "control.py", OPT_IN + textwrap.dedent(SWEEP_CONTROL))
    result = run_control(project, timeout=280)
    assert result["status"] == "Completed", result["stdout"]
    rows = result["rows"]
    assert len(rows) == 6 and rows[0]["run_id"] == result["best"]
    values = [r["best_primary_metric"] for r in rows if r["best_primary_metric"] is not None]
    assert values == sorted(values, reverse=True)  # best first, for a maximised metric
    for row in rows:
        params = json.loads(row["hyperparameters"])
        assert math.exp(-6) <= params["learning_rate"] <= math.exp(-1)  # v1's loguniform takes exponents
        assert params["batch-size"] in (16, 32)
    assert len(result["best_metrics"]["accuracy"]) == 6


DIST_TRAIN = """
    import os
    from azureml.core import Run

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    print(f"rank {rank} of {world} via {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}")
    Run.get_context().log("world_size", world)
"""

DIST_CONTROL = """
    import json
    from azureml.core import Experiment, ScriptRunConfig, Workspace
    from azureml.core.runconfig import PyTorchConfiguration

    ws = Workspace.from_config()
    distr_config = PyTorchConfiguration(communication_backend="Gloo", process_count=2, node_count=1)
    src = ScriptRunConfig(source_directory=".", script="train.py", compute_target="local",
                          distributed_job_config=distr_config)
    run = Experiment(ws, "v1-ddp").submit(src)
    run.wait_for_completion(show_output=False)
    print("RESULT " + json.dumps({
        "status": run.get_status(),
        "metrics": run.get_metrics(),
        "distributed": run.handle.get_details().get("distributed"),
        "rank1": open(run.handle.download_file("user_logs/rank_1.txt", "rank1.txt")).read(),
    }))
"""


def test_a_v1_pytorch_distributed_config_starts_one_process_per_rank(project: Path) -> None:
    write(project, "train.py", DIST_TRAIN)
    write(project, "control.py", OPT_IN + textwrap.dedent(DIST_CONTROL))
    result = run_control(project)
    assert result["status"] == "Completed", result["stdout"]
    assert result["metrics"]["world_size"] == 2  # rank 0 logs; rank 1's points are not duplicated
    assert "rank 1 of 2 via" in result["rank1"]
    assert "pytorch" in json.dumps(result["distributed"]).lower()
