"""v1's exception names import and catch launchbay's errors; what the layer lacks says what to do instead.

The provisioning pattern below is the one v1's samples open with; it runs unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import write
from launchbay import errors
from launchbay.compat import azureml as compat

OPT_IN = "import launchbay.compat.azureml; launchbay.compat.azureml.install()\n"

SEED = """
    from azureml.core import Experiment, ScriptRunConfig, Workspace
    from azureml.core.compute import AmlCompute, ComputeTarget
    from azureml.exceptions import ComputeTargetException

    ws = Workspace.from_config()
    cluster_name = "cpu-cluster"
    try:
        cluster = ComputeTarget(workspace=ws, name=cluster_name)
        print("Found existing cluster, use it.")
    except ComputeTargetException:
        print("Creating a new cluster.")
        compute_config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
        cluster = ComputeTarget.create(ws, cluster_name, compute_config)
    cluster.wait_for_completion(show_output=True)

    config = ScriptRunConfig(source_directory=".", script="train.py", compute_target=cluster)
    run = Experiment(workspace=ws, name="seed").submit(config)
    run.wait_for_completion()
    print("status", run.get_status(), "on", run.get_details()["target"])
"""


def python(project: Path, script: str) -> subprocess.CompletedProcess[str]:
    write(project, "control.py", OPT_IN + textwrap.dedent(script))
    return subprocess.run(
        [sys.executable, "control.py"], cwd=project, capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )


@pytest.fixture
def v1() -> Iterator[None]:
    compat.install()
    yield
    compat.uninstall()


def test_the_seed_provisioning_pattern_finds_the_configured_target_and_runs_on_it(project: Path) -> None:
    write(project, "launchbay.toml", '[targets.cpu-cluster]\ntype = "local"\n')
    write(project, "train.py", "print('trained')\n")
    proc = python(project, SEED)
    assert proc.returncode == 0, proc.stderr
    assert "Found existing cluster, use it." in proc.stdout
    assert "status Completed on cpu-cluster" in proc.stdout


def test_the_seed_provisioning_pattern_without_the_target_says_how_to_describe_it(project: Path) -> None:
    write(project, "train.py", "print('trained')\n")
    proc = python(project, SEED)
    assert proc.returncode == 1
    assert "Creating a new cluster." in proc.stdout  # the missing target was caught as ComputeTargetException
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("launchbay.errors.NotSupportedError: AmlCompute.provisioning_configuration")
    assert "launchbay.toml" in last and 'type = "ssh"' in last


def test_v1_exception_names_import_and_catch_what_launchbay_raises(v1: None) -> None:
    from azureml.core.compute_target import ComputeTargetException as FromCompute
    from azureml.exceptions import (
        ActivityFailedException,
        AzureMLException,
        ComputeTargetException,
        ServiceException,
        UserErrorException,
    )

    assert FromCompute is ComputeTargetException is errors.TargetError
    assert ServiceException is errors.StoreError  # the workspace is launchbay's store: a run not found is one
    assert issubclass(errors.RunNotFoundError, ServiceException)
    for v1_name in (AzureMLException, UserErrorException, ActivityFailedException):
        assert issubclass(errors.ConfigError, v1_name) and issubclass(errors.NotSupportedError, v1_name)


def test_a_v1_name_the_layer_lacks_names_what_it_has_and_the_launchbay_way(v1: None) -> None:
    with pytest.raises(errors.NotSupportedError) as missing_module:
        __import__("azureml.interpret")
    with pytest.raises(ImportError) as missing_name:
        exec("from azureml.core import ScriptRunner")
    with pytest.raises(ImportError) as missing_exception:
        exec("from azureml.exceptions import DiscoveryUrlNotFoundException")
    module_text, name_text, exception_text = (str(e.value) for e in (missing_module, missing_name, missing_exception))
    for text in (module_text, name_text, exception_text):
        assert "README" not in text  # pip users have no README to look in
        assert "launchbay.submit(" in text
    assert "azureml.core (Workspace, Experiment" in module_text and "azureml.train.hyperdrive" in module_text
    assert "azureml.core has ComputeTarget, Dataset, Environment, Experiment" in name_text
    assert "azureml.exceptions has " in exception_text and "ComputeTargetException" in exception_text


def test_no_not_covered_message_sends_the_reader_elsewhere() -> None:
    from launchbay.compat.azureml import unsupported

    texts = [
        *unsupported.ALTERNATIVES.values(),
        unsupported.module_message("azureml.interpret"),
        unsupported.attribute_message("azureml.core", "ScriptRunner"),
    ]
    for text in texts:
        assert "README" not in text and "see " not in text.lower(), text
    assert "from your script" in unsupported.ALTERNATIVES["LinkedService"]  # what to do, not only what is missing
