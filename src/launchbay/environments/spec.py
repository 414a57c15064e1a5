"""What software a run needs: parse an environment and give it a content hash.

An environment comes from ``[environments.NAME]`` in launchbay.toml or is passed
inline (a requirements file, a conda-style YAML, or a JSON object). The hash
covers only what determines the built result (base image, packages,
interpreter), never paths or machine details, so the same spec gives the same
hash on every machine, and environment variables can change without a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import ProjectConfig
from ..errors import ConfigError, UnknownEnvironmentError
from ..secrets import redact
from .conda import check_refused, read_conda_file

HASH_VERSION = 1
INSTALLERS = ("auto", "uv", "pip")
KNOWN_KEYS = {
    "pip": "a list of requirement lines (or the path of a requirements file)",
    "requirements": "the path of a requirements file (or a list of them)",
    "conda": "the path of a conda-style environment YAML (conda packages are installed with pip, see README)",
    "python": 'the interpreter: a path, a command or a version such as "3.11"',
    "image": "the Docker base image",
    "dockerfile": "the path of a Dockerfile whose image the run uses (built once per content hash; Docker targets)",
    "env": "environment variables for the run (a table)",
    "user_managed": "true: use the interpreter as it is, install nothing",
    "installer": '"auto" (uv when present, else pip), "uv" or "pip"',
    "distributed": 'a distributed launch for runs in it, e.g. "pytorch:2" (see launchbay.PyTorch)',
}
_ALIASES = {"base_image": "image", "env_vars": "env", "variables": "env", "conda_file": "conda"}
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$")


def normalize_requirement(line: str) -> str | None:
    """One requirement line in a canonical form (None for blanks and comments)."""
    text = line.strip()
    if text.startswith("#") or not text:
        return None
    text = re.split(r"\s+#", text, maxsplit=1)[0].strip()
    text = " ".join(text.split())
    if text.startswith("-") or "://" in text or "/" in text:
        return text  # an option, a URL or a path: keep as written
    match = _NAME.match(text)
    if not match:
        return text
    name, rest = match.groups()
    name = re.sub(r"[-_.]+", "-", name).lower()
    version, _, marker = rest.partition(";")
    return name + version.replace(" ", "") + (f"; {marker.strip()}" if marker.strip() else "")


def read_requirements(text: str) -> list[str]:
    return [n for n in (normalize_requirement(line) for line in text.splitlines()) if n]


@dataclass(frozen=True)
class EnvironmentSpec:
    """A parsed environment. ``pip`` holds normalised, sorted requirement lines."""

    name: str | None = None
    pip: tuple[str, ...] = ()
    python: str | None = None
    image: str | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    user_managed: bool = False
    installer: str = "auto"
    sources: tuple[str, ...] = ()
    #: what the build log shows about how the spec was read (e.g. conda → pip names); not hashed
    notes: tuple[str, ...] = ()
    #: the text of a Dockerfile that makes the base image (instead of ``image``); hashed
    dockerfile: str | None = None

    @property
    def hash(self) -> str:
        """SHA-256 of what determines the built result, in a canonical JSON form."""
        identity: dict[str, Any] = {
            "v": HASH_VERSION,
            "image": self.image,
            "pip": sorted(self.pip),
            "python": self.python,
        }
        if self.dockerfile is not None:  # only then: the hashes of every environment without one stay as they were
            identity["dockerfile"] = self.dockerfile
        return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    @property
    def short(self) -> str:
        return self.hash[:16]

    @property
    def label(self) -> str:
        return f"{self.name or 'inline'} ({self.short})"

    @property
    def needs_build(self) -> bool:
        return not self.user_managed

    @property
    def needs_image_build(self) -> bool:
        """Does a Docker target build an image for it (packages to install, or a Dockerfile)?"""
        return self.needs_build or self.dockerfile is not None

    def with_image(self, image: str | None) -> EnvironmentSpec:
        return self if image == self.image else replace(self, image=image)

    def requirements_text(self) -> str:
        return "".join(f"{line}\n" for line in sorted(self.pip))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.hash,
            "pip": sorted(self.pip),
            "python": self.python,
            "image": self.image,
            "env": redact(self.env_vars),  # written to the store (spec.json): no secret values
            "user_managed": self.user_managed,
            "installer": self.installer,
            "sources": list(self.sources),
            "notes": list(self.notes),
            "dockerfile": self.dockerfile,
        }


def _read_file(path: Path, what: str, name: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigError(f"Environment {name!r}: cannot read its {what} {path}: {reason}. Fix the path.") from exc


def parse_environment(name: str, section: dict[str, Any], root: Path) -> EnvironmentSpec:
    """An ``[environments.NAME]`` table (or an inline dict); file paths are relative to ``root``."""
    data = {_ALIASES.get(k, k): v for k, v in section.items()}
    unknown = sorted(set(data) - set(KNOWN_KEYS))
    if unknown:
        known = "; ".join(f"{k} ({v})" for k, v in KNOWN_KEYS.items())
        raise ConfigError(f"[environments.{name}] has unknown key(s) {', '.join(unknown)}; known keys: {known}.")
    lines: list[str] = []
    sources: list[str] = []
    python = data.get("python")
    pip = data.get("pip")
    files = data.get("requirements") or []
    if isinstance(pip, str):
        files, pip = [pip, *([files] if isinstance(files, str) else files)], None
    for item in [files] if isinstance(files, str) else files:
        path = root / str(item)
        lines += read_requirements(_read_file(path, "requirements file", name))
        sources.append(str(item))
    if pip is not None:
        if not isinstance(pip, list) or not all(isinstance(x, str) for x in pip):
            raise ConfigError(f'[environments.{name}] pip must be a list of strings, e.g. pip = ["six==1.16.0"].')
        lines += [n for n in (normalize_requirement(x) for x in pip) if n]
        sources.append("pip")
    notes: list[str] = []
    if data.get("conda"):
        conda = read_conda_file(_read_file(root / str(data["conda"]), "conda file", name))
        check_refused(conda, name, str(data["conda"]))
        lines += [n for n in (normalize_requirement(x) for x in conda.pip) if n]
        notes += conda.notes
        python = python or conda.python
        sources.append(str(data["conda"]))
    env = data.get("env") or {}
    if not isinstance(env, dict):
        raise ConfigError(f'[environments.{name}] env must be a table, e.g. env = {{ OMP_NUM_THREADS = "1" }}.')
    installer = str(data.get("installer", "auto"))
    if installer not in INSTALLERS:
        raise ConfigError(f"[environments.{name}] installer = {installer!r}; use one of {', '.join(INSTALLERS)}.")
    dockerfile = _dockerfile(data.get("dockerfile"), root, name)
    if dockerfile is not None and data.get("image"):
        raise ConfigError(
            f"[environments.{name}] has both image and dockerfile; keep one: the Dockerfile's FROM line names its base."
        )
    if dockerfile is not None:
        sources.append("dockerfile")
    user_managed = data.get("user_managed")
    if user_managed is None:
        user_managed = not lines  # nothing to install: use the interpreter as it is
    return EnvironmentSpec(
        name=name,
        pip=tuple(sorted(set(lines))),
        python=str(python) if python else None,
        image=str(data["image"]) if data.get("image") else None,
        env_vars={str(k): str(v) for k, v in env.items()},
        user_managed=bool(user_managed),
        installer=installer,
        sources=tuple(sources),
        notes=tuple(notes),
        dockerfile=dockerfile,
    )


def _dockerfile(value: Any, root: Path, name: str) -> str | None:
    """A Dockerfile's text: ``value`` is its path (relative to ``root``), or the text itself when it has
    a line break (what the Azure ML v1 ``env.docker.base_dockerfile`` takes too)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f'[environments.{name}] dockerfile must be the path of a Dockerfile, e.g. "docker/Dockerfile".'
        )
    if "\n" in value:  # a path has no line break
        return value.strip() + "\n"
    return _read_file(root / value, "Dockerfile", name).strip() + "\n"


def resolve_environment(
    ref: str | dict[str, Any] | EnvironmentSpec | None, config: ProjectConfig, source_dir: Path | None = None
) -> EnvironmentSpec | None:
    """A name from launchbay.toml, a requirements/conda file, a JSON object, or a dict."""
    if ref is None or ref == "":
        return None
    if isinstance(ref, EnvironmentSpec):
        return ref
    root = config.root or source_dir or Path.cwd()
    if isinstance(ref, dict):
        return parse_environment("inline", ref, source_dir or root)
    if ref in config.environments:
        return parse_environment(ref, config.environments[ref], root)
    text = ref.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            example = '{"pip": ["six"]}'
            raise ConfigError(f"The inline environment is not valid JSON ({exc}); pass e.g. '{example}'.") from exc
        return parse_environment("inline", data, source_dir or root)
    base = source_dir or root
    path = base / text
    if path.is_file():
        key = "conda" if path.suffix in (".yml", ".yaml") else "requirements"
        return parse_environment(path.name, {key: text}, base)
    known = ", ".join(sorted(config.environments)) or "none"
    where = f" in {config.path}" if config.path else " (no launchbay.toml found)"
    raise UnknownEnvironmentError(
        f"Unknown environment {ref!r}{where}; known environments: {known}. Add an [environments.{ref}] section, "
        "or pass a requirements file, a conda YAML or a JSON object instead."
    )


@dataclass
class Materialised:
    """An environment made usable on a target: built now, or found in the cache."""

    spec: EnvironmentSpec
    built: bool
    seconds: float
    log: Path | None

    def state(self) -> dict[str, Any]:
        """What is recorded with a run (target_state["environment"])."""
        return {
            "name": self.spec.name,
            "hash": self.spec.hash,
            "built": self.built,
            "build_s": round(self.seconds, 3),
            "user_managed": self.spec.user_managed,
        }
