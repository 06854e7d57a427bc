"""Slow twin of ``liveopt._core.signals``, written from docs/signal-model.md."""

from __future__ import annotations

import math


def _opinion(x: float) -> bool:
    return not math.isnan(x)


def shared_subscores(williams_r, macd_line, macd_hist, ao, ema_fast, ema_slow, stoch_k,
                     stoch_d, close, bb_upper, bb_lower, kdj_j, obv_slope, book_imbalance):
    def below_above(value, low, high):
        if not _opinion(value):
            return 0.0
        return 1.0 if value < low else (-1.0 if value > high else 0.0)

    macd = 0.0
    if _opinion(macd_line) and _opinion(macd_hist):
        if macd_line > 0 and macd_hist > 0:
            macd = 1.0
        elif macd_line < 0 and macd_hist < 0:
            macd = -1.0
    ao_score = 0.0 if not _opinion(ao) or ao == 0 else math.copysign(1.0, ao)
    trend = 0.0
    if _opinion(ema_fast) and _opinion(ema_slow) and ema_fast != ema_slow:
        trend = 1.0 if ema_fast > ema_slow else -1.0
    stoch = 0.0
    if _opinion(stoch_k) and _opinion(stoch_d):
        if stoch_k < 20 and stoch_k > stoch_d:
            stoch = 1.0
        elif stoch_k > 80 and stoch_k < stoch_d:
            stoch = -1.0
    bands = 0.0
    if _opinion(bb_upper) and _opinion(bb_lower):
        bands = 1.0 if close < bb_lower else (-1.0 if close > bb_upper else 0.0)
    return [
        0.0,
        below_above(williams_r, -80.0, -20.0),
        macd,
        ao_score,
        trend,
        stoch,
        bands,
        below_above(kdj_j, 20.0, 80.0),
        max(-1.0, min(1.0, obv_slope)) if _opinion(obv_slope) else 0.0,
        max(-1.0, min(1.0, book_imbalance)) if _opinion(book_imbalance) else 0.0,
    ]


def rsi_subscore(rsi, oversold, overbought) -> float:
    if not _opinion(rsi):
        return 0.0
    if rsi < oversold:
        return 1.0
    if rsi > overbought:
        return -1.0
    if rsi < oversold + 10:
        return 0.6
    if rsi > overbought - 10:
        return -0.6
    return 0.0


def score_variant(subscores, rsi, weights, oversold, overbought, strong_buy, buy, sell,
                  strong_sell):
    subs = list(subscores)
    subs[0] = rsi_subscore(rsi, oversold, overbought)
    score = math.fsum(w * s for w, s in zip(weights, subs, strict=True))
    voiced = math.fsum(w for w, s in zip(weights, subs, strict=True) if s != 0)
    agreeing = math.fsum(
        w for w, s in zip(weights, subs, strict=True) if s != 0 and (s > 0) == (score > 0)
    )
    confidence = agreeing / voiced if voiced > 0 and score != 0 else 0.0
    # docs/signal-model.md: within 1e-9 of a threshold counts as reaching it.
    if score >= strong_buy - 1e-9:
        signal = 2
    elif score >= buy - 1e-9:
        signal = 1
    elif score <= strong_sell + 1e-9:
        signal = -2
    elif score <= sell + 1e-9:
        signal = -1
    else:
        signal = 0
    return score, confidence, signal
