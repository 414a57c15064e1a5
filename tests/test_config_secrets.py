"""A secret written in launchbay.toml never reaches the store: runs see the file with ``***`` in its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CLI, write

CONFIG = """\
# the team's box; the password should be ${BOX_PASSWORD}, but someone wrote it in
[targets.box]
type = "local"
password = "lit-secret-9"
passphrase = 'lit-secret-10'
api_token = "${BOX_TOKEN}"
mirror = "https://deploy:lit-secret-11@example.com/repo.git"
ssh = { host = "box", access_token = "lit-secret-12" }

[defaults]
target = "box"
"""

SHOW_CONFIG = "print(open('launchbay.toml').read())\n"
SECRETS = [b"lit-secret-9", b"lit-secret-10", b"lit-secret-11", b"lit-secret-12"]


def _files_holding_a_secret(store: Path) -> list[str]:
    return [
        str(p.relative_to(store)) for p in store.rglob("*") if p.is_file() and any(s in p.read_bytes() for s in SECRETS)
    ]


def test_a_literal_password_in_launchbay_toml_is_in_no_file_of_the_store(
    cli: CLI, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOX_TOKEN", "env-secret-13")
    write(project, "launchbay.toml", CONFIG)
    write(project, "show.py", SHOW_CONFIG)
    log = cli("submit", "show.py", check=True).stdout
    store = tmp_path / "store"

    assert list(store.glob("cache/stage/*/tree/launchbay.toml"))  # the staged work tree was looked at too
    assert _files_holding_a_secret(store) == []  # blobs, the stage, run folders, the index
    # the run saw its launchbay.toml: every setting, comment and ${NAME} reference, and *** for each secret
    assert "# the team's box; the password should be ${BOX_PASSWORD}" in log
    assert 'type = "local"\npassword = "***"\npassphrase = "***"\napi_token = "${BOX_TOKEN}"\n' in log
    assert 'mirror = "https://deploy:***@example.com/repo.git"' in log
    assert 'ssh = { host = "box", access_token = "***" }' in log and 'target = "box"' in log

    # again with the folder unchanged (nothing is hashed then), and with the file edited
    cli("submit", "show.py", check=True)
    write(project, "launchbay.toml", CONFIG.replace("lit-secret-9", "lit-secret-9-and-more"))
    assert 'password = "***"' in cli("submit", "show.py", check=True).stdout
    assert _files_holding_a_secret(store) == []


def test_a_secret_launchbay_cannot_replace_where_it_stands_leaves_the_file_out(cli: CLI, project: Path) -> None:
    write(project, "launchbay.toml", '[targets.box]\ntype = "local"\npassword = """lit-secret-9\n"""\n')
    write(project, "show.py", SHOW_CONFIG)
    log = cli("submit", "-t", "box", "show.py", check=True).stdout
    assert "lit-secret-9" not in log and "held secrets in a form launchbay cannot replace" in log


def test_a_password_in_pyprojects_tool_launchbay_is_in_no_file_of_the_store(
    cli: CLI, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """launchbay's settings may live in pyproject.toml's [tool.launchbay]: the snapshot redacts it the same way."""
    monkeypatch.setenv("BOX_TOKEN", "env-secret-13")
    pyproject = '[project]\nname = "demo"\n\n' + CONFIG.replace(
        "[targets.box]", "[tool.launchbay.targets.box]"
    ).replace("[defaults]", "[tool.launchbay.defaults]")
    write(project, "pyproject.toml", pyproject)
    write(project, "show.py", "print(open('pyproject.toml').read())\n")
    log = cli("submit", "show.py", check=True).stdout
    assert _files_holding_a_secret(tmp_path / "store") == []
    assert '[project]\nname = "demo"' in log and 'password = "***"' in log and 'target = "box"' in log
