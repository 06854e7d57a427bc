"""Streaming indicator kernels: O(1) work per bar over caller-owned state.

Layout (one row per indicator configuration, so a bank of many configurations and a
single streaming indicator share the same code):

- ``params[row, :N_PARAMS]``: float64 parameters, filled once at the boundary, including
  derived constants (an EMA's ``k``) so the kernels never recompute them per bar;
- ``state[row, :STATE_LEN]``: float64 scalars (counters, running sums, previous values);
  counters are exact in float64 up to 2**53 bars;
- ``ring[offset : offset + ring_size(kind, params)]``: the configuration's slice of a
  shared ring-buffer pool (windows, window-extreme blocks); ``offset`` is passed explicitly;
- ``out[row, :N_OUT]``: the latest outputs, NaN during warm-up.

Rows are addressed by index into 2-D arrays instead of slicing per-row views, so no kernel
creates an array object per update (the core compiles without Numba's reference counting,
see ``liveopt._core._jit``).

Each ``<kind>_update_nb`` consumes one bar ``(high, low, close, volume)``; indicators of the
close alone ignore the other inputs. :func:`update_row_nb` dispatches on the kind code; the
batch driver :func:`run_1d_nb` and the bank both call it, so streaming and batch results are
the same machine code and bit-identical.

Numerics (why each running quantity is computed the way it is):

- Windowed sums (SMA, Bollinger middle, stochastic smoothing, AO) add the new value and
  subtract the old one forever, so rounding errors would random-walk. They use Neumaier
  compensated summation (:func:`_window_push`), which keeps the error at a few ulps of the
  sum regardless of the number of updates; a million-update drift test guards it. Means
  of a window holding one repeated value are returned exactly (:func:`_equal_run`).
- Windowed variance (Bollinger) uses a Welford-style replace update of the sum of squared
  deviations (no ``E[x^2] - E[x]^2`` cancellation, which loses ~9 digits at BTC prices),
  clamped at zero, and reset to exactly zero once the window holds one repeated value.
- Exponential filters (EMA, Wilder's RSI/ATR/ADX, KDJ) forget errors geometrically; they
  multiply by precomputed reciprocals where TA-Lib divides (divisions were the largest
  single cost in the bank), which moves results by an ulp, never more.
- OBV is an unbounded running sum of volumes: compensated as well (:func:`_kahan_add`).
- Window extremes (stochastic, %R, KDJ) use the van Herk / Gil-Werman block scheme:
  amortised O(1) per bar without data-dependent branches (see :func:`_extremes_push`).

Flat windows are defined, never a division by zero: RSI 50, stochastic %K 50, KDJ RSV 50,
Williams %R -50 (TA-Lib returns 0 for all four, which a signal model would read as an
extreme), ADX keeps its previous value (no directional movement), Bollinger width 0.
"""

import numpy as np

from liveopt._core._jit import njit

# Kind codes. The bank sorts its rows by kind so the dispatch branch predicts well.
SMA = 0
EMA = 1
RSI = 2
MACD = 3
BBANDS = 4
STOCH = 5
WILLR = 6
ATR = 7
ADX = 8
OBV = 9
AO = 10
KDJ = 11
OBV_SLOPE = 12
N_KINDS = 13

N_PARAMS = 8
STATE_LEN = 16
N_OUT = 3

_NAN = np.nan


# ---------------------------------------------------------------------------------------
# Shared building blocks
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def _kahan_add(state, row, i_sum, i_comp, x):
    # Neumaier's variant of Kahan summation: also exact when |x| > |sum|.
    s = state[row, i_sum]
    t = s + x
    if abs(s) >= abs(x):
        state[row, i_comp] += (s - t) + x
    else:
        state[row, i_comp] += (x - t) + s
    state[row, i_sum] = t


@njit(inline="always")
def _window_push(state, row, ring, base, period, i_head, i_sum, i_comp, n_seen, x):
    # Push x into a ring window of `period` values; returns the compensated window sum.
    # n_seen is the number of values pushed before this one.
    #
    # Add/remove with Neumaier compensation: the error stays at a few ulps of the sum
    # however many updates run. A plain running sum recomputed from the ring once per
    # window was tried (it is slightly cheaper): its residue within a window let a
    # stochastic %K of values that were all exactly 0 come out at -2.4e-15, outside
    # [0, 100] (found by the property tests). TA-Lib's plain running sum has the same flaw.
    head = int(state[row, i_head])
    if n_seen >= period:
        _kahan_add(state, row, i_sum, i_comp, -ring[base + head])
    ring[base + head] = x
    _kahan_add(state, row, i_sum, i_comp, x)
    head += 1
    if head == period:
        head = 0
    state[row, i_head] = head
    return state[row, i_sum] + state[row, i_comp]


@njit(inline="always")
def _equal_run(state, row, i_run, i_last, n_seen, x):
    # Length of the run of values equal to x ending with x. Windowed means and variances
    # use it to return exact results on flat windows, where a running sum may be an ulp off.
    run = state[row, i_run] + 1.0 if (n_seen > 0.0 and x == state[row, i_last]) else 1.0
    state[row, i_run] = run
    state[row, i_last] = x
    return run


@njit(inline="always")
def _extremes_push(state, row, ring, base, window, i_pos, i_max, i_min, n_seen, high, low):
    # Highest high and lowest low of the last `window` bars, by van Herk / Gil-Werman:
    # bars are cut into blocks of `window`; a window is a suffix of the previous block plus
    # a prefix of the current one. The prefix extremes are running values (state i_max,
    # i_min); the suffix extremes of the previous block are computed once, when it
    # completes. Cost: two comparisons per bar plus one pass over `window` values per
    # `window` bars, amortised O(1), and no data-dependent branches. A monotonic deque has
    # the same bound but its pops mispredict: measured in the bank, Williams %R cost 55 ns
    # per update with two deques and 22 ns with this (of which ~11 ns is the bank's fixed
    # per-candle cost).
    # Ring: highs [0, w), lows [w, 2w), suffix maxima [2w, 3w), suffix minima [3w, 4w).
    j = int(state[row, i_pos])  # position of this bar within the current block
    if j == 0:
        prefix_max = high
        prefix_min = low
    else:
        prefix_max = max(state[row, i_max], high)
        prefix_min = min(state[row, i_min], low)
    ring[base + j] = high
    ring[base + window + j] = low
    if n_seen < window or j == window - 1:
        # First block (the window is every bar so far), or the block is the whole window.
        window_max = prefix_max
        window_min = prefix_min
    else:
        window_max = max(ring[base + 2 * window + j + 1], prefix_max)
        window_min = min(ring[base + 3 * window + j + 1], prefix_min)
    if j == window - 1:
        suffix_max = high
        suffix_min = low
        for k in range(window - 1, -1, -1):
            suffix_max = max(suffix_max, ring[base + k])
            suffix_min = min(suffix_min, ring[base + window + k])
            ring[base + 2 * window + k] = suffix_max
            ring[base + 3 * window + k] = suffix_min
        j = -1
    state[row, i_pos] = j + 1
    state[row, i_max] = prefix_max
    state[row, i_min] = prefix_min
    return window_max, window_min


# ---------------------------------------------------------------------------------------
# SMA(period)          params: [period, 1/period]          ring: period
# state: 0 n, 1 head, 2 sum, 3 comp, 4 run of equal values, 5 previous value
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def sma_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Simple moving average; equivalent to ``talib.SMA(close, period)``."""
    period = int(params[row, 0])
    n = state[row, 0]
    total = _window_push(state, row, ring, base, period, 1, 2, 3, n, close)
    state[row, 0] = n + 1.0
    run = _equal_run(state, row, 4, 5, n, close)
    if n + 1.0 < period:
        out[row, 0] = _NAN
    elif run >= period:
        out[row, 0] = close  # the mean of one repeated value is that value, exactly
    else:
        out[row, 0] = total * params[row, 1]


# ---------------------------------------------------------------------------------------
# EMA(period)          params: [period, k]       ring: 0
# state: 0 n, 1 value
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def _ema_step(state, row, i_n, i_value, period, k, x):
    # Shared by EMA and MACD. Seed: the mean of the first `period` values, kept as a running
    # mean m += (x - m) / n, which is exact on constant input (a plain sum divided by the
    # period can be an ulp off, and MACD of a constant would not be exactly 0). Then
    # value = (x - value) * k + value, TA-Lib's operation order. Returns NaN in warm-up.
    n = state[row, i_n] + 1.0
    state[row, i_n] = n
    prev = state[row, i_value]
    if n <= period:
        state[row, i_value] = prev + (x - prev) / n if n > 1.0 else x
        return _NAN if n < period else state[row, i_value]
    state[row, i_value] = (x - prev) * k + prev
    return state[row, i_value]


@njit(inline="always")
def ema_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Exponential moving average seeded with an SMA; equivalent to ``talib.EMA``."""
    out[row, 0] = _ema_step(state, row, 0, 1, params[row, 0], params[row, 1], close)


@njit(inline="always")
def _wilder_step(params, state, row, i_avg, n, x):
    # Wilder's average of the n-th value x (n counts from 1), for RSI and ATR: the plain
    # mean of the first `period` values, then avg = (avg * (period - 1) + x) / period.
    # params[row] holds [period, 1/period, period - 1]: multiplying by the reciprocal
    # instead of dividing (divisions were the largest single cost in the bank) moves the
    # result from TA-Lib's by an ulp at most. Returns NaN until the n-th value is the
    # period-th.
    period = params[row, 0]
    if n < period:
        state[row, i_avg] += x
        return _NAN
    if n == period:
        state[row, i_avg] = (state[row, i_avg] + x) * params[row, 1]
    else:
        state[row, i_avg] = (state[row, i_avg] * params[row, 2] + x) * params[row, 1]
    return state[row, i_avg]


# ---------------------------------------------------------------------------------------
# RSI(period), Wilder  params: [period, 1/period, period-1]          ring: 0
# state: 0 n, 1 previous close, 2 average gain, 3 average loss
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def rsi_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Wilder's RSI; equivalent to ``talib.RSI`` except 50 (not 0) on a flat window."""
    period = params[row, 0]
    n = state[row, 0]
    state[row, 0] = n + 1.0
    if n == 0.0:
        state[row, 1] = close
        out[row, 0] = _NAN
        return
    diff = close - state[row, 1]
    state[row, 1] = close
    gain = diff if diff > 0.0 else 0.0
    loss = -diff if diff < 0.0 else 0.0
    # n is now the number of differences seen, including this one.
    avg_gain = _wilder_step(params, state, row, 2, n, gain)
    avg_loss = _wilder_step(params, state, row, 3, n, loss)
    if n < period:
        out[row, 0] = _NAN
        return
    total = avg_gain + avg_loss
    out[row, 0] = 100.0 * (avg_gain / total) if total != 0.0 else 50.0


# ---------------------------------------------------------------------------------------
# MACD(fast, slow, signal)  params: [fast, slow, signal, k_fast, k_slow, k_signal]
# state: 0 n, 1 slow ema, 2 fast ema, 3 signal n, 4 signal ema
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def macd_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """MACD line, a real signal EMA and the histogram; equivalent to ``talib.MACD``.

    TA-Lib aligns the two EMAs at the slow one's first value: the fast EMA is seeded with
    the SMA of the ``fast`` closes ending there, not of the first ``fast`` closes. All three
    outputs start once the signal EMA has its first value (index ``slow + signal - 2``).
    """
    fast = params[row, 0]
    slow = params[row, 1]
    n = state[row, 0]  # closes seen before this one; _ema_step advances the count
    slow_value = _ema_step(state, row, 0, 1, slow, params[row, 4], close)
    prev = state[row, 2]
    if n < slow:
        # The fast seed is the running mean of the `fast` closes ending at bar slow-1.
        j = n - (slow - fast) + 1.0  # position of this close within those `fast` closes
        if j >= 1.0:
            state[row, 2] = prev + (close - prev) / j if j > 1.0 else close
        if n < slow - 1.0:
            out[row, 0] = _NAN
            out[row, 1] = _NAN
            out[row, 2] = _NAN
            return
    else:
        state[row, 2] = (close - prev) * params[row, 3] + prev
    line = state[row, 2] - slow_value
    signal = _ema_step(state, row, 3, 4, params[row, 2], params[row, 5], line)
    if signal != signal:  # NaN: the signal EMA is still warming up
        out[row, 0] = _NAN
        out[row, 1] = _NAN
        out[row, 2] = _NAN
        return
    out[row, 0] = line
    out[row, 1] = signal
    out[row, 2] = line - signal


# ---------------------------------------------------------------------------------------
# Bollinger(period, k)  params: [period, k, 1/period]      ring: period
# state: 0 n, 1 head, 2 sum, 3 comp, 4 sum of squared deviations (M2), 5 run of equal
#        values, 6 previous value
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def bbands_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Bollinger bands with the population std; equivalent to ``talib.BBANDS`` (SMA)."""
    period = int(params[row, 0])
    n = state[row, 0]
    old = ring[base + int(state[row, 1])]  # the value leaving a full window
    prev_total = state[row, 2] + state[row, 3]
    total = _window_push(state, row, ring, base, period, 1, 2, 3, n, close)
    inv_period = params[row, 2]
    mean = total * inv_period
    state[row, 0] = n + 1.0
    if n < period:
        # Filling the window, Welford's add step: M2' = M2 + (x - mean) * (x - mean'),
        # with both means taken from the compensated sums over the growing count.
        prev_mean = prev_total / n if n > 0.0 else close
        state[row, 4] += (close - prev_mean) * (close - total / (n + 1.0))
    else:
        # Full window, `old` replaced by `close`:
        # M2' = M2 + (x - y) * ((x - mean') + (y - mean)).
        state[row, 4] += (close - old) * ((close - mean) + (old - prev_total * inv_period))
    if _equal_run(state, row, 5, 6, n, close) >= period:
        # A window of one repeated value: its mean is that value and its width is exactly
        # zero; resetting M2 also discards any rounding residue accumulated before.
        state[row, 4] = 0.0
        mean = close
    elif state[row, 4] < 0.0:
        state[row, 4] = 0.0
    if n + 1.0 < period:
        out[row, 0] = _NAN
        out[row, 1] = _NAN
        out[row, 2] = _NAN
        return
    width = params[row, 1] * np.sqrt(state[row, 4] * inv_period)
    out[row, 0] = mean + width
    out[row, 1] = mean
    out[row, 2] = mean - width


# ---------------------------------------------------------------------------------------
# Stochastic(k_period, k_smooth, d_period)
# params: [k_period, k_smooth, d_period, 1/k_smooth, 1/d_period]
# ring: extremes 4*kp, fast %K window ks, slow %K window dp
# state: 0 n, 1 block position, 2 prefix max, 3 prefix min, 5 fastK head, 6 fastK sum,
#        7 fastK comp, 8 slowK head, 9 slowK sum, 10 slowK comp
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def _fast_k(high_max, low_min, close):
    # TA-Lib's operation order, 100 * ((c - LL) / span): the quotient is in [0, 1] before
    # scaling, so the result cannot leave [0, 100] by rounding. A flat window is neutral.
    span = high_max - low_min
    if span == 0.0:
        return 50.0
    return 100.0 * ((close - low_min) / span)


@njit(inline="always")
def stoch_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Slow stochastic (SMA smoothing); equivalent to ``talib.STOCH`` with SMA types."""
    kp = int(params[row, 0])
    ks = int(params[row, 1])
    dp = int(params[row, 2])
    n = state[row, 0]
    state[row, 0] = n + 1.0
    high_max, low_min = _extremes_push(state, row, ring, base, kp, 1, 2, 3, n, high, low)
    out[row, 0] = _NAN
    out[row, 1] = _NAN
    n_fast = n - (kp - 1)  # fast %K values seen before this one
    if n_fast < 0.0:
        return
    fast_k = _fast_k(high_max, low_min, close)
    k_total = _window_push(state, row, ring, base + 4 * kp, ks, 5, 6, 7, n_fast, fast_k)
    n_slow = n_fast - (ks - 1)
    if n_slow < 0.0:
        return
    slow_k = k_total * params[row, 3]
    d_total = _window_push(state, row, ring, base + 4 * kp + ks, dp, 8, 9, 10, n_slow, slow_k)
    if n_slow - (dp - 1) < 0.0:
        return
    out[row, 0] = slow_k
    out[row, 1] = d_total * params[row, 4]


# ---------------------------------------------------------------------------------------
# Williams %R(period)   params: [period]          ring: extremes 4p
# state: 0 n, 1 block position, 2 prefix max, 3 prefix min
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def willr_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Williams %R in [-100, 0]; equivalent to ``talib.WILLR`` except -50 when flat."""
    period = int(params[row, 0])
    n = state[row, 0]
    state[row, 0] = n + 1.0
    high_max, low_min = _extremes_push(state, row, ring, base, period, 1, 2, 3, n, high, low)
    if n + 1.0 < period:
        out[row, 0] = _NAN
        return
    span = high_max - low_min
    out[row, 0] = -100.0 * ((high_max - close) / span) if span != 0.0 else -50.0


# ---------------------------------------------------------------------------------------
# ATR(period), Wilder   params: [period, 1/period, period-1]          ring: 0
# state: 0 n, 1 previous close, 2 TR sum / ATR
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def _true_range(high, low, prev_close):
    greatest = high - low
    up = abs(prev_close - high)
    if up > greatest:
        greatest = up
    down = abs(prev_close - low)
    if down > greatest:
        greatest = down
    return greatest


@njit(inline="always")
def atr_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Wilder's average true range; equivalent to ``talib.ATR``."""
    n = state[row, 0]
    state[row, 0] = n + 1.0
    if n == 0.0:
        state[row, 1] = close
        out[row, 0] = _NAN
        return
    tr = _true_range(high, low, state[row, 1])
    state[row, 1] = close
    out[row, 0] = _wilder_step(params, state, row, 2, n, tr)


# ---------------------------------------------------------------------------------------
# ADX(period), Wilder   params: [period, 1/period, period-1]          ring: 0
# state: 0 n, 1 prev high, 2 prev low, 3 prev close, 4 +DM, 5 -DM, 6 TR, 7 DX sum / ADX
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def adx_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Wilder's average directional index; equivalent to ``talib.ADX``."""
    period = params[row, 0]
    n = state[row, 0]
    state[row, 0] = n + 1.0
    out[row, 0] = _NAN
    if n == 0.0:
        state[row, 1] = high
        state[row, 2] = low
        state[row, 3] = close
        return
    up = high - state[row, 1]
    down = state[row, 2] - low
    tr = _true_range(high, low, state[row, 3])
    state[row, 1] = high
    state[row, 2] = low
    state[row, 3] = close
    plus_dm = up if (up > 0.0 and up > down) else 0.0
    minus_dm = down if (down > 0.0 and down > up) else 0.0
    if n < period:
        # Initial sums over bars 1 .. period-1.
        state[row, 4] += plus_dm
        state[row, 5] += minus_dm
        state[row, 6] += tr
        return
    inv_period = params[row, 1]
    state[row, 4] = state[row, 4] - state[row, 4] * inv_period + plus_dm
    state[row, 5] = state[row, 5] - state[row, 5] * inv_period + minus_dm
    state[row, 6] = state[row, 6] - state[row, 6] * inv_period + tr
    dx = _NAN
    tr_sum = state[row, 6]
    if tr_sum != 0.0:
        scale = 100.0 / tr_sum
        minus_di = state[row, 5] * scale
        plus_di = state[row, 4] * scale
        di_sum = minus_di + plus_di
        if di_sum != 0.0:
            dx = 100.0 * (abs(minus_di - plus_di) / di_sum)
    last_seed = 2.0 * period - 1.0
    if n < last_seed:
        if dx == dx:
            state[row, 7] += dx
        return
    if n == last_seed:
        if dx == dx:
            state[row, 7] += dx
        state[row, 7] = state[row, 7] * inv_period
    elif dx == dx:
        state[row, 7] = (state[row, 7] * params[row, 2] + dx) * inv_period
    out[row, 0] = state[row, 7]


# ---------------------------------------------------------------------------------------
# OBV                  params: []                ring: 0
# state: 0 n, 1 previous close, 2 sum, 3 comp
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def obv_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """On-balance volume starting at the first volume; equivalent to ``talib.OBV``."""
    n = state[row, 0]
    state[row, 0] = n + 1.0
    if n == 0.0:
        state[row, 2] = volume
    elif close > state[row, 1]:
        _kahan_add(state, row, 2, 3, volume)
    elif close < state[row, 1]:
        _kahan_add(state, row, 2, 3, -volume)
    state[row, 1] = close
    out[row, 0] = state[row, 2] + state[row, 3]


# ---------------------------------------------------------------------------------------
# Awesome oscillator(fast, slow)  params: [fast, slow, 1/fast, 1/slow]   ring: fast + slow
# state: 0 n, 1 fast head, 2 fast sum, 3 fast comp, 4 slow head, 5 slow sum, 6 slow comp,
#        7 run of equal medians, 8 previous median
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def ao_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """Awesome oscillator: SMA(fast) - SMA(slow) of the median price (high + low) / 2."""
    fast = int(params[row, 0])
    slow = int(params[row, 1])
    n = state[row, 0]
    state[row, 0] = n + 1.0
    median = (high + low) / 2.0
    fast_total = _window_push(state, row, ring, base, fast, 1, 2, 3, n, median)
    slow_total = _window_push(state, row, ring, base + fast, slow, 4, 5, 6, n, median)
    run = _equal_run(state, row, 7, 8, n, median)
    if n + 1.0 < slow:
        out[row, 0] = _NAN
    elif run >= slow:
        out[row, 0] = 0.0  # both means are the repeated median, exactly
    else:
        out[row, 0] = fast_total * params[row, 2] - slow_total * params[row, 3]


# ---------------------------------------------------------------------------------------
# KDJ(n, m1, m2)        params: [n, m1, m2, 1/m1, 1/m2]       ring: extremes 4n
# state: 0 count, 1 block position, 2 prefix max, 3 prefix min, 5 K, 6 D
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def kdj_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """KDJ: K and D smooth the RSV with weights (m-1)/m and 1/m from 50; J = 3K - 2D."""
    window = int(params[row, 0])
    m1 = params[row, 1]
    m2 = params[row, 2]
    n = state[row, 0]
    state[row, 0] = n + 1.0
    high_max, low_min = _extremes_push(state, row, ring, base, window, 1, 2, 3, n, high, low)
    if n + 1.0 < window:
        out[row, 0] = _NAN
        out[row, 1] = _NAN
        out[row, 2] = _NAN
        return
    if n + 1.0 == window:
        state[row, 5] = 50.0
        state[row, 6] = 50.0
    rsv = _fast_k(high_max, low_min, close)
    k = ((m1 - 1.0) * state[row, 5] + rsv) * params[row, 3]
    d = ((m2 - 1.0) * state[row, 6] + k) * params[row, 4]
    state[row, 5] = k
    state[row, 6] = d
    out[row, 0] = k
    out[row, 1] = d
    out[row, 2] = 3.0 * k - 2.0 * d


# ---------------------------------------------------------------------------------------
# Dispatch and drivers
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# OBV slope(period)     params: [period]          ring: signed volumes p, volumes p
# state: 0 n, 1 previous close, 2 signed head, 3 signed sum, 4 signed comp, 5 volume head,
#        6 volume sum, 7 volume comp
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def obv_slope_update_nb(params, state, ring, base, out, row, high, low, close, volume):
    """OBV's change over the last ``period`` bars divided by the volume traded in them.

    Each bar moves OBV by +volume (close up), -volume (close down) or 0, so the ratio is
    the net signed share of the window's volume, in [-1, 1] by construction: a bounded
    slope that needs no normalising constant. 0 when the window traded no volume. The first
    bar has no previous close, so the first value is at index ``period``.
    """
    period = int(params[row, 0])
    n = state[row, 0]
    state[row, 0] = n + 1.0
    if n == 0.0:
        state[row, 1] = close
        out[row, 0] = _NAN
        return
    prev = state[row, 1]
    state[row, 1] = close
    signed = volume if close > prev else (-volume if close < prev else 0.0)
    seen = n - 1.0  # bars with a signed volume before this one
    net = _window_push(state, row, ring, base, period, 2, 3, 4, seen, signed)
    total = _window_push(state, row, ring, base + period, period, 5, 6, 7, seen, volume)
    if n < period:
        out[row, 0] = _NAN
    elif total > 0.0:
        # Clamped: the compensated sums are exact to a few ulps, and an ulp must not push a
        # window of only up-closes past 1.
        out[row, 0] = min(1.0, max(-1.0, net / total))
    else:
        out[row, 0] = 0.0


# ---------------------------------------------------------------------------------------
# Drivers
#
# The kind is resolved outside the hot loops: the batch driver picks one kind's update and
# loops over bars; the bank keeps its rows grouped by kind and runs one loop per kind.
# Measured on 45k candles, resolving the kind per row through a 12-way branch inside the
# loop cost ~15 ns per update (EMA: 21 ns through the branch, 6 ns called directly),
# because the inlined 12-way body defeats LLVM's register allocation.
# ---------------------------------------------------------------------------------------


@njit(inline="always")
def _update_row(kind, params, state, ring, base, out, row, high, low, close, volume):
    if kind == SMA:
        sma_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == EMA:
        ema_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == RSI:
        rsi_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == MACD:
        macd_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == BBANDS:
        bbands_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == STOCH:
        stoch_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == WILLR:
        willr_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == ATR:
        atr_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == ADX:
        adx_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == OBV:
        obv_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == AO:
        ao_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    elif kind == KDJ:
        kdj_update_nb(params, state, ring, base, out, row, high, low, close, volume)
    else:
        obv_slope_update_nb(params, state, ring, base, out, row, high, low, close, volume)


_I64 = "int64"
_F64_2D = "float64[:, ::1]"
_F64_1D = "float64[::1]"
_I64_1D = "int64[::1]"


@njit(
    f"void({_I64}, {_F64_2D}, {_F64_2D}, {_F64_1D}, {_I64}, {_F64_2D}, {_I64},"
    " float64, float64, float64, float64)"
)
def update_row_nb(kind, params, state, ring, base, out, row, high, low, close, volume):
    """Advance configuration ``row`` of kind ``kind`` by one bar (the streaming entry)."""
    _update_row(kind, params, state, ring, base, out, row, high, low, close, volume)


@njit(inline="always")
def _run_series(update, params, state, ring, out, high, low, close, volume, series):
    n_out = series.shape[0]
    for t in range(close.shape[0]):
        update(params, state, ring, 0, out, 0, high[t], low[t], close[t], volume[t])
        for k in range(n_out):
            series[k, t] = out[0, k]


@njit(
    f"void({_I64}, {_F64_2D}, {_F64_2D}, {_F64_1D}, {_F64_2D}, {_F64_1D}, {_F64_1D},"
    f" {_F64_1D}, {_F64_1D}, {_F64_2D})"
)
def run_1d_nb(kind, params, state, ring, out, high, low, close, volume, series):
    """Run row 0 of a one-row state over whole arrays; output ``k`` of bar ``t`` goes to
    ``series[k, t]``. The batch form: the streaming update, in a loop."""
    if kind == SMA:
        _run_series(sma_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == EMA:
        _run_series(ema_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == RSI:
        _run_series(rsi_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == MACD:
        _run_series(macd_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == BBANDS:
        _run_series(bbands_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == STOCH:
        _run_series(stoch_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == WILLR:
        _run_series(willr_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == ATR:
        _run_series(atr_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == ADX:
        _run_series(adx_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == OBV:
        _run_series(obv_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == AO:
        _run_series(ao_update_nb, params, state, ring, out, high, low, close, volume, series)
    elif kind == KDJ:
        _run_series(kdj_update_nb, params, state, ring, out, high, low, close, volume, series)
    else:
        _run_series(obv_slope_update_nb, params, state, ring, out, high, low, close, volume,
                    series)


@njit(inline="always")
def _kind_rows(update, kind, kind_start, timeframes, params, state, ring, ring_base, out,
               closed, high, low, close, volume):
    for row in range(kind_start[kind], kind_start[kind + 1]):
        tf = timeframes[row]
        if closed[tf]:
            update(params, state, ring, ring_base[row], out, row,
                   high[tf], low[tf], close[tf], volume[tf])


@njit(inline="always")
def _bank_step(kind_start, timeframes, params, state, ring, ring_base, out, closed,
               high, low, close, volume):
    _kind_rows(sma_update_nb, SMA, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(ema_update_nb, EMA, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(rsi_update_nb, RSI, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(macd_update_nb, MACD, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(bbands_update_nb, BBANDS, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(stoch_update_nb, STOCH, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(willr_update_nb, WILLR, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(atr_update_nb, ATR, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(adx_update_nb, ADX, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(obv_update_nb, OBV, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(ao_update_nb, AO, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(kdj_update_nb, KDJ, kind_start, timeframes, params, state, ring, ring_base,
               out, closed, high, low, close, volume)
    _kind_rows(obv_slope_update_nb, OBV_SLOPE, kind_start, timeframes, params, state, ring,
               ring_base, out, closed, high, low, close, volume)


_BANK_ARRAYS = f"{_I64_1D}, {_I64_1D}, {_F64_2D}, {_F64_2D}, {_F64_1D}, {_I64_1D}, {_F64_2D}"


@njit(f"void({_BANK_ARRAYS}, uint8[::1], {_F64_1D}, {_F64_1D}, {_F64_1D}, {_F64_1D})")
def bank_update_nb(kind_start, timeframes, params, state, ring, ring_base, out, closed,
                   high, low, close, volume):
    """Advance every configuration whose timeframe closed a candle, in one call.

    Rows are grouped by kind: rows ``kind_start[k] .. kind_start[k+1]`` are of kind ``k``.
    ``closed[tf]`` is 1 when timeframe ``tf`` has a new closed candle, whose values are
    ``high[tf]``, ``low[tf]``, ``close[tf]`` and ``volume[tf]``.
    """
    _bank_step(kind_start, timeframes, params, state, ring, ring_base, out, closed,
               high, low, close, volume)


@njit(
    f"void({_BANK_ARRAYS}, uint8[::1], {_F64_1D}, {_F64_1D}, {_F64_1D}, {_F64_1D}, {_I64},"
    f" {_F64_1D}, {_F64_1D}, {_F64_1D}, {_F64_1D})"
)
def bank_replay_nb(kind_start, timeframes, params, state, ring, ring_base, out, closed,
                   bar_high, bar_low, bar_close, bar_volume, timeframe, high, low, close,
                   volume):
    """Feed a series of closed candles of one timeframe through the bank, in order: the
    same step as :func:`bank_update_nb`, once per candle, inside one compiled loop.

    ``closed`` and ``bar_*`` are caller-owned scratch of one slot per timeframe."""
    closed[:] = 0
    closed[timeframe] = 1
    for t in range(close.shape[0]):
        bar_high[timeframe] = high[t]
        bar_low[timeframe] = low[t]
        bar_close[timeframe] = close[t]
        bar_volume[timeframe] = volume[t]
        _bank_step(kind_start, timeframes, params, state, ring, ring_base, out, closed,
                   bar_high, bar_low, bar_close, bar_volume)


def ring_size(kind: int, params) -> int:
    """Number of ring-pool slots a configuration of ``kind`` needs (plain Python)."""
    if kind in (SMA, BBANDS):
        return int(params[0])
    if kind == STOCH:
        return 4 * int(params[0]) + int(params[1]) + int(params[2])
    if kind == OBV_SLOPE:
        return 2 * int(params[0])
    if kind in (WILLR, KDJ):
        return 4 * int(params[0])
    if kind == AO:
        return int(params[0]) + int(params[1])
    return 0
