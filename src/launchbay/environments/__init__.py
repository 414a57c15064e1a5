"""Environments: what software a run needs, built once per content hash and reused.

``spec`` parses and hashes, ``venv`` builds local virtual environments,
``image`` builds Docker images, ``cli`` adds ``launchbay env``.
"""

from __future__ import annotations

from .spec import EnvironmentSpec, parse_environment, resolve_environment

__all__ = ["EnvironmentSpec", "parse_environment", "resolve_environment"]
