"""Market-data frame decoding: ``FrameDecoder`` against ``json.loads`` on the same frames.

The frames are the simulator's own: its exchange core (``build_exchange``, seeded generator,
XBTUSDTM) is advanced in 100 ms steps of market time, and every public event it emits is
wrapped and encoded exactly as the server sends it (``MessageFrame`` /
``UnsequencedMessageFrame`` + ``encode_frame``): ``execution`` trades and ``tickerV2``
quotes from the event stream, and one ``level2Depth5`` and one ``limitCandle`` (1min)
frame per step. ``FRAMES`` of each topic are kept (text, as the WebSocket delivers them).

Per topic, two timed loops over the same frames:

(a) ``FrameDecoder.decode(frame)``: envelope, typed ``data`` decoder, conversion to the
    event (floats, ns, validation), what the feed does per frame;
(b) baseline: ``json.loads(frame)`` into dicts, plus ``float()`` of the price fields
    (tickerV2: best bid and ask; execution: price; depth5: the ten level prices;
    candle: open, close, high, low), i.e. the least a dict-based client does.

A test first checks that both read the same prices from every frame. The report gives ns
per frame (minimum and median round) and (a)/(b).

Run::

    .venv/bin/pytest benchmarks/bench_exchange.py --benchmark-enable -p no:cacheprovider -q

Under ``--benchmark-disable`` (the default in ``pyproject.toml``) every case runs once on a
few frames and no table is printed.
"""

from __future__ import annotations

import json
import os

import pytest

from liveopt.exchange.messages import (
    CANDLE,
    DEPTH5,
    EXECUTION,
    TICKER_V2,
    CandleUpdate,
    DepthTop5,
    FrameDecoder,
    QuoteTick,
    TradeTick,
)
from liveopt.sim.config import SimConfig
from liveopt.sim.exchange import BboEvent, TradeEvent
from liveopt.sim.server import build_exchange
from liveopt.sim.ws import MessageFrame, UnsequencedMessageFrame, encode_frame

SYMBOL = "XBTUSDTM"
SEED = 20240601
START_NS = 1_700_000_000_000_000_000
STEP_NS = 100_000_000
FRAMES = 2000  # per topic, with --benchmark-enable
TINY_FRAMES = 20  # per topic, under --benchmark-disable
TOPICS = (TICKER_V2, EXECUTION, DEPTH5, CANDLE)
SHORT = {TICKER_V2: "tickerV2", EXECUTION: "execution", DEPTH5: "level2Depth5",
         CANDLE: "limitCandle"}

# (topic, implementation) -> (min, median) seconds for one pass over the topic's frames
_RESULTS: dict[tuple[str, str], tuple[float, float]] = {}
_COUNTS: dict[str, int] = {}


def _enabled(config: pytest.Config) -> bool:
    return not (config.getoption("benchmark_disable")
                and not config.getoption("benchmark_enable"))


def simulator_frames(per_topic: int) -> dict[str, list[str]]:
    """``per_topic`` frames of each market topic, as the simulator's server encodes them."""
    exchange = build_exchange(SimConfig(seed=SEED, symbols=(SYMBOL,)), START_NS)
    frames: dict[str, list[str]] = {topic: [] for topic in TOPICS}
    now = START_NS
    last_depth = None
    while min(len(f) for f in frames.values()) < per_topic:
        now += STEP_NS
        for event in exchange.advance(now):
            if isinstance(event, TradeEvent):
                topic, subject = EXECUTION, "match"
            elif isinstance(event, BboEvent):
                topic, subject = TICKER_V2, "tickerV2"
            else:
                continue
            frames[topic].append(encode_frame(MessageFrame(
                topic=f"{topic}:{SYMBOL}", subject=subject, sn=event.sequence,
                data=event.data)))
        depth = exchange.depth5(SYMBOL)
        if (depth.bids, depth.asks) != last_depth:  # pushed only when changed
            last_depth = (depth.bids, depth.asks)
            frames[DEPTH5].append(encode_frame(MessageFrame(
                topic=f"{DEPTH5}:{SYMBOL}", subject="level2", sn=depth.timestamp, data=depth)))
        frames[CANDLE].append(encode_frame(UnsequencedMessageFrame(
            topic=f"{CANDLE}:{SYMBOL}_1min", subject="candle.stick",
            data=exchange.candle(SYMBOL, 1, now))))
    return {topic: f[:per_topic] for topic, f in frames.items()}


@pytest.fixture(scope="module")
def frames(request) -> dict[str, list[str]]:
    per_topic = FRAMES if _enabled(request.config) else TINY_FRAMES
    result = simulator_frames(per_topic)
    _COUNTS.update({topic: len(f) for topic, f in result.items()})
    return result


# ---------------------------------------------------------------------------------------
# The two implementations, one pass over a topic's frames each
# ---------------------------------------------------------------------------------------


def _decode_all(decoder: FrameDecoder, frames: list[str]) -> list[object]:
    decode = decoder.decode
    return [decode(frame) for frame in frames]


def _baseline_ticker(frames: list[str]) -> list[object]:
    out = []
    for frame in frames:
        message = json.loads(frame)
        data = message["data"]
        out.append((float(data["bestBidPrice"]), float(data["bestAskPrice"]), message))
    return out


def _baseline_execution(frames: list[str]) -> list[object]:
    out = []
    for frame in frames:
        message = json.loads(frame)
        out.append((float(message["data"]["price"]), message))
    return out


def _baseline_depth(frames: list[str]) -> list[object]:
    out = []
    for frame in frames:
        message = json.loads(frame)
        data = message["data"]
        out.append(([float(level[0]) for level in data["bids"]],
                    [float(level[0]) for level in data["asks"]], message))
    return out


def _baseline_candle(frames: list[str]) -> list[object]:
    out = []
    for frame in frames:
        message = json.loads(frame)
        candle = message["data"]["candles"]
        out.append((float(candle[1]), float(candle[2]), float(candle[3]), float(candle[4]),
                    message))
    return out


BASELINES = {TICKER_V2: _baseline_ticker, EXECUTION: _baseline_execution,
             DEPTH5: _baseline_depth, CANDLE: _baseline_candle}


def _prices(event: object) -> tuple[float, ...]:
    match event:
        case QuoteTick():
            return (event.bid, event.ask)
        case TradeTick():
            return (event.price,)
        case DepthTop5():
            return (*event.bid_prices, *event.ask_prices)
        case CandleUpdate():
            return (event.open, event.close, event.high, event.low)
    raise AssertionError(f"not a market event: {event!r}")


def _baseline_prices(topic: str, row: tuple) -> tuple[float, ...]:
    if topic == DEPTH5:
        return (*row[0], *row[1])
    return tuple(row[:-1])


# ---------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------


def test_both_read_the_same_prices_from_every_frame(frames):
    decoder = FrameDecoder()
    for topic in TOPICS:
        events = _decode_all(decoder, frames[topic])
        rows = BASELINES[topic](frames[topic])
        assert len(events) == len(rows) == len(frames[topic]) > 0
        for event, row in zip(events, rows, strict=True):
            assert _prices(event) == _baseline_prices(topic, row)


def _record(key: tuple[str, str], benchmark) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        _RESULTS[key] = (stats.stats.min, stats.stats.median)


@pytest.mark.parametrize("topic", TOPICS, ids=[SHORT[t] for t in TOPICS])
def test_a_frame_decoder(benchmark, frames, topic):
    decoder = FrameDecoder()
    events = benchmark.pedantic(_decode_all, args=(decoder, frames[topic]), rounds=50,
                                warmup_rounds=2)
    assert len(events) == len(frames[topic])
    assert not any(type(e).__name__ == "FrameRejected" for e in events)
    _record((topic, "liveopt"), benchmark)


@pytest.mark.parametrize("topic", TOPICS, ids=[SHORT[t] for t in TOPICS])
def test_b_json_loads_baseline(benchmark, frames, topic):
    rows = benchmark.pedantic(BASELINES[topic], args=(frames[topic],), rounds=50,
                              warmup_rounds=2)
    assert len(rows) == len(frames[topic])
    _record((topic, "json"), benchmark)


def _report_lines() -> list[str]:
    lines = [
        f"{os.cpu_count()} CPUs, 1-min load {os.getloadavg()[0]:.2f}; frames per topic: "
        + ", ".join(f"{SHORT[t]} {_COUNTS.get(t, 0):,}" for t in TOPICS),
        f"{'topic':<14}{'FrameDecoder ns':>16}{'json ns':>10}{'ratio':>8}"
        f"{'FrameDecoder ns':>18}{'json ns':>10}{'ratio':>8}",
        f"{'':<14}{'(min)':>16}{'(min)':>10}{'':>8}{'(median)':>18}{'(median)':>10}",
    ]
    for topic in TOPICS:
        if (topic, "liveopt") not in _RESULTS or (topic, "json") not in _RESULTS:
            continue
        n = _COUNTS[topic]
        (a_min, a_med), (b_min, b_med) = _RESULTS[(topic, "liveopt")], _RESULTS[(topic, "json")]
        lines.append(
            f"{SHORT[topic]:<14}{a_min / n * 1e9:>16.0f}{b_min / n * 1e9:>10.0f}"
            f"{a_min / b_min:>7.2f}x{a_med / n * 1e9:>18.0f}{b_med / n * 1e9:>10.0f}"
            f"{a_med / b_med:>7.2f}x")
    lines.append("ratio = FrameDecoder / baseline (below 1: FrameDecoder is faster); the "
                 "decoder also validates and builds a typed event")
    return lines


@pytest.fixture(scope="module", autouse=True)
def _report(terminal_sections):
    yield
    if _RESULTS:  # empty under --benchmark-disable
        terminal_sections["market-data frame decoding: FrameDecoder vs json.loads"] = (
            _report_lines())
