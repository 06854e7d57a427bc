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


@njit(
    "void(float64[::1], float64, int64[::1], float64[:, ::1], float64[::1], float64[::1],"
    " float64[::1], float64[::1], float64[::1], float64[::1], float64[::1], float64[::1],"
    " int8[::1])"
)
def score_variants_nb(subscores, rsi, variants, weights, rsi_oversold, rsi_overbought,
                      strong_buy, buy, sell, strong_sell, score, confidence, signal):
    """Score the listed ``variants`` (indices into the struct-of-arrays parameters).

    For each: ``score = sum(w_i * s_i)`` with the RSI term from the variant's own levels;
    ``confidence`` = weight of the non-zero sub-scores agreeing with the score's sign over
    the weight of all non-zero sub-scores (0 if none); ``signal`` = STRONG_BUY .. STRONG_SELL
    by the variant's thresholds. Weights are normalised (rows sum to 1), so the score is in
    [-1, 1]. Results go to ``score[v]``, ``confidence[v]``, ``signal[v]``.
    """
    for k in range(variants.shape[0]):
        v = variants[k]
        total = 0.0
        voiced = 0.0  # weight of the sub-scores with an opinion
        positive = 0.0  # weight of the positive ones
        negative = 0.0
        for i in range(N_SUBSCORES):
            s = subscores[i] if i != RSI else rsi_subscore(rsi, rsi_oversold[v],
                                                           rsi_overbought[v])
            w = weights[v, i]
            total += w * s
            if s > 0.0:
                voiced += w
                positive += w
            elif s < 0.0:
                voiced += w
                negative += w
        score[v] = total
        if voiced > 0.0 and total != 0.0:
            confidence[v] = (positive if total > 0.0 else negative) / voiced
        else:
            confidence[v] = 0.0
        if total >= strong_buy[v]:
            signal[v] = STRONG_BUY
        elif total >= buy[v]:
            signal[v] = BUY
        elif total <= strong_sell[v]:
            signal[v] = STRONG_SELL
        elif total <= sell[v]:
            signal[v] = SELL
        else:
            signal[v] = NEUTRAL


def empty_outputs(n_variants: int):
    """Caller-owned output buffers for :func:`score_variants_nb` (plain Python)."""
    return (np.zeros(n_variants), np.zeros(n_variants), np.zeros(n_variants, dtype=np.int8))
