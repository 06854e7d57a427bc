"""The indicator bank's per-candle update against TA-Lib stream handles and talipp.

All cases run over the same live candles after the same history (10k bars of history, then
20k live bars of a seeded geometric random walk: s0 = 67000, sigma 0.08 % per bar, seed
20240601, as in ``performance-anchors.md`` §1, with OHLCV built around it), and report the
cost per candle of:

(a) the liveopt bank, all 12 default indicators, driven from inside a compiled loop
    (``bank_replay_nb`` over the live bars, i.e. ``IndicatorBank.replay`` without its
    input validation); also once on 20k real FTX BTC-PERP 1m candles (``a_ftx``);
(b) the same bank, one ``IndicatorBank.update`` call per candle from Python; and for
    context its floor, ``bank_update_nb`` called per candle with prebuilt arguments (the
    candle written into the bank's scratch arrays): Numba dispatch without the wrapper;
(c) TA-Lib 0.8 stream handles (opened once on the history, then ``.update`` per bar) for
    the 10 default indicators TA-Lib has (RSI14, WILLR14, MACD12/26/9, EMA50, EMA200,
    STOCH14/3/3, BBANDS20/2, OBV, ATR14, ADX14; not AO and KDJ), and for the anchors' 4
    (RSI14, EMA20, MACD12/26/9, BB20/2);
(d) talipp ``.add`` for the same 10, and for the anchors' 4;
(e) a liveopt bank of the anchors' 4, driven from a compiled loop.

Before anything is timed, the bank's final values are checked against the TA-Lib handles
(1e-9 relative) on both data sets, so every case does the same work. Stateful cases start
each round from freshly warmed state (``benchmark.pedantic`` setup); times are the median
over rounds divided by the number of live candles.

Run with::

    .venv/bin/pytest benchmarks/bench_indicator_bank.py --benchmark-enable -p no:cacheprovider -q

The table is printed in the terminal summary (``benchmarks/conftest.py``).
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import talib
from talib import stream
from talipp import indicators as tp
from talipp.ohlcv import OHLCV

import liveopt.indicators as I
from liveopt._core.indicators import bank_replay_nb, bank_update_nb
from liveopt.data.readers import read_candles

SEED = 20240601
S0 = 67_000.0
SIGMA = 0.0008
N_HISTORY = 10_000
N_LIVE = 20_000
TIMEFRAME = "1m"
# The real data sits in shared/data beside the checkout (as in CI).
FTX_CANDLES = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/nautilus_ftx_btcperp_1m/btc-perp-20211231-20220201_1m.csv"
)
RTOL = 1e-9

RSI14 = I.indicator("rsi", period=14)
WILLR14 = I.indicator("williams_r", period=14)
MACD = I.indicator("macd", fast=12, slow=26, signal=9)
EMA20 = I.indicator("ema", period=20)
EMA50 = I.indicator("ema", period=50)
EMA200 = I.indicator("ema", period=200)
STOCH = I.indicator("stochastic", k_period=14, k_smooth=3, d_period=3)
BB20 = I.indicator("bollinger", period=20, k=2.0)
OBV = I.indicator("obv")
ATR14 = I.indicator("atr", period=14)
ADX14 = I.indicator("adx", period=14)
ANCHOR_4 = (RSI14, EMA20, MACD, BB20)

# benchmark name -> (min, median) seconds for all N_LIVE candles
_RESULTS: dict[str, tuple[float, float]] = {}


class Bars(NamedTuple):
    """History and live candles as (high, low, close, volume) arrays, and the live ones as
    Python floats and talipp OHLCV objects (built once, outside the timed loops)."""

    history: tuple[np.ndarray, ...]
    live: tuple[np.ndarray, ...]
    live_floats: tuple[list[float], ...]
    history_ohlcv: list[OHLCV]
    live_ohlcv: list[OHLCV]


def _bars(high, low, close, volume) -> Bars:
    columns = tuple(np.array(c, dtype=np.float64) for c in (high, low, close, volume))
    history = tuple(c[:N_HISTORY].copy() for c in columns)
    live = tuple(c[N_HISTORY : N_HISTORY + N_LIVE].copy() for c in columns)
    assert len(live[2]) == N_LIVE

    def ohlcv(h, lo, c, v):
        # talipp's HLC indicators read high, low, close (and volume for OBV); open unused.
        return [OHLCV(ci, hi, li, ci, vi) for hi, li, ci, vi in zip(h, lo, c, v, strict=True)]

    return Bars(
        history=history,
        live=live,
        live_floats=tuple(c.tolist() for c in live),
        history_ohlcv=ohlcv(*(c.tolist() for c in history)),
        live_ohlcv=ohlcv(*(c.tolist() for c in live)),
    )


def _random_walk_bars() -> Bars:
    # Closes as in the anchors; open = previous close, small half-normal wicks beyond the
    # body, log-normal volume.
    n = N_HISTORY + N_LIVE
    rng = np.random.default_rng(SEED)
    close = S0 * np.exp(np.cumsum(rng.normal(0.0, SIGMA, n)))
    open_ = np.concatenate(([S0], close[:-1]))
    wick = np.abs(rng.normal(0.0, SIGMA / 2.0, (2, n)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    volume = rng.lognormal(0.0, 1.0, n)
    return _bars(high, low, close, volume)


SYNTHETIC = _random_walk_bars()


@pytest.fixture(scope="module")
def ftx() -> Bars:
    if not FTX_CANDLES.exists():
        pytest.skip(f"{FTX_CANDLES} not found")
    candles = read_candles(FTX_CANDLES)
    return _bars(candles.high, candles.low, candles.close, candles.volume)


# ---------------------------------------------------------------------------------------
# liveopt: (a), (b), (e)
# ---------------------------------------------------------------------------------------


def _warm_bank(specs, bars: Bars) -> I.IndicatorBank:
    bank = I.IndicatorBank(specs)
    bank.replay(TIMEFRAME, *bars.history)
    return bank


def _replay_live(bank: I.IndicatorBank, live) -> I.IndicatorBank:
    # What IndicatorBank.replay runs after validating its inputs: one compiled loop.
    layout = bank._layout
    candle = bank._candle
    bank_replay_nb(
        bank._kind_start, bank._row_timeframe, layout.params, layout.state, layout.ring,
        layout.ring_base, layout.out, bank._closed, candle[0], candle[1], candle[2],
        candle[3], bank.timeframes.index(TIMEFRAME), *live,
    )
    return bank


def _update_per_candle(bank: I.IndicatorBank, live_floats) -> I.IndicatorBank:
    update = bank.update
    for h, lo, c, v in zip(*live_floats, strict=True):
        update(TIMEFRAME, h, lo, c, v)
    return bank


def _kernel_per_candle(bank: I.IndicatorBank, live_floats) -> I.IndicatorBank:
    # The compiled step of IndicatorBank.update, called directly: what a caller that keeps
    # the argument tuple pays per candle (Numba dispatch plus four scalar stores).
    layout = bank._layout
    index = bank.timeframes.index(TIMEFRAME)
    bank._closed[:] = 0
    bank._closed[index] = 1
    high, low, close, volume = bank._candle
    args = (
        bank._kind_start, bank._row_timeframe, layout.params, layout.state, layout.ring,
        layout.ring_base, layout.out, bank._closed, high, low, close, volume,
    )
    kernel = bank_update_nb
    for h, lo, c, v in zip(*live_floats, strict=True):
        high[index] = h
        low[index] = lo
        close[index] = c
        volume[index] = v
        kernel(*args)
    return bank


# ---------------------------------------------------------------------------------------
# TA-Lib stream handles: (c)
# ---------------------------------------------------------------------------------------


class TalibAll(NamedTuple):
    rsi: object
    willr: object
    macd: object
    ema50: object
    ema200: object
    stoch: object
    bb: object
    obv: object
    atr: object
    adx: object


class TalibAnchor(NamedTuple):
    rsi: object
    ema20: object
    macd: object
    bb: object


def _open_talib_all(bars: Bars) -> TalibAll:
    # Multi-input handles take separate arrays to open and separate floats to update:
    # WILLR/STOCH/ATR/ADX (high, low, close), OBV (close, volume). Parameters are passed by
    # name: an omitted one is TA-Lib's "default" sentinel, and STOCH's defaults are 5/3/3.
    h, lo, c, v = bars.history
    return TalibAll(
        rsi=stream.RSI(c, timeperiod=14),
        willr=stream.WILLR(h, lo, c, timeperiod=14),
        macd=stream.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9),
        ema50=stream.EMA(c, timeperiod=50),
        ema200=stream.EMA(c, timeperiod=200),
        stoch=stream.STOCH(
            h, lo, c, fastk_period=14, slowk_period=3, slowk_matype=0, slowd_period=3,
            slowd_matype=0,
        ),
        bb=stream.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0),
        obv=stream.OBV(c, v),
        atr=stream.ATR(h, lo, c, timeperiod=14),
        adx=stream.ADX(h, lo, c, timeperiod=14),
    )


def _open_talib_anchor(bars: Bars) -> TalibAnchor:
    c = bars.history[2]
    return TalibAnchor(
        rsi=stream.RSI(c, timeperiod=14),
        ema20=stream.EMA(c, timeperiod=20),
        macd=stream.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9),
        bb=stream.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0),
    )


def _run_talib_all(handles: TalibAll, live_floats) -> TalibAll:
    rsi, willr, macd, ema50, ema200, stoch, bb, obv, atr, adx = (x.update for x in handles)
    for h, lo, c, v in zip(*live_floats, strict=True):
        rsi(c)
        willr(h, lo, c)
        macd(c)
        ema50(c)
        ema200(c)
        stoch(h, lo, c)
        bb(c)
        obv(c, v)
        atr(h, lo, c)
        adx(h, lo, c)
    return handles


def _run_talib_anchor(handles: TalibAnchor, live_floats) -> TalibAnchor:
    rsi, ema20, macd, bb = (x.update for x in handles)
    for c in live_floats[2]:
        rsi(c)
        ema20(c)
        macd(c)
        bb(c)
    return handles


# ---------------------------------------------------------------------------------------
# talipp: (d)
# ---------------------------------------------------------------------------------------


class TalippAll(NamedTuple):
    rsi: tp.RSI
    willr: tp.Williams
    macd: tp.MACD
    ema50: tp.EMA
    ema200: tp.EMA
    stoch: tp.Stoch
    stoch_d: tp.SMA
    bb: tp.BB
    obv: tp.OBV
    atr: tp.ATR
    adx: tp.ADX


def _stoch_k(value):
    return value.d


def _open_talipp_all(bars: Bars) -> TalippAll:
    closes = bars.history[2].tolist()
    ohlcv = bars.history_ohlcv
    # talipp's Stoch(14, 3) gives TA-Lib's fast %K as .k and slow %K (SMA3 of it) as .d;
    # TA-Lib's slow %D is a further SMA3, chained here so the work matches STOCH14/3/3.
    stoch = tp.Stoch(14, 3, input_values=ohlcv)
    return TalippAll(
        rsi=tp.RSI(14, input_values=closes),
        willr=tp.Williams(14, input_values=ohlcv),
        macd=tp.MACD(12, 26, 9, input_values=closes),
        ema50=tp.EMA(50, input_values=closes),
        ema200=tp.EMA(200, input_values=closes),
        stoch=stoch,
        stoch_d=tp.SMA(3, input_indicator=stoch, input_modifier=_stoch_k),
        bb=tp.BB(20, 2.0, input_values=closes),
        obv=tp.OBV(input_values=ohlcv),
        atr=tp.ATR(14, input_values=ohlcv),
        adx=tp.ADX(14, 14, input_values=ohlcv),
    )


def _open_talipp_anchor(bars: Bars) -> tuple:
    closes = bars.history[2].tolist()
    return (
        tp.RSI(14, input_values=closes),
        tp.EMA(20, input_values=closes),
        tp.MACD(12, 26, 9, input_values=closes),
        tp.BB(20, 2.0, input_values=closes),
    )


def _run_talipp_all(ind: TalippAll, bars: Bars) -> TalippAll:
    rsi, willr, macd, ema50, ema200, stoch, bb, obv, atr, adx = (
        x.add
        for x in (
            ind.rsi, ind.willr, ind.macd, ind.ema50, ind.ema200, ind.stoch, ind.bb, ind.obv,
            ind.atr, ind.adx,
        )
    )
    for c, bar in zip(bars.live_floats[2], bars.live_ohlcv, strict=True):
        rsi(c)
        willr(bar)
        macd(c)
        ema50(c)
        ema200(c)
        stoch(bar)  # also feeds the chained slow %D
        bb(c)
        obv(bar)
        atr(bar)
        adx(bar)
    return ind


def _run_talipp_anchor(ind: tuple, bars: Bars) -> tuple:
    rsi, ema20, macd, bb = (x.add for x in ind)
    for c in bars.live_floats[2]:
        rsi(c)
        ema20(c)
        macd(c)
        bb(c)
    return ind


# ---------------------------------------------------------------------------------------
# Equal work: final values agree
# ---------------------------------------------------------------------------------------


def _close(actual, expected, what, rtol=RTOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0.0, err_msg=what)


def _assert_equal_work(bars: Bars) -> None:
    bank = _replay_live(_warm_bank(I.DEFAULT_INDICATORS, bars), bars.live)
    bank4 = _replay_live(_warm_bank(ANCHOR_4, bars), bars.live)
    ta = _run_talib_all(_open_talib_all(bars), bars.live_floats)
    ta4 = _run_talib_anchor(_open_talib_anchor(bars), bars.live_floats)
    tpp = _run_talipp_all(_open_talipp_all(bars), bars)
    tpp4 = _run_talipp_anchor(_open_talipp_anchor(bars), bars)

    # The kernel loop, the public replay and per-candle updates compute the same thing.
    replayed = _warm_bank(I.DEFAULT_INDICATORS, bars)
    replayed.replay(TIMEFRAME, *bars.live)
    stepped = _update_per_candle(_warm_bank(I.DEFAULT_INDICATORS, bars), bars.live_floats)
    np.testing.assert_array_equal(replayed.values, bank.values)
    np.testing.assert_array_equal(stepped.values, bank.values)
    direct = _kernel_per_candle(_warm_bank(I.DEFAULT_INDICATORS, bars), bars.live_floats)
    np.testing.assert_array_equal(direct.values, bank.values)

    def row(b, spec, n):
        return b.values[b.row(spec), :n]

    # liveopt vs TA-Lib handles: the four the anchors time, to 1e-9 relative.
    _close(row(bank, RSI14, 1), [ta.rsi.value], "RSI14")
    _close(row(bank, EMA50, 1), [ta.ema50.value], "EMA50")
    _close(row(bank, EMA200, 1), [ta.ema200.value], "EMA200")
    _close(row(bank, MACD, 3), ta.macd.value, "MACD (macd, signal, hist)")
    # TA-Lib BBANDS gives (upper, middle, lower), the bank's order too.
    _close(row(bank, BB20, 3), ta.bb.value, "BB20 (upper, middle, lower)")
    for spec, value in zip(ANCHOR_4, (ta4.rsi, ta4.ema20, ta4.macd, ta4.bb), strict=True):
        n = len(spec.outputs)
        _close(row(bank4, spec, n), np.atleast_1d(value.value), f"4-bank {spec.label()}")
    # ... and the rest of the TA-Lib set, so (c) is the same work as (a) minus AO and KDJ.
    _close(row(bank, WILLR14, 1), [ta.willr.value], "WILLR14")
    _close(row(bank, STOCH, 2), ta.stoch.value, "STOCH14/3/3 (slow k, slow d)")
    _close(row(bank, OBV, 1), [ta.obv.value], "OBV")
    _close(row(bank, ATR14, 1), [ta.atr.value], "ATR14")
    _close(row(bank, ADX14, 1), [ta.adx.value], "ADX14")

    # The handles, driven by update, agree with TA-Lib's batch functions over all bars.
    h, lo, c, _ = (np.concatenate(pair) for pair in zip(bars.history, bars.live, strict=True))
    _close([ta.rsi.value], talib.RSI(c, 14)[-1:], "handle RSI vs batch")
    _close(ta.macd.value, [x[-1] for x in talib.MACD(c, 12, 26, 9)], "handle MACD vs batch")
    _close([ta.adx.value], talib.ADX(h, lo, c, 14)[-1:], "handle ADX vs batch")

    # talipp: the same quantities (its formulas differ in places, so a looser check that
    # it is computing the same indicators, not a precision claim).
    loose = 1e-6
    _close([tpp.rsi[-1], tpp4[0][-1]], [ta.rsi.value, ta4.rsi.value], "talipp RSI", loose)
    _close([tpp.ema50[-1], tpp.ema200[-1], tpp4[1][-1]],
           [ta.ema50.value, ta.ema200.value, ta4.ema20.value], "talipp EMA", loose)
    m = tpp.macd[-1]
    _close([m.macd, m.signal, m.histogram], ta.macd.value, "talipp MACD", loose)
    b = tpp.bb[-1]
    _close([b.ub, b.cb, b.lb], ta.bb.value, "talipp BB", loose)
    _close([tpp.willr[-1]], [ta.willr.value], "talipp Williams %R", loose)
    _close([tpp.stoch[-1].d, tpp.stoch_d[-1]], ta.stoch.value, "talipp Stoch", loose)
    _close([tpp.atr[-1]], [ta.atr.value], "talipp ATR", loose)
    _close([tpp.adx[-1].adx], [ta.adx.value], "talipp ADX", loose)


@pytest.fixture(scope="module")
def checked(ftx):
    """The data sets, once liveopt, TA-Lib and talipp are shown to compute the same values
    on both (every benchmark depends on this, so nothing is timed unless they agree)."""
    _assert_equal_work(SYNTHETIC)
    _assert_equal_work(ftx)
    return SYNTHETIC, ftx


# ---------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------


def _record(name, benchmark):
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None when run with --benchmark-disable
        _RESULTS[name] = (stats.stats.min, stats.stats.median)


def _fresh(factory, *args):
    # pedantic setup: new warmed state per round, so every round runs the same 20k bars.
    return lambda: ((factory(), *args), {})


def test_liveopt_talib_and_talipp_agree(checked):
    synthetic, ftx = checked
    assert len(synthetic.live[2]) == len(ftx.live[2]) == N_LIVE


def test_a_bank12_compiled(benchmark, checked):
    bars = checked[0]
    setup = _fresh(lambda: _warm_bank(I.DEFAULT_INDICATORS, bars), bars.live)
    benchmark.pedantic(_replay_live, setup=setup, rounds=100, warmup_rounds=2)
    _record("a_bank12_compiled", benchmark)


def test_a_ftx_bank12_compiled(benchmark, checked):
    bars = checked[1]
    setup = _fresh(lambda: _warm_bank(I.DEFAULT_INDICATORS, bars), bars.live)
    benchmark.pedantic(_replay_live, setup=setup, rounds=100, warmup_rounds=2)
    _record("a_ftx_bank12_compiled", benchmark)


def test_b_bank12_python_call(benchmark, checked):
    bars = checked[0]
    setup = _fresh(lambda: _warm_bank(I.DEFAULT_INDICATORS, bars), bars.live_floats)
    benchmark.pedantic(_update_per_candle, setup=setup, rounds=20, warmup_rounds=1)
    _record("b_bank12_python_call", benchmark)


def test_b_floor_kernel_per_candle(benchmark, checked):
    bars = checked[0]
    setup = _fresh(lambda: _warm_bank(I.DEFAULT_INDICATORS, bars), bars.live_floats)
    benchmark.pedantic(_kernel_per_candle, setup=setup, rounds=20, warmup_rounds=1)
    _record("b_floor_kernel_per_candle", benchmark)


def test_c_talib_handles_10(benchmark, checked):
    bars = checked[0]
    setup = _fresh(lambda: _open_talib_all(bars), bars.live_floats)
    benchmark.pedantic(_run_talib_all, setup=setup, rounds=20, warmup_rounds=1)
    _record("c_talib_handles_10", benchmark)


def test_c4_talib_handles_anchor4(benchmark, checked):
    bars = checked[0]
    setup = _fresh(lambda: _open_talib_anchor(bars), bars.live_floats)
    benchmark.pedantic(_run_talib_anchor, setup=setup, rounds=20, warmup_rounds=1)
    _record("c4_talib_handles_anchor4", benchmark)


def test_d_talipp_10(benchmark, checked):
    bars = checked[0]
    setup = _fresh(lambda: _open_talipp_all(bars), bars)
    benchmark.pedantic(_run_talipp_all, setup=setup, rounds=7, warmup_rounds=1)
    _record("d_talipp_10", benchmark)


def test_d4_talipp_anchor4(benchmark, checked):
    bars = checked[0]
    setup = _fresh(lambda: _open_talipp_anchor(bars), bars)
    benchmark.pedantic(_run_talipp_anchor, setup=setup, rounds=7, warmup_rounds=1)
    _record("d4_talipp_anchor4", benchmark)


def test_e_bank4_compiled(benchmark, checked):
    bars = checked[0]
    setup = _fresh(lambda: _warm_bank(ANCHOR_4, bars), bars.live)
    benchmark.pedantic(_replay_live, setup=setup, rounds=100, warmup_rounds=2)
    _record("e_bank4_compiled", benchmark)


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

_CASES = {
    "a_bank12_compiled": "(a) liveopt bank, 12, compiled loop",
    "a_ftx_bank12_compiled": "(a) same, FTX BTC-PERP 1m candles",
    "b_bank12_python_call": "(b) liveopt bank, 12, bank.update per candle",
    "b_floor_kernel_per_candle": "    floor: bank_update_nb per candle",
    "c_talib_handles_10": "(c) TA-Lib stream handles, 10",
    "c4_talib_handles_anchor4": "(c) TA-Lib stream handles, anchor 4",
    "d_talipp_10": "(d) talipp add, 10",
    "d4_talipp_anchor4": "(d) talipp add, anchor 4",
    "e_bank4_compiled": "(e) liveopt bank, anchor 4, compiled loop",
}

_RATIOS = (
    ("TA-Lib handles (4) / bank 12 compiled", "c4_talib_handles_anchor4", "a_bank12_compiled"),
    ("TA-Lib handles (10) / bank 12 compiled", "c_talib_handles_10", "a_bank12_compiled"),
    ("talipp (4) / bank 12 compiled", "d4_talipp_anchor4", "a_bank12_compiled"),
    ("talipp (10) / bank 12 compiled", "d_talipp_10", "a_bank12_compiled"),
    ("TA-Lib handles (4) / bank 4 compiled", "c4_talib_handles_anchor4", "e_bank4_compiled"),
    ("talipp (4) / bank 4 compiled", "d4_talipp_anchor4", "e_bank4_compiled"),
    ("TA-Lib handles (10) / bank 12 per call", "c_talib_handles_10", "b_bank12_python_call"),
    ("talipp (10) / bank 12 per call", "d_talipp_10", "b_bank12_python_call"),
    ("bank 12 per call / bank 12 compiled", "b_bank12_python_call", "a_bank12_compiled"),
    ("bank 12 per call / its kernel floor", "b_bank12_python_call", "b_floor_kernel_per_candle"),
)


def _report_lines() -> list[str]:
    def ns(name, which=1):
        return _RESULTS[name][which] / N_LIVE * 1e9

    base = ns("a_bank12_compiled") if "a_bank12_compiled" in _RESULTS else None
    lines = [
        f"{N_LIVE:,} live 1m candles after {N_HISTORY:,} of history; random walk unless noted;"
        " median (and min) over rounds",
        f"{'case':<46}{'ns/candle':>11}{'min ns':>10}{'vs (a)':>10}",
    ]
    for name, label in _CASES.items():
        if name in _RESULTS:
            ratio = f"{ns(name) / base:>9.2f}x" if base else f"{'-':>10}"
            lines.append(f"{label:<46}{ns(name):>11.1f}{ns(name, 0):>10.1f}{ratio}")
    lines.append("ratios (median ns per candle):")
    for label, num, den in _RATIOS:
        if num in _RESULTS and den in _RESULTS:
            lines.append(f"  {label:<44}{ns(num) / ns(den):>10.1f}x")
    return lines


@pytest.fixture(scope="module", autouse=True)
def _report(terminal_sections):
    yield
    if _RESULTS:  # empty under --benchmark-disable
        terminal_sections["indicator bank vs TA-Lib stream handles vs talipp"] = _report_lines()
