"""Images, tables, rows and lists are shown wherever metrics are: CLI text, strict JSON, the handle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI, write

LOGS_EVERYTHING = """
import math
from launchbay import Run
run = Run.get_context()
for step in range(3):
    run.log("loss", 1.0 / (step + 1), step=step)
run.log("loss", float("nan"), step=3)
run.log("grad", float("inf"), step=0)
for i, (p, r) in enumerate([(0.9, 0.5), (0.8, 0.7), (0.6, float("nan"))]):
    run.log_row("pr", threshold=i / 10, precision=p, recall=r)
run.log_row("pr", threshold=0.3, precision=0.5)
run.log_table("confusion", {"label": ["cat", "dog"], "cat": [5, 1], "dog": [2, 7]})
run.log_list("acc_per_epoch", [0.5, 0.7, 0.75, -math.inf])
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
for epoch in range(3):
    fig = plt.figure(figsize=(2, 2))
    plt.plot([0, 1], [0, epoch])
    run.log_image("samples", plot=fig)
    plt.close(fig)
"""


@pytest.fixture
def run_id(project: Path, cli: CLI) -> str:
    write(project, "train.py", LOGS_EVERYTHING)
    # System sampling is off: under load the run outlives the first sample and system/* series would join the list.
    proc = cli("submit", "--system-metrics-interval", "0", "train.py")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return str(cli.json("runs")[0]["run_id"])  # type: ignore[index]


def test_metrics_text_shows_every_kind(run_id: str, cli: CLI) -> None:
    text = cli("metrics", run_id, check=True).stdout
    assert "loss (scalar): 4 points, last nan at step 3, min 0.333333, max 1\n" in text
    assert "grad (scalar): 1 point, last inf at step 0" in text
    assert "pr (rows): 4 rows × 3 columns\n  threshold  precision  recall\n          0        0.9     0.5\n" in text
    assert "        0.3        0.5\n" in text  # the last row has no recall
    assert "confusion (table): 2 rows × 3 columns\n  label  cat  dog\n    cat    5    2\n    dog    1    7" in text
    assert "acc_per_epoch (list): 4 values; min -inf, max 0.75\n  [0.5, 0.7, 0.75, -inf]" in text
    assert "samples (image): 3 images, latest (step 2): images/samples_3.png\n" in text
    assert f"  launchbay download {run_id} images/samples_3.png" in text


def test_metrics_json_is_strict_and_has_every_kind(run_id: str, cli: CLI) -> None:
    raw = cli("metrics", run_id, "--json", check=True).stdout
    assert "NaN" not in raw.replace('"NaN"', "") and "Infinity" not in raw.replace('"Infinity"', "").replace(
        '"-Infinity"', ""
    ), "only strict JSON: non-finite numbers are strings"
    data: Any = json.loads(raw, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert data["loss"]["points"][3]["value"] == "NaN"
    assert data["grad"]["points"][0]["value"] == "Infinity"
    assert data["pr"] == {
        "kind": "rows",
        "columns": {
            "threshold": [0.0, 0.1, 0.2, 0.3],
            "precision": [0.9, 0.8, 0.6, 0.5],
            "recall": [0.5, 0.7, "NaN", None],
        },
    }
    assert data["confusion"]["columns"]["dog"] == [2, 7]
    assert data["acc_per_epoch"] == {"kind": "list", "values": [0.5, 0.7, 0.75, "-Infinity"]}
    assert [(i["step"], i["file"]) for i in data["samples"]["images"]] == [
        (0, "images/samples_1.png"),
        (1, "images/samples_2.png"),
        (2, "images/samples_3.png"),
    ]
    assert cli.json("metrics", run_id, "pr") == {"pr": data["pr"]}


def test_an_unknown_name_lists_what_the_run_has(run_id: str, cli: CLI) -> None:
    for extra in ([], ["--json"]):
        proc = cli("metrics", run_id, "nosuch", *extra)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr == (
            f"launchbay: run {run_id} has no metric 'nosuch'; it has: loss (scalar), grad (scalar), pr (rows), "
            "confusion (table), acc_per_epoch (list), samples (image).\n"
        )


def test_the_handle_gives_each_kind_in_azure_ml_shape(run_id: str, project: Path) -> None:
    import launchbay

    metrics = launchbay.get_run(run_id).get_metrics()
    assert metrics["pr"]["precision"] == [0.9, 0.8, 0.6, 0.5]
    assert metrics["confusion"]["label"] == ["cat", "dog"]
    assert metrics["acc_per_epoch"][:3] == [0.5, 0.7, 0.75]
    assert metrics["samples"] == "images/samples_3.png"


def test_the_run_widget_shows_a_gallery_with_a_step_slider_tables_and_list_plots(run_id: str, project: Path) -> None:
    import launchbay
    from launchbay.ipython.widgets import RunWidget

    widget = RunWidget(launchbay.get_run(run_id))
    assert widget.wait_until_done(30)
    logged = widget._logged
    (gallery,) = logged._gallery.children
    assert gallery.name == "samples" and gallery._slider.max == 2 and gallery._slider.value == 2
    assert bytes(gallery._picture.value).startswith(b"\x89PNG")
    assert "step 2 of 2 (latest)" in gallery._caption.value
    latest = bytes(gallery._picture.value)
    gallery._slider.value = 0  # what dragging the slider does
    assert "step 0 of 2" in gallery._caption.value and bytes(gallery._picture.value) != latest
    tables = logged._tables.value
    assert 'data-name="pr"' in tables and "<th>recall</th>" in tables and "<td>nan</td>" in tables
    assert 'data-name="confusion"' in tables and "<td>dog</td>" in tables
    (list_plot,) = logged._lists.children
    assert bytes(list_plot.value).startswith(b"\x89PNG")
    widget.close()


def test_an_image_whose_file_arrives_late_is_shown_once_it_is_there(run_id: str, project: Path) -> None:
    """Remote targets sync files back after the journal: the gallery waits for the file."""
    import launchbay
    from launchbay.ipython.logged_view import LoggedView

    handle = launchbay.get_run(run_id)
    record = handle.record()
    latest = handle.file_path("images/samples_3.png", record=record)
    aside = latest.with_suffix(".aside")
    latest.rename(aside)
    view = LoggedView()
    view.update(handle, record)
    (gallery,) = view._gallery.children
    assert bytes(gallery._picture.value) == b"" and "step 2 of 2" in gallery._caption.value
    aside.rename(latest)
    view.update(handle, record)  # nothing new was logged: the missing picture is tried again
    assert bytes(gallery._picture.value).startswith(b"\x89PNG")


def test_launchbay_metrics_magic_in_a_notebook_draws_every_kind_under_its_summary(run_id: str, project: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext launchbay"),
        nbformat.v4.new_code_cell(f"%launchbay metrics {run_id}"),
        nbformat.v4.new_code_cell(f"%launchbay metrics {run_id} nosuch"),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(project)}}).execute()
    outputs = nb.cells[1].outputs
    shown = [o.data for o in outputs if o.output_type == "display_data"]
    assert sum("image/png" in d for d in shown) == 4  # loss, grad, the list's plot, the latest image
    assert sum("text/html" in d for d in shown) == 2  # the rows and the table
    text = "".join(o.get("text", "") for o in outputs)
    for line in (
        "loss (scalar): 4 points, last nan at step 3, min 0.333333, max 1\n",
        "pr (rows): 4 rows × 3 columns\n",
        "acc_per_epoch (list): 4 values; min -inf, max 0.75\n",
        "samples (image): 3 images, latest (step 2): images/samples_3.png\n",
    ):
        assert line in text
    missing = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert "has logged nothing named nosuch; it has: loss (scalar), grad (scalar), pr (rows)" in missing
