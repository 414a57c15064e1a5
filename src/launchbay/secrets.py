"""Keep secret values out of the store.

Redacted (written as ``***``) wherever launchbay records a run:

* values of names that look like credentials: any name containing TOKEN, SECRET,
  PASS (password, passphrase, passwd), KEY, PRIVATE, CREDENTIAL or AUTH;
* the password inside a URL (``postgres://u:pw@h/db`` → ``postgres://u:***@h/db``), and a
  bare user part of an http(s) URL, where git tokens live (``https://TOKEN@host``);
* command-line options with such a name: ``--api-key=XYZ`` and ``--password XYZ``.

The real values still reach the run: environment variables and arguments travel in the
runner's environment (``LAUNCHBAY_SECRET_ARGS``), never in a file of the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASS|KEY|PRIVATE|CREDENTIAL|AUTH)", re.I)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*)(?P<password>:[^/@\s]*)?@")
_OPTION = re.compile(r"^--?(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?P<eq>=)?")
REDACTED = "***"
SECRET_ARGS_VAR = "LAUNCHBAY_SECRET_ARGS"


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask_urls(value: str) -> str:
    """``value`` with credentials inside any URL it holds replaced by ``***``."""

    def _mask(m: re.Match[str]) -> str:
        if m.group("password"):
            return f"{m.group('scheme')}{m.group('user')}:{REDACTED}@"
        if m.group("scheme").lower() in ("http://", "https://") and m.group("user"):
            return f"{m.group('scheme')}{REDACTED}@"  # https://TOKEN@github.com/...
        return m.group(0)

    return _URL_CREDENTIALS.sub(_mask, value) if "@" in value else value


def redact(env: Mapping[str, str]) -> dict[str, str]:
    """The same mapping with secret-looking values replaced, safe to write to disk."""
    return {k: (REDACTED if is_secret(k) else mask_urls(str(v))) for k, v in env.items()}


def redact_settings(settings: Mapping[str, Any]) -> dict[str, str]:
    """A target's settings as text, safe to record with a run."""
    return redact({k: str(v) for k, v in settings.items()})


def split(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) parts of an environment mapping; a value holding URL credentials is secret."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for k, v in env.items():
        if is_secret(k) or mask_urls(v) != v:
            secret[k] = v
        else:
            plain[k] = v
    return plain, secret


def secret_argument_positions(arguments: Sequence[str]) -> dict[int, str]:
    """Which arguments (by index) hold a secret, and the text to record in their place."""
    hidden: dict[int, str] = {}
    take_next = False
    for i, arg in enumerate(arguments):
        if take_next:
            take_next = False
            if not arg.startswith("-"):
                hidden[i] = REDACTED
                continue
        match = _OPTION.match(arg)
        if match and is_secret(match.group("name")):
            if match.group("eq"):
                hidden[i] = arg[: match.end()] + REDACTED
            else:
                take_next = True
            continue
        masked = mask_urls(arg)
        if masked != arg:
            hidden[i] = masked
    return hidden


def redact_arguments(arguments: Sequence[str]) -> list[str]:
    """The arguments as recorded in the store."""
    hidden = secret_argument_positions(arguments)
    return [hidden.get(i, a) for i, a in enumerate(arguments)]


def hide_in_command(command: list[str], n_arguments: int) -> dict[str, str]:
    """Mask the secret arguments at the end of ``command`` in place; returns {index: real value}.

    The map travels in the runner's environment (``SECRET_ARGS_VAR``); the runner puts
    the real values back before it starts the run (``restore_command``)."""
    start = len(command) - n_arguments
    real: dict[str, str] = {}
    for i, shown in secret_argument_positions(command[start:]).items():
        real[str(start + i)] = command[start + i]
        command[start + i] = shown
    return real


def restore_command(command: list[str], hidden_json: str | None) -> list[str]:
    """Runner side: the command with the real values of its hidden arguments."""
    if not hidden_json:
        return command
    out = list(command)
    for index, value in json.loads(hidden_json).items():
        if int(index) < len(out):
            out[int(index)] = value
    return out
