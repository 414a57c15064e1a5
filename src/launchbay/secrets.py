"""Keep secret values out of the store: names that look like credentials are redacted."""

from __future__ import annotations

import re

_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSW|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH)", re.I)
REDACTED = "***"


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact(env: dict[str, str]) -> dict[str, str]:
    """The same mapping with secret-looking values replaced, safe to write to disk."""
    return {k: (REDACTED if is_secret(k) else v) for k, v in env.items()}


def split(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) parts of an environment mapping."""
    plain = {k: v for k, v in env.items() if not is_secret(k)}
    secret = {k: v for k, v in env.items() if is_secret(k)}
    return plain, secret
