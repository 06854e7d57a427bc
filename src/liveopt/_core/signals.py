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
    if rsi < oversold:
        return 1.0
    if rsi > overbought:
        return -1.0
    if rsi < oversold + RSI_MILD_BAND:
        return RSI_MILD_SCORE
    if rsi > overbought - RSI_MILD_BAND:
        return -RSI_MILD_SCORE
    return 0.0


@njit(inline="always")
def _rsi_term(rsi, oversold, overbought):
    # rsi_subscore without branches: levels differ per variant, so its branches were often
    # mispredicted (10k variants with random levels, RSI term only: 8.3 ns per variant
    # with branches, 3.9 ns without).
    below = 1.0 if rsi < oversold else 0.0
    above = (1.0 if rsi > overbought else 0.0) * (1.0 - below)
    neither = (1.0 - below) * (1.0 - above)
    mild_below = (1.0 if rsi < oversold + RSI_MILD_BAND else 0.0) * neither
    mild_above = (1.0 if rsi > overbought - RSI_MILD_BAND else 0.0) * neither * (1.0 - mild_below)
    return below - above + RSI_MILD_SCORE * (mild_below - mild_above)


@njit(inline="always")
def _class_of(value, strong_buy, buy, sell, strong_sell):
    # The class as a sum of comparisons (no branches): with strong_buy >= buy > sell >=
    # strong_sell (VariantSet checks it) this is the if-chain of the specification.
    return (
        (1 if value >= strong_buy - THRESHOLD_TOLERANCE else 0)
        + (1 if value >= buy - THRESHOLD_TOLERANCE else 0)
        - (1 if value <= strong_sell + THRESHOLD_TOLERANCE else 0)
        - (1 if value <= sell + THRESHOLD_TOLERANCE else 0)
    )


@njit(
    "void(float64[::1], float64, int64, int64, float64[:, ::1], float64[::1], float64[::1],"
    " float64[::1], float64[::1], float64[::1], float64[::1], float64[::1], float64[::1],"
    " int8[::1], float64[::1], uint8[::1])"
)
def score_variants_nb(subscores, rsi, first, last, weights, rsi_oversold, rsi_overbought,
                      strong_buy, buy, sell, strong_sell, score, confidence, signal, scratch,
                      weighted):
    """Score variants ``first .. last - 1`` (a contiguous block of the struct of arrays;
    the variant pass passes its signal configurations, one column per configuration).

    For each: ``score = sum(w_i * s_i)`` with the RSI term from the variant's own levels;
    ``confidence`` = weight of the non-zero sub-scores agreeing with the score's sign over
    the weight of all non-zero sub-scores (0 if none); ``signal`` = STRONG_BUY .. STRONG_SELL
    by the variant's thresholds. Weights are normalised (columns sum to 1), so the score is
    in [-1, 1]. ``weights`` is ``float64[N_SUBSCORES, n]``, one row per indicator; results
    go to ``score[v]``, ``confidence[v]``, ``signal[v]``; ``scratch`` is float64[n].
    ``weighted[i]`` is 0 when no variant of the block gives indicator ``i`` any weight (the
    caller knows it once, at set-up): that indicator's pass is skipped.

    Layout and loop order are for speed, measured on 1000 variants (2-core VM, loaded):
    one variant at a time over its ten weights, 58 ns per variant; this form, under 7. The
    nine shared sub-scores are the same for every variant at a close, so the first pass
    goes indicator by indicator, each a multiply-add over a contiguous row of weights (an
    indicator with no opinion is skipped for all variants at once); the second adds each
    variant's RSI term and takes the branches (confidence, class). Loops run over slices
    from index 0: with a loop index that could be negative (``range(first, last)``),
    Numba guards every access against negative-index wraparound and LLVM does not
    vectorise the loop (measured 8 ns against 2.4 ns). The RSI term is added last, so the
    score equals the specification's sum up to rounding (the class comparisons have a
    1e-9 tolerance for exactly that reason).
    """
    total = score[first:last]
    positive = confidence[first:last]  # accumulators, then the confidence output
    negative = scratch[first:last]
    m = total.shape[0]
    shared = False  # whether any shared sub-score has been accumulated yet
    for i in range(RSI + 1, N_SUBSCORES):
        s = subscores[i]
        if s == 0.0 or weighted[i] == 0:
            continue
        row = weights[i, first:last]
        # The first indicator with an opinion initialises the accumulators, so a close
        # where none has one (or a block that weighs RSI only) never touches them.
        if not shared:
            shared = True
            for k in range(m):
                total[k] = 0.0
                positive[k] = 0.0
                negative[k] = 0.0
        if s > 0.0:
            for k in range(m):
                total[k] += row[k] * s
                positive[k] += row[k]
        else:
            for k in range(m):
                total[k] += row[k] * s
                negative[k] += row[k]
    rsi_row = weights[RSI, first:last]
    oversold = rsi_oversold[first:last]
    overbought = rsi_overbought[first:last]
    strong_buy_ = strong_buy[first:last]
    buy_ = buy[first:last]
    sell_ = sell[first:last]
    strong_sell_ = strong_sell[first:last]
    classes = signal[first:last]
    if shared:
        for k in range(m):
            r = _rsi_term(rsi, oversold[k], overbought[k])
            w = rsi_row[k]
            value = total[k] + w * r
            pos = positive[k] + (w if r > 0.0 else 0.0)
            neg = negative[k] + (w if r < 0.0 else 0.0)
            voiced = pos + neg
            total[k] = value
            if voiced > 0.0 and value != 0.0:
                positive[k] = (pos if value > 0.0 else neg) / voiced
            else:
                positive[k] = 0.0
            classes[k] = _class_of(value, strong_buy_[k], buy_[k], sell_[k], strong_sell_[k])
    else:
        # RSI alone has an opinion: the score is its term, and the confidence is 1 when it
        # is non-zero (its own weight over itself), else 0. Measured on the 1,000-variant
        # RSI grid (minimum of three runs each, loaded machine): 3.3 ns per variant with
        # the accumulators, 2.3 ns without.
        for k in range(m):
            value = rsi_row[k] * _rsi_term(rsi, oversold[k], overbought[k])
            total[k] = value
            positive[k] = 1.0 if value != 0.0 else 0.0
            classes[k] = _class_of(value, strong_buy_[k], buy_[k], sell_[k], strong_sell_[k])


def empty_outputs(n_variants: int):
    """Caller-owned buffers for :func:`score_variants_nb`: score, confidence, signal,
    scratch, and ``weighted`` with every indicator marked as used (plain Python)."""
    return (np.zeros(n_variants), np.zeros(n_variants), np.zeros(n_variants, dtype=np.int8),
            np.zeros(n_variants), np.ones(N_SUBSCORES, dtype=np.uint8))
