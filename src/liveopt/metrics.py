"""Per-variant trade statistics: the online state, and the derived figures read from it.

:class:`TradeStats` owns the struct-of-arrays state that ``liveopt._core.metrics`` updates
in place, and turns it into the numbers a leaderboard and the promotion gate need.
"""

from __future__ import annotations

import numpy as np

from liveopt._core import metrics as kernels

#: Fields of :meth:`TradeStats.summary`, one row per variant.
SUMMARY_DTYPE = np.dtype(
    [
        ("trades", np.int64),
        ("wins", np.int64),
        ("losses", np.int64),
        ("win_rate", np.float64),
        ("net_pnl", np.float64),
        ("gross_pnl", np.float64),
        ("fees", np.float64),
        ("profit_factor", np.float64),
        ("mean_return", np.float64),
        ("variance", np.float64),
        ("skewness", np.float64),
        ("kurtosis", np.float64),
        ("sharpe_per_trade", np.float64),
        ("sortino_per_trade", np.float64),
        ("max_win_streak", np.int64),
        ("max_loss_streak", np.int64),
        ("max_drawdown", np.float64),
    ],
    align=True,
)


class TradeStats:
    """Online trade statistics of ``n_variants`` paper accounts.

    Parameters
    ----------
    n_variants : int
        Number of variants (columns of the state).
    initial_capital : float
        Each account's starting equity; the drawdown peak starts there.
    """

    def __init__(self, n_variants: int, initial_capital: float = 10_000.0) -> None:
        if n_variants < 1:
            raise ValueError(f"n_variants must be >= 1, got {n_variants}")
        if not np.isfinite(initial_capital) or initial_capital <= 0:
            raise ValueError(f"initial_capital must be finite and > 0, got {initial_capital}")
        self.initial_capital = float(initial_capital)
        self.state = np.empty((n_variants, kernels.N_FIELDS))  # one row per variant
        kernels.reset_stats_nb(self.state, self.initial_capital)

    def __len__(self) -> int:
        return self.state.shape[0]

    def record_trade(self, variant: int, net_return: float, net_pnl: float,
                     gross_pnl: float, fees: float) -> None:
        """Add one closed trade (see ``record_trade_nb``)."""
        kernels.record_trade_nb(self.state, variant, net_return, net_pnl, gross_pnl, fees)

    def record_equity(self, variant: int, equity: float) -> None:
        """Add one equity sample (see ``record_equity_nb``)."""
        kernels.record_equity_nb(self.state, variant, equity)

    def summary(self) -> np.ndarray:
        """One row per variant (``SUMMARY_DTYPE``). Figures undefined for a variant (a
        variance of fewer than 2 trades, a ratio over zero) are NaN, never 0 or inf.

        Variance is the sample variance (n - 1); skewness and kurtosis are the population
        moments ``sqrt(n) M3 / M2^1.5`` and ``n M4 / M2^2`` (kurtosis, not excess), as
        ``scipy.stats.skew`` and ``kurtosis(fisher=False)`` with ``bias=True`` compute them.
        """
        s = self.state.T  # field-major view: s[FIELD] is that field of every variant
        n = s[kernels.TRADES]
        out = np.zeros(len(self), dtype=SUMMARY_DTYPE)
        out["trades"] = n
        out["wins"] = s[kernels.WINS]
        out["losses"] = s[kernels.LOSSES]
        out["net_pnl"] = s[kernels.NET_PNL]
        out["gross_pnl"] = s[kernels.GROSS_PNL]
        out["fees"] = s[kernels.FEES]
        out["max_win_streak"] = s[kernels.MAX_WIN_STREAK]
        out["max_loss_streak"] = s[kernels.MAX_LOSS_STREAK]
        out["max_drawdown"] = s[kernels.MAX_DRAWDOWN]
        m2, m3, m4 = s[kernels.M2], s[kernels.M3], s[kernels.M4]
        with np.errstate(divide="ignore", invalid="ignore"):
            has = n > 0
            out["win_rate"] = np.where(has, s[kernels.WINS] / n, np.nan)
            out["mean_return"] = np.where(has, s[kernels.MEAN], np.nan)
            out["profit_factor"] = np.where(
                s[kernels.GROSS_LOSS] > 0, s[kernels.GROSS_WIN] / s[kernels.GROSS_LOSS], np.nan
            )
            variance = np.where(n > 1, m2 / (n - 1), np.nan)
            out["variance"] = variance
            spread = m2 > 0
            out["skewness"] = np.where(spread, np.sqrt(n) * m3 / m2**1.5, np.nan)
            out["kurtosis"] = np.where(spread, n * m4 / m2**2, np.nan)
            out["sharpe_per_trade"] = np.where(
                variance > 0, s[kernels.MEAN] / np.sqrt(variance), np.nan
            )
            downside = np.sqrt(s[kernels.DOWNSIDE_SQ] / n)
            out["sortino_per_trade"] = np.where(
                has & (downside > 0), s[kernels.MEAN] / downside, np.nan
            )
        return out
