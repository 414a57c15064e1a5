"""Run notebook-style cells through a real IPython (no widgets: the text form) and return what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DRIVER = """
import json, os
ip = get_ipython()
ip.run_line_magic("load_ext", "launchbay")
for cell in json.load(open(os.environ["LB_TEST_CELLS"])):
    ip.run_cell(cell)
"""


def run_cells(cwd: Path, *cells: str, timeout: float = 120) -> str:
    """stdout+stderr of IPython running ``cells`` one by one, as a notebook would, from ``cwd``."""
    cells_file = cwd.parent / f"cells-{os.getpid()}.json"
    cells_file.write_text(json.dumps(list(cells)))
    env = {**os.environ, "LAUNCHBAY_WIDGETS": "0", "LB_TEST_CELLS": str(cells_file)}
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", "--simple-prompt", "--colors=NoColor", "-c", DRIVER],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return proc.stdout + proc.stderr
