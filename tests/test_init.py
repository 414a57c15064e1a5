"""``launchbay init``: a starter launchbay.toml that works as written, and whose every commented example works
once uncommented.

The file has the local target active (the default), and commented examples of each target type (docker,
ssh, ray, slurm), of environments and of the snapshot budget; secrets appear only as ``${NAME}``
references. A ``.launchbayignore`` with notes is written beside it when the project has none. An existing
launchbay.toml is never replaced without ``--force``. ``--target TYPE`` writes that example active,
filled in from the options, and makes it the default.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import CLI, write
from launchbay.cli.common import EXIT_ERROR
from launchbay.config import load_config
from launchbay.environments.spec import resolve_environment
from launchbay.store import open_store
from launchbay.targets import make_target
from launchbay.targets.dockerapi import device_requests, parse_mounts
from launchbay.targets.sbatch import sbatch_lines
from launchbay.targets.sshconn import SSHHost


def commented_examples(text: str) -> list[str]:
    """Each commented example of the file (a block of ``# `` lines whose first is ``# [``), uncommented."""
    blocks = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip("\n").splitlines()
        if lines and lines[0].startswith("# [") and all(line.startswith("# ") for line in lines):
            blocks.append("".join(line[2:] + "\n" for line in lines))
    return blocks


def test_init_then_a_submit_runs_on_the_local_target(project: Path, cli: CLI) -> None:
    out = cli("init", check=True)
    assert "launchbay.toml" in out.stdout and "'local'" in out.stdout
    config = load_config(project)
    assert config.path == project / "launchbay.toml" and config.defaults == {"target": "local"}
    assert config.targets == {} and config.environments == {}  # everything else is commented out
    assert (project / ".launchbayignore").read_text().startswith("# .launchbayignore")
    write(project, "train.py", "print('trained on', __import__('socket').gethostname())\n")
    submitted = cli("submit", "train.py", check=True)
    assert "trained on" in submitted.stdout
    assert cli.json("runs")[0]["target"] == "local"  # type: ignore[index]


def test_init_refuses_to_replace_a_file_without_force(project: Path, cli: CLI) -> None:
    (project / "launchbay.toml").write_text('[targets.mine]\ntype = "docker"\nimage = "x"\n')
    refused = cli("init")
    assert refused.returncode == EXIT_ERROR
    assert refused.stderr.strip().splitlines() == [
        f"launchbay: error: {project / 'launchbay.toml'} exists; `launchbay init --force` replaces it "
        "(its settings are lost)."
    ]
    assert "mine" in (project / "launchbay.toml").read_text()
    cli("init", "--force", check=True)
    assert "[targets.mine]" not in (project / "launchbay.toml").read_text()


def test_init_keeps_a_launchbayignore_that_is_there(project: Path, cli: CLI) -> None:
    (project / ".launchbayignore").write_text("data/\n")
    cli("init", check=True)
    assert (project / ".launchbayignore").read_text() == "data/\n"


def test_every_commented_example_uncommented_is_accepted_by_the_config_loader(
    project: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example, on its own in a launchbay.toml: the loader reads it, its target is made (and its settings
    pass that target type's own checks), its environment resolves."""
    cli("init", check=True)
    examples = commented_examples((project / "launchbay.toml").read_text())
    headers = sorted(e.splitlines()[0].split("]")[0] + "]" for e in examples)
    assert headers == [
        "[environments.from-files]",
        "[environments.torch]",
        "[snapshot]",
        "[targets.box]",
        "[targets.cluster]",
        "[targets.gpu-box]",
        "[targets.ray]",
    ]
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret")  # the torch environment's ${WANDB_API_KEY}
    folder = project / "one"
    write(folder, "requirements.txt", "numpy\n")  # what the from-files environment names
    with open_store(project / ".store") as store:
        for example in examples:
            (folder / "launchbay.toml").write_text(example)
            config = load_config(folder)
            for name, settings in config.targets.items():
                target = make_target(name, config, store)
                assert target.type_name == settings["type"]
                if target.type_name == "docker":
                    parse_mounts(settings.get("mounts")), device_requests(settings.get("gpus"))
                if target.type_name == "ssh":
                    SSHHost.from_settings(name, settings)
                if target.type_name == "slurm":
                    assert sbatch_lines(settings, name)
            for name in config.environments:
                environment = resolve_environment(name, config, folder)
                assert environment is not None and (environment.pip or environment.sources)
            if "[snapshot]" in example:
                assert config.snapshot == {"max_bytes": 300_000_000, "max_files": 2000}
            assert config.targets or config.environments or config.snapshot, example


def test_secrets_appear_only_as_references(project: Path, cli: CLI) -> None:
    cli("init", check=True)
    text = (project / "launchbay.toml").read_text()
    assert 'WANDB_API_KEY = "${WANDB_API_KEY}"' in text
    assert not re.search(r"(?im)^#?\s*(password|token|secret|api_key)\s*=", text)


def test_init_with_a_target_writes_it_filled_in_and_makes_it_the_default(project: Path, cli: CLI) -> None:
    cli("init", "--target", "ssh", "--host", "gpu-box", check=True)
    config = load_config(project)
    assert config.defaults == {"target": "gpu-box"}
    assert config.targets["gpu-box"] == {
        "type": "ssh",
        "host": "gpu-box",
        "python": "python3",
        "workdir": "~/.launchbay-remote",
    }
    text = (project / "launchbay.toml").read_text()
    assert "# [targets.box]" in text and "# [targets.cluster]" in text  # the other examples stay
    cli("init", "--force", "--target", "docker", "--image", "python:3.12-slim", check=True)
    assert load_config(project).targets["box"]["image"] == "python:3.12-slim"


def test_an_ssh_target_without_a_host_is_one_line(project: Path, cli: CLI) -> None:
    refused = cli("init", "--target", "ssh")
    assert refused.returncode == EXIT_ERROR and not (project / "launchbay.toml").exists()
    assert refused.stderr.strip().splitlines() == [
        "launchbay: error: launchbay init --target ssh needs --host NAME, the machine its runs go to."
    ]
