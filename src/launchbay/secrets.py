"""Keep secret values out of the store.

Redacted (written as ``***``) wherever launchbay records a run:

* values of names that look like credentials: any name containing TOKEN, SECRET,
  PASS (password, passphrase, passwd), KEY, PRIVATE, CREDENTIAL or AUTH;
* the password inside a URL (``postgres://u:pw@h/db`` → ``postgres://u:***@h/db``), and a
  bare user part of an http(s) URL, where git tokens live (``https://TOKEN@host``);
* command-line options with such a name: ``--api-key=XYZ`` and ``--password XYZ``.

The real values still reach the run: environment variables and arguments travel in the
runner's environment (``LAUNCHBAY_SECRET_ARGS``), never in a file of the store.

A run's snapshot holds its ``launchbay.toml`` with the same rules applied (``redact_config``):
``password = "hunter2"`` becomes ``password = "***"``, a ``${NAME}`` reference is kept as written
(it names a variable, it holds no secret), everything else is left as the user wrote it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
    """A target's settings as text, safe to record with a run (secrets in its nested tables too)."""
    return redact({k: str(_config_value(k, v)) for k, v in settings.items()})


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


# -- launchbay.toml ----------------------------------------------------------------------------------
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_TOML_KEY = r"(?P<key>[A-Za-z0-9_-]+|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*')"
_TOML_VALUE = r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[+-]?[0-9][0-9_]*(?:\.[0-9_]+)?(?:[eE][+-]?[0-9_]+)?)"
_TOML_PAIR = re.compile(_TOML_KEY + r"\s*=\s*" + _TOML_VALUE)
CONFIG_LEFT_OUT = (
    "# launchbay: this launchbay.toml held secrets in a form launchbay cannot replace where they stand,\n"
    "# so the snapshot keeps these lines instead. Write them as ${NAME} references to keep the file.\n"
)


def _config_value(key: str, value: Any) -> Any:
    """What the stored copy of launchbay.toml says for ``key = value``."""
    if isinstance(value, dict):
        return {k: _config_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_config_value(key, v) for v in value]
    if is_secret(key):
        if isinstance(value, str) and not _ENV_REFERENCE.sub("", value).strip():
            return value  # only ${NAME} references: no secret in the file
        return REDACTED if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value
    return mask_urls(value) if isinstance(value, str) else value


def redact_config(data: bytes) -> bytes | None:
    """A launchbay.toml with every secret value replaced by ``***`` (None: nothing to replace).

    Replaced in place, so comments and layout stay; the result is checked by parsing it again,
    and a file whose secrets cannot be replaced in place is kept as a comment saying so."""
    try:
        text = data.decode()
        parsed = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # not a launchbay.toml launchbay can read (nor could a run)
    wanted = _config_value("", parsed)
    if wanted == parsed:
        return None

    def _replace(m: re.Match[str]) -> str:
        key = m.group("key").strip("\"'")
        try:
            value = tomllib.loads(f"v = {m.group('value')}")["v"]
        except tomllib.TOMLDecodeError:  # not a value where it stands (inside a multi-line string)
            return m.group(0)
        shown = _config_value(key, value)
        if shown == value:
            return m.group(0)
        return m.group(0)[: m.start("value") - m.start()] + json.dumps(shown)

    redacted = "\n".join(_TOML_PAIR.sub(_replace, line) for line in text.split("\n"))
    try:
        ok = tomllib.loads(redacted) == wanted
    except tomllib.TOMLDecodeError:
        ok = False
    return (redacted if ok else CONFIG_LEFT_OUT).encode()
