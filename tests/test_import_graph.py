"""The package's layering, read from the source: no import cycles, and the core never imports a front end.

The core (session, handle, store, targets, sweeps, ...) is what every front end shares; the front ends
(``ipython/``, ``cli/``, ``server/``) use it through public seams only. A handle shows as a widget
because the IPython extension registers a display for it, not because the handle imports the widget.
"""

from __future__ import annotations

import ast
from pathlib import Path

import launchbay

PACKAGE = Path(launchbay.__file__).parent
FRONT_ENDS = ("launchbay.ipython", "launchbay.cli", "launchbay.server")
#: what Python, IPython and Jupyter call into: ``python -m launchbay`` and the package's hooks
ENTRY_POINTS = ("launchbay", "launchbay.__main__")


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["launchbay", *path.relative_to(PACKAGE).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph(deferred: bool) -> dict[str, set[str]]:
    """Module -> the launchbay modules it imports; ``deferred`` adds imports inside functions.

    ``if TYPE_CHECKING:`` imports never run and are left out."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text())
        package = name if is_package else name.rpartition(".")[0]
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        nodes = ast.walk(tree) if deferred else iter(tree.body)
        for node in nodes:
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [base, *subs]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _is_front_end(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FRONT_ENDS)


def test_importing_any_module_runs_into_no_cycle() -> None:
    assert cycles(import_graph(deferred=False)) == []


def test_the_core_never_imports_a_front_end_not_even_inside_a_function() -> None:
    graph = import_graph(deferred=True)
    core = [m for m in graph if m not in ENTRY_POINTS and not _is_front_end(m)]
    reaching = {m: sorted(t for t in graph[m] if _is_front_end(t)) for m in core}
    assert {m: t for m, t in reaching.items() if t} == {}


def test_no_front_end_sits_in_an_import_cycle() -> None:
    """Deferred imports included. ``launchbay/__init__``'s own deferred imports are its entry points
    (lazy public names, the IPython and Jupyter hooks), which nothing imports back through."""
    graph = import_graph(deferred=True)
    for entry in ENTRY_POINTS:
        graph[entry] = set()
    tangled = [c for c in cycles(graph) if any(_is_front_end(m) for m in c)]
    assert tangled == []


def test_the_handles_do_not_know_about_widgets() -> None:
    """The two cycles of old: handle -> ipython.display -> widgets -> session -> handle, and
    sweeps.handle <-> ipython.sweep_widget."""
    graph = import_graph(deferred=True)
    for module in ("launchbay.handle", "launchbay.session", "launchbay.sweeps.handle"):
        assert not any(t.startswith("launchbay.ipython") for t in graph[module]), module


def test_front_ends_reach_a_handle_through_its_public_methods() -> None:
    """No ``handle._session`` outside the object itself: widgets, the CLI, the server and the Azure ML
    layer use ``handle.session``, ``read_log``, ``series_since`` and the like."""
    reaching = []
    for name, (path, _) in _modules().items():
        if not (_is_front_end(name) or name.startswith("launchbay.compat")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "_session":
                if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                    reaching.append(f"{name}:{node.lineno}")
    assert reaching == []


# -- the layers, counting imports made inside functions too ---------------------------------------
#: bottom to top; a module belongs to the last row whose prefix names it. A new module gets a row here.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "plain parts and what ships with a run",
        (
            "errors", "models", "config", "secrets", "runfolder", "plugins", "journal_problems", "plots_data",
            "runner_stage", "runner_procs", "runner_output", "runner_inputs", "cellrunner", "gitinfo", "project",
            "tracking", "livefiles", "sysmon", "tboard", "distlaunch", "rayranks", "scaffold",
        ),
    ),
    (
        "the store and what it keeps",
        (
            "store", "environments", "snapshot", "snapshot_budget", "snapshot_report", "registry", "diffing",
            "logged", "journal_reader", "distributed", "data",
        ),
    ),
    ("running: runner, ingest, targets", ("ingest", "housekeeping", "runner", "forkserver", "targets", "runcontrol")),
    (
        "sessions and handles",
        ("session", "handle", "reproduce", "api", "summary_text", "queueing", "scheduling", "supervisor", "preparing"),
    ),
    ("control on top of runs", ("sweeps", "pipelines", "automated")),
    ("the Azure ML v1 layer", ("compat",)),
    ("front ends", ("ipython", "cli", "server", "__main__")),
]  # fmt: skip


def _layer(module: str) -> int:
    if module == "launchbay":
        return len(LAYERS)  # the package's face: lazy public names and the IPython/Jupyter hooks
    rest = module.split(".", 1)[1]
    found = [i for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes if rest == p or rest.startswith(p + ".")]
    assert found, f"{module} has no layer: give it a row in LAYERS"
    return found[-1]


def _with_entry_points_cut(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``launchbay/__init__``'s own deferred imports are its entry points (the IPython and Jupyter hooks),
    which nothing imports back through; a module may still use the package's lazy public names."""
    return {**graph, **{entry: set() for entry in ENTRY_POINTS}}


def test_one_circle_is_left_session_and_handle_counting_imports_inside_functions() -> None:
    """A session hands out handles for the runs it starts, and a handle acts through its session (a handle
    unpickled in another process opens its session again from the store's URI). That pair is one idea in two
    files; every other module stays out of it: re-runs and sweeps launch through ``Session.launch``, a model
    reaches its run through its session."""
    assert cycles(_with_entry_points_cut(import_graph(deferred=True))) == [["launchbay.handle", "launchbay.session"]]


def test_no_circle_inside_the_azure_ml_layer() -> None:
    graph = import_graph(deferred=True)
    compat = {m: {t for t in targets if t.startswith("launchbay.compat")} for m, targets in graph.items()}
    assert [c for c in cycles(compat) if any(m.startswith("launchbay.compat") for m in c)] == []


def test_few_imports_run_from_a_lower_layer_up() -> None:
    """Counting imports inside functions. The two left: the Azure ML in-run ``Run`` and the AutoML trial
    import ``launchbay.Run`` through the package's face, because the same files are shipped into runs where
    ``launchbay`` is the small in-run stub."""
    graph = import_graph(deferred=True)
    upward = sorted((m, t) for m, targets in graph.items() for t in targets if _layer(t) > _layer(m))
    assert upward == [("launchbay.automated.trial", "launchbay"), ("launchbay.compat.azureml.inrun", "launchbay")]
    assert len(upward) <= 5


#: stdlib-only files that run on targets without launchbay: the runner stages from a blob folder laid out
#: as ``store.blobs.blob_name`` says (the contract suite's staging scenarios hold them to it)
SHIPPED_WITH_A_RUN = ("launchbay.runner_stage",)


def _core_sources() -> list[tuple[str, Path]]:
    return [(name, path) for name, (path, _) in _modules().items() if not name.startswith("launchbay.store")]


def test_no_sqlite3_import_outside_the_store() -> None:
    """The store maps its own driver's errors; nothing above it knows which database it is."""
    importing = []
    for name, path in _core_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n == "sqlite3" or n.startswith("sqlite3.") for n in names):
                importing.append(f"{name}:{node.lineno}")
    assert importing == []


def _splits_a_digest(node: ast.AST) -> bool:
    """Does this expression take ``d[:2]`` and ``d[2:]`` of one name (the ``ab/cdef…`` layout)?"""

    def sliced(upper: bool) -> set[str]:
        return {
            ast.unparse(n.value)
            for n in ast.walk(node)
            if isinstance(n, ast.Subscript)
            and isinstance(n.slice, ast.Slice)
            and ast.unparse(n.slice) == ("[:2]" if upper else "[2:]").strip("[]")
        }

    return bool(sliced(True) & sliced(False))


def test_no_blob_path_is_built_outside_the_store() -> None:
    """The blob folder's ``ab/cdef…`` layout is spelled once, ``store.blobs.blob_name``; targets ask the blob
    store for a file (``local_path``) or a folder (``local_folder``) instead. (Scripts a target sends to a
    host as text are the host's business: they are strings here.)"""
    building = [
        f"{name}:{node.lineno}"
        for name, path in _core_sources()
        if name not in SHIPPED_WITH_A_RUN
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.JoinedStr, ast.BinOp, ast.Call)) and _splits_a_digest(node)
    ]
    assert sorted(set(building)) == []


def test_store_root_is_the_folder_backends_business() -> None:
    """What is launchbay's local cache (environments, stage, snapshot indexes) is ``store.cache_dir``."""
    reading = []
    for name, path in _core_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "root":
                owner = ast.unparse(node.value)
                if owner == "store" or owner.endswith(".store"):
                    reading.append(f"{name}:{node.lineno}: {owner}.root")
    assert reading == []


def test_listing_runs_imports_no_numpy(tmp_path: Path) -> None:
    """`launchbay runs` is a whole process a person waits for: NumPy (the series codec's) costs it 0.1-0.4 s
    of imports and is only needed to read or seal a metric series, so opening the store never imports it."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys, runpy\n"
        "sys.argv = ['launchbay', 'runs', '--limit', '50']\n"
        "try:\n    runpy.run_module('launchbay', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('numpy' in sys.modules)\n"
    )
    env = {**os.environ, "LAUNCHBAY_STORE": str(tmp_path / "store")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr
