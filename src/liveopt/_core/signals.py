"""The signal model's kernels: indicator sub-scores, and every variant's score at once.

Specified in ``docs/signal-model.md``. Sub-scores are in [-1, 1], positive bullish, and 0
while an input is NaN (warming up). Nine of the ten depend only on indicator values, so
they are computed once per closed candle (:func:`shared_subscores_nb`); the RSI term
depends on each variant's oversold/overbought levels and is computed per variant inside
:func:`score_variants_nb`. Sub-score slots follow ``liveopt.optimizer.WEIGHT_NAMES``.
"""

import numpy as np

from liveopt._core._jit import njit

RSI, WILLIAMS_R, MACD, AO, EMA_TREND, STOCHASTIC, BOLLINGER, KDJ, OBV, ORDERBOOK = range(10)
N_SUBSCORES = 10

# Signal classes.
STRONG_SELL = -2
SELL = -1
NEUTRAL = 0
BUY = 1
STRONG_BUY = 2

# The RSI's "mild" band: within this many points inside the variant's oversold/overbought
# level the term is +-0.6 (the origin's 40/60 mild levels around 30/70).
RSI_MILD_BAND = 10.0
RSI_MILD_SCORE = 0.6

# A score (or confidence) within this of a threshold counts as reaching it. Weights are
# fractions like 4/27, so the float sum of weight * sub-score carries a few ulps of
# rounding: an exact -0.5 can come out as -0.49999999999999994 and miss a -0.5 threshold
# depending on the order of the additions. Thresholds sit on a 0.05 grid, so a 1e-9 band
# changes no decision that the exact arithmetic of the specification would not take.
THRESHOLD_TOLERANCE = 1e-9


@njit(inline="always")
def _sign_test(value, low, high):
    # +1 below `low`, -1 above `high`, else 0; 0 for NaN (comparisons with NaN are false).
    if value < low:
        return 1.0
    if value > high:
        return -1.0
    return 0.0


@njit(
    "void(float64, float64, float64, float64, float64, float64, float64, float64, float64,"
    " float64, float64, float64, float64, float64, float64[::1])"
)
def shared_subscores_nb(williams_r, macd_line, macd_hist, ao, ema_fast, ema_slow, stoch_k,
                        stoch_d, close, bb_upper, bb_lower, kdj_j, obv_slope, book_imbalance,
                        out):
    """Write the nine variant-independent sub-scores into ``out[1:]``; ``out[RSI]`` is set
    to 0 (it is computed per variant). ``book_imbalance`` is ``(bid - ask) / (bid + ask)``
    of the top-5 depth, or NaN without level-2 data."""
    out[RSI] = 0.0
    out[WILLIAMS_R] = _sign_test(williams_r, -80.0, -20.0)
    if macd_line > 0.0 and macd_hist > 0.0:
        out[MACD] = 1.0
    elif macd_line < 0.0 and macd_hist < 0.0:
        out[MACD] = -1.0
    else:
        out[MACD] = 0.0
    out[AO] = 1.0 if ao > 0.0 else (-1.0 if ao < 0.0 else 0.0)
    if ema_fast > ema_slow:
        out[EMA_TREND] = 1.0
    elif ema_fast < ema_slow:
        out[EMA_TREND] = -1.0
    else:
        out[EMA_TREND] = 0.0
    if stoch_k < 20.0 and stoch_k > stoch_d:
        out[STOCHASTIC] = 1.0
    elif stoch_k > 80.0 and stoch_k < stoch_d:
        out[STOCHASTIC] = -1.0
    else:
        out[STOCHASTIC] = 0.0
    if bb_upper != bb_upper or bb_lower != bb_lower:
        out[BOLLINGER] = 0.0  # either band warming up: no opinion
    elif close < bb_lower:
        out[BOLLINGER] = 1.0
    elif close > bb_upper:
        out[BOLLINGER] = -1.0
    else:
        out[BOLLINGER] = 0.0
    out[KDJ] = _sign_test(kdj_j, 20.0, 80.0)
    # The OBV slope indicator is in [-1, 1] by construction; clamped anyway so the score
    # stays in [-1, 1] whatever the bank row holds.
    out[OBV] = min(1.0, max(-1.0, obv_slope)) if obv_slope == obv_slope else 0.0
    if book_imbalance == book_imbalance:
        out[ORDERBOOK] = min(1.0, max(-1.0, book_imbalance))
    else:
        out[ORDERBOOK] = 0.0


@njit(inline="always")
def rsi_subscore(rsi, oversold, overbought):
    """+1 below ``oversold``, +0.6 below ``oversold + 10``, -1 above ``overbought``, -0.6
    above ``overbought - 10``, else 0 (and 0 for NaN)."""
    # Nested selects rather than an if-chain: LLVM turns them into blends in the
    # vectorised score loop, where levels differ per variant, so branches would often be
    # mispredicted (10k variants with random levels, RSI term only: 8.3 ns per variant
    # with branches, 3.9 with a sum of 0/1 flags; the RSI-only score pass, 2.6 ns with
    # the flags and 2.1 with the selects).
    return (1.0 if rsi < oversold else (
        -1.0 if rsi > overbought else (
            RSI_MILD_SCORE if rsi < oversold + RSI_MILD_BAND else (
                -RSI_MILD_SCORE if rsi > overbought - RSI_MILD_BAND else 0.0))))


@njit(inline="always")
def _strong_class(value, strong_buy, buy, strong_sell):
    # STRONG_BUY, STRONG_SELL, or 0 for any weaker class: the specification's if-chain
    # (strong buy, buy, strong sell, sell, in that order) stopped at the strong classes.
    # It is STRONG_SELL only below the buy threshold, which matters only for thresholds
    # closer than the tolerance. Bitwise ``&`` rather than ``and``: no branch, so the
    # score loop stays vectorised.
    up = value >= strong_buy - THRESHOLD_TOLERANCE
    down = (value <= strong_sell + THRESHOLD_TOLERANCE) & (value < buy - THRESHOLD_TOLERANCE)
    return (STRONG_BUY if up else 0) + (STRONG_SELL if down else 0)


@njit(inline="always")
def _next_voice(subscores, weighted, i):
    # The first shared indicator after ``i`` with an opinion (a non-zero sub-score) that
    # the block weighs, or N_SUBSCORES when there is none.
    i += 1
    while i < N_SUBSCORES and (subscores[i] == 0.0 or weighted[i] == 0):
        i += 1
    return i


@njit(
    "void(float64[::1], float64, int64, int64, float64[:, ::1], float64[::1], float64[::1],"
    " float64[::1], float64[::1], float64[::1], float64[::1], int8[::1], uint8[::1])"
)
def score_variants_nb(subscores, rsi, first, last, weights, rsi_oversold, rsi_overbought,
                      strong_buy, buy, strong_sell, score, strong, weighted):
    """Score variants ``first .. last - 1`` (a contiguous block of the struct of arrays;
    the variant pass passes its signal configurations, one column per configuration).

    ``score[v] = sum(w_i * s_i)`` with the RSI term from the variant's own levels, and
    ``strong[v]`` is the variant's class if it is STRONG_BUY or STRONG_SELL, else 0 (no
    weaker class acts: an entry or a signal exit needs a strong signal). The confidence
    matters only for those, so it is not computed here: :func:`confidence_nb` gives it
    for one variant. ``weights`` is ``float64[N_SUBSCORES, n]``, one row per indicator,
    normalised (columns sum to 1), so the score is in [-1, 1]. ``weighted[i]`` is 0 when
    no variant of the block gives indicator ``i`` any weight (the caller knows it once,
    at set-up): that indicator is skipped.

    Layout and loop order are for speed, measured on 10,000 random variants over the
    closes of the benchmark's 1m ticks (2-core VM). The shared sub-scores are the same
    for every variant at a close, so the loops go over variants with the indicators that
    have an opinion, four at a time: up to four rows of weights are multiplied and summed
    in registers, and the last group also adds the RSI term and classifies. Only a close
    with five or more voicing indicators stores a partial sum and reads it back. Against
    one pass per indicator with three accumulators (score, and the weights for and
    against) and the full class and confidence for every variant: 6.4 -> 4.3 ns per
    variant and close with the decisions' scan (median of 15 alternating rounds over
    3,000 closes), with the same decisions. A missing slot in a group of four reads the
    RSI row with a multiplier of 0: it adds +0.0, exactly nothing (a partial sum is never
    -0.0), so the sum is the specification's, in indicator order. Loops run over slices
    from index 0: with a loop index that could be negative (``range(first, last)``),
    Numba guards every access against negative-index wraparound and LLVM does not
    vectorise the loop (measured 8 ns against 2.4 ns). The RSI term is added last, so
    the score equals the specification's sum up to rounding (the class comparisons have
    a 1e-9 tolerance for exactly that reason).
    """
    total = score[first:last]
    rsi_row = weights[RSI, first:last]
    oversold = rsi_oversold[first:last]
    overbought = rsi_overbought[first:last]
    strong_buy_ = strong_buy[first:last]
    buy_ = buy[first:last]
    strong_sell_ = strong_sell[first:last]
    classes = strong[first:last]
    m = total.shape[0]
    i0 = _next_voice(subscores, weighted, RSI)
    if i0 == N_SUBSCORES:
        # The RSI alone has an opinion.
        for k in range(m):
            value = rsi_row[k] * rsi_subscore(rsi, oversold[k], overbought[k])
            total[k] = value
            classes[k] = _strong_class(value, strong_buy_[k], buy_[k], strong_sell_[k])
        return
    partial = False  # whether total[] holds the sum of the groups before this one
    while True:
        i1 = _next_voice(subscores, weighted, i0)
        i2 = _next_voice(subscores, weighted, i1)
        i3 = _next_voice(subscores, weighted, i2)
        after = _next_voice(subscores, weighted, i3)
        s0 = subscores[i0]
        s1 = subscores[i1] if i1 < N_SUBSCORES else 0.0
        s2 = subscores[i2] if i2 < N_SUBSCORES else 0.0
        s3 = subscores[i3] if i3 < N_SUBSCORES else 0.0
        w0 = weights[i0, first:last]
        w1 = weights[i1 if i1 < N_SUBSCORES else RSI, first:last]
        w2 = weights[i2 if i2 < N_SUBSCORES else RSI, first:last]
        w3 = weights[i3 if i3 < N_SUBSCORES else RSI, first:last]
        if after < N_SUBSCORES:
            if partial:
                for k in range(m):
                    total[k] = total[k] + w0[k] * s0 + w1[k] * s1 + w2[k] * s2 + w3[k] * s3
            else:
                for k in range(m):
                    total[k] = 0.0 + w0[k] * s0 + w1[k] * s1 + w2[k] * s2 + w3[k] * s3
            partial = True
            i0 = after
            continue
        if partial:
            for k in range(m):
                shared = total[k] + w0[k] * s0 + w1[k] * s1 + w2[k] * s2 + w3[k] * s3
                value = shared + rsi_row[k] * rsi_subscore(rsi, oversold[k], overbought[k])
                total[k] = value
                classes[k] = _strong_class(value, strong_buy_[k], buy_[k], strong_sell_[k])
        else:
            for k in range(m):
                shared = 0.0 + w0[k] * s0 + w1[k] * s1 + w2[k] * s2 + w3[k] * s3
                value = shared + rsi_row[k] * rsi_subscore(rsi, oversold[k], overbought[k])
                total[k] = value
                classes[k] = _strong_class(value, strong_buy_[k], buy_[k], strong_sell_[k])
        return


@njit(inline="always")
def confidence_nb(subscores, rsi, weights, v, oversold, overbought, value, weighted):
    """The confidence of variant ``v`` (column ``v`` of ``weights``) whose score is
    ``value``: the weight of the non-zero sub-scores that agree with the score's sign
    over the weight of all non-zero sub-scores, 0 if there are none or the score is 0.
    The sums run in indicator order with the RSI last, as the score's do."""
    if value == 0.0:
        return 0.0
    for_ = 0.0
    against = 0.0
    i = _next_voice(subscores, weighted, RSI)
    while i < N_SUBSCORES:
        if subscores[i] > 0.0:
            for_ += weights[i, v]
        else:
            against += weights[i, v]
        i = _next_voice(subscores, weighted, i)
    r = rsi_subscore(rsi, oversold, overbought)
    if r > 0.0:
        for_ += weights[RSI, v]
    elif r < 0.0:
        against += weights[RSI, v]
    voiced = for_ + against
    if voiced <= 0.0:
        return 0.0
    return (for_ if value > 0.0 else against) / voiced


def empty_outputs(n_variants: int):
    """Caller-owned buffers for :func:`score_variants_nb`: score, strong, and
    ``weighted`` with every indicator marked as used (plain Python)."""
    return (np.zeros(n_variants), np.zeros(n_variants, dtype=np.int8),
            np.ones(N_SUBSCORES, dtype=np.uint8))
