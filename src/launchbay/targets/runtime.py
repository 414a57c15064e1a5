"""The runtime: the files shipped next to a run on targets where launchbay is not installed.

``runtime/launchbay_runner.py`` (the runner, with ``launchbay_runfolder.py``,
``launchbay_sysmon.py`` and ``launchbay_livefiles.py`` that it imports), ``runtime/launchbay_cell.py`` (the
cell bootstrap), a stub ``runtime/launchbay/`` package whose ``Run`` is the
real in-run API, so ``from launchbay import Run`` works in the run's code, and one
folder for each row of the ``launchbay.runtime`` entry-point group (plugins.py: the
Azure ML layer's ``azureml_alias``, say), which the runner puts on the run's path when
the run asks for it.
"""

from __future__ import annotations

from pathlib import Path

from .. import plugins
from .. import runfolder as rf

_SRC = Path(__file__).resolve().parent.parent
RUNTIME_DIR = rf.RUNTIME
#: the variable a run that asks for the runtime extras carries (the Azure ML layer sets it)
WANTS_EXTRAS = "LAUNCHBAY_AZUREML_COMPAT"

_STUB_INIT = '''"""launchbay's in-run API, shipped with the run (launchbay itself is not installed here)."""
from ._inrun import Run

__all__ = ["Run"]
'''


def runtime_files() -> dict[str, bytes]:
    """Relative path → content of everything a remote runner needs."""
    files = {
        rf.RUNNER_ENTRY: (_SRC / "runner.py").read_bytes(),
        "launchbay_runfolder.py": (_SRC / "runfolder.py").read_bytes(),
        "runner_procs.py": (_SRC / "runner_procs.py").read_bytes(),
        "runner_output.py": (_SRC / "runner_output.py").read_bytes(),
        "runner_stage.py": (_SRC / "runner_stage.py").read_bytes(),
        "runner_inputs.py": (_SRC / "runner_inputs.py").read_bytes(),
        "launchbay_cell.py": (_SRC / "cellrunner.py").read_bytes(),
        "launchbay_sysmon.py": (_SRC / "sysmon.py").read_bytes(),
        "launchbay_livefiles.py": (_SRC / "livefiles.py").read_bytes(),
        "launchbay_distlaunch.py": (_SRC / "distlaunch.py").read_bytes(),
        "launchbay_rayranks.py": (_SRC / "rayranks.py").read_bytes(),
        "launchbay/__init__.py": _STUB_INIT.encode(),
        "launchbay/_inrun.py": (_SRC / "tracking" / "inrun.py").read_bytes(),
        "launchbay/journalfmt.py": (_SRC / "tracking" / "journalfmt.py").read_bytes(),
        "launchbay/runfolder.py": (_SRC / "runfolder.py").read_bytes(),
    }
    files.update(extra_files())
    return files


def extra_files() -> dict[str, bytes]:
    """The ``launchbay.runtime`` rows' folders alone: what a runner running from the installed package
    (a local run in launchbay's own interpreter) still needs next to the run."""
    files: dict[str, bytes] = {}
    for folder, reference in plugins.rows(plugins.RUNTIME).items():
        extra: dict[str, str] = plugins.load(reference)()
        files.update({f"{folder}/{rel}": text.encode() for rel, text in extra.items()})
    return files


def write_runtime(run_dir: Path, extras_only: bool = False) -> Path:
    """Write the runtime (or only its extras) into ``run_dir/runtime`` and return that folder."""
    root = run_dir / RUNTIME_DIR
    for rel, data in (extra_files() if extras_only else runtime_files()).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
