"""KuCoin futures WebSocket frames: wire shapes, and their conversion to liveopt events.

kucoin-protocol.md sections 1.2-1.4 (control frames) and 2.1-2.4 (the four market topics)
are the specification. A frame is decoded once: first its envelope, with ``data`` kept as
raw bytes, then ``data`` with the decoder of the topic's message type. Every decoder is
built once, in :class:`FrameDecoder`'s constructor.

Nothing here raises on bad input: :meth:`FrameDecoder.decode` returns a
:class:`FrameRejected` that names the kind of problem and the offending field.
"""

from __future__ import annotations

import math

import msgspec

from liveopt.units import NS_PER_MS, NS_PER_SECOND

TICKER_V2 = "/contractMarket/tickerV2"
EXECUTION = "/contractMarket/execution"
DEPTH5 = "/contractMarket/level2Depth5"
CANDLE = "/contractMarket/limitCandle"
MARKET_TOPICS: tuple[str, ...] = (TICKER_V2, EXECUTION, DEPTH5, CANDLE)
"""The topic prefixes this module decodes, in the default subscription order."""

# The subjects each topic is pushed with; the candle subject changed name over time
# (kucoin-protocol.md 2.4), so both are accepted.
_SUBJECTS: dict[str, tuple[str, ...]] = {
    TICKER_V2: ("tickerV2",),
    EXECUTION: ("match",),
    DEPTH5: ("level2",),
    CANDLE: ("candle.stick", "trade.candles.update"),
}

# Rejection kinds: a closed set, so that counters keyed by kind stay small.
MALFORMED_FRAME = "malformed_frame"
UNKNOWN_TYPE = "unknown_type"
UNKNOWN_TOPIC = "unknown_topic"
UNKNOWN_SUBJECT = "unknown_subject"
MALFORMED_DATA: dict[str, str] = {
    TICKER_V2: "malformed_tickerV2",
    EXECUTION: "malformed_execution",
    DEPTH5: "malformed_level2Depth5",
    CANDLE: "malformed_limitCandle",
}


# ---------------------------------------------------------------------------------------
# Wire shapes (field names exactly as on the wire)
# ---------------------------------------------------------------------------------------


class WireEnvelope(msgspec.Struct, frozen=True):
    """Every frame: ``type`` plus whichever of the other fields that type uses.

    ``data`` stays undecoded until the topic is known; ``code`` and ``data`` (a string)
    carry an error frame's reason. Unknown fields (``userId``, a pong's ``timestamp``)
    are ignored.
    """

    type: str
    id: str | int | None = None
    topic: str | None = None
    subject: str | None = None
    sn: int | None = None
    code: int | str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")


class WireTickerV2(msgspec.Struct, frozen=True):
    """``/contractMarket/tickerV2`` data: prices are strings, sizes lots, ``ts`` ns."""

    symbol: str
    sequence: int
    bestBidSize: int
    bestBidPrice: str
    bestAskPrice: str
    bestAskSize: int
    ts: int


class WireExecution(msgspec.Struct, frozen=True):
    """``/contractMarket/execution`` data in either documented spelling.

    Current: ``size`` (filled lots) and ``ts`` (ns), string ``price``. The 2023 docs:
    ``matchSize`` (filled lots), ``size`` (the *unfilled* quantity), ``time`` (ns) and a
    numeric ``price``.
    """

    symbol: str
    sequence: int
    side: str
    price: str | int | float
    tradeId: str
    size: int | None = None
    matchSize: int | None = None
    ts: int | None = None
    time: int | None = None
    takerOrderId: str | None = None
    makerOrderId: str | None = None


class WireDepth5(msgspec.Struct, frozen=True):
    """``/contractMarket/level2Depth5`` data: ``[priceStr, sizeLots]`` levels, ms times."""

    bids: list[tuple[str, int]]
    asks: list[tuple[str, int]]
    sequence: int
    timestamp: int
    ts: int | None = None


class WireCandle(msgspec.Struct, frozen=True):
    """``/contractMarket/limitCandle`` data: 7 strings and the push time in ms.

    ``candles`` is (start seconds, open, CLOSE, HIGH, LOW, volume, turnover).
    """

    symbol: str
    candles: tuple[str, str, str, str, str, str, str]
    time: int


# ---------------------------------------------------------------------------------------
# Control frames and liveopt events
# ---------------------------------------------------------------------------------------


class Welcome(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The server's first frame; ``id`` is the connectId the client sent."""

    id: str


class Pong(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The answer to a client ping, carrying the ping's ``id``."""

    id: str


class Ack(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The confirmation of a (un)subscribe sent with ``response: true``."""

    id: str


class ErrorFrame(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A server error; ``id`` is the request's id when the error answers one."""

    id: str | None
    code: int | None
    message: str


class TradeTick(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One public trade. ``side`` is the taker's: +1 buy, -1 sell; ``size`` in lots."""

    symbol: str
    ts_ns: int
    price: float
    size: int
    side: int
    sequence: int
    trade_id: str


class QuoteTick(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Best bid and ask (sizes in lots)."""

    symbol: str
    ts_ns: int
    bid: float
    bid_size: int
    ask: float
    ask_size: int
    sequence: int


class DepthTop5(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The five best levels of each side, best first (sizes in lots)."""

    symbol: str
    ts_ns: int
    bid_prices: tuple[float, ...]
    bid_sizes: tuple[int, ...]
    ask_prices: tuple[float, ...]
    ask_sizes: tuple[int, ...]
    sequence: int


class CandleUpdate(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The current state of a candle (pushed repeatedly while it is open).

    ``volume`` is passed on as sent, although the exchange documents it as unreliable.
    """

    symbol: str
    timeframe: str
    start_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float
    push_ts_ns: int


class FrameRejected(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A frame that could not be used: ``kind`` is one of a small fixed set of names
    (e.g. ``malformed_execution``, ``unknown_topic``), ``reason`` names the field."""

    kind: str
    reason: str
    topic: str | None = None


ControlFrame = Welcome | Pong | Ack | ErrorFrame
MarketEvent = TradeTick | QuoteTick | DepthTop5 | CandleUpdate
DecodedFrame = ControlFrame | MarketEvent | FrameRejected


class _Invalid(ValueError):
    """A field failed a check after decoding; the message names it."""


def _number(value: str | int | float, field: str, *, positive: bool) -> float:
    # Wire prices are decimal strings (the 2023 execution shape sent JSON numbers).
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Invalid(f"{field}: {value[:40]!r} is not a number") from None
    else:
        number = float(value)
    if not math.isfinite(number) or number < 0.0 or (positive and number == 0.0):
        wanted = "a positive" if positive else "a non-negative"
        raise _Invalid(f"{field}: {number!r} is not {wanted} finite number")
    return number


def _lots(value: int, field: str, *, positive: bool) -> int:
    if value < 0 or (positive and value == 0):
        wanted = "positive" if positive else "non-negative"
        raise _Invalid(f"{field}: {value} lots is not {wanted}")
    return value


def _same_symbol(symbol: str, target: str) -> str:
    # A server may echo a comma-joined (multi-symbol) topic on each message.
    if symbol != target and symbol not in target.split(","):
        raise _Invalid(f"symbol: {symbol[:40]!r} does not match the topic's {target[:40]!r}")
    return symbol


def split_topic(topic: str) -> tuple[str, str]:
    """Split ``/contractMarket/tickerV2:XBTUSDTM`` into its prefix and its subject part."""
    prefix, sep, rest = topic.partition(":")
    return prefix, rest if sep else ""


class FrameDecoder:
    """Decode raw WebSocket frames into control frames, events or rejections.

    One instance per client; every msgspec decoder is built here, once.
    """

    def __init__(self) -> None:
        self._envelope = msgspec.json.Decoder(WireEnvelope)
        self._error_text = msgspec.json.Decoder(str | int | None)
        self._data = {
            TICKER_V2: msgspec.json.Decoder(WireTickerV2),
            EXECUTION: msgspec.json.Decoder(WireExecution),
            DEPTH5: msgspec.json.Decoder(WireDepth5),
            CANDLE: msgspec.json.Decoder(WireCandle),
        }
        self._convert = {
            TICKER_V2: self._quote,
            EXECUTION: self._trade,
            DEPTH5: self._depth,
            CANDLE: self._candle,
        }

    def decode(self, frame: bytes | str) -> DecodedFrame:
        """Decode one frame; never raises for bad input (returns :class:`FrameRejected`)."""
        try:
            envelope = self._envelope.decode(frame)
        except msgspec.DecodeError as error:  # ValidationError is a DecodeError
            return FrameRejected(kind=MALFORMED_FRAME, reason=str(error)[:200])
        kind = envelope.type
        if kind == "message":
            return self._message(envelope)
        if kind in ("welcome", "pong", "ack"):
            if envelope.id is None:
                return FrameRejected(kind=MALFORMED_FRAME, reason=f"{kind}: `id` is missing")
            frame_id = str(envelope.id)
            if kind == "welcome":
                return Welcome(id=frame_id)
            return Pong(id=frame_id) if kind == "pong" else Ack(id=frame_id)
        if kind == "error":
            return self._error(envelope)
        return FrameRejected(kind=UNKNOWN_TYPE, reason=f"type {kind[:40]!r} is not handled")

    def _error(self, envelope: WireEnvelope) -> DecodedFrame:
        text: object = ""
        if len(envelope.data):
            try:
                text = self._error_text.decode(envelope.data)
            except msgspec.DecodeError:
                text = "<unreadable error data>"
        code = envelope.code
        if isinstance(code, str):
            code = int(code) if code.isdigit() else None
        return ErrorFrame(
            id=None if envelope.id is None else str(envelope.id),
            code=code,
            message="" if text is None else str(text)[:200],
        )

    def _message(self, envelope: WireEnvelope) -> DecodedFrame:
        topic = envelope.topic
        if topic is None:
            return FrameRejected(kind=MALFORMED_FRAME, reason="message: `topic` is missing")
        prefix, target = split_topic(topic)
        decoder = self._data.get(prefix)
        if decoder is None:
            return FrameRejected(
                kind=UNKNOWN_TOPIC, reason=f"topic {prefix[:60]!r} is not handled", topic=topic
            )
        if envelope.subject not in _SUBJECTS[prefix]:
            return FrameRejected(
                kind=UNKNOWN_SUBJECT,
                reason=f"subject {envelope.subject!r} is not a {prefix} subject",
                topic=topic,
            )
        malformed = MALFORMED_DATA[prefix]
        if not target:
            return FrameRejected(kind=malformed, reason="topic: no symbol after ':'", topic=topic)
        if not len(envelope.data):
            return FrameRejected(kind=malformed, reason="`data` is missing", topic=topic)
        try:
            wire = decoder.decode(envelope.data)
            return self._convert[prefix](wire, target)
        except msgspec.DecodeError as error:
            return FrameRejected(kind=malformed, reason=f"data: {error}"[:200], topic=topic)
        except _Invalid as error:
            return FrameRejected(kind=malformed, reason=f"data.{error}"[:200], topic=topic)

    # Converters: wire struct + the topic's part after ':' -> event (raise _Invalid).

    @staticmethod
    def _quote(wire: WireTickerV2, target: str) -> QuoteTick:
        return QuoteTick(
            symbol=_same_symbol(wire.symbol, target),
            ts_ns=wire.ts,
            bid=_number(wire.bestBidPrice, "bestBidPrice", positive=False),
            bid_size=_lots(wire.bestBidSize, "bestBidSize", positive=False),
            ask=_number(wire.bestAskPrice, "bestAskPrice", positive=False),
            ask_size=_lots(wire.bestAskSize, "bestAskSize", positive=False),
            sequence=wire.sequence,
        )

    @staticmethod
    def _trade(wire: WireExecution, target: str) -> TradeTick:
        if wire.side == "buy":
            side = 1
        elif wire.side == "sell":
            side = -1
        else:
            raise _Invalid(f"side: {wire.side[:20]!r} is neither 'buy' nor 'sell'")
        # In the 2023 shape `size` is what was left unfilled; `matchSize` is the trade.
        if wire.matchSize is not None:
            size, size_field = wire.matchSize, "matchSize"
        elif wire.size is not None:
            size, size_field = wire.size, "size"
        else:
            raise _Invalid("size: neither `size` nor `matchSize` is present")
        ts_ns = wire.ts if wire.ts is not None else wire.time
        if ts_ns is None:
            raise _Invalid("ts: neither `ts` nor `time` is present")
        if not wire.tradeId:
            raise _Invalid("tradeId: empty")
        return TradeTick(
            symbol=_same_symbol(wire.symbol, target),
            ts_ns=ts_ns,
            price=_number(wire.price, "price", positive=True),
            size=_lots(size, size_field, positive=True),
            side=side,
            sequence=wire.sequence,
            trade_id=wire.tradeId,
        )

    @staticmethod
    def _depth(wire: WireDepth5, target: str) -> DepthTop5:
        def side(
            levels: list[tuple[str, int]], name: str
        ) -> tuple[tuple[float, ...], tuple[int, ...]]:
            # Fast path: convert and check the side in bulk (a NaN or inf makes the sum
            # non-finite); only a bad side is walked level by level for the named error.
            # Naming every field up front cost more than the decode itself (depth5 frames:
            # 15 us against 11 us for json.loads plus float()).
            try:
                prices = tuple([float(price) for price, _ in levels])
            except (TypeError, ValueError):
                prices = ()
            sizes = tuple([size for _, size in levels])
            if len(prices) != len(levels) or (levels and not (
                math.isfinite(sum(prices)) and min(prices) > 0.0 and min(sizes) >= 0
            )):
                for i, (price, size) in enumerate(levels):
                    _number(price, f"{name}[{i}][0]", positive=True)
                    _lots(size, f"{name}[{i}][1]", positive=False)
            return prices, sizes

        bid_prices, bid_sizes = side(wire.bids, "bids")
        ask_prices, ask_sizes = side(wire.asks, "asks")
        if "," in target:
            raise _Invalid(f"topic: {target[:40]!r} names several symbols; data has none")
        return DepthTop5(
            symbol=target,
            ts_ns=wire.timestamp * NS_PER_MS,
            bid_prices=bid_prices,
            bid_sizes=bid_sizes,
            ask_prices=ask_prices,
            ask_sizes=ask_sizes,
            sequence=wire.sequence,
        )

    @staticmethod
    def _candle(wire: WireCandle, target: str) -> CandleUpdate:
        symbol, sep, timeframe = target.rpartition("_")
        if not sep or not symbol or not timeframe:
            raise _Invalid(f"topic: {target[:40]!r} is not SYMBOL_TYPE")
        start_s, open_, close, high, low, volume, turnover = wire.candles
        try:
            start = int(start_s)
        except ValueError:
            raise _Invalid(f"candles[0]: {start_s[:20]!r} is not whole seconds") from None
        o = _number(open_, "candles[1] (open)", positive=False)
        c = _number(close, "candles[2] (close)", positive=False)
        h = _number(high, "candles[3] (high)", positive=False)
        lo = _number(low, "candles[4] (low)", positive=False)
        # A violated range means the fields were sent in another order (OHLC instead of
        # the documented OCHL), which would silently corrupt every indicator downstream.
        if h < max(o, c, lo) or lo > min(o, c):
            raise _Invalid(f"candles: high {h} / low {lo} do not bound open {o} / close {c}")
        return CandleUpdate(
            symbol=_same_symbol(wire.symbol, symbol),
            timeframe=timeframe,
            start_ns=start * NS_PER_SECOND,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=_number(volume, "candles[5] (volume)", positive=False),
            turnover=_number(turnover, "candles[6] (turnover)", positive=False),
            push_ts_ns=wire.time * NS_PER_MS,
        )


# ---------------------------------------------------------------------------------------
# Client requests (kucoin-protocol.md 1.3, 1.4)
# ---------------------------------------------------------------------------------------


class PingRequest(msgspec.Struct, frozen=True, kw_only=True):
    """``{"id": ..., "type": "ping"}``: the application-level keep-alive."""

    id: str
    type: str = "ping"


class SubscribeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A subscribe asking for an ack (``response: true``)."""

    id: str
    topic: str
    type: str = "subscribe"
    privateChannel: bool = False
    response: bool = True
