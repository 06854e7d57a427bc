"""The simulator's WebSocket side: bullet tokens, the connection protocol and the fan-out.

Protocol (kucoin-protocol.md sections 1 and 2): the client connects to the bullet
endpoint with ``?token=...&connectId=...`` (other query parameters are ignored); the
server checks the token, sends ``welcome`` (id = connectId), answers JSON ``ping`` with
``pong`` (same id) and RFC 6455 pings with pongs, acknowledges ``subscribe`` and
``unsubscribe`` only when ``response`` is true (id echoed as a string), and sends
``error`` frames for a bad topic (400), a bad or expired token (401), an unsupported
message type (415), too many topics or uplink messages (509, the latter then closes) and an
idle connection (408, then closes). Market-data frames are encoded once and queued to every
subscriber; each client has a bounded queue and a client that lets it fill up is
disconnected, so a slow reader never blocks the market loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

Clock = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]

TICKER_V2 = "/contractMarket/tickerV2"
TICKER_V1 = "/contractMarket/ticker"
EXECUTION = "/contractMarket/execution"
LEVEL2 = "/contractMarket/level2"
DEPTH5 = "/contractMarket/level2Depth5"
CANDLE = "/contractMarket/limitCandle"
TOPIC_PREFIXES = (TICKER_V2, TICKER_V1, EXECUTION, LEVEL2, DEPTH5, CANDLE)

# Candle type strings (kucoin-protocol.md 2.4) -> granularity in minutes.
CANDLE_TYPES: dict[str, int] = {
    "1min": 1, "5min": 5, "15min": 15, "30min": 30, "1hour": 60, "2hour": 120,
    "4hour": 240, "8hour": 480, "12hour": 720, "1day": 1440, "1week": 10080,
}

# Error frame codes. Only 415 is attested by the reference; the others are the codes it
# suggests for a simulator (section 1.4), and 408 is this simulator's choice for idleness.
CODE_BAD_TOPIC = 400
CODE_BAD_TOKEN = 401
CODE_IDLE = 408
CODE_UNSUPPORTED_TYPE = 415
CODE_LIMIT_EXCEEDED = 509


# --- frames -------------------------------------------------------------------------------

class UplinkMessage(msgspec.Struct, frozen=True, rename="camel"):
    """A client -> server message (ping, subscribe, unsubscribe)."""

    type: str
    id: str | int | None = None
    topic: str | None = None
    private_channel: bool = False
    response: bool = False


class WelcomeFrame(msgspec.Struct, frozen=True, kw_only=True):
    """``{"id": connectId, "type": "welcome"}``."""

    id: str
    type: str = "welcome"


class PongFrame(msgspec.Struct, frozen=True, kw_only=True):
    """``{"id": <ping id>, "type": "pong"}``."""

    id: str
    type: str = "pong"


class AckFrame(msgspec.Struct, frozen=True, kw_only=True):
    """``{"id": <request id as str>, "type": "ack"}``."""

    id: str
    type: str = "ack"


class ErrorFrame(msgspec.Struct, frozen=True, kw_only=True):
    """``{"id", "type": "error", "code": int, "data": message}``."""

    id: str
    type: str = "error"
    code: int
    data: str


class MessageFrame(msgspec.Struct, frozen=True, kw_only=True):
    """A sequenced data push; ``data`` is one of the core's wire payload Structs."""

    type: str = "message"
    topic: str
    subject: str
    sn: int
    data: Any


class UnsequencedMessageFrame(msgspec.Struct, frozen=True, kw_only=True):
    """A data push without ``sn`` (candles, as in the reference sample)."""

    type: str = "message"
    topic: str
    subject: str
    data: Any


_uplink_decoder = msgspec.json.Decoder(UplinkMessage)
_encoder = msgspec.json.Encoder()


def encode_frame(frame: msgspec.Struct) -> str:
    """The JSON text of a frame."""
    return _encoder.encode(frame).decode()


# --- tokens ---------------------------------------------------------------------------------

class IssuedToken(msgspec.Struct, frozen=True):
    """A bullet token the server handed out."""

    private: bool
    expires_ns: int


class TokenRegistry:
    """Tokens issued by the bullet endpoints; only these may connect, until they expire."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_ns = int(ttl_s * 1e9)
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, private: bool, now_ns: int) -> str:
        """A fresh opaque token valid for the configured lifetime."""
        # Drop expired ones on the way so the table stays small in long runs.
        self._tokens = {t: v for t, v in self._tokens.items() if v.expires_ns > now_ns}
        token = secrets.token_urlsafe(48)
        self._tokens[token] = IssuedToken(private, now_ns + self._ttl_ns)
        return token

    def check(self, token: str | None, now_ns: int) -> str | None:
        """None when the token may connect, else the reason it may not."""
        if not token:
            return "token is required"
        issued = self._tokens.get(token)
        if issued is None:
            return "token is invalid"
        if issued.expires_ns <= now_ns:
            return "token is expired"
        return None


# --- topics ---------------------------------------------------------------------------------

class TopicError(ValueError):
    """A topic the server cannot serve; the message says why."""


TopicKey = tuple[str, str]  # (prefix, argument): ("/contractMarket/tickerV2", "XBTUSDTM")


def parse_topic(topic: str, symbols: frozenset[str]) -> list[TopicKey]:
    """Split ``prefix:SYM1,SYM2`` into one key per symbol, validating each."""
    prefix, sep, args = topic.partition(":")
    if not sep or prefix not in TOPIC_PREFIXES:
        raise TopicError(f"topic {topic!r} is not supported")
    keys: list[TopicKey] = []
    for arg in args.split(","):
        symbol = arg
        if prefix == CANDLE:
            symbol, underscore, kind = arg.rpartition("_")
            if not underscore or kind not in CANDLE_TYPES:
                raise TopicError(f"topic {topic!r}: candle type must be one of "
                                 f"{', '.join(CANDLE_TYPES)} after '_'")
        if symbol not in symbols:
            raise TopicError(f"topic {topic!r}: unknown symbol {symbol!r}")
        keys.append((prefix, arg))
    return keys


# --- connections ----------------------------------------------------------------------------

class HubCounts(msgspec.Struct, frozen=True):
    """Connection and frame counters of the WebSocket side."""

    connections_opened: int = 0
    connections_open: int = 0
    rejected_tokens: int = 0
    slow_disconnects: int = 0
    idle_disconnects: int = 0
    uplink_limit_disconnects: int = 0
    bad_uplink_messages: int = 0
    frames_queued: int = 0


class ClientConnection:
    """One WebSocket client: its topics, its bounded send queue and its writer task."""

    def __init__(self, ws: web.WebSocketResponse, connect_id: str, queue_size: int,
                 clock: Clock, sleep: Sleep) -> None:
        self.ws = ws
        self.connect_id = connect_id
        self.topics: set[TopicKey] = set()
        self._queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=queue_size)
        self._clock = clock
        self._sleep = sleep
        self._closing = False
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._closer: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        """True once the connection is being closed."""
        return self._closing

    def offer(self, text: str, delay_s: float = 0.0) -> bool:
        """Queue a frame; False (and nothing queued) when the queue is full. A closing
        connection silently takes nothing (it is not a slow client)."""
        if self._closing:
            return True
        due_ns = self._clock() + int(delay_s * 1e9) if delay_s > 0 else 0
        try:
            self._queue.put_nowait((due_ns, text))
        except asyncio.QueueFull:
            return False
        return True

    def close_soon(self, code: int = 1000, message: bytes = b"") -> None:
        """Close from synchronous code (the market loop never awaits a client)."""
        if self._closing:
            return
        self._closing = True
        self._closer = asyncio.get_running_loop().create_task(self._close(code, message))

    async def close_after_flush(self, code: int = 1000, message: bytes = b"") -> None:
        """Send what is queued (e.g. an error frame), then close."""
        if self._closing:
            return
        self._closing = True
        if not self.ws.closed:
            with contextlib.suppress(TimeoutError):  # a stuck peer must not hold the close
                await asyncio.wait_for(self._queue.join(), timeout=1.0)
        await self._close(code, message)

    async def _close(self, code: int, message: bytes) -> None:
        self._writer.cancel()
        if not self.ws.closed:
            await self.ws.close(code=code, message=message)

    async def stop(self) -> None:
        """Cancel the writer and wait for any pending close."""
        self._closing = True
        self._writer.cancel()
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)

    async def _write_loop(self) -> None:
        while True:
            due_ns, text = await self._queue.get()
            try:
                if due_ns:
                    wait_ns = due_ns - self._clock()
                    if wait_ns > 0:
                        await self._sleep(wait_ns / 1e9)
                if self.ws.closed:
                    return
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return  # the peer went away; the reader notices and cleans up
            finally:
                self._queue.task_done()


class WebSocketHub:
    """All connected clients, their subscriptions, and the fan-out of frames."""

    def __init__(self, *, symbols: tuple[str, ...], tokens: TokenRegistry, clock: Clock,
                 sleep: Sleep, queue_size: int, max_topics: int, uplink_limit: int,
                 uplink_window_s: float, idle_timeout_s: float) -> None:
        self.symbols = frozenset(symbols)
        self.tokens = tokens
        self._clock = clock
        self._sleep = sleep
        self._queue_size = queue_size
        self._max_topics = max_topics
        self._uplink_limit = uplink_limit
        self._uplink_window_ns = int(uplink_window_s * 1e9)
        self.idle_timeout_s = idle_timeout_s
        self._subscribers: dict[TopicKey, set[ClientConnection]] = {}
        self.connections: set[ClientConnection] = set()
        self._counts: dict[str, int] = dict.fromkeys(HubCounts.__struct_fields__, 0)

    def counts(self) -> HubCounts:
        """A snapshot of the counters."""
        return HubCounts(**{**self._counts, "connections_open": len(self.connections)})

    def subscribed(self, key: TopicKey) -> bool:
        """True when at least one client listens to ``key``."""
        return bool(self._subscribers.get(key))

    def subscribed_keys(self, prefix: str) -> list[str]:
        """The arguments (symbols, or ``SYM_type`` for candles) with listeners."""
        return [arg for (p, arg), subs in self._subscribers.items() if p == prefix and subs]

    def publish(self, key: TopicKey, text: str, delay_s: float = 0.0) -> int:
        """Queue one encoded frame to every subscriber of ``key``; returns how many got it.
        A subscriber whose queue is full is disconnected."""
        subscribers = self._subscribers.get(key)
        if not subscribers:
            return 0
        delivered = 0
        for client in list(subscribers):
            if client.offer(text, delay_s):
                delivered += 1
            else:
                self._counts["slow_disconnects"] += 1
                log.warning("closing slow WebSocket client %s (send queue full)",
                            client.connect_id)
                self._forget(client)
                client.close_soon(1008, b"send queue full")
        self._counts["frames_queued"] += delivered
        return delivered

    def drop_all(self) -> int:
        """Close every connection (a fault switch); returns how many were closed."""
        clients = list(self.connections)
        for client in clients:
            self._forget(client)
            client.close_soon(1001, b"connection dropped by fault injection")
        return len(clients)

    async def close_all(self) -> None:
        """Close every connection and wait (server shutdown)."""
        clients = list(self.connections)
        for client in clients:
            self._forget(client)
            client.close_soon(1001, b"server shutting down")
        await asyncio.gather(*(client.stop() for client in clients), return_exceptions=True)

    def _forget(self, client: ClientConnection) -> None:
        self.connections.discard(client)
        for key in client.topics:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(client)
                if not subscribers:
                    del self._subscribers[key]

    def _send(self, client: ClientConnection, frame: msgspec.Struct) -> None:
        if not client.offer(encode_frame(frame)):
            self._counts["slow_disconnects"] += 1
            self._forget(client)
            client.close_soon(1008, b"send queue full")

    def _send_error(self, client: ClientConnection, reply_id: str, code: int,
                    message: str) -> None:
        self._send(client, ErrorFrame(id=reply_id, code=code, data=message))

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The aiohttp handler of the WebSocket endpoint."""
        ws = web.WebSocketResponse(autoping=True)  # autoping answers RFC 6455 pings
        await ws.prepare(request)
        connect_id = request.query.get("connectId") or secrets.token_hex(8)
        client = ClientConnection(ws, connect_id, self._queue_size, self._clock, self._sleep)
        self._counts["connections_opened"] += 1
        problem = self.tokens.check(request.query.get("token"), self._clock())
        if problem is not None:
            self._counts["rejected_tokens"] += 1
            self._send_error(client, connect_id, CODE_BAD_TOKEN, problem)
            await client.close_after_flush(4001, b"bad token")
            await client.stop()
            return ws
        self._send(client, WelcomeFrame(id=connect_id))
        self.connections.add(client)
        try:
            await self._read_loop(client)
        finally:
            self._forget(client)
            if not client.closing:
                await client.close_after_flush()
            await client.stop()
        return ws

    async def _read_loop(self, client: ClientConnection) -> None:
        recent: deque[int] = deque()
        while not client.closing:
            try:
                msg = await client.ws.receive(timeout=self.idle_timeout_s)
            except TimeoutError:
                self._counts["idle_disconnects"] += 1
                self._send_error(client, client.connect_id, CODE_IDLE,
                                 f"no message from the client for {self.idle_timeout_s:g} s")
                await client.close_after_flush(1000, b"idle")
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                            WSMsgType.ERROR):
                return
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            now_ns = self._clock()
            recent.append(now_ns)
            while recent and now_ns - recent[0] >= self._uplink_window_ns:
                recent.popleft()
            if len(recent) > self._uplink_limit:
                self._counts["uplink_limit_disconnects"] += 1
                self._send_error(client, client.connect_id, CODE_LIMIT_EXCEEDED,
                                 f"exceeded {self._uplink_limit} messages per "
                                 f"{self._uplink_window_ns / 1e9:g} s")
                await client.close_after_flush(1008, b"uplink limit")
                return
            self._on_message(client, msg.data)

    def _on_message(self, client: ClientConnection, raw: str | bytes) -> None:
        try:
            message = _uplink_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            self._counts["bad_uplink_messages"] += 1
            self._send_error(client, client.connect_id, CODE_BAD_TOPIC,
                             f"malformed message: {exc}")
            return
        reply_id = "" if message.id is None else str(message.id)
        if message.type == "ping":
            self._send(client, PongFrame(id=reply_id))
        elif message.type in ("subscribe", "unsubscribe"):
            self._on_subscription(client, message, reply_id)
        else:
            self._counts["bad_uplink_messages"] += 1
            self._send_error(client, reply_id, CODE_UNSUPPORTED_TYPE, "type is not supported")

    def _on_subscription(self, client: ClientConnection, message: UplinkMessage,
                         reply_id: str) -> None:
        try:
            if message.private_channel:
                raise TopicError(f"topic {message.topic!r}: private channels are not served")
            keys = parse_topic(message.topic or "", self.symbols)
        except TopicError as exc:
            self._counts["bad_uplink_messages"] += 1
            self._send_error(client, reply_id, CODE_BAD_TOPIC, str(exc))
            return
        if message.type == "subscribe":
            if len(client.topics | set(keys)) > self._max_topics:
                self._send_error(client, reply_id, CODE_LIMIT_EXCEEDED,
                                 f"exceeded max topics per connection ({self._max_topics})")
                return
            for key in keys:
                client.topics.add(key)
                self._subscribers.setdefault(key, set()).add(client)
        else:
            for key in keys:
                client.topics.discard(key)
                subscribers = self._subscribers.get(key)
                if subscribers is not None:
                    subscribers.discard(client)
                    if not subscribers:
                        del self._subscribers[key]
        if message.response:
            self._send(client, AckFrame(id=reply_id))
