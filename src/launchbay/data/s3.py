"""s3:// inputs: the objects under a prefix (or one object), downloaded once into the store's cache and
re-used while S3 reports each with the same ETag and size.

Any S3-compatible service: the endpoint, region and keys come from ``[s3]`` in launchbay.toml (``${ENV}``
references) where given, else from boto3's own sources (the ``AWS_*`` variables, ``~/.aws``). The keys
never leave the process: what is recorded is the ``s3://bucket/prefix`` URL alone.

Each object goes into a temporary file next to its place and is renamed there only once its size
matches the listing and, when its ETag is a plain MD5 (a single-part upload), its MD5 matches: a cut
download never leaves a half file that a later run takes as complete. A cached file is re-used only
while its size and mtime are those recorded, so a copy changed on disk is downloaded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DataInputError, StoreError
from .manifest import DataFile, Manifest
from .progress import Progress
from .urls import Fetched

_MD5 = re.compile(r'^"?([0-9a-f]{32})"?$')
_BLOCK = 1 << 20


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``."""
    rest = url[len("s3://") :] if url.lower().startswith("s3://") else url
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise DataInputError(f"{url!r} names no bucket; write s3://BUCKET/PREFIX.")
    return bucket, prefix.strip("/")


def fetch_s3(
    cache_dir: Path,
    url: str,
    name: str,
    *,
    settings: dict[str, Any] | None = None,
    say: Callable[[str], None] | None = None,
) -> Fetched:
    """The objects under ``url`` as files in the cache: each downloaded the first time, re-used while unchanged."""
    from ..store.remote import s3_client

    bucket, prefix = split_s3_url(url)
    try:
        client = s3_client(dict(settings or {}), "s3:// inputs")
    except StoreError as exc:
        raise DataInputError(f"Input {name!r}: {exc}") from exc
    listed = _listing(client, bucket, prefix, name, url)
    single = len(listed) == 1 and listed[0][0] == prefix and prefix != ""
    folder = cache_dir / "cache" / "data-s3" / hashlib.sha256(url.encode()).hexdigest()[:24]
    files_dir = folder / "files"
    meta_path = folder / "meta.json"
    meta = _read_meta(meta_path)
    fresh: dict[str, dict[str, Any]] = {}
    progress = Progress(say, f"downloading input {name!r}")
    downloaded = 0
    files_dir.mkdir(parents=True, exist_ok=True)
    for key, size, etag in listed:
        rel = PurePosixPath(key).name if single else _relative(key, prefix, name, url)
        path = files_dir / rel
        known = meta.get(rel)
        if known and known.get("etag") == etag and known.get("size") == size and _intact(path, known):
            fresh[rel] = known
            continue
        fresh[rel] = _download(client, bucket, key, size, etag, path, name, url, progress)
        downloaded += size
    _remove_stale(files_dir, set(fresh))
    meta_path.write_text(json.dumps(fresh))
    progress.done()
    entries = tuple(DataFile(rel, int(m["size"]), str(m["sha256"])) for rel, m in sorted(fresh.items()))
    if single:
        return Fetched(files_dir / entries[0].path, Manifest("file", entries), downloaded)
    return Fetched(files_dir, Manifest("folder", entries), downloaded)


def _listing(client: Any, bucket: str, prefix: str, name: str, url: str) -> list[tuple[str, int, str]]:
    """(key, size, ETag) of every object under the prefix, or the one object the prefix names."""
    wanted = f"{prefix}/" if prefix else ""
    out = [o for o in _objects(client, bucket, wanted, name, url) if not o[0].endswith("/")]
    if not out and prefix:
        out = [o for o in _objects(client, bucket, prefix, name, url) if o[0] == prefix]
    if not out:
        raise DataInputError(f"Input {name!r}: {url} holds no objects; check the bucket and the prefix.")
    return out


def _objects(client: Any, bucket: str, prefix: str, name: str, url: str) -> Iterator[tuple[str, int, str]]:
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents") or ():
                yield str(item["Key"]), int(item["Size"]), str(item.get("ETag") or "")
    except Exception as exc:  # botocore's errors: one line each, never a traceback
        raise _failure(name, url, exc) from exc


def _relative(key: str, prefix: str, name: str, url: str) -> str:
    rel = key[len(prefix) :].lstrip("/") if prefix else key
    parts = PurePosixPath(rel).parts
    if not parts or any(p in ("..", ".") for p in parts) or rel.startswith("/"):
        raise DataInputError(f"Input {name!r}: {url} holds an object whose key {key!r} is no path inside it.")
    return rel


def _download(
    client: Any, bucket: str, key: str, size: int, etag: str, path: Path, name: str, url: str, progress: Progress
) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    got = 0
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        with open(tmp, "wb") as out:
            while block := body.read(_BLOCK):
                out.write(block)
                sha.update(block)
                md5.update(block)
                got += len(block)
                progress.add(0, len(block))
        if got != size:
            raise DataInputError(
                f"Input {name!r}: {url} sent {got:,} bytes of {key!r}'s {size:,} (the connection was cut); "
                "submit again."
            )
        plain = _MD5.match(etag)
        if plain and plain.group(1) != md5.hexdigest():
            raise DataInputError(f"Input {name!r}: {key!r} from {url} does not match its ETag; submit again.")
        os.replace(tmp, path)
    except DataInputError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataInputError(f"Input {name!r}: cannot keep {key!r} from {url} in {path.parent}: {exc}.") from exc
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise _failure(name, url, exc) from exc
    progress.add(1, 0)
    return {"etag": etag, "size": got, "sha256": sha.hexdigest(), "mtime_ns": path.stat().st_mtime_ns}


def _failure(name: str, url: str, exc: BaseException) -> DataInputError:
    """botocore's error as one line that says what to do."""
    kind = type(exc).__name__
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    if kind in ("NoCredentialsError", "PartialCredentialsError"):
        return DataInputError(
            f"Input {name!r}: no S3 credentials for {url}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "[s3] access_key_id / secret_access_key as ${ENV} references in launchbay.toml."
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"):
        return DataInputError(f"Input {name!r}: S3 refused {url} ({code}); check the keys and their rights.")
    if code in ("NoSuchBucket", "404"):
        return DataInputError(f"Input {name!r}: {url}: no such bucket; check its name (and [s3] endpoint).")
    if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        return DataInputError(f"Input {name!r}: S3 could not be reached for {url} ({exc}); check [s3] endpoint.")
    return DataInputError(f"Input {name!r}: could not read {url}: {code or kind}: {exc}.")


def _intact(path: Path, meta: dict[str, Any]) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == meta.get("size") and st.st_mtime_ns == meta.get("mtime_ns")


def _remove_stale(files_dir: Path, kept: set[str]) -> None:
    """Files of an earlier download that the prefix no longer holds: the folder is the prefix as it is."""
    for root, dirs, files in os.walk(files_dir, topdown=False):
        for f in files:
            full = Path(root) / f
            if full.relative_to(files_dir).as_posix() not in kept:
                full.unlink(missing_ok=True)
        for d in dirs:
            try:
                (Path(root) / d).rmdir()
            except OSError:
                pass  # not empty


def _read_meta(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
