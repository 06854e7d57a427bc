"""The KuCoin futures market-data WebSocket client.

``docs/exchange/market-data.md`` describes the behaviour; kucoin-protocol.md sections 1 and 2
are the protocol. One :class:`MarketDataClient` keeps one connection per group of symbols
(at most ``max_topics_per_connection`` topics each, a symbol counting once per topic) and
hands every new market event to a synchronous ``sink`` exactly once, in arrival order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection, connect

from liveopt.exchange.messages import (
    CANDLE,
    DEPTH5,
    EXECUTION,
    MARKET_TOPICS,
    TICKER_V2,
    Ack,
    CandleUpdate,
    DepthTop5,
    ErrorFrame,
    FrameDecoder,
    FrameRejected,
    MarketEvent,
    PingRequest,
    Pong,
    QuoteTick,
    SubscribeRequest,
    TradeTick,
    Welcome,
)
from liveopt.exchange.tokens import BulletToken, InstanceServer
from liveopt.units import NS_PER_SECOND

_log = logging.getLogger(__name__)

_TOPIC_OF_EVENT: dict[type, str] = {
    QuoteTick: TICKER_V2,
    TradeTick: EXECUTION,
    DepthTop5: DEPTH5,
    CandleUpdate: CANDLE,
}


class FeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`MarketDataClient`.

    Parameters
    ----------
    topics : tuple of str
        Topic prefixes to subscribe for every symbol (a subset of ``MARKET_TOPICS``).
    candle_type : str
        Kline type of the ``limitCandle`` topic (``1min``, ``5min``, ...).
    welcome_timeout_s, ack_timeout_s, open_timeout_s : float
        How long to wait for the welcome frame, for each subscribe ack, and for the
        WebSocket handshake before the attempt counts as failed.
    close_timeout_s : float
        How long a closing handshake may take (bounds how long ``stop`` can take).
    backoff_base_s, backoff_cap_s : float
        Reconnect delay after the n-th consecutive failure is drawn from
        ``[0.5, 1] * min(cap, base * 2**n)``.
    healthy_after_s : float
        A connection that stayed subscribed this long resets the failure count.
    max_topics_per_connection : int
        KuCoin's futures limit (100); symbols are spread over connections to respect it.
    gap_checked_topics : tuple of str
        Topics whose ``sequence`` grows by exactly 1 per message, so that a jump is a gap.
        The ticker and depth sequences are order-book sequences that jump by design.
    trade_id_memory : int
        Recent trade ids remembered per symbol to refuse replayed trades.
    report_gaps : bool
        Whether each gap is also handed to the sink as a :class:`SequenceGap`.
    use_system_proxy : bool
        Whether the connection honours the ``*_proxy`` environment variables.
    """

    topics: tuple[str, ...] = MARKET_TOPICS
    candle_type: str = "1min"
    welcome_timeout_s: float = 5.0
    ack_timeout_s: float = 5.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 1.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    healthy_after_s: float = 60.0
    max_topics_per_connection: int = 100
    gap_checked_topics: tuple[str, ...] = (EXECUTION,)
    trade_id_memory: int = 4096
    report_gaps: bool = True
    use_system_proxy: bool = True

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("FeedConfig.topics: at least one topic is needed")
        for name, topics in (
            ("topics", self.topics),
            ("gap_checked_topics", self.gap_checked_topics),
        ):
            unknown = [topic for topic in topics if topic not in MARKET_TOPICS]
            if unknown:
                raise ValueError(f"FeedConfig.{name}: {unknown} not in {list(MARKET_TOPICS)}")
        if len(set(self.topics)) != len(self.topics):
            raise ValueError(f"FeedConfig.topics: duplicates in {list(self.topics)}")
        if not self.candle_type or not self.candle_type.isalnum():
            raise ValueError(f"FeedConfig.candle_type: {self.candle_type!r} is not a kline type")
        for name in (
            "welcome_timeout_s",
            "ack_timeout_s",
            "open_timeout_s",
            "close_timeout_s",
            "backoff_base_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"FeedConfig.{name}: must be > 0, got {getattr(self, name)}")
        if not self.backoff_cap_s >= self.backoff_base_s:
            raise ValueError("FeedConfig.backoff_cap_s: must be >= backoff_base_s")
        if not self.healthy_after_s >= 0:
            raise ValueError("FeedConfig.healthy_after_s: must be >= 0")
        if self.max_topics_per_connection < len(self.topics):
            raise ValueError(
                "FeedConfig.max_topics_per_connection: must allow one symbol on every topic"
            )
        if self.trade_id_memory < 1:
            raise ValueError("FeedConfig.trade_id_memory: must be >= 1")


class SequenceGap(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Messages of a gap-checked topic were lost: ``missing`` sequences before ``received``."""

    topic: str
    symbol: str
    expected: int
    received: int
    missing: int
    ts_ns: int


FeedEvent = MarketEvent | SequenceGap


class FeedStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of a :class:`MarketDataClient` (a snapshot; the dicts are copies).

    ``events`` counts delivered events by class name; ``rejected`` counts unusable frames
    by kind (malformed per topic, unknown type/topic/subject, error frames, replies that
    match no request). ``duplicates`` are repeated sequences or trade ids, ``stale`` are
    older sequences; ``gaps``/``missing`` count jumps and the messages they skipped.
    ``last_frame_ns`` is the injected clock's reading at the last frame received.
    """

    frames: int
    events: dict[str, int]
    duplicates: int
    stale: int
    gaps: int
    missing: int
    sequence_resets: int
    rejected: dict[str, int]
    ping_timeouts: int
    connect_failures: int
    reconnects: int
    sink_errors: int
    internal_errors: int
    last_frame_ns: int | None
    connected: bool


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The wait before reconnect attempt ``attempt`` (0 after a healthy connection).

    Exponential in ``attempt`` up to ``cap_s``, with the upper half jittered so that many
    clients dropped together do not reconnect in step.
    """
    if attempt < 0:
        raise ValueError(f"backoff_delay: attempt must be >= 0, got {attempt}")
    ceiling = cap_s if attempt >= 64 else min(cap_s, base_s * 2.0**attempt)
    return ceiling * (0.5 + 0.5 * rng.random())


def subscription_topics(symbols: Iterable[str], config: FeedConfig) -> list[str]:
    """The topics to subscribe for ``symbols``: one per topic prefix, symbols comma-joined."""
    symbols = list(symbols)
    topics = []
    for prefix in config.topics:
        parts = [f"{s}_{config.candle_type}" if prefix == CANDLE else s for s in symbols]
        topics.append(f"{prefix}:{','.join(parts)}")
    return topics


def connect_url(endpoint: str, token: str, connect_id: str) -> str:
    """``endpoint`` (as returned by the bullet call) with the token and connectId added."""
    scheme, netloc, path, query, fragment = urlsplit(endpoint)
    params = [*parse_qsl(query), ("token", token), ("connectId", connect_id)]
    return urlunsplit((scheme, netloc, path, urlencode(params), fragment))


# ---------------------------------------------------------------------------------------
# Sequence tracking
# ---------------------------------------------------------------------------------------


class _Stream:
    __slots__ = ("last_seq", "last_ts_ns", "recent_id_order", "recent_ids", "seen_at_last_ts")

    def __init__(self) -> None:
        self.last_seq: int | None = None
        self.last_ts_ns = 0
        self.recent_ids: set[str] = set()
        self.recent_id_order: deque[str] = deque()
        self.seen_at_last_ts: set[CandleUpdate] = set()


class SequenceTracker:
    """Decide, per (topic, symbol), whether an event is new; count what is not.

    Rules (they also hold across reconnects, because the state outlives a connection):

    - a sequence equal to the last delivered one, or a remembered trade id, is a duplicate;
    - a lower sequence is stale, unless its timestamp is newer than the last delivered
      event's: then the exchange restarted its numbering (a reset), and it is accepted;
    - on a gap-checked topic a sequence more than one above the last is a gap;
    - candles carry no sequence: an update older than the last push, or identical to one
      already delivered at the same push time, is dropped.
    """

    def __init__(self, *, gap_checked_topics: Iterable[str], trade_id_memory: int) -> None:
        self._gap_checked = frozenset(gap_checked_topics)
        self._trade_id_memory = trade_id_memory
        self._streams: dict[tuple[str, str], _Stream] = {}
        self.duplicates = 0
        self.stale = 0
        self.gaps = 0
        self.missing = 0
        self.resets = 0

    def admit(self, event: MarketEvent) -> tuple[bool, SequenceGap | None]:
        """Whether ``event`` is new, and the gap it reveals (if any)."""
        topic = _TOPIC_OF_EVENT[type(event)]
        if isinstance(event, CandleUpdate):
            key = (topic, f"{event.symbol}_{event.timeframe}")
        else:
            key = (topic, event.symbol)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
        if isinstance(event, CandleUpdate):
            return self._admit_candle(stream, event), None
        last = stream.last_seq
        # A lower sequence that is also newer than anything delivered cannot be a replay:
        # the exchange restarted its numbering, and the old trade ids mean nothing now.
        reset = last is not None and event.sequence < last and event.ts_ns > stream.last_ts_ns
        if reset:
            self.resets += 1
            stream.recent_ids.clear()
            stream.recent_id_order.clear()
        elif isinstance(event, TradeTick) and event.trade_id in stream.recent_ids:
            self.duplicates += 1
            return False, None
        gap = None
        if last is not None and not reset:
            if event.sequence == last:
                self.duplicates += 1
                return False, None
            if event.sequence < last:
                self.stale += 1
                return False, None
            if topic in self._gap_checked and event.sequence > last + 1:
                missing = event.sequence - last - 1
                self.gaps += 1
                self.missing += missing
                gap = SequenceGap(
                    topic=topic,
                    symbol=event.symbol,
                    expected=last + 1,
                    received=event.sequence,
                    missing=missing,
                    ts_ns=event.ts_ns,
                )
        stream.last_seq = event.sequence
        stream.last_ts_ns = max(stream.last_ts_ns, event.ts_ns)
        if isinstance(event, TradeTick):
            self._remember_trade(stream, event.trade_id)
        return True, gap

    def _admit_candle(self, stream: _Stream, event: CandleUpdate) -> bool:
        if event.push_ts_ns < stream.last_ts_ns:
            self.stale += 1
            return False
        if event.push_ts_ns > stream.last_ts_ns:
            stream.last_ts_ns = event.push_ts_ns
            stream.seen_at_last_ts.clear()
        elif event in stream.seen_at_last_ts:
            self.duplicates += 1
            return False
        stream.seen_at_last_ts.add(event)
        return True

    def _remember_trade(self, stream: _Stream, trade_id: str) -> None:
        stream.recent_ids.add(trade_id)
        stream.recent_id_order.append(trade_id)
        if len(stream.recent_id_order) > self._trade_id_memory:
            stream.recent_ids.discard(stream.recent_id_order.popleft())


# ---------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------


class _SessionEnded(Exception):
    """A connection is unusable (no welcome, refused subscribe, dead link, expired token).

    ``kind`` is a short fixed name for counting and log-once purposes."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class _RedactingLogger(logging.LoggerAdapter):
    # websockets logs the request line at DEBUG level, and the URL carries the token.
    def __init__(self, logger: logging.Logger, secret: str) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.pop("extra", None)
            self.logger.log(level, "%s", _redact(text, self._secret), **kwargs)


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "<token>") if secret else text


class _Shard:
    """One connection's share of the symbols, and whether it is currently subscribed."""

    def __init__(self, index: int, symbols: tuple[str, ...], topics: list[str]) -> None:
        self.index = index
        self.symbols = symbols
        self.topics = topics
        self.connected = False


class _Session:
    """The state of one open connection."""

    def __init__(self, ws: ClientConnection, token: str) -> None:
        loop = asyncio.get_running_loop()
        self.ws = ws
        self.token = token
        self.welcome: asyncio.Future[str] = loop.create_future()
        self.pending: dict[str, asyncio.Future[None]] = {}
        self.failure: str | None = None

    def expect(self, request_id: str) -> asyncio.Future[None]:
        """A future resolved by the reply (ack or pong) to ``request_id``."""
        reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = reply
        return reply

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason


class MarketDataClient:
    """Stream KuCoin futures market data for ``symbols`` into ``sink``.

    Parameters
    ----------
    symbols : iterable of str
        Contract symbols, e.g. ``["XBTUSDTM", "ETHUSDTM"]``.
    token_provider : callable
        ``async () -> BulletToken``; called for every (re)connect, since a token is
        good for one connection (``KucoinFuturesRest.bullet_public`` in production).
    sink : callable
        Receives each new event (``TradeTick``, ``QuoteTick``, ``DepthTop5``,
        ``CandleUpdate``, and ``SequenceGap`` if ``config.report_gaps``), synchronously,
        in arrival order, never twice.
    config : FeedConfig
        Topics, timeouts, backoff and limits.
    clock_ns : callable
        Monotonic clock in ns: frame times and the healthy-connection period.
    rng : random.Random
        Source of backoff jitter, connectIds and endpoint choice.
    sleep : callable
        ``async (seconds) -> None`` used for the reconnect backoff waits.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        token_provider: Callable[[], Awaitable[BulletToken]],
        sink: Callable[[FeedEvent], None],
        config: FeedConfig = FeedConfig(),  # noqa: B008 (frozen, so sharing is safe)
        clock_ns: Callable[[], int] = time.monotonic_ns,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        symbols = tuple(symbols)
        if not symbols:
            raise ValueError("MarketDataClient.symbols: at least one symbol is needed")
        for symbol in symbols:
            if not symbol or any(char in symbol for char in ",: "):
                raise ValueError(f"MarketDataClient.symbols: {symbol!r} is not a symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"MarketDataClient.symbols: duplicates in {list(symbols)}")
        self._config = config
        self._token_provider = token_provider
        self._sink = sink
        self._clock_ns = clock_ns
        self._rng = rng if rng is not None else random.Random(0)
        self._sleep = sleep
        self._decoder = FrameDecoder()
        self._encode = msgspec.json.Encoder().encode
        self._tracker = SequenceTracker(
            gap_checked_topics=config.gap_checked_topics,
            trade_id_memory=config.trade_id_memory,
        )
        per_connection = config.max_topics_per_connection // len(config.topics)
        self._shards = [
            _Shard(i, group, subscription_topics(group, config))
            for i, group in enumerate(
                symbols[start : start + per_connection]
                for start in range(0, len(symbols), per_connection)
            )
        ]
        self._stop = asyncio.Event()
        self._request_ids = 0
        self._frames = 0
        self._events: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self._logged_kinds: set[str] = set()
        self._ping_timeouts = 0
        self._connect_failures = 0
        self._reconnects = 0
        self._sink_errors = 0
        self._internal_errors = 0
        self._last_frame_ns: int | None = None

    @property
    def connections(self) -> int:
        """How many connections the symbols need (each within the topic limit)."""
        return len(self._shards)

    def stats(self) -> FeedStats:
        """A snapshot of the counters."""
        tracker = self._tracker
        return FeedStats(
            frames=self._frames,
            events=dict(self._events),
            duplicates=tracker.duplicates,
            stale=tracker.stale,
            gaps=tracker.gaps,
            missing=tracker.missing,
            sequence_resets=tracker.resets,
            rejected=dict(self._rejected),
            ping_timeouts=self._ping_timeouts,
            connect_failures=self._connect_failures,
            reconnects=self._reconnects,
            sink_errors=self._sink_errors,
            internal_errors=self._internal_errors,
            last_frame_ns=self._last_frame_ns,
            connected=all(shard.connected for shard in self._shards),
        )

    def stop(self) -> None:
        """Make :meth:`run` return soon; safe to call from the sink or another task."""
        self._stop.set()

    async def run(self) -> None:
        """Connect, subscribe and stream until :meth:`stop`, reconnecting as needed."""
        tasks = [asyncio.create_task(self._run_shard(shard)) for shard in self._shards]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- connection lifecycle ------------------------------------------------------------

    async def _run_shard(self, shard: _Shard) -> None:
        failures = 0
        first = True
        while not self._stop.is_set():
            if not first:
                self._reconnects += 1
            first = False
            live_ns = await self._connect_unless_stopped(shard)
            if self._stop.is_set():
                break
            if live_ns > 0 and live_ns >= self._config.healthy_after_s * NS_PER_SECOND:
                failures = 0
            delay = backoff_delay(
                failures,
                base_s=self._config.backoff_base_s,
                cap_s=self._config.backoff_cap_s,
                rng=self._rng,
            )
            failures += 1
            _log.debug("connection %d: reconnecting in %.3f s", shard.index, delay)
            await self._sleep_unless_stopped(delay)

    async def _connect_unless_stopped(self, shard: _Shard) -> int:
        # A stop normally ends the connection from inside (a clean close), but a token
        # request or handshake that hangs must not hold run() up: it is cancelled.
        attempt = asyncio.create_task(self._connect_once(shard))
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({attempt, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not attempt.done():
                await asyncio.wait({attempt}, timeout=self._config.close_timeout_s)
        finally:
            stopper.cancel()
            attempt.cancel()
        try:
            return await attempt
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise  # run() itself was cancelled
            return 0

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()

    async def _connect_once(self, shard: _Shard) -> int:
        # Returns how long (ns) the connection was subscribed; 0 if it never got there.
        live_since: list[int] = []
        try:
            token = await self._token_provider()
        except Exception as error:  # any provider failure is retried after the backoff
            self._connect_failures += 1
            self._log_once("token_failed", "bullet token request failed: %s", type(error).__name__)
            return 0
        try:
            server = self._rng.choice(token.instance_servers)
            connect_id = f"liveopt-{shard.index}-{self._rng.getrandbits(48):012x}"
            async with connect(
                connect_url(server.endpoint, token.token, connect_id),
                open_timeout=self._config.open_timeout_s,
                close_timeout=self._config.close_timeout_s,
                ping_interval=None,  # KuCoin wants JSON pings (see _keep_alive)
                proxy=True if self._config.use_system_proxy else None,
                logger=_RedactingLogger(logging.getLogger("websockets.client"), token.token),
            ) as ws:
                await self._serve(_Session(ws, token.token), shard, server, live_since)
        except _SessionEnded as ended:
            if not self._stop.is_set():
                self._log_once(f"ended:{ended.kind}", "connection %d: %s", shard.index, ended)
        except (OSError, TimeoutError, websockets.WebSocketException) as error:
            if not self._stop.is_set():
                text = _redact(f"{type(error).__name__}: {error}", token.token)
                self._log_once(
                    f"error:{type(error).__name__}", "connection %d: %s", shard.index, text
                )
        except Exception:  # a bug must not end the feed: log it, count it, reconnect
            self._internal_errors += 1
            if "internal_error" not in self._logged_kinds:
                self._logged_kinds.add("internal_error")
                _log.exception("market-data connection %d failed unexpectedly", shard.index)
        finally:
            shard.connected = False
        if not live_since:
            self._connect_failures += 0 if self._stop.is_set() else 1
            return 0
        return self._clock_ns() - live_since[0]

    async def _serve(
        self, session: _Session, shard: _Shard, server: InstanceServer, live_since: list[int]
    ) -> None:
        reader = asyncio.create_task(self._read(session))
        stopper = asyncio.create_task(self._stop.wait())
        tasks: list[asyncio.Task[Any]] = [reader, stopper]
        try:
            await self._await_reply(
                session, session.welcome, reader, stopper, self._config.welcome_timeout_s, "welcome"
            )
            for topic in shard.topics:
                request_id = self._next_id("sub")
                ack = session.expect(request_id)
                await session.ws.send(self._encode(SubscribeRequest(id=request_id, topic=topic)))
                await self._await_reply(
                    session,
                    ack,
                    reader,
                    stopper,
                    self._config.ack_timeout_s,
                    f"ack for {topic.partition(':')[0]}",
                )
            live_since.append(self._clock_ns())
            shard.connected = True
            keep_alive = asyncio.create_task(self._keep_alive(session, server))
            tasks.append(keep_alive)
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if stopper.done():
                return
            if keep_alive.done():
                keep_alive.result()  # raises why the link is considered dead
            raise _SessionEnded(session.failure or "the server closed the connection", "closed")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _await_reply(
        self,
        session: _Session,
        reply: asyncio.Future[Any],
        reader: asyncio.Task[None],
        stopper: asyncio.Task[bool],
        timeout_s: float,
        what: str,
    ) -> None:
        await asyncio.wait(
            {reply, reader, stopper}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if stopper.done():
            raise _SessionEnded("stopped", "stopped")
        if reply.done():
            reply.result()  # raises the error frame's _SessionEnded, if any
            return
        if reader.done():
            raise _SessionEnded(session.failure or f"closed while waiting for the {what}", "closed")
        raise _SessionEnded(f"no {what} within {timeout_s} s", "timeout")

    async def _keep_alive(self, session: _Session, server: InstanceServer) -> None:
        # Ping every pingInterval; a pong missing for pingTimeout means the link is dead.
        interval_s = server.ping_interval / 1000
        timeout_s = server.ping_timeout / 1000
        while True:
            await asyncio.sleep(interval_s)
            ping_id = self._next_id("ping")
            pong = session.expect(ping_id)
            await session.ws.send(self._encode(PingRequest(id=ping_id)))
            try:
                await asyncio.wait_for(pong, timeout_s)
            except TimeoutError:
                self._ping_timeouts += 1
                raise _SessionEnded(
                    f"no pong within {timeout_s} s (dead link)", "dead_link"
                ) from None
            finally:
                session.pending.pop(ping_id, None)

    def _next_id(self, kind: str) -> str:
        self._request_ids += 1
        return f"{kind}-{self._request_ids}"

    # -- frames ----------------------------------------------------------------------------

    async def _read(self, session: _Session) -> None:
        try:
            async for frame in session.ws:
                self._on_frame(session, frame)
                if session.failure is not None or self._stop.is_set():
                    return
        except websockets.ConnectionClosed:
            return

    def _on_frame(self, session: _Session, frame: str | bytes) -> None:
        self._frames += 1
        self._last_frame_ns = self._clock_ns()
        decoded = self._decoder.decode(frame)
        match decoded:
            case TradeTick() | QuoteTick() | DepthTop5() | CandleUpdate():
                self._on_event(decoded)
            case Welcome():
                if not session.welcome.done():
                    session.welcome.set_result(decoded.id)
            case Ack() | Pong():
                reply = session.pending.pop(decoded.id, None)
                if reply is None:
                    self._reject("unmatched_reply", f"{type(decoded).__name__} id {decoded.id!r}")
                elif not reply.done():
                    reply.set_result(None)
            case ErrorFrame():
                self._on_error_frame(session, decoded)
            case FrameRejected():
                self._reject(decoded.kind, decoded.reason)

    def _on_error_frame(self, session: _Session, error: ErrorFrame) -> None:
        message = _redact(error.message, session.token)
        self._reject("error_frame", f"code {error.code}: {message}")
        reason = f"error frame {error.code}: {message}"
        request = session.pending.pop(error.id, None) if error.id is not None else None
        if request is not None and not request.done():
            request.set_exception(_SessionEnded(reason, "refused"))
        elif "expired" in message.lower():
            # "token is expired": the connection is no good; reconnect with a fresh token.
            session.fail(reason)

    def _on_event(self, event: MarketEvent) -> None:
        is_new, gap = self._tracker.admit(event)
        if gap is not None:
            # Every gap is counted and reported; only the first is a warning in the log.
            level = logging.DEBUG if "gap" in self._logged_kinds else logging.WARNING
            self._logged_kinds.add("gap")
            _log.log(
                level,
                "sequence gap on %s:%s: %d missing before %d",
                gap.topic,
                gap.symbol,
                gap.missing,
                gap.received,
            )
            if self._config.report_gaps:
                self._deliver(gap)
        if is_new:
            name = type(event).__name__
            self._events[name] = self._events.get(name, 0) + 1
            self._deliver(event)

    def _deliver(self, event: FeedEvent) -> None:
        try:
            self._sink(event)
        except Exception:  # the consumer's bug must not kill the feed; it is counted
            self._sink_errors += 1
            if "sink_error" not in self._logged_kinds:
                self._logged_kinds.add("sink_error")
                _log.exception("market-data sink raised (logged once; counted in stats)")

    def _reject(self, kind: str, reason: str) -> None:
        self._rejected[kind] = self._rejected.get(kind, 0) + 1
        self._log_once(kind, "market-data frame rejected (%s): %s", kind, reason)

    def _log_once(self, kind: str, message: str, *args: object) -> None:
        if kind not in self._logged_kinds:
            self._logged_kinds.add(kind)
            _log.warning(message + " (further ones are only counted)", *args)
