"""The simulator's network side: one aiohttp application serving the KuCoin futures REST
API and the WebSocket endpoint, and the market loop that drives the exchange core.

Every REST reply uses the exchange's envelope (``{"code":"200000","data":...}`` or
``{"code","msg"}``) and carries the ``gw-ratelimit-*`` headers. Private routes are
verified by ``auth.RequestVerifier`` before they are charged to the key's pool. The core
(``exchange.SimExchange``) is synchronous and clock-free: the server passes it the market
time, ``start + (clock() - clock_at_start) * speed``. Authentication and
``/api/v1/timestamp`` use the server clock itself, so a client that syncs with the
timestamp endpoint signs correctly at any speed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from liveopt.exchange.tokens import BulletToken, InstanceServer
from liveopt.sim.auth import AuthError, RequestVerifier
from liveopt.sim.config import FaultConfig, SimConfig
from liveopt.sim.contracts import ContractSpec, default_contracts
from liveopt.sim.exchange import (
    BboEvent,
    BookChangeEvent,
    SimError,
    SimExchange,
    TickerEvent,
    TradeEvent,
)
from liveopt.sim.faults import FaultCounts, FaultInjector, malformed
from liveopt.sim.market import GeneratedMarket, MarketSource, ReplayMarket
from liveopt.sim.ratelimit import (
    ENDPOINT_COSTS,
    FUTURES,
    PUBLIC,
    UNKNOWN_ENDPOINT_COST,
    RateDecision,
    RateLimiter,
)
from liveopt.sim.ws import (
    CANDLE,
    CANDLE_TYPES,
    DEPTH5,
    EXECUTION,
    LEVEL2,
    TICKER_V1,
    TICKER_V2,
    HubCounts,
    MessageFrame,
    TokenRegistry,
    UnsequencedMessageFrame,
    WebSocketHub,
    encode_frame,
)
from liveopt.units import NS_PER_MS

log = logging.getLogger(__name__)

Clock = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]

WS_PATH = "/endpoint"

# Sequenced market-data events -> (topic prefix, subject).
_EVENT_TOPICS: dict[type, tuple[str, str]] = {
    TradeEvent: (EXECUTION, "match"),
    BboEvent: (TICKER_V2, "tickerV2"),
    TickerEvent: (TICKER_V1, "ticker"),
    BookChangeEvent: (LEVEL2, "level2"),
}
_ORDER_ROUTES = frozenset({
    ("POST", "/api/v1/orders"),
    ("POST", "/api/v1/orders/test"),
    ("DELETE", "/api/v1/orders/{orderId}"),
    ("DELETE", "/api/v1/orders/client-order/{clientOid}"),
    ("DELETE", "/api/v3/orders"),
    ("DELETE", "/api/v1/stopOrders"),
})
_FAILURE_REPLIES = {500: ("500000", "Internal Server Error"),
                    503: ("503000", "Service Unavailable")}


class _Ok(msgspec.Struct, frozen=True):
    code: str
    data: Any


class _Err(msgspec.Struct, frozen=True):
    code: str
    msg: str


class ParamError(ValueError):
    """A missing or malformed request parameter (answered with 400100)."""


_json = msgspec.json.Encoder()


def ok(data: Any) -> web.Response:
    """A success envelope."""
    return web.Response(body=_json.encode(_Ok("200000", data)), content_type="application/json")


def error(code: str, message: str, status: int) -> web.Response:
    """An error envelope with its HTTP status."""
    return web.Response(body=_json.encode(_Err(code, message)), status=status,
                        content_type="application/json")


def wall_clock_ns() -> int:
    """The default server clock (the only place the simulator reads the wall clock)."""
    return time.time_ns()


def build_exchange(config: SimConfig, start_ns: int,
                   contracts: dict[str, ContractSpec] | None = None) -> SimExchange:
    """The exchange core for ``config``: the listed contracts, the first symbol replaying
    ``config.data`` when given, every other symbol on the seeded generator."""
    available = default_contracts() if contracts is None else contracts
    unknown = [symbol for symbol in config.symbols if symbol not in available]
    if unknown:
        raise ValueError(f"symbols: unknown contract(s) {', '.join(unknown)}; "
                         f"available: {', '.join(sorted(available))}")
    specs = {symbol: available[symbol] for symbol in config.symbols}
    markets: dict[str, MarketSource] = {}
    for index, (symbol, spec) in enumerate(specs.items()):
        if index == 0 and config.data is not None:
            markets[symbol] = ReplayMarket.from_file(
                config.data, symbol, spec.tick_size, seed=config.seed,
                multiplier=spec.multiplier)
        else:
            markets[symbol] = GeneratedMarket(symbol, config.seed + index, spec.start_price,
                                              spec.tick_size)
    return SimExchange(specs, markets, start_ns=start_ns, balance=config.balance,
                       currency=config.currency)


class SimServer:
    """The application state: exchange core, auth, rate limits, tokens, hub, faults."""

    def __init__(self, config: SimConfig, exchange: SimExchange, *, clock: Clock,
                 sleep: Sleep, market_start_ns: int) -> None:
        self.config = config
        self.exchange = exchange
        self._clock = clock
        self._sleep = sleep
        self._clock_start_ns = clock()
        self._market_start_ns = market_start_ns
        self.verifier = RequestVerifier(config.credentials, config.max_timestamp_skew_ms)
        self.limiter = RateLimiter({FUTURES: config.futures_pool_quota,
                                    PUBLIC: config.public_pool_quota}, config.rate_window_s)
        self.tokens = TokenRegistry(config.token_ttl_s)
        self.hub = WebSocketHub(
            symbols=exchange.symbols, tokens=self.tokens, clock=clock, sleep=sleep,
            queue_size=config.send_queue_size, max_topics=config.max_topics,
            uplink_limit=config.uplink_limit, uplink_window_s=config.uplink_window_s,
            idle_timeout_s=config.idle_timeout_s)
        self.faults = FaultInjector(config.faults, random.Random(config.seed),
                                    self._clock_start_ns)
        self.market_loop_errors = 0
        self.rejections: Counter[str] = Counter()
        self._last_depth5: dict[str, tuple[Any, Any]] = {}
        self._next_depth5_ns: int | None = None
        self._next_candle_ns: int | None = None
        self.app = self._build_app()

    # -- time --------------------------------------------------------------------------
    def now_ns(self) -> int:
        """The server clock (authentication, ``/api/v1/timestamp``, faults)."""
        return self._clock()

    def market_now_ns(self) -> int:
        """Market time: the server clock's elapsed time scaled by ``speed``."""
        elapsed = self._clock() - self._clock_start_ns
        return self._market_start_ns + int(elapsed * self.config.speed)

    # -- application -------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gateway])
        get, post, delete = app.router.add_get, app.router.add_post, app.router.add_delete
        get(WS_PATH, self.hub.handle)
        post("/api/v1/bullet-public", self._bullet_public)
        post("/api/v1/bullet-private", self._bullet_private)
        get("/api/v1/contracts/active", self._contracts_active)
        get("/api/v1/contracts/{symbol}", self._contract)
        get("/api/v1/ticker", self._ticker)
        get("/api/v1/level2/snapshot", self._level2_snapshot)
        get("/api/v1/level2/depth20", self._depth20)
        get("/api/v1/level2/depth100", self._depth100)
        get("/api/v1/kline/query", self._klines)
        get("/api/v1/timestamp", self._timestamp)
        get("/api/v1/account-overview", self._account_overview)
        post("/api/v1/orders/test", self._place_test_order)
        post("/api/v1/orders", self._place_order)
        delete("/api/v1/orders/client-order/{clientOid}", self._cancel_by_client_oid)
        delete("/api/v1/orders/{orderId}", self._cancel_order)
        delete("/api/v3/orders", self._cancel_all)
        delete("/api/v1/stopOrders", self._cancel_all_stops)
        get("/api/v1/orders/byClientOid", self._order_by_client_oid)
        get("/api/v1/orders/{orderId}", self._order)
        get("/api/v1/orders", self._orders)
        get("/api/v1/stopOrders", self._stop_orders)
        get("/api/v1/position", self._position)
        get("/api/v1/positions", self._positions)
        return app

    @web.middleware
    async def _gateway(self, request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
        # Auth, rate limit, 429 bursts and failing order endpoints, in the exchange's order:
        # a request is authenticated, then charged, then served.
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else None
        if template == WS_PATH:
            return await handler(request)
        now_ns = self._clock()
        route = (request.method, template)
        cost = ENDPOINT_COSTS.get(route) if template is not None else None
        ip = request.remote or "unknown"
        if cost is None:
            decision = self.limiter.charge(UNKNOWN_ENDPOINT_COST, ip, now_ns)
            not_found = self._reject("404000", f"Not Found: {request.method} {request.path}", 404)
            return self._with_headers(not_found, decision)
        client = ip
        if cost.pool == FUTURES:
            body = await request.text()
            try:
                client = self.verifier.verify(request.headers, request.method,
                                              request.raw_path, body, now_ns // NS_PER_MS)
            except AuthError as exc:
                # Not charged to the claimed key: the headers show the IP's public pool.
                refused = self._reject(exc.code, exc.message, exc.http_status)
                return self._with_headers(refused, self.limiter.peek(PUBLIC, ip, now_ns))
        if self.faults.in_429_burst(now_ns):
            current = self.limiter.peek(cost.pool, client, now_ns)
            return self._with_headers(self._reject("429000", "Too Many Requests", 429),
                                      RateDecision(False, current.limit, 0, current.reset_ms))
        decision = self.limiter.charge(cost, client, now_ns)
        if not decision.allowed:
            return self._with_headers(self._reject("429000", "Too Many Requests", 429), decision)
        failure = self.faults.fail_order() if route in _ORDER_ROUTES else None
        if failure is None or self.faults.config.order_failure_after_apply:
            response = await self._serve(request, handler)
        if failure is not None:
            code, message = _FAILURE_REPLIES[failure]
            response = self._reject(code, message, failure)
        return self._with_headers(response, decision)

    async def _serve(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimError as exc:
            return self._reject(exc.code, exc.message, exc.http_status)
        except ParamError as exc:
            return self._reject("400100", str(exc), 400)
        except Exception:  # a bug must still answer in the envelope, not crash the server
            log.exception("%s %s failed", request.method, request.path)
            return self._reject("500000", "Internal Server Error", 500)

    def _reject(self, code: str, message: str, status: int) -> web.Response:
        # Every refused request is counted by its code (RunningSim.rejections()).
        self.rejections[code] += 1
        return error(code, message, status)

    @staticmethod
    def _with_headers(response: web.StreamResponse, decision: RateDecision
                      ) -> web.StreamResponse:
        response.headers.update(decision.headers())
        return response

    # -- parameters --------------------------------------------------------------------
    @staticmethod
    def _param(request: web.Request, name: str) -> str:
        value = request.query.get(name)
        if not value:
            raise ParamError(f"{name} is required")
        return value

    @staticmethod
    def _int_param(request: web.Request, name: str, default: int | None = None,
                   minimum: int | None = None) -> int:
        raw = request.query.get(name)
        if raw is None or raw == "":
            if default is None:
                raise ParamError(f"{name} is required")
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ParamError(f"{name} must be an integer, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ParamError(f"{name} must be >= {minimum}, got {value}")
        return value

    @staticmethod
    async def _json_body(request: web.Request) -> dict:
        text = await request.text()
        try:
            body = msgspec.json.decode(text) if text else None
        except msgspec.DecodeError as exc:
            raise ParamError(f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ParamError("body must be a JSON object")
        return body

    # -- bullets -----------------------------------------------------------------------
    def _bullet(self, request: web.Request, private: bool) -> web.Response:
        token = self.tokens.issue(private, self._clock())
        server = InstanceServer(endpoint=f"ws://{request.host}{WS_PATH}",
                                ping_interval=self.config.ping_interval_ms,
                                ping_timeout=self.config.ping_timeout_ms, encrypt=False)
        return ok(BulletToken(token=token, instance_servers=[server]))

    async def _bullet_public(self, request: web.Request) -> web.Response:
        return self._bullet(request, private=False)

    async def _bullet_private(self, request: web.Request) -> web.Response:
        return self._bullet(request, private=True)

    # -- market data -------------------------------------------------------------------
    async def _contracts_active(self, request: web.Request) -> web.Response:
        return ok(self.exchange.active_contracts())

    async def _contract(self, request: web.Request) -> web.Response:
        return ok(self.exchange.contract(request.match_info["symbol"]))

    async def _ticker(self, request: web.Request) -> web.Response:
        return ok(self.exchange.ticker(self._param(request, "symbol")))

    async def _level2_snapshot(self, request: web.Request) -> web.Response:
        return ok(self.exchange.level2_snapshot(self._param(request, "symbol")))

    async def _depth20(self, request: web.Request) -> web.Response:
        return ok(self.exchange.level2_snapshot(self._param(request, "symbol"), 20))

    async def _depth100(self, request: web.Request) -> web.Response:
        return ok(self.exchange.level2_snapshot(self._param(request, "symbol"), 100))

    async def _klines(self, request: web.Request) -> web.Response:
        symbol = self._param(request, "symbol")
        granularity = self._int_param(request, "granularity", minimum=1)
        now_ms = self.market_now_ns() // NS_PER_MS
        to_ms = self._int_param(request, "to", default=now_ms, minimum=0)
        from_ms = self._int_param(request, "from", default=max(0, to_ms - 200 * 60_000
                                                               * granularity), minimum=0)
        return ok(self.exchange.klines(symbol, granularity, from_ms, to_ms))

    async def _timestamp(self, request: web.Request) -> web.Response:
        return ok(self._clock() // NS_PER_MS)

    # -- account and orders ------------------------------------------------------------
    async def _account_overview(self, request: web.Request) -> web.Response:
        currency = request.query.get("currency") or self.config.currency
        return ok(self.exchange.account_overview(currency))

    async def _place_order(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        return ok(self.exchange.place_order(body, self.market_now_ns()))

    async def _place_test_order(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        return ok(self.exchange.test_order(body, self.market_now_ns()))

    async def _cancel_order(self, request: web.Request) -> web.Response:
        return ok(self.exchange.cancel_order(request.match_info["orderId"],
                                             self.market_now_ns()))

    async def _cancel_by_client_oid(self, request: web.Request) -> web.Response:
        symbol = self._param(request, "symbol")
        return ok(self.exchange.cancel_by_client_oid(symbol, request.match_info["clientOid"],
                                                     self.market_now_ns()))

    async def _cancel_all(self, request: web.Request) -> web.Response:
        return ok(self.exchange.cancel_all(self._param(request, "symbol"), self.market_now_ns()))

    async def _cancel_all_stops(self, request: web.Request) -> web.Response:
        return ok(self.exchange.cancel_all_stops(request.query.get("symbol") or None,
                                                 self.market_now_ns()))

    def _paging(self, request: web.Request) -> tuple[int, int]:
        page = self._int_param(request, "currentPage", default=1, minimum=1)
        size = self._int_param(request, "pageSize", default=50, minimum=1)
        if size > 1000:
            raise ParamError(f"pageSize must be <= 1000, got {size}")
        return page, size

    async def _orders(self, request: web.Request) -> web.Response:
        page, size = self._paging(request)
        status = request.query.get("status") or None
        if status not in (None, "active", "done"):
            raise ParamError(f"status must be 'active' or 'done', got {status!r}")
        return ok(self.exchange.list_orders(request.query.get("symbol") or None, status,
                                            page, size))

    async def _stop_orders(self, request: web.Request) -> web.Response:
        page, size = self._paging(request)
        return ok(self.exchange.list_stop_orders(request.query.get("symbol") or None,
                                                 page, size))

    async def _order(self, request: web.Request) -> web.Response:
        return ok(self.exchange.order(request.match_info["orderId"]))

    async def _order_by_client_oid(self, request: web.Request) -> web.Response:
        return ok(self.exchange.order_by_client_oid(self._param(request, "clientOid")))

    async def _position(self, request: web.Request) -> web.Response:
        return ok(self.exchange.position(self._param(request, "symbol")))

    async def _positions(self, request: web.Request) -> web.Response:
        return ok(self.exchange.positions())

    # -- market loop -------------------------------------------------------------------
    async def run_market(self) -> None:
        """Call ``tick`` every ``tick_ms`` until cancelled; never raises (an error in one
        tick is logged and counted, and the loop goes on)."""
        tick_s = self.config.tick_ms / 1000.0
        while True:
            try:
                self.tick()
            except Exception:  # one bad tick must not stop the feed for everyone
                self.market_loop_errors += 1
                log.exception("market loop tick failed (%d so far)", self.market_loop_errors)
            await self._sleep(tick_s)

    def tick(self) -> None:
        """One market-loop iteration: the connection-drop fault, the core's events, and
        the periodic depth5 (only when changed) and candle pushes when they are due."""
        now_ns = self._clock()
        if self.faults.connections_to_drop(now_ns):
            self.faults.count_dropped(self.hub.drop_all())
        self.step_market()
        if self._next_depth5_ns is None or now_ns >= self._next_depth5_ns:
            self._push_depth5()
            self._next_depth5_ns = now_ns + self.config.depth5_interval_ms * NS_PER_MS
        if self._next_candle_ns is None or now_ns >= self._next_candle_ns:
            self._push_candles()
            self._next_candle_ns = now_ns + self.config.candle_interval_ms * NS_PER_MS

    def step_market(self) -> int:
        """Advance the core to the current market time and publish its events; returns
        how many events there were."""
        events = self.exchange.advance(self.market_now_ns())
        for event in events:
            prefix, subject = _EVENT_TOPICS[type(event)]
            self._publish(prefix, event.symbol, subject, event.data, event.sequence,
                          gappable=True)
        return len(events)

    def _publish(self, prefix: str, arg: str, subject: str, data: Any, sn: int | None,
                 gappable: bool = False) -> None:
        key = (prefix, arg)
        if not self.hub.subscribed(key):
            return
        if gappable and self.faults.skip_sequence():
            return
        topic = f"{prefix}:{arg}"
        frame = (UnsequencedMessageFrame(topic=topic, subject=subject, data=data) if sn is None
                 else MessageFrame(topic=topic, subject=subject, sn=sn, data=data))
        text = encode_frame(frame)
        if self.faults.corrupt_frame():
            text = malformed(text.encode()).decode(errors="ignore")
        self.hub.publish(key, text, self.faults.frame_delay_s())

    def _push_depth5(self) -> None:
        for symbol in self.hub.subscribed_keys(DEPTH5):
            depth = self.exchange.depth5(symbol)
            book = (depth.bids, depth.asks)
            if self._last_depth5.get(symbol) == book:
                continue  # the reference pushes depth5 only when it changed
            self._last_depth5[symbol] = book
            self._publish(DEPTH5, symbol, "level2", depth, depth.timestamp)

    def _push_candles(self) -> None:
        now_ns = self.market_now_ns()
        for arg in self.hub.subscribed_keys(CANDLE):
            symbol, _, kind = arg.rpartition("_")
            candle = self.exchange.candle(symbol, CANDLE_TYPES[kind], now_ns)
            self._publish(CANDLE, arg, "candle.stick", candle, None)


class RunningSim:
    """A started simulator: its URLs, its parts (for tests and the demo), and ``stop``."""

    def __init__(self, server: SimServer, runner: web.AppRunner, site_port: int,
                 market_task: asyncio.Task[None]) -> None:
        self.server = server
        self._runner = runner
        self.port = site_port
        self._market_task = market_task
        host = server.config.host
        self.url = f"http://{host}:{site_port}"
        self.ws_url = f"ws://{host}:{site_port}{WS_PATH}"

    @property
    def exchange(self) -> SimExchange:
        """The exchange core (tests may inspect it)."""
        return self.server.exchange

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault switches while running (the runtime test hook)."""
        self.server.faults.reconfigure(faults, self.server.now_ns())

    def fault_counts(self) -> FaultCounts:
        """How many faults were injected so far."""
        return self.server.faults.counts()

    def rejections(self) -> dict[str, int]:
        """How many REST requests were refused, by error code."""
        return dict(self.server.rejections)

    def ws_counts(self) -> HubCounts:
        """WebSocket connection and frame counters."""
        return self.server.hub.counts()

    async def stop(self) -> None:
        """Stop the market loop, close every connection and release the port."""
        self._market_task.cancel()
        await asyncio.gather(self._market_task, return_exceptions=True)
        await self.server.hub.close_all()
        await self._runner.cleanup()


async def start_sim(config: SimConfig, *, clock: Clock | None = None,
                    sleep: Sleep | None = None, exchange: SimExchange | None = None
                    ) -> RunningSim:
    """Start the simulator on ``config.host:config.port`` (port 0 binds a free port).

    ``clock`` (ns) and ``sleep`` are injectable for tests; ``exchange`` replaces the core
    built from ``config`` (its ``start_ns`` should then be ``clock()``).
    """
    clock = clock or wall_clock_ns
    sleep = sleep or asyncio.sleep
    start_ns = clock()
    if exchange is None:
        exchange = build_exchange(config, start_ns)
    server = SimServer(config, exchange, clock=clock, sleep=sleep, market_start_ns=start_ns)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = runner.addresses[0][1]
    market_task = asyncio.get_running_loop().create_task(server.run_market())
    return RunningSim(server, runner, port, market_task)
