"""Online per-variant trade statistics, updated in place as trades close and equity moves.

State is ``stats[variant, field]``, a C-contiguous float64 matrix with one row of the
fields below per variant: a closed trade updates a dozen fields of one variant, and the
variant pass visits scattered variants, so a variant's fields share two cache lines
(field-major, each trade cost a dozen cache misses). Nothing per variant is a Python
object (``liveopt.metrics.TradeStats`` reads the columns). Closed trades are not kept:
the statistics the promotion gate needs (count, mean, variance, skewness and kurtosis of
per-trade net returns) are accumulated online, so memory does not grow with trades.

Numerics: the moments use the one-pass update of Welford extended to the third and fourth
central moments (Pébay 2008, Terriberry): numerically stable, no catastrophic
``E[x^2] - E[x]^2`` cancellation, and each update is O(1). Drawdown is measured on equity
from the first sample (the initial capital), so losses before any profit count (origin
defect C.5).
"""

from liveopt._core._jit import njit

# Field columns of ``stats``.
TRADES = 0  # closed trades
WINS = 1  # trades with net PnL > 0
LOSSES = 2  # trades with net PnL < 0
NET_PNL = 3  # sum of net PnL (after fees and funding)
GROSS_PNL = 4  # sum of gross PnL
FEES = 5  # sum of fees paid
GROSS_WIN = 6  # sum of net PnL of winning trades
GROSS_LOSS = 7  # sum of -net PnL of losing trades (>= 0)
MEAN = 8  # mean per-trade net return
M2 = 9  # sum of squared deviations of per-trade net returns
M3 = 10  # third central moment sum
M4 = 11  # fourth central moment sum
DOWNSIDE_SQ = 12  # sum of min(return, 0)**2 (Sortino's downside deviation)
WIN_STREAK = 13  # current run of wins
LOSS_STREAK = 14  # current run of losses
MAX_WIN_STREAK = 15
MAX_LOSS_STREAK = 16
EQUITY_PEAK = 17  # highest equity seen, starting at the initial capital
MAX_DRAWDOWN = 18  # largest (peak - equity) / peak seen, as a fraction
N_FIELDS = 19


@njit("void(float64[:, ::1], int64, float64, float64, float64, float64)")
def record_trade_nb(stats, variant, net_return, net_pnl, gross_pnl, fees):
    """Add one closed trade of ``variant``: its net return (net PnL over the margin it
    used), net and gross PnL, and fees. A trade with net PnL exactly 0 is neither a win nor
    a loss and ends both streaks."""
    n1 = stats[variant, TRADES]
    n = n1 + 1.0
    stats[variant, TRADES] = n
    stats[variant, NET_PNL] += net_pnl
    stats[variant, GROSS_PNL] += gross_pnl
    stats[variant, FEES] += fees
    if net_pnl > 0.0:
        stats[variant, WINS] += 1.0
        stats[variant, GROSS_WIN] += net_pnl
        stats[variant, WIN_STREAK] += 1.0
        stats[variant, LOSS_STREAK] = 0.0
        if stats[variant, WIN_STREAK] > stats[variant, MAX_WIN_STREAK]:
            stats[variant, MAX_WIN_STREAK] = stats[variant, WIN_STREAK]
    elif net_pnl < 0.0:
        stats[variant, LOSSES] += 1.0
        stats[variant, GROSS_LOSS] -= net_pnl
        stats[variant, LOSS_STREAK] += 1.0
        stats[variant, WIN_STREAK] = 0.0
        if stats[variant, LOSS_STREAK] > stats[variant, MAX_LOSS_STREAK]:
            stats[variant, MAX_LOSS_STREAK] = stats[variant, LOSS_STREAK]
    else:
        stats[variant, WIN_STREAK] = 0.0
        stats[variant, LOSS_STREAK] = 0.0
    if net_return < 0.0:
        stats[variant, DOWNSIDE_SQ] += net_return * net_return
    # Central moments, one pass: the order of the updates matters (M4 uses the old M2, M3).
    delta = net_return - stats[variant, MEAN]
    delta_n = delta / n
    delta_n2 = delta_n * delta_n
    term1 = delta * delta_n * n1
    m2 = stats[variant, M2]
    m3 = stats[variant, M3]
    stats[variant, MEAN] += delta_n
    stats[variant, M4] += (
        term1 * delta_n2 * (n * n - 3.0 * n + 3.0) + 6.0 * delta_n2 * m2 - 4.0 * delta_n * m3
    )
    stats[variant, M3] = m3 + term1 * delta_n * (n - 2.0) - 3.0 * delta_n * m2
    stats[variant, M2] = m2 + term1


@njit("void(float64[:, ::1], int64, float64)")
def record_equity_nb(stats, variant, equity):
    """Add one equity sample (capital plus unrealised PnL) of ``variant``."""
    peak = stats[variant, EQUITY_PEAK]
    if equity > peak:
        stats[variant, EQUITY_PEAK] = equity
    elif peak > 0.0:
        drawdown = (peak - equity) / peak
        if drawdown > stats[variant, MAX_DRAWDOWN]:
            stats[variant, MAX_DRAWDOWN] = drawdown


@njit("void(float64[:, ::1], float64)")
def reset_stats_nb(stats, initial_capital):
    """Zero every field of every variant; equity peaks start at the initial capital."""
    for variant in range(stats.shape[0]):
        for field in range(stats.shape[1]):
            stats[variant, field] = 0.0
        stats[variant, EQUITY_PEAK] = initial_capital
