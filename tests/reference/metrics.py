"""Slow twin of ``liveopt.metrics.TradeStats.summary`` from the full trade history.

The moments are computed in exact rational arithmetic (``fractions.Fraction`` of the
float inputs), so equal returns have exactly zero variance and nearly equal ones keep
every digit: the twin is the ground truth, not another floating-point estimate.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def _central_moments(values) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    exact = [Fraction(v) for v in values]
    n = len(exact)
    mean = sum(exact, Fraction(0)) / n
    m2 = sum(((x - mean) ** 2 for x in exact), Fraction(0))
    m3 = sum(((x - mean) ** 3 for x in exact), Fraction(0))
    m4 = sum(((x - mean) ** 4 for x in exact), Fraction(0))
    return mean, m2, m3, m4


def summary(net_returns, net_pnls, gross_pnls, fees, equities, initial_capital) -> dict:
    r = np.asarray(net_returns, dtype=np.float64)
    pnl = np.asarray(net_pnls, dtype=np.float64)
    n = len(r)
    wins = [p > 0 for p in pnl]
    losses = [p < 0 for p in pnl]

    def longest(flags):
        best = run = 0
        for flag in flags:
            run = run + 1 if flag else 0
            best = max(best, run)
        return best

    peak, max_dd = initial_capital, 0.0
    for equity in equities:
        peak = max(peak, equity)
        max_dd = max(max_dd, (peak - equity) / peak)
    gross_win = math.fsum(p for p in pnl if p > 0)
    gross_loss = -math.fsum(p for p in pnl if p < 0)
    if n:
        mean, m2, m3, m4 = _central_moments(r)
    variance = float(m2 / (n - 1)) if n > 1 else math.nan
    spread = n > 0 and m2 > 0
    downside = math.sqrt(math.fsum(x * x for x in r if x < 0) / n) if n else 0.0
    return {
        "trades": n,
        "wins": sum(wins),
        "losses": sum(losses),
        "win_rate": sum(wins) / n if n else math.nan,
        "net_pnl": math.fsum(pnl),
        "gross_pnl": math.fsum(gross_pnls),
        "fees": math.fsum(fees),
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else math.nan,
        "mean_return": float(mean) if n else math.nan,
        "variance": variance,
        # Population moments: sqrt(n) M3 / M2^1.5 and n M4 / M2^2.
        "skewness": math.sqrt(n) * float(m3) / float(m2) ** 1.5 if spread else math.nan,
        "kurtosis": float(n * m4 / (m2 * m2)) if spread else math.nan,
        "sharpe_per_trade": float(mean) / math.sqrt(variance) if spread and n > 1 else math.nan,
        "sortino_per_trade": float(mean) / downside if n and downside > 0 else math.nan,
        "max_win_streak": longest(wins),
        "max_loss_streak": longest(losses),
        "max_drawdown": max_dd,
    }
