"""Blobs in an S3-compatible bucket (``S3Blobs``), read through the local cache (blobcache.py).

``s3://BUCKET/PREFIX`` keeps blob ``abcdef...`` at ``PREFIX/blobs/ab/cdef...``. The endpoint and
keys come from ``[s3]`` in launchbay.toml (``endpoint``, ``region``, ``access_key_id``,
``secret_access_key``, each best a ``${ENV}`` reference) or from boto3's own sources (the
``AWS_*`` variables, ``~/.aws``). Every call is retried with exponential backoff (with jitter) for
``S3_RETRY_S`` seconds when the service cannot be reached or answers 5xx / throttles, so a bucket
that is away for half a minute delays an upload, never loses it; a blob is whole or absent (S3
PUTs are atomic), so a retried upload never leaves half a file.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import StoreError
from .blobcache import CachedBlobs
from .blobs import BlobStore, FolderBlobs

S3_RETRY_S = 90.0  # how long one call is retried while the service is unreachable
SMALL_BLOB = 8 << 20  # below this a blob is one PutObject (boto3's own multipart threshold is 8 MiB)
_T = TypeVar("_T")


def open_blobs(location: str, cache_dir: Path, s3: dict[str, Any] | None = None) -> BlobStore:
    """The blob store at ``location``: ``s3://bucket/prefix``, else a folder (a path or ``file:``)."""
    if location.lower().startswith("s3://"):
        return S3Blobs(location, cache_dir / "cache" / "blobs", s3 or {})
    from ..config import _file_path

    return FolderBlobs(Path(_file_path(location)).expanduser().resolve())


def s3_client(settings: dict[str, Any], what: str, attempts: int = 3) -> Any:
    """boto3's S3 client for ``[s3]``'s ``endpoint``, ``region``, ``access_key_id`` and ``secret_access_key``
    (each left out falls back to boto3's own: the ``AWS_*`` variables, ``~/.aws``); ``what`` names the
    feature in the one line a missing boto3 gives."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise StoreError(f"{what} need boto3: pip install 'launchbay[team]' (or boto3).") from exc
    return boto3.client(
        "s3",
        endpoint_url=settings.get("endpoint") or None,
        region_name=settings.get("region") or None,
        aws_access_key_id=settings.get("access_key_id") or None,
        aws_secret_access_key=settings.get("secret_access_key") or None,
        config=Config(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=5, read_timeout=60),
    )


class S3Blobs(CachedBlobs):
    """Write-once blobs in a bucket; every read goes through the cache folder on this machine."""

    def __init__(self, url: str, cache_dir: Path, settings: dict[str, Any]) -> None:
        super().__init__(cache_dir)
        parts = urlsplit(url)
        if not parts.netloc:
            raise StoreError(f"The blob store {url!r} names no bucket; write s3://BUCKET/PREFIX.")
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        # ?endpoint=...&region=... (what ``reopen_url`` writes) unless [s3] says otherwise; keys never
        self.settings = {**{k: v for k, v in parse_qsl(parts.query) if k in ("endpoint", "region")}, **settings}
        self._client: Any = None

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def reopen_url(self) -> str:
        """The bucket with its endpoint and region (never its keys): how another process (a run's
        runner, a sweep controller) finds the same blobs; it takes the keys from its environment."""
        query = {k: str(self.settings[k]) for k in ("endpoint", "region") if self.settings.get(k)}
        return self.location + (f"?{urlencode(query)}" if query else "")

    def _key(self, digest: str) -> str:
        return f"{self.prefix}/blobs/{digest[:2]}/{digest[2:]}".lstrip("/")

    @property
    def client(self) -> Any:
        """boto3's client, made on first use (opening a store with S3 blobs costs nothing until then)."""
        if self._client is None:
            # one attempt per call here: _retry holds the backoff (and says what it waited for)
            self._client = s3_client(self.settings, "S3 blobs", attempts=1)
        return self._client

    def _retry(self, what: str, call: Callable[[], _T]) -> _T:
        """``call``, retried with exponential backoff while the service is unreachable or busy."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

        deadline = time.monotonic() + S3_RETRY_S
        pause = 0.2
        while True:
            try:
                return call()
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                transient = status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout", "InternalError")
                if not transient or time.monotonic() > deadline:
                    raise self._error(what, exc) from exc
            except (ConnectionError, HTTPClientError) as exc:
                if time.monotonic() > deadline:
                    raise self._error(what, exc) from exc
            except BotoCoreError as exc:  # no credentials, a bad endpoint: retrying will not help
                raise self._error(what, exc) from exc
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 8.0)

    def _error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(
            f"S3 {what} failed for {self.location} ({exc}). Check [s3] endpoint and keys in launchbay.toml"
            " (or AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and that the bucket exists."
        )

    # -- the hooks of CachedBlobs ----------------------------------------------------------------
    def _exists(self, digest: str) -> bool:
        from botocore.exceptions import ClientError

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(digest))
                return True
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise

        return self._retry("lookup", head)

    def _upload(self, digest: str, source: Path) -> None:
        if source.stat().st_size < SMALL_BLOB:  # one PUT: upload_file's transfer manager costs more than the blob
            data = source.read_bytes()
            self._retry("upload", lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(digest), Body=data))
            return
        self._retry("upload", lambda: self.client.upload_file(str(source), self.bucket, self._key(digest)))

    def _download(self, digest: str, dest: Path) -> None:
        self._retry("download", lambda: self.client.download_file(self.bucket, self._key(digest), str(dest)))

    def _list(self) -> Iterator[tuple[str, int]]:
        start = f"{self.prefix}/blobs/".lstrip("/")
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": start}
            if token:
                kwargs["ContinuationToken"] = token
            page: dict[str, Any] = self._retry("listing", partial(self.client.list_objects_v2, **kwargs))
            for item in page.get("Contents", []):
                rest = item["Key"][len(start) :]
                if len(rest) == 65 and rest[2] == "/":
                    yield rest[:2] + rest[3:], int(item["Size"])
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def _delete(self, digest: str) -> None:
        self._retry("delete", lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(digest)))

    def missing(self, digests: set[str], complete: dict[str, int]) -> set[str]:
        """Looked up one by one for a few, from one listing for many (a listing costs one call per 1,000)."""
        if len(digests) <= 64:
            return super().missing(digests, complete)
        return digests - {digest for digest, _ in self._list()}
