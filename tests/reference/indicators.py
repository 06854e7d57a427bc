"""Slow, obvious pure-Python reference twins of the 12 indicators in ``liveopt.indicators``.

Each twin is a plain loop over Python floats that follows the documented semantics literally,
with no numpy, no vectorisation and no TA-Lib. They are the executable specification the
compiled kernels are checked against, so they favour being easy to read and exact over speed:

- every mean of a window is ``math.fsum(window) / length`` (a correctly rounded sum);
- recursive smoothings use exactly the documented formula, term for term;
- outputs are lists of floats of the input's length, NaN during the warm-up.

Warm-up (0-based index of the first value) for the default parameters: SMA/EMA/Bollinger
``p-1``, RSI ``p``, MACD ``s+g-2``, Stochastic ``(kp-1)+(ks-1)+(dp-1)``, Williams %R ``p-1``,
ATR ``p``, ADX ``2p-1``, OBV ``0``, Awesome oscillator ``s-1``, KDJ ``n-1``.
"""

import math
from collections.abc import Sequence
from fractions import Fraction

NAN = math.nan

Series = Sequence[float]


def _floats(values: Series) -> list[float]:
    return [float(x) for x in values]


def _check_period(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _same_length(*columns: list[float]) -> int:
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError("input columns have different lengths")
    return n


# --------------------------------------------------------------------------------------------
# Moving averages
# --------------------------------------------------------------------------------------------


def sma(close: Series, period: int) -> list[float]:
    """Mean of the last ``period`` closes; first value at ``period - 1``."""
    _check_period("period", period)
    x = _floats(close)
    out = [NAN] * len(x)
    for i in range(period - 1, len(x)):
        out[i] = _mean(x[i - period + 1 : i + 1])
    return out


def _ema_from(x: list[float], period: int, seed_index: int, seed: float) -> list[float]:
    """EMA with ``k = 2/(period+1)`` holding ``seed`` at ``seed_index`` and updated after it."""
    k = 2.0 / (period + 1)
    out = [NAN] * len(x)
    if seed_index >= len(x):
        return out
    prev = seed
    out[seed_index] = prev
    for i in range(seed_index + 1, len(x)):
        prev = (x[i] - prev) * k + prev
        out[i] = prev
    return out


def ema(close: Series, period: int) -> list[float]:
    """EMA seeded with the SMA of the first ``period`` closes at index ``period - 1``."""
    _check_period("period", period)
    x = _floats(close)
    if len(x) < period:
        return [NAN] * len(x)
    return _ema_from(x, period, period - 1, _mean(x[:period]))


# --------------------------------------------------------------------------------------------
# RSI (Wilder)
# --------------------------------------------------------------------------------------------


def rsi(close: Series, period: int = 14) -> list[float]:
    """Wilder's RSI; 50 where the average gain and average loss are both exactly 0."""
    _check_period("period", period)
    x = _floats(close)
    out = [NAN] * len(x)
    if len(x) <= period:
        return out
    gains = []
    losses = []
    for i in range(1, period + 1):
        diff = x[i] - x[i - 1]
        gains.append(diff if diff > 0 else 0.0)
        losses.append(-diff if diff < 0 else 0.0)
    avg_gain = _mean(gains)
    avg_loss = _mean(losses)
    out[period] = _rsi_value(avg_gain, avg_loss)
    for i in range(period + 1, len(x)):
        diff = x[i] - x[i - 1]
        gain = diff if diff > 0 else 0.0
        loss = -diff if diff < 0 else 0.0
        avg_gain = (avg_gain * (period - 1) + gain) / period
        avg_loss = (avg_loss * (period - 1) + loss) / period
        out[i] = _rsi_value(avg_gain, avg_loss)
    return out


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    total = avg_gain + avg_loss
    if total == 0.0:
        return 50.0
    return 100.0 * (avg_gain / total)


# --------------------------------------------------------------------------------------------
# MACD (TA-Lib alignment)
# --------------------------------------------------------------------------------------------


def macd(
    close: Series, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[list[float], list[float], list[float]]:
    """MACD line, signal line and histogram; all NaN before index ``slow + signal - 2``.

    Both EMAs start at index ``slow - 1``: the slow one seeded with the mean of
    ``close[0 .. slow-1]``, the fast one with the mean of ``close[slow-fast .. slow-1]``.
    The signal line is the EMA of the MACD line seeded with the mean of its first ``signal``
    values.
    """
    _check_period("fast", fast)
    _check_period("slow", slow)
    _check_period("signal", signal)
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be smaller than slow ({slow})")
    x = _floats(close)
    n = len(x)
    nans = [NAN] * n
    if n < slow:
        return nans, list(nans), list(nans)
    start = slow - 1
    slow_ema = _ema_from(x, slow, start, _mean(x[:slow]))
    fast_ema = _ema_from(x, fast, start, _mean(x[slow - fast : slow]))
    line = [NAN] * n
    for i in range(start, n):
        line[i] = fast_ema[i] - slow_ema[i]
    first = start + signal - 1
    if n <= first:
        return nans, list(nans), list(nans)
    signal_line = _ema_from(line, signal, first, _mean(line[start : first + 1]))
    out_macd = [NAN] * n
    out_signal = [NAN] * n
    out_hist = [NAN] * n
    for i in range(first, n):
        out_macd[i] = line[i]
        out_signal[i] = signal_line[i]
        out_hist[i] = line[i] - signal_line[i]
    return out_macd, out_signal, out_hist


# --------------------------------------------------------------------------------------------
# Bollinger bands
# --------------------------------------------------------------------------------------------


def bollinger(
    close: Series, period: int = 20, k: float = 2.0
) -> tuple[list[float], list[float], list[float]]:
    """(upper, middle, lower): SMA +- k * population standard deviation of the window."""
    _check_period("period", period)
    x = _floats(close)
    n = len(x)
    upper, middle, lower = [NAN] * n, [NAN] * n, [NAN] * n
    for i in range(period - 1, n):
        window = x[i - period + 1 : i + 1]
        mean = _mean(window)
        variance = math.fsum((v - mean) ** 2 for v in window) / period
        width = math.sqrt(variance) * k
        upper[i] = mean + width
        middle[i] = mean
        lower[i] = mean - width
    return upper, middle, lower


# --------------------------------------------------------------------------------------------
# Range oscillators: stochastic, Williams %R, KDJ
# --------------------------------------------------------------------------------------------


def _highest_lowest(high: list[float], low: list[float], i: int, length: int):
    hh = high[i - length + 1]
    ll = low[i - length + 1]
    for j in range(i - length + 2, i + 1):
        hh = max(hh, high[j])
        ll = min(ll, low[j])
    return hh, ll


def _raw_stochastic(high, low, close, length) -> list[float]:
    """100*((c - LL)/(HH - LL)) over the last ``length`` bars, 50 on a flat window.

    The ratio is taken first (as TA-Lib 0.6 does), so the result never leaves [0, 100].
    """
    out = [NAN] * len(close)
    for i in range(length - 1, len(close)):
        hh, ll = _highest_lowest(high, low, i, length)
        out[i] = 50.0 if hh == ll else 100.0 * ((close[i] - ll) / (hh - ll))
    return out


def stochastic(
    high: Series,
    low: Series,
    close: Series,
    k_period: int = 14,
    k_smooth: int = 3,
    d_period: int = 3,
) -> tuple[list[float], list[float]]:
    """(K, D): K = SMA(fastK, k_smooth), D = SMA(K, d_period); both NaN before
    ``(k_period-1) + (k_smooth-1) + (d_period-1)``."""
    _check_period("k_period", k_period)
    _check_period("k_smooth", k_smooth)
    _check_period("d_period", d_period)
    h, lo, c = _floats(high), _floats(low), _floats(close)
    n = _same_length(h, lo, c)
    fast_k = _raw_stochastic(h, lo, c, k_period)
    k_line = [NAN] * n
    for i in range(k_period - 1 + k_smooth - 1, n):
        k_line[i] = _mean(fast_k[i - k_smooth + 1 : i + 1])
    first = (k_period - 1) + (k_smooth - 1) + (d_period - 1)
    out_k, out_d = [NAN] * n, [NAN] * n
    for i in range(first, n):
        out_k[i] = k_line[i]
        out_d[i] = _mean(k_line[i - d_period + 1 : i + 1])
    return out_k, out_d


def williams_r(high: Series, low: Series, close: Series, period: int = 14) -> list[float]:
    """-100*((HH - c)/(HH - LL)) over the last ``period`` bars; -50 on a flat window."""
    _check_period("period", period)
    h, lo, c = _floats(high), _floats(low), _floats(close)
    n = _same_length(h, lo, c)
    out = [NAN] * n
    for i in range(period - 1, n):
        hh, ll = _highest_lowest(h, lo, i, period)
        out[i] = -50.0 if hh == ll else -100.0 * ((hh - c[i]) / (hh - ll))
    return out


def kdj(
    high: Series, low: Series, close: Series, n: int = 9, m1: int = 3, m2: int = 3
) -> tuple[list[float], list[float], list[float]]:
    """(K, D, J): K and D start from 50 and are smoothed 1/m1, 1/m2; J = 3K - 2D."""
    _check_period("n", n)
    _check_period("m1", m1)
    _check_period("m2", m2)
    h, lo, c = _floats(high), _floats(low), _floats(close)
    size = _same_length(h, lo, c)
    rsv = _raw_stochastic(h, lo, c, n)
    out_k, out_d, out_j = [NAN] * size, [NAN] * size, [NAN] * size
    k_value = 50.0
    d_value = 50.0
    for i in range(n - 1, size):
        k_value = ((m1 - 1) * k_value + rsv[i]) / m1
        d_value = ((m2 - 1) * d_value + k_value) / m2
        out_k[i] = k_value
        out_d[i] = d_value
        out_j[i] = 3.0 * k_value - 2.0 * d_value
    return out_k, out_d, out_j


# --------------------------------------------------------------------------------------------
# Volatility and trend: ATR, ADX
# --------------------------------------------------------------------------------------------


def true_range(high: float, low: float, prev_close: float) -> float:
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


def atr(high: Series, low: Series, close: Series, period: int = 14) -> list[float]:
    """Wilder's ATR: mean of TR_1..TR_p at index p, then (atr*(p-1) + TR)/p."""
    _check_period("period", period)
    h, lo, c = _floats(high), _floats(low), _floats(close)
    n = _same_length(h, lo, c)
    out = [NAN] * n
    if n <= period:
        return out
    ranges = [true_range(h[i], lo[i], c[i - 1]) for i in range(1, period + 1)]
    value = _mean(ranges)
    out[period] = value
    for i in range(period + 1, n):
        value = (value * (period - 1) + true_range(h[i], lo[i], c[i - 1])) / period
        out[i] = value
    return out


def directional_movement(
    high: float, low: float, prev_high: float, prev_low: float
) -> tuple[float, float]:
    """(+DM, -DM) of one bar; a tie (or no move beyond the previous bar) gives (0, 0)."""
    up = high - prev_high
    down = prev_low - low
    plus_dm = up if (up > down and up > 0.0) else 0.0
    minus_dm = down if (down > up and down > 0.0) else 0.0
    return plus_dm, minus_dm


def adx(high: Series, low: Series, close: Series, period: int = 14) -> list[float]:
    """Wilder's ADX as TA-Lib computes it; first value at ``2*period - 1``.

    +DM, -DM and TR are summed over bars 1..p-1, then smoothed as
    ``s - s/p + current`` from bar p on. DX = 100*|+DI - -DI|/(+DI + -DI) is skipped when the
    smoothed TR or +DI + -DI is exactly 0. The first ADX is the sum of the DX of bars
    p..2p-1 divided by p; then ADX = (ADX*(p-1) + DX)/p.
    """
    _check_period("period", period)
    h, lo, c = _floats(high), _floats(low), _floats(close)
    n = _same_length(h, lo, c)
    out = [NAN] * n
    first = 2 * period - 1
    if n <= first:
        return out
    plus_s = 0.0
    minus_s = 0.0
    tr_s = 0.0
    for i in range(1, period):
        plus_dm, minus_dm = directional_movement(h[i], lo[i], h[i - 1], lo[i - 1])
        plus_s += plus_dm
        minus_s += minus_dm
        tr_s += true_range(h[i], lo[i], c[i - 1])
    dx_values = []
    value = NAN
    for i in range(period, n):
        plus_dm, minus_dm = directional_movement(h[i], lo[i], h[i - 1], lo[i - 1])
        plus_s = plus_s - plus_s / period + plus_dm
        minus_s = minus_s - minus_s / period + minus_dm
        tr_s = tr_s - tr_s / period + true_range(h[i], lo[i], c[i - 1])
        dx = _dx(plus_s, minus_s, tr_s)
        if i < first:
            if dx is not None:
                dx_values.append(dx)
            continue
        if i == first:
            if dx is not None:
                dx_values.append(dx)
            value = math.fsum(dx_values) / period
        elif dx is not None:
            value = (value * (period - 1) + dx) / period
        out[i] = value
    return out


def _dx(plus_s: float, minus_s: float, tr_s: float) -> float | None:
    if tr_s == 0.0:
        return None
    plus_di = 100.0 * (plus_s / tr_s)
    minus_di = 100.0 * (minus_s / tr_s)
    total = plus_di + minus_di
    if total == 0.0:
        return None
    return 100.0 * (abs(plus_di - minus_di) / total)


# --------------------------------------------------------------------------------------------
# Volume and momentum: OBV, Awesome oscillator
# --------------------------------------------------------------------------------------------


def obv(close: Series, volume: Series) -> list[float]:
    """On-balance volume: v_0 at index 0, then +v on an up close, -v on a down close.

    The running total is kept as an exact fraction, so every output is the correctly
    rounded value of the exact sum (no accumulated rounding error, unlike a float total).
    """
    c, v = _floats(close), _floats(volume)
    n = _same_length(c, v)
    out = [NAN] * n
    if n == 0:
        return out
    total = Fraction(v[0])
    out[0] = float(total)
    for i in range(1, n):
        if c[i] > c[i - 1]:
            total += Fraction(v[i])
        elif c[i] < c[i - 1]:
            total -= Fraction(v[i])
        out[i] = float(total)
    return out


def awesome_oscillator(high: Series, low: Series, fast: int = 5, slow: int = 34) -> list[float]:
    """SMA(median, fast) - SMA(median, slow) with median = (high + low)/2."""
    _check_period("fast", fast)
    _check_period("slow", slow)
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be smaller than slow ({slow})")
    h, lo = _floats(high), _floats(low)
    n = _same_length(h, lo)
    median = [(h[i] + lo[i]) / 2.0 for i in range(n)]
    out = [NAN] * n
    for i in range(slow - 1, n):
        out[i] = _mean(median[i - fast + 1 : i + 1]) - _mean(median[i - slow + 1 : i + 1])
    return out


def obv_slope(close: Series, volume: Series, period: int = 14) -> list[float]:
    """OBV's change over the last ``period`` bars over their total volume; first at ``period``.

    The change is summed exactly (``math.fsum`` of the signed volumes of bars i-period+1..i),
    and so is the total volume; 0 when the window has no volume.
    """
    _check_period("period", period)
    c, v = _floats(close), _floats(volume)
    n = _same_length(c, v)
    out = [NAN] * n
    signed = [0.0] * n
    for i in range(1, n):
        signed[i] = v[i] if c[i] > c[i - 1] else (-v[i] if c[i] < c[i - 1] else 0.0)
    for i in range(period, n):
        total = math.fsum(v[i - period + 1 : i + 1])
        net = math.fsum(signed[i - period + 1 : i + 1])
        out[i] = net / total if total > 0.0 else 0.0
    return out
