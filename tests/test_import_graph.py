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
