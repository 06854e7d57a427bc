"""Slow twin of ``liveopt.metrics.TradeStats.summary`` from the full trade history."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


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
    variance = float(np.var(r, ddof=1)) if n > 1 else math.nan
    spread = n > 0 and float(np.var(r)) > 0
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
        "mean_return": float(np.mean(r)) if n else math.nan,
        "variance": variance,
        "skewness": float(stats.skew(r, bias=True)) if spread else math.nan,
        "kurtosis": float(stats.kurtosis(r, fisher=False, bias=True)) if spread else math.nan,
        "sharpe_per_trade": float(np.mean(r)) / math.sqrt(variance)
        if n > 1 and variance > 0
        else math.nan,
        "sortino_per_trade": float(np.mean(r)) / downside if n and downside > 0 else math.nan,
        "max_win_streak": longest(wins),
        "max_loss_streak": longest(losses),
        "max_drawdown": max_dd,
    }
