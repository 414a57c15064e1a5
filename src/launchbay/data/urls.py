"""http(s) inputs: downloaded once into the store's cache, verified, and re-used while the server says
the same (its ETag, else its size and Last-Modified).

A download goes into a temporary file next to its place and is renamed there only once its size
matches ``Content-Length`` and, when the ETag is a plain MD5 (as S3 and many servers give), its MD5
matches the ETag: a cut connection never leaves a half file that a later run takes as complete. The
SHA-256 is computed while downloading; the cached copy is re-used only while its size and mtime are
those recorded, so a copy changed on disk is downloaded again.

A URL's credentials (``https://user:pw@host``, ``?token=...`` or a signed URL's signature) never leave
the process: the cache folder is named by the masked URL's hash, and ``redact_url`` is what is recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..config import LAUNCHBAY_DATA_TIMEOUT
from ..errors import DataInputError
from ..secrets import REDACTED, is_secret, mask_urls
from .manifest import DataFile, Manifest
from .progress import Progress

_SIGNED = re.compile(r"(sig|signature|credential|security-token)", re.I)
_MD5 = re.compile(r'^"?([0-9a-f]{32})"?$')
_BLOCK = 1 << 20


def redact_url(url: str) -> str:
    """``url`` with credentials masked: user and password, and query values that are secrets."""
    masked = mask_urls(url)
    parts = urlsplit(masked)
    if not parts.query:
        return masked
    query = [(k, REDACTED if is_secret(k) or _SIGNED.search(k) else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


@dataclass(frozen=True)
class Fetched:
    path: Path  # the cached file
    manifest: Manifest
    downloaded: int  # bytes downloaded now (0: the cached copy was used)


def _file_name(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "download"


def _request(url: str, method: str, headers: dict[str, str] | None = None) -> urllib.request.Request:
    parts = urlsplit(url)
    headers = dict(headers or {})
    if parts.username is not None:  # urllib does not send URL credentials by itself
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        url = urlunsplit(parts._replace(netloc=netloc))
    return urllib.request.Request(url, method=method, headers={"User-Agent": "launchbay", **headers})


def _failure(name: str, shown: str, exc: BaseException, timeout: float) -> DataInputError:
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()  # its body is not read: let go of the connection
        return DataInputError(f"Input {name!r}: {shown} answered {exc.code} {exc.reason}; check the URL.")
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return DataInputError(
            f"Input {name!r}: {shown} did not answer within {timeout:g} s; "
            f"check the URL, or allow longer with {LAUNCHBAY_DATA_TIMEOUT.name}=SECONDS."
        )
    return DataInputError(f"Input {name!r}: could not download {shown}: {reason}.")


def fetch_url(
    cache_dir: Path, url: str, name: str, *, say: Callable[[str], None] | None = None, timeout: float | None = None
) -> Fetched:
    """The URL's content as a file in the cache: downloaded the first time, re-used while unchanged."""
    timeout = LAUNCHBAY_DATA_TIMEOUT.get() if timeout is None else timeout
    shown = redact_url(url)
    folder = cache_dir / "cache" / "data-urls" / hashlib.sha256(shown.encode()).hexdigest()[:24]
    meta_path = folder / "meta.json"
    meta = _read_meta(meta_path)
    path = folder / _file_name(url)
    if meta and _intact(path, meta):
        fresh = _still_current(url, shown, name, meta, timeout, say)
        if fresh:
            return Fetched(path, _manifest(path, meta), 0)
    folder.mkdir(parents=True, exist_ok=True)
    meta = _download(url, shown, name, path, timeout, say)
    meta_path.write_text(json.dumps(meta))
    return Fetched(path, _manifest(path, meta), int(meta["size"]))


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _intact(path: Path, meta: dict[str, Any]) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == meta.get("size") and st.st_mtime_ns == meta.get("mtime_ns")


def _manifest(path: Path, meta: dict[str, Any]) -> Manifest:
    return Manifest("file", (DataFile(path.name, int(meta["size"]), str(meta["sha256"])),))


def _still_current(
    url: str, shown: str, name: str, meta: dict[str, Any], timeout: float, say: Callable[[str], None] | None
) -> bool:
    """Does the server still have what was downloaded? (A server that cannot be reached: the copy is used.)"""
    try:
        with urllib.request.urlopen(_request(url, "HEAD"), timeout=timeout) as answer:
            etag, size = answer.headers.get("ETag"), answer.headers.get("Content-Length")
            modified = answer.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise _failure(name, shown, exc, timeout) from exc
        exc.close()
        return True  # HEAD refused (405...): the copy stands, as it does offline
    except (urllib.error.URLError, OSError) as exc:
        if say is not None:
            say(f"input {name!r}: {shown} cannot be reached ({_failure(name, shown, exc, timeout)}); using its copy")
        return True
    if etag and meta.get("etag"):
        return bool(etag == meta["etag"])
    return (size is None or int(size) == meta["size"]) and modified == meta.get("last_modified")


def _download(
    url: str, shown: str, name: str, path: Path, timeout: float, say: Callable[[str], None] | None
) -> dict[str, Any]:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
    progress = Progress(say, f"downloading input {name!r}")
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    got = 0
    try:
        with urllib.request.urlopen(_request(url, "GET"), timeout=timeout) as answer, open(tmp, "wb") as out:
            length = answer.headers.get("Content-Length")
            etag = answer.headers.get("ETag")
            modified = answer.headers.get("Last-Modified")
            while block := answer.read(_BLOCK):
                out.write(block)
                sha.update(block)
                md5.update(block)
                got += len(block)
                progress.add(0, len(block))
        if length is not None and int(length) != got:
            raise DataInputError(
                f"Input {name!r}: {shown} sent {got:,} bytes of {int(length):,} (the connection was cut); submit again."
            )
        plain = _MD5.match(etag or "")
        if plain and plain.group(1) != md5.hexdigest():
            raise DataInputError(
                f"Input {name!r}: what {shown} sent does not match its ETag (MD5 {plain.group(1)}); submit again."
            )
        os.replace(tmp, path)
    except DataInputError:
        tmp.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise _failure(name, shown, exc, timeout) from exc
    progress.add(1, 0)
    progress.done()
    st = path.stat()
    return {
        "url": shown,
        "etag": etag,
        "last_modified": modified,
        "size": got,
        "sha256": sha.hexdigest(),
        "mtime_ns": st.st_mtime_ns,
        "downloaded": time.time(),
    }
