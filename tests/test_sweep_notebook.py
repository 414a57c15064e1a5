"""A notebook cell as a sweep (`%%submit --sweep`) in a real kernel, and the sweep widget's state."""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import wait_for, write

CELL = """import time
from launchbay import Run
run = Run.get_context()
for i in range(3):
    run.log("loss", (x - 0.3) ** 2 + 1 / (i + 1))
    time.sleep(0.05)
print(f"x={x!r} opt={opt!r} batch_size={batch_size!r}")
"""


@pytest.mark.slow
def test_a_cell_sweep_gets_the_sampled_values_as_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCHBAY_STORE", str(tmp_path / "store"))
    write(
        tmp_path,
        "sweep.yaml",
        "sampling:\n  type: sobol\n  seed: 2\n  parameter_space:\n"
        "    - {name: x, expression: uniform, values: [0, 1]}\n"
        "    - {name: opt, expression: choice, values: [adam, sgd]}\n"
        "    - {name: --batch-size, expression: qloguniform, values: [8, 256, 8]}\n"
        "primary_metric_name: loss\nmax_total_runs: 3\nmax_concurrent_runs: 3\n",
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext launchbay"),
        nbformat.v4.new_code_cell("%%submit --sweep sweep.yaml --wait\n" + CELL),
        nbformat.v4.new_code_cell("sweep = _\nprint(sweep.status, len(sweep.children()))"),
        nbformat.v4.new_code_cell("sweep.table()"),
        nbformat.v4.new_code_cell(
            "%%submit --sweep \"x=uniform(0, 1); opt=choice('a','b') batch_size=choice(4) metric=loss runs=2\""
            " --wait\n" + CELL
        ),
        nbformat.v4.new_code_cell("print(_.status, [c.spec['params'] for c in _.children()])"),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells]
    assert "Sweep " in text[1] and "3 runs on local" in text[1]
    assert text[2].strip() == "Completed 3"
    html = nb.cells[3].outputs[0]["data"]["text/html"]
    assert html.startswith('<table class="lb-table lb-sweep-table">') and html.count("<tr>") == 4
    losses = [float(v) for v in re.findall(r"<td>(\d\.\d+)</td><td></td></tr>", html)]
    assert len(losses) == 3 and losses == sorted(losses)  # best first
    assert text[5].startswith("Completed") and ("'a'" in text[5] or "'b'" in text[5])
    import launchbay

    children = [r for r in launchbay.runs(store=str(tmp_path / "store")) if r.parent_run_id]
    assert len(children) == 5 and all(r.status.value == "Completed" for r in children)
    for run in children:  # each child's cell saw its own sampled values as variables
        params = run.spec["params"]
        log = launchbay.get_run(run.run_id, store=str(tmp_path / "store")).get_log()
        assert f"x={params['x']!r} opt={params['opt']!r}" in log
        assert f"batch_size={params.get('batch-size', params.get('batch_size'))!r}" in log


@pytest.mark.slow
def test_the_sweep_widget_counts_k_of_n_and_shows_no_image_before_the_first_result(project: Path) -> None:
    from launchbay.ipython.sweep_widget import SweepWidget
    from launchbay.sweeps import choice, loguniform, sweep

    write(
        project,
        "train.py",
        "import time, sys\ntime.sleep(1.5)\nfrom launchbay import Run\n"
        "Run.get_context().log('loss', float(sys.argv[2]))\n",
    )
    handle = sweep(
        "train.py",
        {"lr": loguniform(1e-4, 1e-1), "bs": choice(16, 32)},
        primary_metric="loss",
        max_total_runs=3,
        max_concurrent_runs=3,
    )
    widget = SweepWidget(handle)
    try:
        wait_for(lambda: " of 3 runs" in widget._header.value, timeout=20)
        assert widget._best.layout.display == "none" and widget._parallel.layout.display == "none"
        assert handle.wait(timeout=60) == "Completed"
        wait_for(lambda: widget._parallel.layout.display is None and widget._parallel.value, timeout=20)
        assert "3 of 3 runs" in widget._header.value
        assert widget._log_params == ["lr"]
        for child in handle.children():  # parameters rounded for reading: 4 significant digits
            lr = float(child.spec["params"]["lr"])
            wait_for(lambda lr=lr: f"<td>{lr:.4g}</td>" in widget._table.value, timeout=10)
            assert repr(lr) not in widget._table.value or repr(lr) == f"{lr:.4g}"
    finally:
        widget.close()
    time.sleep(0.1)
