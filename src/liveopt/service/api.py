"""The daemon's HTTP server: REST API, ``/metrics``, ``/openapi.json``, the telemetry
WebSocket and the dashboard files, written against ``ControllerApi`` only.

Every route is declared once in ``_routes()`` as a ``RouteDoc`` plus its handler: the
router, the unknown-query-parameter check, the bearer check and ``/openapi.json`` all read
that table. Bodies are decoded once, with msgspec, into frozen request structs that forbid
unknown fields. Every refusal is a JSON ``{"error", "detail"}`` body and is counted by
status (``liveopt_api_rejected_requests_total``). See ``docs/api.md``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from liveopt.service.api_routes import (
    EmptyRequest,
    ErrorBody,
    PromoteRequest,
    StopRequest,
    route_docs,
)
from liveopt.service.auth import WWW_AUTHENTICATE, ApiTokenLike, AuthFailure, check_bearer
from liveopt.service.errors import ConflictError, InvalidRequestError, NotFoundError
from liveopt.service.openapi import RouteDoc, build_openapi
from liveopt.service.prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE
from liveopt.service.prometheus import render_metrics
from liveopt.service.protocol import ControllerApi
from liveopt.service.telemetry import TelemetryFeed
from liveopt.service.telemetry_messages import TelemetryMessage

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
DEFAULT_DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"
MAX_BODY_BYTES = 64 * 1024
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_CONTENT_TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
    ".css": "text/css", ".json": "application/json", ".map": "application/json",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
    ".txt": "text/plain", ".woff2": "font/woff2",
}
_TEXT_TYPES = frozenset({"text/html", "text/javascript", "text/css", "application/json",
                         "image/svg+xml", "text/plain"})

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_encoder = msgspec.json.Encoder()


class ApiError(Exception):
    """A refusal with its status, short error name and detail (all safe to return)."""

    def __init__(self, status: int, error: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


class ApiState:
    """What the handlers share: the controller, the token, the feed, the counters."""

    def __init__(self, controller: ControllerApi, token: ApiTokenLike, feed: TelemetryFeed,
                 leaderboard_rows: int, dashboard_dir: Path) -> None:
        self.controller = controller
        self.token = token
        self.feed = feed
        self.leaderboard_rows = leaderboard_rows
        self.dashboard_dir = dashboard_dir
        self.rejected: Counter[int] = Counter()
        self.openapi: bytes = b""


STATE = web.AppKey("liveopt_api_state", ApiState)


def json_response(value: Any, status: int = 200) -> web.Response:
    """``value`` encoded with msgspec (numbers stay numbers)."""
    return web.Response(body=_encoder.encode(value), status=status,
                        content_type="application/json")


def error_response(status: int, error: str, detail: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    """The JSON error body every refusal uses."""
    response = json_response(ErrorBody(error=error, detail=detail), status)
    response.headers.update(headers or {})
    return response


def _error_name(status: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 404: "not_found",
            405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
            422: "invalid_request"}.get(status, "error" if status < 500 else "internal_error")


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        return await handler(request)
    except ApiError as error:
        response = error_response(error.status, error.error, error.detail, error.headers)
    except ConflictError as error:
        response = error_response(409, "conflict", str(error))
    except NotFoundError as error:
        response = error_response(404, "not_found", str(error))
    except InvalidRequestError as error:
        response = error_response(422, "invalid_request", str(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k.lower() == "allow"}
        response = error_response(error.status, _error_name(error.status),
                                  error.reason or _error_name(error.status), headers)
    except Exception as error:
        # A bug must answer 500, not kill the server; the traceback goes to the log only.
        log.exception("API %s %s failed", request.method, request.path)
        response = error_response(500, "internal_error", type(error).__name__)
    state.rejected[response.status] += 1
    return response


def _guard(route: RouteDoc, handler: Handler) -> Handler:
    # Unknown query parameters and (for control routes) the bearer token, checked before
    # the handler runs and before any body is read.
    allowed = frozenset(p.name for p in route.params if p.where == "query")

    async def guarded(request: web.Request) -> web.StreamResponse:
        unknown = sorted(set(request.query) - allowed)
        if unknown:
            raise ApiError(422, "invalid_request",
                           f"unknown query parameter(s): {', '.join(unknown)[:200]}")
        if route.control:
            try:
                check_bearer(request.headers, request.app[STATE].token)
            except AuthFailure as failure:
                raise ApiError(401, "unauthorized", str(failure),
                               {"WWW-Authenticate": WWW_AUTHENTICATE}) from None
        return await handler(request)

    return guarded


# --- request parsing -------------------------------------------------------------------
def _shown(value: str) -> str:
    # Echo at most a short prefix of what the client sent.
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def int_query(request: web.Request, name: str, default: int | None, *, minimum: int = 0,
              maximum: int | None = None) -> int | None:
    """Query parameter ``name`` as an integer in ``[minimum, maximum]`` (422 otherwise)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "invalid_request",
                       f"{name}: expected an integer, got {_shown(raw)}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ApiError(422, "invalid_request", f"{name}: must be {bound}, got {value}")
    return value


def path_int(request: web.Request, name: str) -> int:
    """Path segment ``name`` as an integer (422 otherwise)."""
    raw = request.match_info[name]
    try:
        return int(raw)
    except ValueError:
        raise ApiError(422, "invalid_request",
                       f"{name}: expected an integer, got {_shown(raw)}") from None


async def decode_body(request: web.Request, kind: type[T], *, required: bool) -> T:
    """The JSON body decoded into ``kind`` (an empty body means defaults unless required)."""
    body = await request.read()
    if not body.strip():
        if required:
            raise ApiError(422, "invalid_request", "a JSON body is required")
        body = b"{}"
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as error:
        raise ApiError(422, "invalid_request", str(error)) from None
    except msgspec.DecodeError as error:
        raise ApiError(422, "invalid_request", f"malformed JSON: {error}") from None


# --- read handlers ---------------------------------------------------------------------
async def _status(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].controller.status())


async def _results(request: web.Request) -> web.Response:
    limit = int_query(request, "limit", None, minimum=1, maximum=100_000)
    return json_response(request.app[STATE].controller.results(limit))


async def _variant(request: web.Request) -> web.Response:
    variant_id = path_int(request, "variant_id")
    return json_response(request.app[STATE].controller.variant(variant_id))


async def _trades_experimental(request: web.Request) -> web.Response:
    variant_id = int_query(request, "variant", None, minimum=0)
    offset = int_query(request, "offset", 0, minimum=0)
    limit = int_query(request, "limit", 100, minimum=1, maximum=1000)
    return json_response(request.app[STATE].controller.trades(
        main=False, variant_id=variant_id, offset=offset, limit=limit))


async def _trades_main(request: web.Request) -> web.Response:
    offset = int_query(request, "offset", 0, minimum=0)
    limit = int_query(request, "limit", 100, minimum=1, maximum=1000)
    return json_response(request.app[STATE].controller.trades(main=True, offset=offset,
                                                              limit=limit))


async def _gate(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].controller.gate())


async def _promotions(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].controller.promotions())


async def _health(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].controller.health())


async def _alerts(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].controller.alerts())


async def _metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    text = render_metrics(state.controller, rejected_by_status=state.rejected,
                          telemetry=state.feed.counters())
    return web.Response(body=text.encode(), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATE].openapi, content_type="application/json")


async def _telemetry(request: web.Request) -> web.StreamResponse:
    return await request.app[STATE].feed.handle(request)


# --- control handlers ------------------------------------------------------------------
async def _start(request: web.Request) -> web.Response:
    await decode_body(request, EmptyRequest, required=False)
    controller = request.app[STATE].controller
    await controller.start()
    return json_response(controller.status())


async def _stop(request: web.Request) -> web.Response:
    body = await decode_body(request, StopRequest, required=False)
    return json_response(await request.app[STATE].controller.stop(flatten=body.flatten))


async def _reset(request: web.Request) -> web.Response:
    await decode_body(request, EmptyRequest, required=False)
    controller = request.app[STATE].controller
    await controller.reset()
    return json_response(controller.status())


async def _promote(request: web.Request) -> web.Response:
    body = await decode_body(request, PromoteRequest, required=True)
    return json_response(await request.app[STATE].controller.promote(body.variant_id))


async def _rollback(request: web.Request) -> web.Response:
    await decode_body(request, EmptyRequest, required=False)
    return json_response(await request.app[STATE].controller.rollback())


# --- dashboard -------------------------------------------------------------------------
def _file_response(path: Path) -> web.Response:
    content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    if content_type in _TEXT_TYPES:
        content_type += "; charset=utf-8"
    return web.Response(body=path.read_bytes(), headers={
        "Content-Type": content_type, "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache"})


def _dashboard_file(state: ApiState, name: str) -> web.Response:
    # Only plain file names directly inside the dashboard folder: no separators, no "..",
    # no hidden files; the resolved path must still be inside the folder (symlinks).
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ApiError(404, "not_found", "no such dashboard file")
    root = state.dashboard_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        raise ApiError(404, "not_found", "no such dashboard file")
    return _file_response(path)


async def _index(request: web.Request) -> web.Response:
    return _dashboard_file(request.app[STATE], "index.html")


async def _dashboard(request: web.Request) -> web.Response:
    return _dashboard_file(request.app[STATE], request.match_info["name"])


def _routes() -> list[tuple[RouteDoc, Handler]]:
    handlers: dict[str, Handler] = {
        "status": _status, "results": _results, "variant": _variant,
        "trades_experimental": _trades_experimental, "trades_main": _trades_main,
        "gate": _gate, "promotions": _promotions, "health": _health, "alerts": _alerts,
        "metrics": _metrics, "openapi": _openapi, "telemetry": _telemetry,
        "start": _start, "stop": _stop, "reset": _reset, "promote": _promote,
        "rollback": _rollback, "index": _index, "dashboard": _dashboard,
    }
    docs = route_docs()
    missing = set(handlers) ^ set(docs)
    if missing:
        raise RuntimeError(f"route table out of step: {sorted(missing)}")
    return [(docs[key], handlers[key]) for key in handlers]


def create_app(controller: ControllerApi, *, token: ApiTokenLike, cadence_s: float = 1.0,
               client_queue: int = 64, leaderboard_rows: int = 20,
               clock_ns: Callable[[], int] = time.time_ns, equity_leaders: int = 5,
               dashboard_dir: Path | None = None,
               sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> web.Application:
    """The aiohttp application serving ``controller``.

    ``token`` guards the control routes (``matches`` must compare in constant time);
    ``cadence_s``, ``client_queue``, ``leaderboard_rows`` and ``equity_leaders`` configure
    the telemetry feed; ``dashboard_dir`` replaces the packaged dashboard folder and
    ``sleep`` the feed's cadence timer (tests).
    """
    feed = TelemetryFeed(controller, cadence_s=cadence_s, client_queue=client_queue,
                         leaderboard_rows=leaderboard_rows, equity_leaders=equity_leaders,
                         clock_ns=clock_ns, sleep=sleep)
    app = web.Application(middlewares=[_errors_middleware], client_max_size=MAX_BODY_BYTES)
    state = ApiState(controller, token, feed, leaderboard_rows,
                     dashboard_dir or DEFAULT_DASHBOARD_DIR)
    app[STATE] = state
    routes = _routes()
    for doc, handler in routes:
        app.router.add_route(doc.method, doc.path, _guard(doc, handler))
    state.openapi = _encoder.encode(build_openapi(
        [doc for doc, _ in routes], error_type=ErrorBody, title="liveopt daemon API",
        version=API_VERSION, extra_types=(TelemetryMessage,),
        description="Read the optimizer's state, control it (bearer token), stream "
                    "telemetry. See docs/api.md and docs/telemetry.md."))

    async def start_feed(_app: web.Application) -> None:
        await feed.start()

    async def stop_feed(_app: web.Application) -> None:
        await feed.stop()

    app.on_startup.append(start_feed)
    app.on_shutdown.append(stop_feed)
    return app


class RunningApi:
    """A served application: ``url``, ``port``, ``stop()``."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self.runner = runner
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def feed(self) -> TelemetryFeed:
        return self.runner.app[STATE].feed

    async def stop(self) -> None:
        """Close the telemetry clients and the listening socket."""
        await self.runner.cleanup()


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 8765) -> RunningApi:
    """Serve ``app`` on ``host:port`` (port 0 picks a free port). Binds loopback only unless
    another ``host`` is given."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    return RunningApi(runner, bound[0], bound[1])

