"""Market sources of the simulator: the seeded generator and the file replay."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from liveopt.data.columns import Candles, Trades
from liveopt.sim.market import (
    GeneratedMarket,
    GeneratorConfig,
    MarketBook,
    MarketSource,
    MarketTrade,
    RegimeParams,
    ReplayMarket,
)

START_NS = 1_700_000_000_000_000_000
SECOND = 1_000_000_000


def _run(source: MarketSource, seconds: float, start_ns: int = START_NS, chunks: int = 7):
    source.start(start_ns)
    events = []
    end = start_ns + int(seconds * SECOND)
    for k in range(1, chunks + 1):
        events.extend(source.events_until(start_ns + (end - start_ns) * k // chunks))
    return events


def _generated(seed: int, config: GeneratorConfig | None = None) -> GeneratedMarket:
    return GeneratedMarket("XBTUSDTM", seed, 60_000.0, 0.1, config)


def test_same_seed_gives_byte_identical_events_whatever_the_query_times() -> None:
    first = _run(_generated(11), 120, chunks=3)
    second = _run(_generated(11), 120, chunks=17)
    encode = msgspec.json.Encoder().encode
    assert encode(first) == encode(second)
    assert encode(first) != encode(_run(_generated(12), 120, chunks=3))


def test_generated_books_are_never_crossed_and_have_positive_spread_and_sizes() -> None:
    events = _run(_generated(3), 300)
    books = [e for e in events if isinstance(e, MarketBook)]
    assert len(books) > 1000
    for book in books:
        bid_prices = [p for p, _ in book.bids]
        ask_prices = [p for p, _ in book.asks]
        assert bid_prices == sorted(bid_prices, reverse=True)
        assert ask_prices == sorted(ask_prices)
        assert ask_prices[0] - bid_prices[0] >= 1
        assert all(isinstance(s, int) and s >= 1 for _, s in book.bids + book.asks)


def test_trades_take_the_ladder_from_the_best_price_outwards() -> None:
    events = _run(_generated(5), 120)
    last_book = None
    previous: dict[str, int] = {}
    checked = 0
    for event in events:
        if isinstance(event, MarketBook):
            last_book = event
            previous = {}
        elif last_book is not None:
            levels = last_book.asks if event.side == "buy" else last_book.bids
            prices = [p for p, _ in levels]
            assert event.price_ticks in prices
            # The first print of a step takes the best level, later ones the same or worse.
            if event.side not in previous:
                assert event.price_ticks == prices[0]
            else:
                assert prices.index(event.price_ticks) >= prices.index(previous[event.side])
            previous[event.side] = event.price_ticks
            assert isinstance(event.size, int) and event.size >= 1
            checked += 1
    assert checked > 100


def test_trade_sizes_are_heavy_tailed_positive_integers() -> None:
    busy = RegimeParams(name="busy", vol_bps_per_sqrt_s=0.5, trades_per_s=30.0,
                        spread_ticks=1.0, mean_duration_s=1e9)
    events = _run(_generated(8, GeneratorConfig(regimes=(busy,), levels=3)), 200)
    sizes = np.array([e.size for e in events if isinstance(e, MarketTrade)])
    assert len(sizes) > 1000
    assert sizes.min() >= 1
    # A Pareto tail: the largest trades are many times the typical one.
    assert np.percentile(sizes, 99.5) > 4 * np.median(sizes)


def test_regimes_switch_and_turbulence_widens_the_spread() -> None:
    calm = RegimeParams(name="calm", vol_bps_per_sqrt_s=0.2, trades_per_s=1.0,
                        spread_ticks=1.0, mean_duration_s=5.0)
    wild = RegimeParams(name="turbulent", vol_bps_per_sqrt_s=3.0, trades_per_s=1.0,
                        spread_ticks=8.0, mean_duration_s=5.0)
    market = _generated(21, GeneratorConfig(regimes=(calm, wild), levels=3))
    market.start(START_NS)
    spreads: dict[str, list[int]] = {"calm": [], "turbulent": []}
    for k in range(1, 3001):
        for event in market.events_until(START_NS + k * 200_000_000):
            if isinstance(event, MarketBook):
                spreads[market.regime].append(event.asks[0][0] - event.bids[0][0])
    assert market.regime_switches >= 10
    assert min(len(v) for v in spreads.values()) > 100
    assert np.mean(spreads["turbulent"]) > 2 * np.mean(spreads["calm"])


def test_turbulent_regime_moves_the_mid_more_than_calm() -> None:
    def path_std(vol: float) -> float:
        regime = RegimeParams(name="x", vol_bps_per_sqrt_s=vol, trades_per_s=0.0,
                              spread_ticks=1.0, mean_duration_s=1e9)
        events = _run(_generated(4, GeneratorConfig(regimes=(regime,), levels=2)), 200)
        mids = np.array([(e.bids[0][0] + e.asks[0][0]) / 2 for e in events
                         if isinstance(e, MarketBook)])
        return float(np.std(np.diff(np.log(mids))))

    assert path_std(3.0) > 5 * path_std(0.3)


def test_generator_refuses_queries_before_start_and_a_second_start() -> None:
    market = _generated(1)
    with pytest.raises(RuntimeError, match="start"):
        market.events_until(START_NS)
    market.start(START_NS)
    with pytest.raises(RuntimeError, match="already started"):
        market.start(START_NS)


def test_bad_generator_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="step_ns"):
        GeneratorConfig(step_ns=0)
    with pytest.raises(ValueError, match="start_price"):
        GeneratedMarket("XBTUSDTM", 1, 0.0, 0.1)


def _trades(ts_s: list[float], prices: list[float], sizes: list[float],
            sides: list[int]) -> Trades:
    return Trades(
        ts=np.array([int(t * SECOND) for t in ts_s], dtype=np.int64),
        price=np.array(prices, dtype=np.float64), size=np.array(sizes, dtype=np.float64),
        side=np.array(sides, dtype=np.int8), source="test")


def test_replayed_trades_start_at_the_start_time_and_honour_the_speed() -> None:
    data = _trades([1000.0, 1002.0, 1010.0], [100.0, 100.5, 99.9], [3, 1, 2], [1, -1, 1])
    replay = ReplayMarket("XBTUSDTM", data, 0.1, speed=2.0)
    replay.start(START_NS)
    first = replay.events_until(START_NS)
    trades = [e for e in first if isinstance(e, MarketTrade)]
    assert [(t.ts_ns, t.price_ticks, t.size, t.side) for t in trades] == [
        (START_NS, 1000, 3, "buy")]
    rest = replay.events_until(START_NS + 10 * SECOND)
    trades = [e for e in rest if isinstance(e, MarketTrade)]
    assert [(t.ts_ns - START_NS, t.price_ticks, t.side) for t in trades] == [
        (1 * SECOND, 1005, "sell"), (5 * SECOND, 999, "buy")]
    assert replay.exhausted


def test_replay_lays_a_ladder_that_touches_each_trade() -> None:
    data = _trades([0.0, 1.0], [100.0, 101.0], [1, 1], [1, -1])
    replay = ReplayMarket("XBTUSDTM", data, 0.1, levels=4)
    events = _run(replay, 5)
    buy_book, sell_book = [e for e in events if isinstance(e, MarketBook)]
    assert buy_book.asks[0][0] == 1000 and buy_book.bids[0][0] == 999
    assert sell_book.bids[0][0] == 1010 and sell_book.asks[0][0] == 1011
    assert len(buy_book.bids) == 4 and len(buy_book.asks) == 4


def test_replay_converts_base_currency_sizes_to_lots() -> None:
    data = _trades([0.0], [100.0], [0.0123], [1])
    replay = ReplayMarket("XBTUSDTM", data, 0.1, multiplier=0.001)
    trade = next(e for e in _run(replay, 1) if isinstance(e, MarketTrade))
    assert trade.size == 12


def test_candles_expand_into_open_low_high_close_for_a_rising_bar() -> None:
    minute = 60 * SECOND
    candles = Candles(
        ts=np.array([0, minute], dtype=np.int64),
        open=np.array([100.0, 103.0]), high=np.array([104.0, 103.5]),
        low=np.array([99.0, 101.0]), close=np.array([103.0, 101.5]),
        volume=np.array([40.0, 8.0]), source="test")
    replay = ReplayMarket("XBTUSDTM", candles, 0.1)
    trades = [e for e in _run(replay, 120) if isinstance(e, MarketTrade)]
    assert [t.price_ticks for t in trades] == [1000, 990, 1040, 1030, 1030, 1035, 1010, 1015]
    assert [t.ts_ns - START_NS for t in trades[:4]] == [0, 15 * SECOND, 30 * SECOND,
                                                        45 * SECOND]
    assert [t.size for t in trades] == [10, 10, 10, 10, 2, 2, 2, 2]


def test_replay_reads_a_trades_csv_file(tmp_path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text("ts,price,size,side\n1700000000000,100.1,2,buy\n1700000001000,100.2,1,sell\n")
    replay = ReplayMarket.from_file(path, "XBTUSDTM", 0.1)
    trades = [e for e in _run(replay, 2) if isinstance(e, MarketTrade)]
    assert [(t.price_ticks, t.size, t.side) for t in trades] == [(1001, 2, "buy"),
                                                                  (1002, 1, "sell")]


def test_replay_of_an_empty_file_is_refused() -> None:
    with pytest.raises(ValueError, match="no rows"):
        ReplayMarket("XBTUSDTM", _trades([], [], [], []), 0.1)
