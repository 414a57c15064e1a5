"""Conda environment files, read whole: never silently emptied.

launchbay builds environments with pip (or uv). A conda YAML's ``pip:`` section is used as
written; its conda dependencies are installed with pip too, under the name PyPI uses
(``CONDA_TO_PIP``: ``pytorch`` → ``torch``, ...; every other name as it is, since most
conda-forge Python packages share their PyPI name). Dependencies that are not Python
packages on PyPI (``NOT_ON_PYPI``: CUDA toolkits, compilers, MPI, R, system libraries) are
refused with one message that names them and says what to do. ``pip``, ``python`` and
``setuptools``/``wheel`` need no install; the ``python`` pin picks the interpreter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ConfigError

#: conda package name → PyPI name, where they differ
CONDA_TO_PIP = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "pytorch-lightning": "pytorch-lightning",
    "tensorflow-gpu": "tensorflow",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-opencv": "opencv-python",
    "opencv": "opencv-python",
    "matplotlib-base": "matplotlib",
    "pillow-simd": "pillow",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "ruamel_yaml": "ruamel.yaml",
    "typing_extensions": "typing-extensions",
    "scikit-learn-intelex": "scikit-learn-intelex",
    "lightgbm": "lightgbm",
    "protobuf": "protobuf",
    "graphviz": "graphviz",
}

#: installed by the builder itself (or chosen by the ``python`` pin): nothing to do
NEEDS_NO_INSTALL = {"pip", "python", "setuptools", "wheel", "conda", "nomkl"}

#: conda packages that are not Python packages on PyPI → why, and the way out
NOT_ON_PYPI = {
    "cudatoolkit": "PyPI's torch/tensorflow wheels bring their own CUDA libraries; remove it",
    "cuda-toolkit": "PyPI's torch/tensorflow wheels bring their own CUDA libraries; remove it",
    "cudnn": "PyPI's torch/tensorflow wheels bring their own cuDNN; remove it",
    "nccl": "PyPI's torch wheels bring their own NCCL; remove it",
    "magma-cuda": "not needed with PyPI's torch wheels; remove it",
    "mkl": "a system library; remove it (NumPy's wheels bring OpenBLAS) or use a base image that has it",
    "mkl-include": "a system library; remove it or use a base image that has it",
    "blas": "a system library; remove it (NumPy's wheels bring their own)",
    "openblas": "a system library; remove it (NumPy's wheels bring their own)",
    "libblas": "a system library; remove it",
    "gcc": "a compiler; install it in the target's base image instead",
    "gxx": "a compiler; install it in the target's base image instead",
    "gxx_linux-64": "a compiler; install it in the target's base image instead",
    "cxx-compiler": "a compiler; install it in the target's base image instead",
    "openmpi": "install MPI on the target (e.g. Debian's openmpi-bin in the base image)",
    "mpich": "install MPI on the target (e.g. Debian's mpich in the base image)",
    "r-base": "R is not a Python package; use a base image that has R",
    "libgcc-ng": "a system library; remove it",
    "libstdcxx-ng": "a system library; remove it",
    "ffmpeg": "a system program; install it in the target's base image instead",
    "git": "a system program; install it in the target's base image instead",
}

_NAME = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(.*)$")


@dataclass
class CondaFile:
    """What a conda environment YAML asks for, as pip requirement lines."""

    pip: list[str] = field(default_factory=list)
    python: str | None = None
    notes: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def conda_to_pip(dependency: str) -> tuple[str | None, str | None]:
    """One conda dependency → (pip requirement or None, why it is refused or None)."""
    text = dependency.strip().strip("'\"")
    if "::" in text:
        text = text.split("::", 1)[1]  # channel::name
    match = _NAME.match(text)
    if not match:
        return None, "not a package specification"
    name, rest = match.group(1), match.group(2).replace(" ", "")
    key = name.lower()
    if key in NEEDS_NO_INSTALL:
        return None, None
    if key.startswith(("r-", "cuda-", "libcu", "lib")) and key not in CONDA_TO_PIP:
        return None, NOT_ON_PYPI.get(key, "not a Python package on PyPI; install it in the target's base image")
    if key in NOT_ON_PYPI:
        return None, NOT_ON_PYPI[key]
    return CONDA_TO_PIP.get(key, name) + _pip_version(rest), None


def _pip_version(spec: str) -> str:
    """Conda's version syntax → pip's: ``=1.2`` means 1.2.*, ``=1.2=build`` drops the build."""
    if not spec:
        return ""
    if spec[0].isdigit():
        spec = "=" + spec
    if spec.startswith("=") and not spec.startswith("=="):
        version = spec[1:].split("=", 1)[0]
        return f"=={version}" if version.endswith("*") or version.count(".") >= 2 else f"=={version}.*"
    if spec.startswith("=="):
        return "==" + spec[2:].split("=", 1)[0]
    return spec


def read_conda_file(text: str) -> CondaFile:
    """Parse the usual shape of ``environment.yml`` (a small line parser: no YAML library needed)::

    dependencies:
      - python=3.11
      - pytorch            # → torch
      - pip:
        - six==1.16.0
    """
    out = CondaFile()
    in_deps = False
    pip_indent: int | None = None
    for raw in text.splitlines():
        line = re.split(r"\s+#|^#", raw, maxsplit=1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if indent == 0:
            in_deps = item.startswith("dependencies:")
            pip_indent = None
            inline = item.split(":", 1)[1].strip() if in_deps else ""
            if inline.startswith("["):
                for dep in (x for x in inline.strip("[]").split(",") if x.strip()):
                    add_conda_dependency(out, dep)
            continue
        if not in_deps:
            continue
        if pip_indent is not None:
            if indent > pip_indent and item.startswith("-"):
                out.pip.append(item[1:].strip().strip("'\""))
                continue
            pip_indent = None
        if re.match(r"-\s*pip\s*:", item):
            pip_indent = indent
            inline = item.split(":", 1)[1].strip()
            if inline.startswith("["):
                out.pip.extend(x.strip().strip("'\"") for x in inline.strip("[]").split(",") if x.strip())
        elif item.startswith("-"):
            add_conda_dependency(out, item[1:])
    return out


def add_conda_dependency(out: CondaFile, dependency: str) -> None:
    """One conda dependency into ``out``: the python pin, a pip requirement (with a note), or refused."""
    dep = dependency.strip().strip("'\"")
    match = _NAME.match(dep.split("::", 1)[-1])
    if match and match.group(1).lower() == "python":
        pinned = re.match(r"^=+\s*([0-9][0-9.]*)", match.group(2).strip())
        if pinned:
            out.python = pinned.group(1).rstrip(".")
        return
    requirement, refused = conda_to_pip(dep)
    if refused:
        out.refused.append((dep, refused))
    elif requirement:
        out.pip.append(requirement)
        out.notes.append(f"conda {dep} -> pip {requirement}")


def check_refused(conda: CondaFile, name: str, path: str) -> None:
    """One error naming every conda dependency that pip cannot install, and the way out."""
    if conda.refused:
        listed = "; ".join(f"{dep} ({why})" for dep, why in conda.refused)
        raise ConfigError(
            f"Environment {name!r}: {path} asks for conda packages that are not Python packages on PyPI: {listed}. "
            "launchbay installs environments with pip: remove them from the file, or set "
            "user_managed = true with an interpreter (or base image) that already has them."
        )
