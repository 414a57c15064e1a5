"""Azure ML v1's estimators (seed 002, "train with estimators") run on launchbay with the one added line.

``Estimator``, ``PyTorch``, ``TensorFlow``, ``Chainer`` and ``SKLearn`` are ScriptRunConfigs said another
way: ``script_params`` flattened as v1 did (``{'--verbose': ''}`` is a bare flag), ``pip_packages`` /
``conda_packages`` / ``custom_docker_image`` the environment, ``framework_version`` a pinned pip requirement
(``estimator.FRAMEWORKS``), ``distributed_training`` the distributed launch. Each construction says in one
line that estimators are deprecated (v1 said so too). The control scripts below are v1 code as the seed
wrote it; only the first line is launchbay's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import BASE_IMAGE, docker_ready, need_service, write
from test_azureml_compat import OPT_IN

TRAIN = """
    import argparse, json, os, sys
    from azureml.core import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    run = Run.get_context()
    for epoch in range(args.epochs):
        run.log("loss", args.learning_rate / (epoch + 1))
    import six  # from pip_packages
    print("argv", json.dumps(sys.argv[1:]), "verbose", args.verbose, "six", six.__version__)
"""

SINGLE = """
    import json
    from azureml.core import Experiment, Workspace
    from azureml.train.estimator import Estimator

    ws = Workspace.from_config()
    est = Estimator(source_directory=".", entry_script="train.py", compute_target=TARGET,
                    script_params={"--learning-rate": 0.5, "--epochs": 2, "--verbose": ""},
                    pip_packages=["six"], custom_docker_image=IMAGE)
    run = Experiment(ws, "estimators").submit(est)
    run.wait_for_completion(show_output=True)
    print("RESULT " + json.dumps({"status": run.get_status(), "metrics": run.get_metrics(),
                                  "arguments": run.get_details()["runDefinition"]["arguments"]}))
"""

MPI_TRAIN = """
    import os
    from azureml.core import Run
    rank, size = os.environ["OMPI_COMM_WORLD_RANK"], os.environ["OMPI_COMM_WORLD_SIZE"]
    os.makedirs("outputs", exist_ok=True)
    open(f"outputs/rank{rank}.txt", "w").write(f"rank {rank} of {size}")
    if rank == "0":
        Run.get_context().log("world", int(size))
"""

PYTORCH_MPI = """
    import json
    from azureml.core import Experiment, Workspace
    from azureml.core.runconfig import MpiConfiguration
    from azureml.train.dnn import PyTorch

    ws = Workspace.from_config()
    est = PyTorch(source_directory=".", entry_script="mpi_train.py", compute_target=TARGET, node_count=1,
                  framework_version="2.13", user_managed=True, use_gpu=False,
                  distributed_training=MpiConfiguration(process_count_per_node=2))
    run = Experiment(ws, "estimators").submit(est)
    run.wait_for_completion()
    print("RESULT " + json.dumps({"status": run.get_status(), "metrics": run.get_metrics(),
                                  "files": run.get_file_names(),
                                  "distributed": run.handle.get_details()["distributed"]}))
"""

SK_TRAIN = """
    import sklearn
    from azureml.core import Run
    from sklearn.linear_model import LinearRegression
    model = LinearRegression().fit([[0], [1], [2]], [0, 2, 4])
    Run.get_context().log("coef", float(model.coef_[0]))
    print("sklearn", sklearn.__version__)
"""

SKLEARN = """
    import json
    from azureml.core import Experiment, Workspace
    from azureml.train.sklearn import SKLearn

    ws = Workspace.from_config()
    est = SKLearn(source_directory=".", entry_script="sk_train.py", compute_target=TARGET,
                  framework_version="1.9", custom_docker_image=IMAGE)
    run = Experiment(ws, "estimators").submit(est)
    run.wait_for_completion(show_output=True)
    print("RESULT " + json.dumps({"status": run.get_status(), "metrics": run.get_metrics()}))
"""


def control(project: Path, body: str, target: str = "local", image: str | None = None) -> dict:
    """Run a v1 control script; its result, its stdout and its stderr."""
    code = OPT_IN + f"TARGET, IMAGE = {target!r}, {image!r}\n" + textwrap.dedent(body)
    write(project, "control.py", code)
    proc = subprocess.run(
        [sys.executable, "control.py"], cwd=project, capture_output=True, text=True, timeout=600, env=os.environ.copy()
    )
    assert proc.returncode == 0, f"control script failed:\n{proc.stdout}\n{proc.stderr}"
    result = next(json.loads(x[7:]) for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return {**result, "stdout": proc.stdout, "stderr": proc.stderr}


def deprecation_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "deprecated" in line]


def docker_project(project: Path) -> None:
    need_service(docker_ready(BASE_IMAGE), "A Docker daemon with the test base image (LAUNCHBAY_TEST_BASE_IMAGE)")
    write(project, "launchbay.toml", f'[targets.box]\ntype = "docker"\nimage = "{BASE_IMAGE}"\n')


def check_single(result: dict) -> None:
    assert result["status"] == "Completed", result["stdout"]
    assert result["arguments"] == ["--learning-rate", "0.5", "--epochs", "2", "--verbose"]  # '' is a bare flag
    assert 'argv ["--learning-rate", "0.5", "--epochs", "2", "--verbose"] verbose True six' in result["stdout"]
    assert result["metrics"]["loss"] == [0.5, 0.25]
    assert deprecation_lines(result["stderr"]) == [
        "launchbay: warning: the Estimator estimator is deprecated (as in Azure ML v1); it runs as a "
        "ScriptRunConfig. Use ScriptRunConfig(source_directory, script, arguments, environment) instead."
    ]


def test_an_estimator_runs_one_node_with_its_script_params_and_pip_packages(project: Path) -> None:
    write(project, "train.py", TRAIN)
    check_single(control(project, SINGLE))


@pytest.mark.docker
def test_an_estimator_runs_on_docker_in_its_custom_image(project: Path) -> None:
    docker_project(project)
    write(project, "train.py", TRAIN)
    check_single(control(project, SINGLE, target="box", image=BASE_IMAGE))


def test_a_pytorch_estimator_with_mpi_runs_a_process_per_rank(project: Path) -> None:
    if shutil.which("mpirun") is None:
        need_service(False, "Open MPI (apt-get install openmpi-bin)")
    write(project, "mpi_train.py", MPI_TRAIN)
    result = control(project, PYTORCH_MPI)
    assert result["status"] == "Completed", result["stdout"]
    assert result["metrics"] == {"world": 2}
    assert {"outputs/rank0.txt", "outputs/rank1.txt"} <= set(result["files"])
    assert result["distributed"]["kind"] == "mpi" and result["distributed"]["process_count_per_node"] == 2
    assert len(deprecation_lines(result["stderr"])) == 1 and "the PyTorch estimator" in result["stderr"]


TORCH_TRAIN = """
    import os
    from azureml.core import Run
    rank, world = os.environ["RANK"], os.environ["WORLD_SIZE"]
    print(f"rank {rank} of {world} master {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}", flush=True)
    if rank == "0":
        Run.get_context().log("world", int(world))
"""

PYTORCH_DDP = """
    import json
    from azureml.core import Experiment, Workspace
    from azureml.core.runconfig import PyTorchConfiguration
    from azureml.train.dnn import PyTorch

    ws = Workspace.from_config()
    est = PyTorch(source_directory=".", entry_script="torch_train.py", compute_target=TARGET,
                  custom_docker_image=IMAGE, user_managed=True,
                  distributed_training=PyTorchConfiguration(communication_backend="Gloo", process_count=2))
    run = Experiment(ws, "estimators").submit(est)
    run.wait_for_completion()
    print("RESULT " + json.dumps({"status": run.get_status(), "metrics": run.get_metrics(),
                                  "rank1": open(run.handle.download_file("user_logs/rank_1.txt", "r1.txt")).read()}))
"""


@pytest.mark.docker
def test_a_pytorch_estimator_with_a_pytorch_configuration_runs_its_ranks_on_docker(project: Path) -> None:
    """On Docker the ranks are torchrun's (the test image has no mpirun, which an MPI run needs in the image)."""
    docker_project(project)
    write(project, "torch_train.py", TORCH_TRAIN)
    result = control(project, PYTORCH_DDP, target="box", image=BASE_IMAGE)
    assert result["status"] == "Completed", result["stdout"]
    assert result["metrics"] == {"world": 2}
    assert result["rank1"].startswith("rank 1 of 2 master ")


def test_an_sklearn_estimator_installs_its_framework_version(project: Path) -> None:
    write(project, "sk_train.py", SK_TRAIN)
    result = control(project, SKLEARN)
    assert result["status"] == "Completed", result["stdout"]
    assert "sklearn 1.9." in result["stdout"]
    assert result["metrics"] == {"coef": pytest.approx(2.0)}


@pytest.mark.docker
def test_an_sklearn_estimator_runs_on_docker(project: Path) -> None:
    docker_project(project)
    write(project, "sk_train.py", SK_TRAIN)
    result = control(project, SKLEARN, target="box", image=BASE_IMAGE)
    assert result["status"] == "Completed", result["stdout"]
    assert "sklearn 1.9." in result["stdout"] and result["metrics"] == {"coef": pytest.approx(2.0)}


# -- what the estimators turn into, without running ---------------------------------------------------------


@pytest.fixture
def v1(project: Path) -> None:
    import launchbay.compat.azureml

    launchbay.compat.azureml.install()


def test_script_params_are_flattened_as_v1_did(v1: None) -> None:
    from launchbay.compat.azureml.estimator import flatten_script_params

    assert flatten_script_params({"--data": "d", "--lr": 0.1, "--verbose": "", "--quiet": None, "-n": 3}) == [
        "--data",
        "d",
        "--lr",
        "0.1",
        "--verbose",
        "--quiet",
        "-n",
        "3",
    ]


def test_a_framework_version_is_a_pinned_requirement_and_an_unknown_one_is_one_line(
    v1: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from azureml.train.dnn import Chainer, PyTorch, TensorFlow
    from azureml.train.sklearn import SKLearn

    from launchbay.errors import ConfigError

    def pip(est: object) -> list[str]:
        return json.loads(est.script_run_config.environment_ref())["pip"]  # type: ignore[attr-defined]

    assert pip(PyTorch(".", entry_script="t.py", framework_version="1.6")) == ["torch==1.6.*"]
    assert pip(TensorFlow(".", entry_script="t.py", framework_version="2.2", pip_packages=["six"])) == [
        "tensorflow==2.2.*",
        "six",
    ]
    assert pip(Chainer(".", entry_script="t.py", framework_version="7.0.0")) == ["chainer==7.0.0"]
    assert pip(SKLearn(".", entry_script="t.py", framework_version="0.20.3")) == ["scikit-learn==0.20.3"]
    assert pip(SKLearn(".", entry_script="t.py")) == ["scikit-learn==1.9.*"]  # the newest, as v1 took its latest
    assert pip(PyTorch(".", entry_script="t.py", pip_packages=["torch==2.13.0+cpu"])) == ["torch==2.13.0+cpu"]
    with pytest.raises(ConfigError) as err:
        PyTorch(".", entry_script="t.py", framework_version="0.9")
    message = str(err.value)
    assert "\n" not in message and message.startswith("PyTorch(framework_version='0.9'): launchbay knows 1.0, 1.1,")
    assert message.endswith("pin your own with pip_packages=['torch==...'].")
    assert capsys.readouterr().err.count("is deprecated") == 7  # one line for each estimator made


def test_distributed_settings_become_launchbays(v1: None) -> None:
    from azureml.core.runconfig import PyTorchConfiguration
    from azureml.train.dnn import PyTorch, TensorFlow
    from azureml.train.estimator import Estimator

    def dist(est: object) -> dict:
        return est.script_run_config.distributed().to_dict()  # type: ignore[attr-defined,no-any-return]

    assert dist(Estimator(".", entry_script="t.py", node_count=2, process_count_per_node=4)) == {
        "kind": "mpi",
        **dist(Estimator(".", entry_script="t.py", distributed_backend="mpi", node_count=2, process_count_per_node=4)),
    }
    torch = dist(
        PyTorch(".", entry_script="t.py", user_managed=True, distributed_training=PyTorchConfiguration(process_count=2))
    )
    assert torch["kind"] == "pytorch" and torch["process_count_per_node"] == 2
    tf = dist(TensorFlow(".", entry_script="t.py", user_managed=True, distributed_backend="ps", worker_count=2))
    assert tf["kind"] == "tensorflow" and tf["worker_count"] == 2


def test_the_estimator_modules_are_covered_and_explain_what_they_lack(v1: None) -> None:
    import azureml.train.dnn
    import azureml.train.estimator

    from launchbay.errors import NotSupportedError

    assert {"PyTorch", "TensorFlow", "Chainer"} <= set(azureml.train.dnn.__all__)
    with pytest.raises(NotSupportedError, match=r"azureml.train.estimator.Nope .*azureml.train.estimator has"):
        azureml.train.estimator.Nope  # noqa: B018
