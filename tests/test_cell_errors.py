"""A failing %%submit cell reads as the cell's own error: hints, the cell's line numbers, once."""

from __future__ import annotations

import re
from pathlib import Path

from ipython_driver import run_cells


def test_a_notebook_variable_the_cell_needs_suggests_push(project: Path) -> None:
    out = run_cells(project, "data = [1, 2, 3]", "%%submit\nprint(sum(data))")
    assert "NameError: name 'data' is not defined. 'data' is defined in the notebook: add `--push data`" in out


def test_a_module_imported_only_in_the_notebook_says_to_import_it_in_the_cell(project: Path) -> None:
    out = run_cells(project, "import json", "%%submit\nprint(json.dumps(1))")
    assert "'json' is a module imported in the notebook: import it inside the cell too" in out


def test_traceback_lines_are_the_cells_as_shown_once_and_without_launchbay_or_store_paths(project: Path) -> None:
    cell = (
        "%%submit\n"  # line 1, as the notebook shows the cell
        "from launchbay import Run\n"
        "def save():\n"
        "    Run.get_context().upload_file('../escape', 'x')\n"  # line 4: raises inside launchbay
        "save()\n"  # line 5
    )
    out = run_cells(project, cell)
    assert out.count("Traceback (most recent call last):") == 1, out
    assert 'File "<%%submit cell>", line 5, in <module>\n    save()' in out
    assert 'File "<%%submit cell>", line 4, in save\n    Run.get_context().upload_file' in out
    assert "ValueError: upload_file name '../escape' must be a relative path inside the run" in out
    assert "inrun.py" not in out and "cellrunner" not in out, out  # launchbay's frames are hidden
    assert ".launchbay/runs/" not in out  # no store paths
    assert re.search(r"run \S+ Failed after [\d.]+ s \(exit code 1\)\n", out), out


def test_project_files_in_a_traceback_are_shown_by_their_project_path(project: Path) -> None:
    (project / "helpers.py").write_text("def boom():\n    raise RuntimeError('from the project')\n")
    out = run_cells(project, "%%submit\nimport helpers\nhelpers.boom()")
    assert 'File "helpers.py", line 2, in boom' in out, out
    assert 'File "<%%submit cell>", line 3, in <module>' in out


def test_a_syntax_error_is_reported_before_any_run_exists(project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = run_cells(project, "%%submit\nprint(1)\nfor x in range(3)\n    print(x)")
    assert (
        "UsageError: SyntaxError in the cell, line 3: expected ':'\n    for x in range(3)\nNothing was submitted."
        in out
    )
    assert cli.json("runs") == []


def test_ipython_syntax_in_a_submitted_cell_is_explained_before_submitting(project: Path) -> None:
    out = run_cells(project, "%%submit\n!pip list\nprint(1)")
    assert "UsageError: SyntaxError in the cell, line 2" in out
    assert "IPython's ! and % lines don't work in it." in out


def test_a_max_duration_that_is_not_a_positive_number_is_refused_before_any_run_exists(  # type: ignore[no-untyped-def]
    project: Path, cli
) -> None:
    out = run_cells(project, *(f"%%submit --max-duration {value}\nprint(1)" for value in ("-1", "0", "nan")))
    for value in ("-1.0", "0.0", "nan"):
        assert (
            "UsageError: The maximum duration (--max-duration, max_duration_s=) must be a number of seconds > 0, "
            f"not {value}; leave it out for no limit." in out
        ), out
    assert "Traceback" not in out
    assert cli.json("runs") == []
