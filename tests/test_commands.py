"""Any command as a run, not only ``python SCRIPT``: from the CLI, the Python API and the Azure ML layer.

``launchbay submit -- bash run.sh x`` (or ``launchbay submit bash run.sh x``: a first word that is not a
``.py`` file is a command) runs with the same snapshot, environment, log, metrics, cancel and distributed
settings as a script. In the command, ``python`` and ``python3`` are the run's interpreter and
``$LAUNCHBAY_PYTHON`` names it; ``from launchbay import Run`` works in its Python children. A list runs as
it is; a string runs under ``/bin/sh -c``. The run's spec records ``"command": true`` beside its
``script`` (the program) and ``arguments``, so a re-run is the same command. The contract suite
(test_target_contract.py) runs a command on every target.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, need_service, write
from launchbay.cli.common import EXIT_ERROR
from launchbay.errors import ConfigError

RUN_SH = """\
#!/bin/sh
echo "shell got: $*"
python -c 'from launchbay import Run; Run.get_context().log("seen", 1); print("child logged")'
"""


def test_submit_dash_dash_runs_a_command_with_its_log_and_metrics(project: Path, cli: CLI) -> None:
    write(project, "run.sh", RUN_SH)
    proc = cli("submit", "--", "bash", "run.sh", "x", "y z")
    assert proc.returncode == 0, proc.stderr
    assert "shell got: x y z" in proc.stdout and "child logged" in proc.stdout
    shown = cli.json("show", cli.json("runs")[0]["run_id"])  # type: ignore[index]
    assert shown["command"] is True  # type: ignore[index]
    assert (shown["script"], shown["arguments"]) == ("bash", ["run.sh", "x", "y z"])  # type: ignore[index]


def test_a_first_word_that_is_not_a_py_file_is_a_command(project: Path, cli: CLI) -> None:
    """``run.sh``, a file of the folder, runs that file (``./run.sh``), not a program of that name on PATH."""
    write(project, "run.sh", RUN_SH).chmod(0o755)
    proc = cli("submit", "run.sh", "from", "the folder")
    assert proc.returncode == 0, proc.stderr
    assert "shell got: from the folder" in proc.stdout
    assert cli.json("runs")[0]["script"] == "./run.sh"  # type: ignore[index]
    assert cli("submit", "--", "echo", "$HOME is not expanded in a list", check=True).stdout.startswith("$HOME")


def test_a_command_that_cannot_start_is_one_line_or_a_failed_run(project: Path, cli: CLI) -> None:
    write(project, "run.sh", RUN_SH)
    refused = cli("submit", "run.sh")  # a file of the folder, not executable: refused before any run
    assert refused.returncode == EXIT_ERROR
    assert refused.stderr.strip().splitlines() == [
        f"launchbay: error: run.sh in {project} is not executable: `chmod +x run.sh`, "
        "or name its interpreter (`launchbay submit -- bash run.sh`)."
    ]
    assert cli.json("runs") == []
    assert "No script 'missing.py'" in cli("submit", "missing.py").stderr  # a .py name stays a script
    failed = cli("submit", "--", "no-such-program-here", "x")  # found (or not) on the target's PATH
    assert failed.returncode == 1
    error = cli.json("show", cli.json("runs")[0]["run_id"])["error"]  # type: ignore[index]
    assert error["message"].startswith("Could not start no-such-program-here")  # type: ignore[index]


def test_the_python_api_takes_a_list_or_a_shell_string(project: Path) -> None:
    listed = launchbay.submit(command=["sh", "-c", 'echo "list: $0 $1"', "a", "$HOME"])
    shell = launchbay.submit(command="echo one && echo two | tr a-z A-Z; echo home=$HOME")
    assert listed.wait(timeout=60) == "Completed" and shell.wait(timeout=60) == "Completed"
    assert "list: a $HOME" in listed.get_log()
    assert "one\nTWO\nhome=" + os.environ["HOME"] in shell.get_log()
    assert (shell.record().script, shell.record().arguments[0]) == ("/bin/sh", "-c")
    with pytest.raises(ConfigError, match="Pass a script"):
        launchbay.submit("train.py", command=["bash"])
    with pytest.raises(ConfigError, match="The command is empty"):
        launchbay.submit(command=[])


def test_a_command_gets_the_runs_environment_python_first(project: Path) -> None:
    """A venv environment: ``python`` in the command is the environment's (what an activated venv gives)."""
    write(project, "launchbay.toml", '[environments.six]\npip = ["six"]\n')
    write(project, "which.sh", "python -c 'import six, sys; print(\"prefix\", sys.prefix)'\n")
    handle = launchbay.submit(command=["sh", "which.sh"], environment="six")
    assert handle.wait(timeout=300) == "Completed", handle.get_log()
    prefix = Path(handle.get_log().split("prefix ", 1)[1].split()[0])
    assert (prefix / "pyvenv.cfg").is_file() and prefix != Path(sys.prefix)


def test_a_rerun_of_a_command_runs_the_same_command(project: Path) -> None:
    write(project, "run.sh", RUN_SH)
    first = launchbay.submit(command=["bash", "run.sh", "again"])
    assert first.wait(timeout=60) == "Completed"
    again = first.rerun()
    assert again.wait(timeout=60) == "Completed"
    assert "shell got: again" in again.get_log()
    assert again.record().spec["command"] is True


def test_old_specs_without_the_field_read_as_scripts() -> None:
    """Specs written before ``command`` existed (JSON without the key) are script runs, field for field."""
    from launchbay.models import RunSpec

    old = {"script": "train.py", "arguments": ["--lr", "1"], "target": "local", "experiment": "e"}
    spec = RunSpec.from_json(old)
    assert spec.command is False and spec.argv == ("train.py", "--lr", "1")
    assert {k: v for k, v in spec.to_json().items() if k in old} == old


def test_a_command_runs_distributed_under_mpirun(project: Path) -> None:
    """``--distributed mpi:2`` with a command: each rank runs it, with Open MPI's variables."""
    if shutil.which("mpirun") is None:
        need_service(False, "Open MPI (apt-get install openmpi-bin)")
    write(project, "rank.sh", 'echo "rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE" > "outputs/r$RANK.txt"\n')
    os.makedirs(project / "outputs", exist_ok=True)
    handle = launchbay.submit(command="mkdir -p outputs && sh rank.sh", distributed="mpi:2")
    assert handle.wait(timeout=120) == "Completed", handle.record().error
    run_dir = handle.record().run_dir
    seen = sorted((run_dir / "files" / "outputs" / f"r{r}.txt").read_text().strip() for r in range(2))
    assert seen == ["rank 0 of 2", "rank 1 of 2"]
    assert json.loads(json.dumps(handle.get_details()["distributed"]))["kind"] == "mpi"


V1_CONTROL = """
    import json
    from azureml.core import Experiment, ScriptRunConfig, Workspace

    experiment = Experiment(workspace=Workspace.from_config(), name="v1-commands")
    listed = experiment.submit(ScriptRunConfig(source_directory=".", command=["bash", "v1.sh", "x"]))
    string = experiment.submit(ScriptRunConfig(source_directory=".", command="bash v1.sh from-a-string && echo after"))
    for run in (listed, string):
        run.wait_for_completion()
    print("RESULT " + json.dumps({
        "status": [listed.get_status(), string.get_status()],
        "metrics": [listed.get_metrics(), string.get_metrics()],
        "logs": [listed.handle.get_log(), string.handle.get_log()],
    }))
"""

V1_SH = """\
echo "v1 command got $1"
python -c 'from azureml.core import Run; Run.get_context().log("v1_child", 5)'
"""


def test_a_v1_script_run_config_with_a_command_list_or_string_runs_it(project: Path) -> None:
    """v1's ``ScriptRunConfig(command=...)``: a list runs as it is, a string under /bin/sh; ``azureml.core.Run``
    works in the command's Python children as in a script."""
    import textwrap

    from test_azureml_compat import OPT_IN, run_control

    write(project, "v1.sh", V1_SH)
    write(project, "control.py", OPT_IN + textwrap.dedent(V1_CONTROL))
    result = run_control(project)
    assert result["status"] == ["Completed", "Completed"], result["stdout"]
    assert result["metrics"] == [{"v1_child": 5}, {"v1_child": 5}]
    assert "v1 command got x" in result["logs"][0]
    assert "v1 command got from-a-string\n" in result["logs"][1] and "after" in result["logs"][1]


def test_submit_magic_runs_a_command_and_a_cell_under_one(project: Path) -> None:
    """``%submit --command "..."`` runs a command; ``%%submit --command "... @cell"`` runs the cell as the
    script file the command names (here under ``sh -c``, as torchrun would take it)."""
    from ipython_driver import run_cells

    write(project, "run.sh", RUN_SH)
    out = run_cells(
        project,
        '%submit --command "bash run.sh from-the-line-magic"',
        '%%submit --command "python @cell cell-arg && echo after-the-cell"\n'
        "import sys\nfrom launchbay import Run\nRun.get_context().log('cell', 1)\nprint('cell got', sys.argv[1:])",
        '%%submit --command "bash run.sh"\nprint("never")',
    )
    assert "shell got: from-the-line-magic" in out and "child logged" in out
    assert "cell got ['cell-arg']" in out and "after-the-cell" in out, out
    assert "put @cell where it goes" in out and "never" not in out.split("put @cell")[1]
    runs = launchbay.runs()
    assert [r.status.value for r in runs] == ["Completed", "Completed"]
    assert launchbay.get_run(runs[0].run_id).get_metrics() == {"cell": 1}
