"""A pipeline's definition: steps, their data edges and parameters, checked as a whole before any step runs.

``Step("train", "train.py", inputs={"data": "prep.clean"}, args=["--lr", Param("lr", 0.1)])``: an input
``STEP.OUTPUT`` is an edge of the graph (the upstream step's output dataset version); any other source is a
data input as ``--input`` takes it. Every mistake is one ``ConfigError`` line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_STEP = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,40}$")
_PARAM_REF = re.compile(r"\$\{params\.([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Param:
    """A pipeline parameter used in a step's arguments; ``default`` is its value unless the run gives one."""

    name: str
    default: Any = None


@dataclass(frozen=True)
class Step:
    """One run of the pipeline: a script with its arguments, data inputs and named outputs (inside outputs/)."""

    name: str
    script: str
    args: Sequence[str | Param] = ()
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    environment: str | None = None
    allow_reuse: bool = True
    env: Mapping[str, str] = field(default_factory=dict)  # environment variables (no secrets: they'd be kept)
    code: str | None = None  # a notebook cell's body: ``script`` is then the file it becomes in the snapshot
    working_dir: str = "."  # the folder (inside the project) the step starts in, and ``script`` is relative to

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "script": self.script,
            "args": [{"param": a.name} if isinstance(a, Param) else str(a) for a in self.args],
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "target": self.target,
            "environment": self.environment,
            "allow_reuse": self.allow_reuse,
            **({"env": {str(k): str(v) for k, v in self.env.items()}} if self.env else {}),
            **({"code": self.code} if self.code is not None else {}),
            **({"working_dir": self.working_dir} if self.working_dir not in ("", ".") else {}),
        }


@dataclass
class Definition:
    """What the pipeline's record keeps (``pipeline.json``): steps in the order given, params' defaults."""

    name: str
    steps: list[dict[str, Any]]
    params: dict[str, Any]

    def step(self, name: str) -> dict[str, Any]:
        for s in self.steps:
            if s["name"] == name:
                return s
        raise ConfigError(f"The pipeline has no step {name!r}; its steps: {', '.join(self.names())}.")

    def names(self) -> list[str]:
        return [s["name"] for s in self.steps]

    def upstream(self, name: str) -> dict[str, tuple[str, str]]:
        """The step's inputs that are edges: input name -> (step, output)."""
        out = {}
        for input_name, source in self.step(name)["inputs"].items():
            edge = edge_of(source, self.names())
            if edge:
                out[input_name] = edge
        return out

    def downstream(self, name: str) -> set[str]:
        """Every step that depends on ``name``, directly or not."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            here = frontier.pop()
            for s in self.steps:
                if s["name"] not in found and any(u == here for u, _ in self.upstream(s["name"]).values()):
                    found.add(s["name"])
                    frontier.append(s["name"])
        return found

    def arguments(self, name: str, values: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """The step's command-line arguments with parameter values, and the parameters it used."""
        used: dict[str, Any] = {}
        out = []
        for arg in self.step(name)["args"]:
            if isinstance(arg, dict):
                used[arg["param"]] = values[arg["param"]]
                out.append(str(values[arg["param"]]))
                continue

            def sub(m: re.Match[str]) -> str:
                used[m.group(1)] = values[m.group(1)]
                return str(values[m.group(1)])

            out.append(_PARAM_REF.sub(sub, str(arg)))
        return out, used

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "steps": self.steps, "params": self.params}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Definition:
        return cls(str(data["name"]), list(data["steps"]), dict(data.get("params") or {}))


def edge_of(source: str, steps: Sequence[str]) -> tuple[str, str] | None:
    """``prep.clean`` -> ("prep", "clean") when it names a step's output shape; paths, URLs and datasets are not."""
    if "/" in source or ":" in source or source.count(".") != 1:
        return None
    step, output = source.split(".")
    if step in steps or (_STEP.match(step) and _STEP.match(output) and not Path(source).exists()):
        return step, output
    return None


def define(steps: Sequence[Step], name: str) -> Definition:
    """The definition of ``steps``, checked: names, edges, cycle, parameters."""
    seen: set[str] = set()
    params: dict[str, Any] = {}
    for s in steps:
        if not isinstance(s, Step):
            raise ConfigError(f"A pipeline takes Step(...) objects, not {type(s).__name__}.")
        if not _STEP.match(s.name):
            raise ConfigError(f"Step name {s.name!r}: use letters, digits, '_' or '-', starting with a letter.")
        if s.name in seen:
            raise ConfigError(f"Two steps are named {s.name!r}; give each step its own name.")
        seen.add(s.name)
        _check_env(s.name, s.env)
        for a in s.args:
            if isinstance(a, Param):
                if a.name in params and params[a.name] != a.default and a.default is not None:
                    raise ConfigError(f"Parameter {a.name!r} has two defaults ({params[a.name]!r}, {a.default!r}).")
                if params.get(a.name) is None:
                    params[a.name] = a.default
    definition = Definition(name, [s.to_json() for s in steps], params)
    check(definition)
    return definition


def _check_env(step: str, env: Mapping[str, str]) -> None:
    """A step's variables are kept in the pipeline's record, so a secret is refused (it would be written down)."""
    from ..secrets import is_secret, mask_urls

    for name, value in env.items():
        if is_secret(name) or mask_urls(str(value)) != str(value):
            raise ConfigError(
                f"Step {step!r} env {name!r} looks like a secret, and a pipeline's definition is kept in the store;"
                " set it in the environment of the target (launchbay.toml can reference it as ${NAME})."
            )


def check(definition: Definition) -> None:
    """Edges name existing steps and outputs, parameters exist, and the graph has no cycle."""
    names = definition.names()
    if not names:
        raise ConfigError("A pipeline needs at least one step.")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"Two steps are named {twice[0]!r}; give each step its own name.")
    for s in definition.steps:
        for input_name, source in s["inputs"].items():
            edge = edge_of(source, names)
            if edge is None:
                continue
            step, output = edge
            if step not in names:
                raise ConfigError(
                    f"Step {s['name']!r} input {input_name!r} names {source!r}, but there is no step {step!r};"
                    f" the steps: {', '.join(names)}."
                )
            outputs = definition.step(step)["outputs"]
            if output not in outputs:
                raise ConfigError(
                    f"Step {s['name']!r} input {input_name!r} names {source!r}, but step {step!r} has no output"
                    f" {output!r}; its outputs: {', '.join(outputs) or 'none'}."
                )
        for arg in s["args"]:
            for ref in [arg["param"]] if isinstance(arg, dict) else _PARAM_REF.findall(str(arg)):
                if ref not in definition.params:
                    raise ConfigError(
                        f"Step {s['name']!r} uses parameter {ref!r}, which the pipeline does not define;"
                        f" its params: {', '.join(definition.params) or 'none'}."
                    )
    cycle = find_cycle(definition)
    if cycle:
        raise ConfigError(
            f"The pipeline's steps form a cycle: {' -> '.join(cycle)}; a step cannot need its own output."
        )


def find_cycle(definition: Definition) -> list[str] | None:
    """One cycle of the graph as step names (first repeated at the end), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for up, _ in definition.upstream(name).values():
            if state.get(up) == 1:
                return [*path[path.index(up) :], up]
            if up not in state:
                found = visit(up)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in definition.names():
        if name not in state:
            found = visit(name)
            if found:
                return list(reversed(found))
    return None


def with_params(definition: Definition, given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's parameter values: the defaults, overridden by ``given`` (an unknown name is refused)."""
    unknown = sorted(set(given) - set(definition.params))
    if unknown:
        raise ConfigError(
            f"Parameter {unknown[0]!r} does not exist in pipeline {definition.name!r};"
            f" its params: {', '.join(definition.params) or 'none'}."
        )
    values = {**definition.params, **given}
    missing = sorted(k for k, v in values.items() if v is None)
    if missing:
        raise ConfigError(f"Parameter {missing[0]!r} has no value; give it with --param {missing[0]}=VALUE.")
    return values


def load_yaml(path: str | Path) -> Definition:
    """The file form (``name``, ``params``, ``steps: {NAME: {script, args, inputs, outputs, target, allow_reuse}}``)."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"Cannot read pipeline file {file}: {exc.strerror or exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{file}{where}: not valid YAML ({problem}).") from None
    twice = _duplicate_step(text)
    if twice:
        raise ConfigError(f"{file} line {twice[1]}: Two steps are named {twice[0]!r}; give each step its own name.")
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
        raise ConfigError(f"{file}: a pipeline file needs `steps:` mapping each step name to its settings.")
    known = {"script", "args", "inputs", "outputs", "target", "environment", "allow_reuse", "env"}
    params = dict(data.get("params") or {})
    steps = []
    for name, body in data["steps"].items():
        body = body or {}
        if not isinstance(body, dict) or "script" not in body:
            raise ConfigError(f"{file}: step {name!r} needs a script, e.g. {{script: {name}.py}}.")
        extra = sorted(set(body) - known)
        if extra:
            raise ConfigError(
                f"{file}: step {name!r} has unknown setting {extra[0]!r}; known: {', '.join(sorted(known))}."
            )
        steps.append(
            Step(
                str(name),
                str(body["script"]),
                args=[str(a) for a in body.get("args") or []],
                inputs={str(k): str(v) for k, v in (body.get("inputs") or {}).items()},
                outputs={str(k): str(v) for k, v in (body.get("outputs") or {}).items()},
                target=body.get("target"),
                environment=body.get("environment"),
                allow_reuse=bool(body.get("allow_reuse", True)),
                env={str(k): str(v) for k, v in (body.get("env") or {}).items()},
            )
        )
        _check_env(str(name), steps[-1].env)
    definition = Definition(str(data.get("name") or file.stem), [s.to_json() for s in steps], params)
    for s in definition.steps:
        if not _STEP.match(s["name"]):
            raise ConfigError(f"{file}: step name {s['name']!r}: use letters, digits, '_' or '-'.")
    check(definition)
    return definition


def _duplicate_step(text: str) -> tuple[str, int] | None:
    """A step name given twice under ``steps:`` (YAML would keep the last silently), with its line."""
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if key.value == "steps" and isinstance(value, yaml.MappingNode):
            seen: set[str] = set()
            for step_key, _ in value.value:
                if step_key.value in seen:
                    return str(step_key.value), step_key.start_mark.line + 1
                seen.add(step_key.value)
    return None


def parse_param(text: str) -> tuple[str, Any]:
    """``--param lr=0.01``: the value read as YAML reads it (0.01 a float, 5 an int, text a string)."""
    import yaml

    name, eq, value = text.partition("=")
    if not eq or not name:
        raise ConfigError(f"--param {text!r}: write NAME=VALUE, e.g. --param lr=0.01.")
    try:
        return name, yaml.safe_load(value)
    except yaml.YAMLError:
        return name, value
