"""liveopt.indicators against TA-Lib on real candles.

For every indicator TA-Lib has, liveopt must put NaN at exactly TA-Lib's positions and match
TA-Lib's values to 1e-9 relative (``atol=0``) from TA-Lib's first valid value, on three data
sets: FTX BTC-PERP 1m (45,031 bars), Coinbase BTC/USD 1h (20,111 bars, oldest first) and
Kraken XBT/USDT 1m (721 bars, many of them flat).

Where liveopt documents a different value the tests check that value exactly instead of
skipping the bar:

- a flat window (highest high == lowest low): Williams %R -50 and stochastic fast %K 50,
  where TA-Lib returns 0; the slow %K and %D are SMAs of fast %K, so at a bar whose
  smoothing windows hold flat bars liveopt exceeds TA-Lib by exactly 50 x (the share of flat
  fast %K values in those windows);
- RSI with no gain and no loss at all: 50, where TA-Lib returns 0.

Two known numerical limits of TA-Lib itself are asserted explicitly, not skipped:

- TA-Lib smooths %K and %D with a running sum (add the new value, subtract the old one), so
  where every fast %K in the window is 0 it returns a residue of about 1e-13 instead of 0.
  There liveopt must be exactly 0 and TA-Lib's value below ``STOCH_RESIDUE``.
- The installed TA-Lib binary computes its EMAs with a fused multiply-add, so its EMAs
  differ from the unfused ``(x - prev)*k + prev`` by an ulp now and then (and liveopt seeds
  its EMAs with a running mean, exact on constant input, where TA-Lib divides a plain sum:
  another ulp). MACD subtracts two
  price-level EMAs, so its values carry an absolute rounding floor of a few ulps of the
  price (about 7e-12 at 46,000); where the MACD, signal or histogram is within 1e-4 of zero
  that floor exceeds 1e-9 relative. MACD is therefore compared with ``rtol=1e-9`` plus
  ``atol = MACD_ULPS`` ulps of the largest close.
"""

from __future__ import annotations

import numpy as np
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view

import liveopt.indicators as li

RTOL = 1e-9
#: Largest |TA-Lib value| accepted where liveopt's slow %K/%D is exactly 0 (TA-Lib residue).
STOCH_RESIDUE = 1e-11
#: MACD's absolute tolerance in ulps of the largest close (TA-Lib's fused EMA update).
MACD_ULPS = 8


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def assert_same_nan_positions(ours: np.ndarray, ta: np.ndarray, label: str) -> None:
    assert ours.dtype == np.float64 and ours.shape == ta.shape, label
    differ = np.flatnonzero(np.isnan(ours) != np.isnan(ta))
    assert differ.size == 0, (
        f"{label}: NaN positions differ from TA-Lib at {differ.size} indices, first "
        f"{differ[0]}: ours={ours[differ[0]]!r} talib={ta[differ[0]]!r}"
    )


def assert_close_to_talib(
    ours: np.ndarray, ta: np.ndarray, label: str, mask: np.ndarray | None = None, atol=0.0
) -> None:
    """rtol 1e-9 wherever TA-Lib is valid (and ``mask`` holds), naming the worst index."""
    valid = ~np.isnan(ta)
    if mask is not None:
        valid &= mask
    idx = np.flatnonzero(valid)
    o, t = ours[idx], ta[idx]
    bad = np.abs(o - t) > atol + RTOL * np.abs(t)
    if bad.any():
        rel = np.abs(o - t) / np.maximum(np.abs(t), np.finfo(float).tiny)
        worst = idx[bad][np.argmax(rel[bad])]
        pytest.fail(
            f"{label}: {int(bad.sum())} of {idx.size} values differ from TA-Lib beyond "
            f"rtol={RTOL}, atol={atol}; first index {idx[bad][0]}: ours={ours[idx[bad][0]]!r} "
            f"talib={ta[idx[bad][0]]!r}; worst index {worst}: ours={ours[worst]!r} "
            f"talib={ta[worst]!r}"
        )
    np.testing.assert_allclose(o, t, rtol=RTOL, atol=atol, err_msg=label)


def trailing_flat(high: np.ndarray, low: np.ndarray, period: int) -> np.ndarray:
    """True where the last ``period`` bars have highest high == lowest low (False in warm-up)."""
    flat = np.zeros(len(high), dtype=bool)
    if len(high) >= period:
        hh = sliding_window_view(high, period).max(axis=1)
        ll = sliding_window_view(low, period).min(axis=1)
        flat[period - 1 :] = hh == ll
    return flat


def trailing_mean(values: np.ndarray, period: int) -> np.ndarray:
    """Mean of the last ``period`` values (values before the start count as 0)."""
    padded = np.concatenate((np.zeros(period - 1), values))
    return sliding_window_view(padded, period).mean(axis=1)


def columns(real_candles):
    _name, data = real_candles
    return data["high"], data["low"], data["close"], data["volume"]


# --------------------------------------------------------------------------------------------
# Overlap studies and momentum on closes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", [2, 14, 50, 200])
def test_sma_matches_talib(real_candles, period):
    _, _, close, _ = columns(real_candles)
    ours, ta = li.sma(close, period), talib.SMA(close, timeperiod=period)
    assert_same_nan_positions(ours, ta, f"SMA({period})")
    assert_close_to_talib(ours, ta, f"SMA({period})")


@pytest.mark.parametrize("period", [2, 14, 50, 200])
def test_ema_matches_talib(real_candles, period):
    _, _, close, _ = columns(real_candles)
    ours, ta = li.ema(close, period), talib.EMA(close, timeperiod=period)
    assert_same_nan_positions(ours, ta, f"EMA({period})")
    assert_close_to_talib(ours, ta, f"EMA({period})")


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_matches_talib_and_is_50_where_talib_gives_0_for_no_movement(real_candles, period):
    _, _, close, _ = columns(real_candles)
    ours, ta = li.rsi(close, period), talib.RSI(close, timeperiod=period)
    label = f"RSI({period})"
    assert_same_nan_positions(ours, ta, label)
    # No gain and no loss at all: every close so far equals the first one.
    no_movement = np.maximum.accumulate(np.abs(close - close[0])) == 0.0
    no_movement &= ~np.isnan(ta)
    assert np.all(ours[no_movement] == 50.0), label
    assert np.all(ta[no_movement] == 0.0), label
    assert_close_to_talib(ours, ta, label, mask=~no_movement)


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (8, 17, 9)])
def test_macd_matches_talib_down_to_the_price_rounding_floor(real_candles, fast, slow, signal):
    _, _, close, _ = columns(real_candles)
    ours = li.macd(close, fast=fast, slow=slow, signal=signal)
    ta = talib.MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    atol = MACD_ULPS * float(np.spacing(np.max(np.abs(close))))
    for name, o, t in zip(("macd", "signal", "hist"), ours, ta, strict=True):
        label = f"MACD({fast},{slow},{signal}) {name}"
        assert_same_nan_positions(o, t, label)
        assert np.flatnonzero(~np.isnan(t))[0] == slow + signal - 2, label
        assert_close_to_talib(o, t, label, atol=atol)


@pytest.mark.parametrize(("period", "k"), [(20, 2.0), (10, 1.5), (5, 1.0)])
def test_bollinger_matches_talib_bbands_with_sma(real_candles, period, k):
    _, _, close, _ = columns(real_candles)
    ours = li.bollinger(close, period=period, k=k)
    ta = talib.BBANDS(close, timeperiod=period, nbdevup=k, nbdevdn=k, matype=0)
    for name, o, t in zip(("upper", "middle", "lower"), ours, ta, strict=True):
        label = f"Bollinger({period},{k}) {name}"
        assert_same_nan_positions(o, t, label)
        assert_close_to_talib(o, t, label)


# --------------------------------------------------------------------------------------------
# Range oscillators
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k_period", "k_smooth", "d_period"), [(14, 3, 3), (5, 1, 3), (9, 3, 1), (5, 3, 3)]
)
def test_stochastic_matches_talib_stoch_except_documented_flat_windows(
    real_candles, k_period, k_smooth, d_period
):
    high, low, close, _ = columns(real_candles)
    k, d = li.stochastic(high, low, close, k_period=k_period, k_smooth=k_smooth, d_period=d_period)
    ta_k, ta_d = talib.STOCH(
        high,
        low,
        close,
        fastk_period=k_period,
        slowk_period=k_smooth,
        slowk_matype=0,
        slowd_period=d_period,
        slowd_matype=0,
    )
    params = f"({k_period},{k_smooth},{d_period})"
    flat = trailing_flat(high, low, k_period).astype(np.float64)
    flat_share_k = trailing_mean(flat, k_smooth)
    flat_share_d = trailing_mean(flat_share_k, d_period)
    for name, ours, ta, share in (("K", k, ta_k, flat_share_k), ("D", d, ta_d, flat_share_d)):
        label = f"Stochastic{params} {name}"
        assert_same_nan_positions(ours, ta, label)
        valid = ~np.isnan(ta)
        # Bars whose windows hold flat fast %K values: liveopt counts them as 50, TA-Lib as 0.
        touched = valid & (share > 0)
        all_flat = valid & (share == 1.0)
        assert np.all(ours[all_flat] == 50.0), f"{label}: not 50 on all-flat windows"
        assert np.all(np.abs(ta[all_flat]) < STOCH_RESIDUE), label
        np.testing.assert_allclose(
            ours[touched] - ta[touched],
            50.0 * share[touched],
            rtol=0,
            atol=1e-9,
            err_msg=f"{label}: offset from TA-Lib at flat windows",
        )
        # Exact zeros: TA-Lib's running-sum SMA leaves a residue of ~1e-13 there.
        zero = valid & ~touched & (ours == 0.0)
        residue = np.abs(ta[zero])
        assert residue.size == 0 or residue.max() < STOCH_RESIDUE, (
            f"{label}: TA-Lib residue {residue.max()!r} where liveopt is exactly 0"
        )
        assert_close_to_talib(ours, ta, label, mask=~touched & ~zero)


@pytest.mark.parametrize("period", [5, 14, 28])
def test_williams_r_matches_talib_and_is_minus_50_on_flat_windows(real_candles, period):
    high, low, close, _ = columns(real_candles)
    ours, ta = li.williams_r(high, low, close, period), talib.WILLR(high, low, close, period)
    label = f"Williams%R({period})"
    assert_same_nan_positions(ours, ta, label)
    flat = trailing_flat(high, low, period)
    assert np.all(ours[flat] == -50.0), label
    assert np.all(ta[flat] == 0.0), label
    assert_close_to_talib(ours, ta, label, mask=~flat)


# --------------------------------------------------------------------------------------------
# Volatility, trend and volume
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", [5, 14, 28])
def test_atr_matches_talib(real_candles, period):
    high, low, close, _ = columns(real_candles)
    ours, ta = li.atr(high, low, close, period), talib.ATR(high, low, close, timeperiod=period)
    assert_same_nan_positions(ours, ta, f"ATR({period})")
    assert_close_to_talib(ours, ta, f"ATR({period})")


@pytest.mark.parametrize("period", [5, 14, 28])
def test_adx_matches_talib(real_candles, period):
    high, low, close, _ = columns(real_candles)
    ours, ta = li.adx(high, low, close, period), talib.ADX(high, low, close, timeperiod=period)
    assert_same_nan_positions(ours, ta, f"ADX({period})")
    assert np.flatnonzero(~np.isnan(ta))[0] == 2 * period - 1
    assert_close_to_talib(ours, ta, f"ADX({period})")


def test_obv_matches_talib(real_candles):
    _, _, close, volume = columns(real_candles)
    ours, ta = li.obv(close, volume), talib.OBV(close, volume)
    assert_same_nan_positions(ours, ta, "OBV")
    assert_close_to_talib(ours, ta, "OBV")


# --------------------------------------------------------------------------------------------
# The data sets exercise the documented flat-window values
# --------------------------------------------------------------------------------------------


def test_kraken_and_coinbase_candles_contain_flat_windows(real_candles):
    name, data = real_candles
    flat_bars = int(trailing_flat(data["high"], data["low"], 5).sum())
    if name == "ftx_btcperp_1m":
        assert flat_bars == 0
    else:
        assert flat_bars > 0, f"{name} has no flat 5-bar window; the flat-value checks are empty"


def test_real_candles_are_oldest_first_and_well_formed(real_candles):
    name, data = real_candles
    high, low, close, volume = data["high"], data["low"], data["close"], data["volume"]
    expected_rows = {
        "ftx_btcperp_1m": 45_031,
        "coinbase_btcusd_1h": 20_111,
        "kraken_xbtusdt_1m": 721,
    }
    assert len(close) == expected_rows[name]
    assert np.all(np.isfinite(high) & np.isfinite(low) & np.isfinite(close))
    assert np.all(low <= close) and np.all(close <= high) and np.all(volume >= 0)
    if name == "coinbase_btcusd_1h":
        # Oldest first: July 2017 (about 2,500 USD) before October 2019 (about 8,000 USD).
        assert close[0] < 3000 and close[-1] > 7000
