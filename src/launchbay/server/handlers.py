"""Tornado handlers for ``{base_url}launchbay/api/...`` (contract: openapi.yaml).

Each handler parses its arguments and calls one ``LaunchbayService`` method in a
worker thread (syncing a remote run or cancelling one may take seconds; the
server's event loop must not wait). ``_answer`` is the one place errors become
HTTP: unknown run/metric/file → 404, a damaged index or a full disk → 503, any other
``LaunchbayError`` → 400, all as JSON ``{"message": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..errors import ConfigError, DiskFullError, LaunchbayError, RunNotFoundError, StoreDamagedError
from .service import LaunchbayService

OPENAPI = Path(__file__).with_name("openapi.yaml")
DOWNLOAD_CHUNK = 256 * 1024


class ServiceHolder:
    """Opens the store on first use (so a bad store path is an API error, not a dead server)."""

    def __init__(self, store: str | None, root_dir: str) -> None:
        self.store, self.root_dir = store, root_dir
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="launchbay")
        self._service: LaunchbayService | None = None
        self._lock = threading.Lock()

    def get(self) -> LaunchbayService:
        with self._lock:
            if self._service is None:
                self._service = LaunchbayService.open(self.store, self.root_dir)
            return self._service

    def close(self) -> None:
        """Stop the worker threads and close the store (the server extension is unloaded)."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._service is not None:
                self._service.session.close()


MAX_QUERY_NUMBER = 1 << 53  # the largest integer every client (JavaScript too) holds exactly


class BaseHandler(APIHandler):
    @property
    def holder(self) -> ServiceHolder:
        holder: ServiceHolder = self.settings["launchbay"]
        return holder

    async def _call(self, fn: Callable[[LaunchbayService], Any]) -> tuple[int, Any]:
        """Run ``fn(service)`` in a worker thread; (status, result or error message)."""
        holder = self.holder
        try:
            result = await asyncio.get_running_loop().run_in_executor(holder.executor, lambda: fn(holder.get()))
        except RunNotFoundError as exc:
            return 404, {"message": str(exc)}
        except (StoreDamagedError, DiskFullError) as exc:  # not the request's fault: the store's
            return 503, {"message": str(exc)}
        except LaunchbayError as exc:
            return 400, {"message": str(exc)}
        return 200, result

    async def _answer(self, fn: Callable[[LaunchbayService], Any]) -> None:
        status, body = await self._call(fn)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(_dumps(body))

    # -- query arguments (a bad one is a ConfigError, hence a 400) --------------------------------
    def _int(self, name: str, default: int, lo: int = 0, hi: int = MAX_QUERY_NUMBER) -> int:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"Query parameter {name}={raw!r} must be an integer.") from None
        if value < lo or value > hi:
            raise ConfigError(f"Query parameter {name}={value} must be between {lo} and {hi}.")
        return value

    def _float(self, name: str, required: bool = False) -> float | None:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            if required:
                raise ConfigError(f"Query parameter {name} is required.")
            return None
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"Query parameter {name}={raw!r} must be a number.") from None
        if not math.isfinite(value) or abs(value) > MAX_QUERY_NUMBER:
            raise ConfigError(f"Query parameter {name}={raw!r} must be a number between -2**53 and 2**53.")
        return value


class RunsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        await self._answer(
            lambda s: s.list_runs(
                experiment=self.get_argument("experiment", None),
                status=self.get_argument("status", None),
                q=self.get_argument("q", None),
                user=self.get_argument("user", None),
                limit=self._int("limit", 50, 1, 1000),
                offset=self._int("offset", 0, 0),
            )
        )


class ExperimentsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        await self._answer(lambda s: s.experiments())


class UsersHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        await self._answer(lambda s: s.users())


class RunHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        await self._answer(lambda s: s.run(run_id))


class LogHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        await self._answer(lambda s: s.log(run_id, self._int("offset", 0, 0), self._int("rank", 0, 0)))


class MetricsHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        await self._answer(lambda s: s.metrics(run_id))


class LoggedHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        await self._answer(
            lambda s: s.logged(
                run_id,
                self._int("since", -1, -1) if self.get_argument("since", "") else None,
                self._int("max_rows", 1000, 1),
            )
        )


class MetricHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str, name: str) -> None:
        await self._answer(
            lambda s: s.metric(
                run_id, name, after_step=self._float("after_step"), buckets=self._int("buckets", 0, 1) or None
            )
        )


class FilesHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        await self._answer(lambda s: s.files(run_id))


class FileHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str, name: str) -> None:
        status, result = await self._call(lambda s: s.file_path(run_id, name))
        if status != 200:
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(_dumps(result))
            return
        path: Path = result
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{urllib.parse.quote(path.name, safe='')}")
        self.set_header("Content-Length", str(path.stat().st_size))
        with open(path, "rb") as fh:
            while chunk := fh.read(DOWNLOAD_CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()


class PipelineHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        await self._answer(lambda s: s.pipeline(run_id))


class CancelHandler(BaseHandler):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        await self._answer(lambda s: s.cancel(run_id))


class TensorBoardHandler(BaseHandler):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        await self._answer(lambda s: s.tensorboard(run_id))


class RerunHandler(BaseHandler):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        body = self.request.body
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.set_status(400)
            self.finish(_dumps({"message": 'The body must be JSON like {"target": "NAME"} or {"target": null}.'}))
            return
        await self._answer(lambda s: s.rerun(run_id, data.get("target")))


class CompareHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        ids = [part.strip() for part in self.get_argument("runs", "").split(",") if part.strip()]
        await self._answer(lambda s: s.compare(ids))


class ChangesHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        await self._answer(lambda s: s.changes(self._float("since", required=True) or 0.0))


class TargetsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        await self._answer(lambda s: s.targets())


class ModelsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        await self._answer(lambda s: s.models())


class ModelHandler(BaseHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        await self._answer(lambda s: s.model(name))


class OpenAPIHandler(BaseHandler):
    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/yaml")
        self.finish(OPENAPI.read_bytes())


_RUN = r"runs/([^/]+)"
ROUTES: list[tuple[str, type[BaseHandler]]] = [
    (r"runs", RunsHandler),
    (r"experiments", ExperimentsHandler),
    (r"users", UsersHandler),
    (_RUN, RunHandler),
    (_RUN + r"/log", LogHandler),
    (_RUN + r"/metrics", MetricsHandler),
    (_RUN + r"/metrics/(.+)", MetricHandler),
    (_RUN + r"/logged", LoggedHandler),
    (_RUN + r"/files", FilesHandler),
    (_RUN + r"/files/(.+)", FileHandler),
    (_RUN + r"/cancel", CancelHandler),
    (_RUN + r"/pipeline", PipelineHandler),
    (_RUN + r"/rerun", RerunHandler),
    (_RUN + r"/tensorboard", TensorBoardHandler),
    (r"compare", CompareHandler),
    (r"changes", ChangesHandler),
    (r"targets", TargetsHandler),
    (r"models", ModelsHandler),
    (r"models/([^/]+)", ModelHandler),
    (r"openapi.yaml", OpenAPIHandler),
]


def setup_handlers(web_app: Any, holder: ServiceHolder) -> None:
    """Register every route under ``{base_url}launchbay/api/``."""
    web_app.settings["launchbay"] = holder
    base = url_path_join(web_app.settings["base_url"], "launchbay", "api")
    web_app.add_handlers(".*$", [(url_path_join(base, path) + "/?$", handler) for path, handler in ROUTES])


def _dumps(data: Any) -> str:
    try:
        return json.dumps(data, allow_nan=False, default=str)
    except ValueError:  # a NaN/inf somewhere (a param, a value): JSON has no such numbers
        return json.dumps(_nan_to_none(data), default=str)


def _nan_to_none(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _nan_to_none(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_nan_to_none(v) for v in data]
    return data
