"""Signed KuCoin futures REST client on aiohttp (kucoin-protocol.md section 3).

One ``aiohttp.ClientSession`` is kept for the client's life. Every private request is signed
with ``liveopt.exchange.signing`` over exactly what is sent: the path with the query string
as it goes on the wire, and the compact JSON body bytes. Timestamps come from the injected
clock plus the offset learnt from ``GET /api/v1/timestamp``, so a skewed local clock does
not cause 400002; a 400002 anyway triggers one re-sync and one retry.

Retries: a timeout, a dropped connection or a 5xx is retried (jittered backoff, injected
sleep and rng) for every endpoint, because every endpoint here is safe to repeat: reads and
cancels are idempotent, and an order carries the caller's deterministic clientOid, which the
exchange refuses to use twice (300018). ``place_order`` answers 300018 by fetching the order
with that clientOid and returning it, so a retry never creates a second order.

Rate limits: an optional shared budget (``PingBudgetManager``) is asked before each attempt
(``acquire``) and told the outcome after each reply (``record_response``).
"""

import asyncio
import logging
import random
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import aiohttp
import msgspec
import yarl

from liveopt.exchange.client_oid import is_valid_client_oid
from liveopt.exchange.errors import (
    SUCCESS_CODE,
    DuplicateClientOidError,
    KucoinError,
    MalformedResponseError,
    OrderNotFoundError,
    RateLimitedError,
    TimestampError,
    TransportError,
    error_from_response,
)
from liveopt.exchange.priority import Priority
from liveopt.exchange.rest_models import (
    AccountOverview,
    CancelledClientOid,
    CancelledOrders,
    Contract,
    Kline,
    Level2Snapshot,
    Order,
    OrderAck,
    OrderRequest,
    Page,
    Position,
    StopOrder,
    Ticker,
)
from liveopt.exchange.signing import Credentials, auth_headers, signed_passphrase
from liveopt.exchange.tokens import BulletToken
from liveopt.units import NS_PER_MS, NS_PER_SECOND

DEFAULT_BASE_URL = "https://api-futures.kucoin.com"
KLINE_GRANULARITIES_MIN = (1, 5, 15, 30, 60, 120, 240, 480, 720, 1440, 10080)
MAX_PAGE_SIZE = 1000
_SYMBOL = re.compile(r"^[A-Za-z0-9]{1,40}$")
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

log = logging.getLogger(__name__)
T = TypeVar("T")


class RestConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of ``KucoinFuturesRest``.

    Parameters
    ----------
    base_url : str
        ``https://api-futures.kucoin.com``, or the simulator's ``http://127.0.0.1:PORT``.
    request_timeout_s : float
        Total time allowed for one attempt (connect, send, read).
    max_attempts : int
        Attempts per call when the failure is retryable (timeout, connection, 5xx).
    retry_backoff_s : float
        First retry delay; doubles per attempt, jittered by +-20 %, capped at
        ``retry_backoff_max_s``.
    retry_backoff_max_s : float
        Cap of the retry delay.
    budget_timeout_s : float
        Deadline passed to the rate-limit budget's ``acquire``.
    time_sync_interval_s : float or None
        Re-sync server time before a signed request when the last sync is older than this
        (and before the first one); None syncs only on ``sync_time()`` and on 400002.
    max_pages : int
        Safety bound for the ``all_*`` pagination helpers.
    """

    base_url: str = DEFAULT_BASE_URL
    request_timeout_s: float = 10.0
    max_attempts: int = 3
    retry_backoff_s: float = 0.25
    retry_backoff_max_s: float = 5.0
    budget_timeout_s: float = 10.0
    time_sync_interval_s: float | None = 300.0
    max_pages: int = 100

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"rest config: base_url must be http(s), got {self.base_url!r}")
        for name in ("request_timeout_s", "budget_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"rest config: {name} must be > 0")
        if self.max_attempts < 1:
            raise ValueError("rest config: max_attempts must be >= 1")
        if self.retry_backoff_s < 0 or self.retry_backoff_max_s < self.retry_backoff_s:
            raise ValueError("rest config: need 0 <= retry_backoff_s <= retry_backoff_max_s")
        if self.time_sync_interval_s is not None and self.time_sync_interval_s <= 0:
            raise ValueError("rest config: time_sync_interval_s must be > 0 or None")
        if self.max_pages < 1:
            raise ValueError("rest config: max_pages must be >= 1")


class RequestBudget(Protocol):
    """What the client needs from a rate-limit budget (``PingBudgetManager`` has it)."""

    async def acquire(self, endpoint_key: str, priority: Priority, *,
                      timeout_s: float | None = None) -> Any:
        """Wait until ``endpoint_key`` may be sent (raise if not within ``timeout_s``)."""

    def record_response(self, endpoint_key: str, status: int, headers: Mapping[str, str],
                        code: str | None) -> Any:
        """Learn from a reply: HTTP status, ``gw-ratelimit-*`` headers, envelope code."""


class RestStats(msgspec.Struct, frozen=True):
    """Counters since the client was created."""

    requests: int
    retries: int
    transport_errors: int
    errors_by_code: dict[str, int]
    duplicate_orders_resolved: int
    time_syncs: int
    time_offset_ns: int


class _Envelope(msgspec.Struct, frozen=True):
    code: str | int = ""
    msg: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")


class _Endpoint(msgspec.Struct, frozen=True):
    method: str
    template: str  # the path as the rate-limit table names it, e.g. /api/v1/orders/{orderId}
    signed: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


_TIMESTAMP = _Endpoint("GET", "/api/v1/timestamp", False)
_BULLET_PUBLIC = _Endpoint("POST", "/api/v1/bullet-public", False)
_BULLET_PRIVATE = _Endpoint("POST", "/api/v1/bullet-private", True)
_CONTRACTS_ACTIVE = _Endpoint("GET", "/api/v1/contracts/active", False)
_CONTRACT = _Endpoint("GET", "/api/v1/contracts/{symbol}", False)
_TICKER = _Endpoint("GET", "/api/v1/ticker", False)
_LEVEL2 = _Endpoint("GET", "/api/v1/level2/snapshot", False)
_KLINES = _Endpoint("GET", "/api/v1/kline/query", False)
_ACCOUNT = _Endpoint("GET", "/api/v1/account-overview", True)
_ADD_ORDER = _Endpoint("POST", "/api/v1/orders", True)
_CANCEL_ID = _Endpoint("DELETE", "/api/v1/orders/{orderId}", True)
_CANCEL_CLIENT_OID = _Endpoint("DELETE", "/api/v1/orders/client-order/{clientOid}", True)
_CANCEL_ALL = _Endpoint("DELETE", "/api/v3/orders", True)
_CANCEL_ALL_STOPS = _Endpoint("DELETE", "/api/v1/stopOrders", True)
_LIST_ORDERS = _Endpoint("GET", "/api/v1/orders", True)
_LIST_STOPS = _Endpoint("GET", "/api/v1/stopOrders", True)
_ORDER_BY_CLIENT_OID = _Endpoint("GET", "/api/v1/orders/byClientOid", True)
_POSITION = _Endpoint("GET", "/api/v1/position", True)
_POSITIONS = _Endpoint("GET", "/api/v1/positions", True)

# One decoder per shape, built once (decoding is the hot part of a reply).
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_INT = msgspec.json.Decoder(int)
_BULLET = msgspec.json.Decoder(BulletToken)
_CONTRACT_ONE = msgspec.json.Decoder(Contract)
_CONTRACT_LIST = msgspec.json.Decoder(list[Contract])
_TICKER_ONE = msgspec.json.Decoder(Ticker)
# Book and kline numbers arrive as JSON numbers or numeric strings; strict=False takes both.
_LEVEL2_ONE = msgspec.json.Decoder(Level2Snapshot, strict=False)
_KLINE_LIST = msgspec.json.Decoder(list[Kline], strict=False)
_ACCOUNT_ONE = msgspec.json.Decoder(AccountOverview)
_ORDER_ACK = msgspec.json.Decoder(OrderAck)
_ORDER_OR_NONE = msgspec.json.Decoder(Order | None)
_ORDER_PAGE = msgspec.json.Decoder(Page[Order])
_STOP_PAGE = msgspec.json.Decoder(Page[StopOrder])
_CANCELLED = msgspec.json.Decoder(CancelledOrders)
_CANCELLED_OR_NONE = msgspec.json.Decoder(CancelledOrders | None)
_CANCELLED_CLIENT_OID = msgspec.json.Decoder(CancelledClientOid)
_POSITION_ONE = msgspec.json.Decoder(Position)
_POSITION_LIST = msgspec.json.Decoder(list[Position])


class KucoinFuturesRest:
    """Async client of the KuCoin futures REST API (or the local simulator).

    Parameters
    ----------
    credentials : Credentials or None
        Needed for private endpoints; public ones work without.
    config : RestConfig
        Base URL, timeouts, retries, time-sync interval.
    budget : RequestBudget or None
        Shared rate-limit budget; every attempt is acquired from it and reported to it.
    clock_ns : callable
        Wall clock in ns (injected so tests control signing time).
    sleep : callable
        ``await sleep(seconds)`` between retries (injected so tests do not wait).
    rng : random.Random or None
        Source of retry jitter.
    session : aiohttp.ClientSession or None
        A session to use (not closed by ``close``); by default one is created lazily.

    Use as ``async with KucoinFuturesRest(...) as rest:`` or call ``close()``.
    """

    def __init__(self, credentials: Credentials | None = None, *,
                 config: RestConfig | None = None, budget: RequestBudget | None = None,
                 clock_ns: Callable[[], int] = time.time_ns,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        self._credentials = credentials
        self._config = config if config is not None else RestConfig()
        self._base_url = self._config.base_url.rstrip("/")
        self._budget = budget
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._session = session
        self._owns_session = session is None
        self._offset_ns = 0
        self._synced_at_ns: int | None = None
        self._sync_lock = asyncio.Lock()
        # Strings that must never appear in error text or logs.
        self._secrets = () if credentials is None else (
            credentials.secret, credentials.passphrase, signed_passphrase(credentials))
        self._requests = 0
        self._retries = 0
        self._transport_errors = 0
        self._errors_by_code: dict[str, int] = {}
        self._duplicates_resolved = 0
        self._time_syncs = 0

    def __repr__(self) -> str:
        key = None if self._credentials is None else self._credentials.key
        return f"KucoinFuturesRest(base_url={self._base_url!r}, key={key!r})"

    async def __aenter__(self) -> "KucoinFuturesRest":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client created it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    @property
    def base_url(self) -> str:
        """Where requests go."""
        return self._base_url

    @property
    def time_offset_ns(self) -> int:
        """Server time minus local clock, from the last sync (0 before any)."""
        return self._offset_ns

    def server_time_ms(self) -> int:
        """The current server time estimate in ms (what ``KC-API-TIMESTAMP`` carries)."""
        return (self._clock_ns() + self._offset_ns) // NS_PER_MS

    def stats(self) -> RestStats:
        """A snapshot of the client's counters."""
        return RestStats(self._requests, self._retries, self._transport_errors,
                         dict(self._errors_by_code), self._duplicates_resolved,
                         self._time_syncs, self._offset_ns)

    # ---- time -------------------------------------------------------------------------

    async def fetch_server_time_ms(self, *, priority: Priority = Priority.LOW) -> int:
        """``GET /api/v1/timestamp``: the server's clock in ms."""
        return await self._call(_TIMESTAMP, _TIMESTAMP.template, _INT, priority)

    async def sync_time(self, *, priority: Priority = Priority.MEDIUM) -> int:
        """Learn the offset between server time and the local clock; returns it in ns.

        The server's stamp is taken as the midpoint of the round trip."""
        sent_ns = self._clock_ns()
        server_ms = await self.fetch_server_time_ms(priority=priority)
        received_ns = self._clock_ns()
        self._offset_ns = server_ms * NS_PER_MS - (sent_ns + received_ns) // 2
        self._synced_at_ns = received_ns
        self._time_syncs += 1
        log.debug("server time offset %d ms", self._offset_ns // NS_PER_MS)
        return self._offset_ns

    async def _sync_if_stale(self) -> None:
        interval_s = self._config.time_sync_interval_s
        if interval_s is None or not self._is_stale(interval_s):
            return
        async with self._sync_lock:  # concurrent requests share one sync
            if self._is_stale(interval_s):
                await self.sync_time()

    def _is_stale(self, interval_s: float) -> bool:
        return (self._synced_at_ns is None
                or self._clock_ns() - self._synced_at_ns >= interval_s * NS_PER_SECOND)

    # ---- connect tokens ---------------------------------------------------------------

    async def bullet_public(self, *, priority: Priority = Priority.MEDIUM) -> BulletToken:
        """``POST /api/v1/bullet-public``: a token for the public WebSocket."""
        return await self._call(_BULLET_PUBLIC, _BULLET_PUBLIC.template, _BULLET, priority)

    async def bullet_private(self, *, priority: Priority = Priority.MEDIUM) -> BulletToken:
        """``POST /api/v1/bullet-private`` (signed): a token for the private WebSocket."""
        return await self._call(_BULLET_PRIVATE, _BULLET_PRIVATE.template, _BULLET, priority)

    # ---- market data ------------------------------------------------------------------

    async def active_contracts(self, *, priority: Priority = Priority.MEDIUM) -> list[Contract]:
        """``GET /api/v1/contracts/active``: every tradable contract."""
        return await self._call(_CONTRACTS_ACTIVE, _CONTRACTS_ACTIVE.template, _CONTRACT_LIST,
                                priority)

    async def contract(self, symbol: str, *, priority: Priority = Priority.MEDIUM) -> Contract:
        """``GET /api/v1/contracts/{symbol}``: one contract's spec."""
        path = f"/api/v1/contracts/{_check_symbol(symbol)}"
        return await self._call(_CONTRACT, path, _CONTRACT_ONE, priority)

    async def ticker(self, symbol: str, *, priority: Priority = Priority.MEDIUM) -> Ticker:
        """``GET /api/v1/ticker?symbol=``: last trade and best bid/ask."""
        return await self._call(_TICKER, _TICKER.template, _TICKER_ONE, priority,
                                params={"symbol": _check_symbol(symbol)})

    async def level2_snapshot(self, symbol: str, *,
                              priority: Priority = Priority.MEDIUM) -> Level2Snapshot:
        """``GET /api/v1/level2/snapshot?symbol=``: the full book with its sequence."""
        return await self._call(_LEVEL2, _LEVEL2.template, _LEVEL2_ONE, priority,
                                params={"symbol": _check_symbol(symbol)})

    async def klines(self, symbol: str, granularity_min: int, *, start_ms: int | None = None,
                     end_ms: int | None = None,
                     priority: Priority = Priority.MEDIUM) -> list[Kline]:
        """``GET /api/v1/kline/query``: candles of ``granularity_min`` minutes between
        ``start_ms`` and ``end_ms`` (the exchange's window when omitted)."""
        if granularity_min not in KLINE_GRANULARITIES_MIN:
            raise ValueError(f"klines: granularity_min must be one of "
                             f"{KLINE_GRANULARITIES_MIN}, got {granularity_min!r}")
        if start_ms is not None and end_ms is not None and end_ms < start_ms:
            raise ValueError(f"klines: end_ms {end_ms} is before start_ms {start_ms}")
        params = {"symbol": _check_symbol(symbol), "granularity": granularity_min,
                  "from": start_ms, "to": end_ms}
        return await self._call(_KLINES, _KLINES.template, _KLINE_LIST, priority, params=params)

    # ---- account and positions --------------------------------------------------------

    async def account_overview(self, currency: str = "USDT", *,
                               priority: Priority = Priority.MEDIUM) -> AccountOverview:
        """``GET /api/v1/account-overview?currency=``: equity, margin, available balance."""
        return await self._call(_ACCOUNT, _ACCOUNT.template, _ACCOUNT_ONE, priority,
                                params={"currency": _check_symbol(currency, "currency")})

    async def position(self, symbol: str, *, priority: Priority = Priority.MEDIUM) -> Position:
        """``GET /api/v1/position?symbol=``: the position in one contract (qty 0 if flat)."""
        return await self._call(_POSITION, _POSITION.template, _POSITION_ONE, priority,
                                params={"symbol": _check_symbol(symbol)})

    async def positions(self, currency: str | None = None, *,
                        priority: Priority = Priority.MEDIUM) -> list[Position]:
        """``GET /api/v1/positions``: every open position (optionally one settle currency)."""
        params = {"currency": None if currency is None else _check_symbol(currency, "currency")}
        return await self._call(_POSITIONS, _POSITIONS.template, _POSITION_LIST, priority,
                                params=params)

    # ---- orders -----------------------------------------------------------------------

    async def place_order(self, request: OrderRequest, *,
                          priority: Priority = Priority.HIGH) -> OrderAck:
        """``POST /api/v1/orders``. Idempotent by ``request.client_oid``: when the exchange
        says the clientOid exists (300018, e.g. because an earlier attempt was accepted but
        its reply was lost) the existing order is fetched and returned with
        ``existing=True``. A different order under the same clientOid raises
        ``DuplicateClientOidError``."""
        body = msgspec.json.encode(request)
        try:
            return await self._call(_ADD_ORDER, _ADD_ORDER.template, _ORDER_ACK, priority,
                                    body=body)
        except DuplicateClientOidError as duplicate:
            existing = await self._existing_order(request, duplicate, priority)
        self._duplicates_resolved += 1
        log.info("order %s already existed (id %s); returned it", request.client_oid,
                 existing.id)
        return OrderAck(order_id=existing.id, client_oid=existing.client_oid, existing=True)

    async def _existing_order(self, request: OrderRequest, duplicate: DuplicateClientOidError,
                              priority: Priority) -> Order:
        # The order behind a 300018 may not be readable for a moment; look twice.
        for attempt in range(2):
            try:
                existing = await self.order_by_client_oid(request.client_oid, priority=priority)
            except OrderNotFoundError:
                if attempt == 0:
                    await self._sleep(self._backoff_s(0))
                    continue
                raise duplicate from None
            if _same_order(existing, request):
                return existing
            raise DuplicateClientOidError(
                duplicate.code, f"clientOid {request.client_oid} belongs to a different order "
                f"({existing.symbol} {existing.side} {existing.size})", duplicate.http_status,
                duplicate.endpoint) from None
        raise duplicate  # not reached: the loop returns or raises

    async def order_by_client_oid(self, client_oid: str, *,
                                  priority: Priority = Priority.MEDIUM) -> Order:
        """``GET /api/v1/orders/byClientOid?clientOid=``; ``OrderNotFoundError`` if none."""
        found = await self._call(_ORDER_BY_CLIENT_OID, _ORDER_BY_CLIENT_OID.template,
                                 _ORDER_OR_NONE, priority,
                                 params={"clientOid": _check_client_oid(client_oid)})
        if found is None:
            raise OrderNotFoundError("", f"no order with clientOid {client_oid}", 200,
                                     _ORDER_BY_CLIENT_OID.key)
        return found

    async def cancel_order(self, order_id: str, *,
                           priority: Priority = Priority.CRITICAL) -> list[str]:
        """``DELETE /api/v1/orders/{orderId}``; returns the cancelled ids.
        ``NotCancelableError`` when the order is already done."""
        if not isinstance(order_id, str) or not _ORDER_ID.match(order_id):
            raise ValueError(f"cancel_order: orderId must be letters, digits, '_' or '-', "
                             f"got {order_id!r}")
        result = await self._call(_CANCEL_ID, f"/api/v1/orders/{order_id}", _CANCELLED,
                                  priority)
        return result.cancelled_order_ids

    async def cancel_order_by_client_oid(self, symbol: str, client_oid: str, *,
                                         priority: Priority = Priority.CRITICAL) -> str:
        """``DELETE /api/v1/orders/client-order/{clientOid}?symbol=`` (symbol required);
        returns the cancelled clientOid."""
        path = f"/api/v1/orders/client-order/{_check_client_oid(client_oid)}"
        result = await self._call(_CANCEL_CLIENT_OID, path, _CANCELLED_CLIENT_OID, priority,
                                  params={"symbol": _check_symbol(symbol)})
        return result.client_oid

    async def cancel_all_orders(self, symbol: str, *,
                                priority: Priority = Priority.CRITICAL) -> list[str]:
        """``DELETE /api/v3/orders?symbol=``: cancel every open non-stop order of a symbol."""
        result = await self._call(_CANCEL_ALL, _CANCEL_ALL.template, _CANCELLED_OR_NONE,
                                  priority, params={"symbol": _check_symbol(symbol)})
        return [] if result is None else result.cancelled_order_ids

    async def cancel_all_stop_orders(self, symbol: str | None = None, *,
                                     priority: Priority = Priority.CRITICAL) -> list[str]:
        """``DELETE /api/v1/stopOrders[?symbol=]``: cancel untriggered stop orders."""
        params = {"symbol": None if symbol is None else _check_symbol(symbol)}
        result = await self._call(_CANCEL_ALL_STOPS, _CANCEL_ALL_STOPS.template,
                                  _CANCELLED_OR_NONE, priority, params=params)
        return [] if result is None else result.cancelled_order_ids

    async def open_orders(self, symbol: str | None = None, *, page: int = 1,
                          page_size: int = 50,
                          priority: Priority = Priority.MEDIUM) -> Page[Order]:
        """``GET /api/v1/orders?status=active``: one page of open orders."""
        params = {"status": "active", **_page_params(symbol, page, page_size)}
        return await self._call(_LIST_ORDERS, _LIST_ORDERS.template, _ORDER_PAGE, priority,
                                params=params)

    async def stop_orders(self, symbol: str | None = None, *, page: int = 1,
                          page_size: int = 50,
                          priority: Priority = Priority.MEDIUM) -> Page[StopOrder]:
        """``GET /api/v1/stopOrders``: one page of untriggered stop orders."""
        return await self._call(_LIST_STOPS, _LIST_STOPS.template, _STOP_PAGE, priority,
                                params=_page_params(symbol, page, page_size))

    async def all_open_orders(self, symbol: str | None = None, *, page_size: int = 200,
                              priority: Priority = Priority.MEDIUM) -> list[Order]:
        """Every open order, following the pages."""
        return await self._all_pages(
            lambda page: self.open_orders(symbol, page=page, page_size=page_size,
                                          priority=priority), _LIST_ORDERS.key)

    async def all_stop_orders(self, symbol: str | None = None, *, page_size: int = 200,
                              priority: Priority = Priority.MEDIUM) -> list[StopOrder]:
        """Every untriggered stop order, following the pages."""
        return await self._all_pages(
            lambda page: self.stop_orders(symbol, page=page, page_size=page_size,
                                          priority=priority), _LIST_STOPS.key)

    async def _all_pages(self, fetch: Callable[[int], Awaitable[Page[T]]],
                         endpoint: str) -> list[T]:
        items: list[T] = []
        for page_number in range(1, self._config.max_pages + 1):
            page = await fetch(page_number)
            items.extend(page.items)
            if not page.items or page.current_page >= page.total_page:
                return items
        raise MalformedResponseError(
            "", f"pagination did not end within {self._config.max_pages} pages", 200, endpoint)

    # ---- transport --------------------------------------------------------------------

    async def _call(self, endpoint: _Endpoint, path: str, decoder: msgspec.json.Decoder,
                    priority: Priority, *, params: Mapping[str, object] | None = None,
                    body: bytes | None = None) -> Any:
        query = _encode_query(params)
        request_path = f"{path}?{query}" if query else path
        resynced = False
        attempt = 0
        while True:
            attempt += 1
            try:
                data = await self._send(endpoint, request_path, body, priority)
            except TimestampError:
                if resynced:
                    raise
                resynced = True  # the request was refused, so repeating it is safe
                await self.sync_time()
                continue
            except KucoinError as error:
                if not error.retryable or isinstance(error, _NOT_RETRIED) \
                        or attempt >= self._config.max_attempts:
                    raise
                self._retries += 1
                delay_s = self._backoff_s(attempt - 1)
                log.info("%s failed (%s); retry %d in %.3f s", endpoint.key,
                         type(error).__name__, attempt, delay_s)
                await self._sleep(delay_s)
                continue
            return self._decode(decoder, data, endpoint)

    def _decode(self, decoder: msgspec.json.Decoder, data: msgspec.Raw,
                endpoint: _Endpoint) -> Any:
        try:
            return decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            # msgspec names the field: "Expected `int`, got `str` - at `$.size`"
            raise MalformedResponseError("", f"data: {exc}", 200, endpoint.key) from None

    def _backoff_s(self, retry_index: int) -> float:
        base = min(self._config.retry_backoff_s * (2 ** retry_index),
                   self._config.retry_backoff_max_s)
        return base * self._rng.uniform(0.8, 1.2)

    async def _send(self, endpoint: _Endpoint, request_path: str, body: bytes | None,
                    priority: Priority) -> msgspec.Raw:
        if endpoint.signed:
            if self._credentials is None:
                raise KucoinError("", "this endpoint needs credentials", 0, endpoint.key)
            await self._sync_if_stale()
        if self._budget is not None:
            await self._budget.acquire(endpoint.key, priority,
                                       timeout_s=self._config.budget_timeout_s)
        headers = {"Accept": "application/json"}
        body_text = ""
        if body is not None:
            headers["Content-Type"] = "application/json"
            body_text = body.decode()
        if endpoint.signed:
            assert self._credentials is not None
            headers.update(auth_headers(self._credentials, self.server_time_ms(),
                                        endpoint.method, request_path, body_text))
        # encoded=True: the query goes out byte for byte as signed
        url = yarl.URL(self._base_url + request_path, encoded=True)
        self._requests += 1
        try:
            async with self._get_session().request(
                    endpoint.method, url, data=body, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self._config.request_timeout_s),
            ) as response:
                status = response.status
                reply_headers = response.headers
                payload = await response.read()
        except TimeoutError:
            self._transport_errors += 1
            raise TransportError(f"no reply within {self._config.request_timeout_s} s",
                                 endpoint.key) from None
        except (aiohttp.ClientSSLError, aiohttp.InvalidURL) as exc:
            self._transport_errors += 1
            raise TransportError(self._scrub(f"{type(exc).__name__}: {exc}"), endpoint.key,
                                 retryable=False) from None
        except aiohttp.ClientError as exc:
            self._transport_errors += 1
            raise TransportError(self._scrub(f"{type(exc).__name__}: {exc}"),
                                 endpoint.key) from None
        return self._check_reply(endpoint, status, reply_headers, payload)

    def _check_reply(self, endpoint: _Endpoint, status: int, headers: Mapping[str, str],
                     payload: bytes) -> msgspec.Raw:
        try:
            envelope = _ENVELOPE.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError):
            envelope = None
        code = None if envelope is None else str(envelope.code)
        if self._budget is not None:
            self._budget.record_response(endpoint.key, status, headers, code)
        if envelope is None:
            error = (error_from_response("", f"reply is not JSON ({len(payload)} bytes)",
                                         status, endpoint.key, headers)
                     if status >= 400 else
                     MalformedResponseError("", "reply is not a KuCoin JSON envelope", status,
                                            endpoint.key))
            self._count_error(error)
            raise error
        if code != SUCCESS_CODE or not 200 <= status < 300:
            error = error_from_response(code or "", self._scrub(envelope.msg), status,
                                        endpoint.key, headers)
            self._count_error(error)
            # a repeated clientOid is the expected answer to a retried order (resolved by
            # place_order), not a fault
            level = logging.INFO if isinstance(error, DuplicateClientOidError) else logging.WARNING
            log.log(level, "%s", error)
            raise error
        log.debug("%s -> HTTP %d", endpoint.key, status)
        return envelope.data

    def _count_error(self, error: KucoinError) -> None:
        key = error.code or f"HTTP {error.http_status}"
        self._errors_by_code[key] = self._errors_by_code.get(key, 0) + 1

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<hidden>")
        return text


# A duplicate clientOid is answered by place_order; a rate limit is the budget's business.
_NOT_RETRIED = (DuplicateClientOidError, RateLimitedError)


def _same_order(existing: Order, request: OrderRequest) -> bool:
    # The same intent gives the same clientOid, so a match on what was asked for is proof
    # that the existing order is ours; a mismatch means the id was reused for another order.
    return (existing.symbol == request.symbol
            and (request.side is None or existing.side == request.side)
            and (request.size is None or existing.size == request.size))


def _encode_query(params: Mapping[str, object] | None) -> str:
    if not params:
        return ""
    pairs = []
    for name, value in params.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        pairs.append((name, text))
    return urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)


def _page_params(symbol: str | None, page: int, page_size: int) -> dict[str, object]:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError(f"page must be an int >= 1, got {page!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) \
            or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be an int in 1..{MAX_PAGE_SIZE}, got {page_size!r}")
    return {"symbol": None if symbol is None else _check_symbol(symbol),
            "currentPage": page, "pageSize": page_size}


def _check_symbol(symbol: str, field: str = "symbol") -> str:
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise ValueError(f"{field} must be 1-40 letters and digits, got {symbol!r}")
    return symbol


def _check_client_oid(client_oid: str) -> str:
    if not isinstance(client_oid, str) or not is_valid_client_oid(client_oid):
        raise ValueError(f"clientOid must be 1-40 of letters, digits, '_' and '-', "
                         f"got {client_oid!r}")
    return client_oid
