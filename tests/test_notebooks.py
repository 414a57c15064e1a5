"""The notebooks users start from run end to end, in a real kernel (nbclient)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from launchbay.store import open_store

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(notebook: Path, workdir: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    chunks = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            chunks.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(chunks)


@pytest.mark.slow
def test_quickstart_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"  # as the quickstart opens it: notebooks/ in a git work tree with more in it
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "src").mkdir()
    (repo / "src" / "big.py").write_text("# not the notebook's\n" * 1000)
    work = repo / "notebooks"
    work.mkdir()
    for name in ("quickstart.ipynb", "launchbay.toml"):
        shutil.copy(NOTEBOOKS / name, work)
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    nb = execute(work / "quickstart.ipynb", work)
    text = outputs_text(nb)
    with open_store(tmp_path / "store") as store:
        runs = store.list_runs()
    assert len(runs) == 4 and {r.properties["launchbay.source_dir"] for r in runs} == {str(work)}
    assert {r.experiment for r in runs} == {"notebooks"}  # the notebook folder's project, not the repo's
    assert "Completed" in text
    assert "31 9" in text
    assert "Pulled into the notebook: total, biggest" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the comparison draws the loss of both runs"
    assert "step 0: loss 1.000" in text
    assert "read 300 rows from 3 files" in text  # a data input, read in place
    assert "digits:1  (new version 1; 3 files" in text and "is the version the run read" in text
    # No widget renders under nbclient/nbconvert: the first %%submit cell keeps the run's log as text.
    first = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%submit"))
    streamed = "".join(o.get("text", "") for o in first.outputs)
    for step in (0, 10, 20, 30):
        assert f"step {step}: loss" in streamed, streamed
    assert re.search(r"Completed after [\d.]+ s \(exit code 0\)", streamed), streamed


def test_magic_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext launchbay"),
        nbformat.v4.new_code_cell("%%submit --bogus\nprint(1)"),
        nbformat.v4.new_code_cell("%%submit -t gpu-box\nprint(1)"),
        nbformat.v4.new_code_cell("%submit missing.py"),
        nbformat.v4.new_code_cell("import threading\nlock = threading.Lock()"),
        nbformat.v4.new_code_cell("%%submit --push lock\nprint(lock)"),
        nbformat.v4.new_code_cell("%launchbay show no-such-run"),
    ]
    client = NotebookClient(
        nb, timeout=60, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    shown = ["".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs) for cell in nb.cells[1:]]
    expected = [
        "UsageError: unrecognized arguments: --bogus",
        "UsageError: Unknown target 'gpu-box'",
        "UsageError: No script 'missing.py'",
        "",
        "UsageError: Variable 'lock' (lock) cannot be sent to the run",
        "UsageError: No run 'no-such-run'",
    ]
    for text, start in zip(shown, expected):
        assert text.startswith(start), (text, start)
        assert text.count("\n") <= 1 and "Traceback" not in text


@pytest.mark.slow
def test_automl_notebook_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("flaml")
    work = tmp_path / "notebooks"
    work.mkdir()
    for name in ("automl.ipynb", "launchbay.toml"):
        shutil.copy(NOTEBOOKS / name, work)
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    nb = execute(work / "automl.ipynb", work)
    text = outputs_text(nb)
    assert "Completed" in text and "predicted: [" in text
    assert "same predictions: True" in text
    assert "site                   categorical" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the score-over-time plot"
    with open_store(tmp_path / "store") as store:
        runs = store.list_runs()
    assert {r.target_type for r in runs} == {"automl", "local"} and len(runs) == 5
