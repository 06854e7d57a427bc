"""Deterministic workloads for the engine benchmarks: bars, ticks and the RSI grid.

Everything here is built from the real FTX BTC-PERP 1m candles in ``shared/data`` (45,031
bars, 2021-12-31 23:01 to 2022-02-01 05:31 UTC, no missing minutes) so that liveopt, the
vectorbt baseline and the floor kernel all see the same, real-looking market.

``bars_100k()``
    The 45,031 file bars verbatim, then the file's bar-to-bar relative moves replayed
    from the last close until there are 100,000 bars (see ``_extend``).
``ticks(n, seed)``
    ``n`` trade ticks walked along each bar's open-extreme-extreme-close path, so every
    bar's open, high, low and close are traded exactly (see ``ticks``).
``rsi_grid_params(n)``
    The RSI mean-reversion grid: 5 oversold x 5 overbought x 8 stop-loss x 5 take-profit
    levels = 1,000 variants at leverage 10 (see ``rsi_grid_params``).

Every function returns fresh arrays, so a caller may modify them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liveopt.data.readers import read_candles

# The real data sits in shared/data beside the checkout (as in CI).
FTX_CANDLES = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/nautilus_ftx_btcperp_1m/btc-perp-20211231-20220201_1m.csv"
)
N_BARS = 100_000
BAR_NS = 60 * 1_000_000_000
TICKS_SEED = 20240601
_BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


# ---------------------------------------------------------------------------------------
# Bars
# ---------------------------------------------------------------------------------------


def _extend(file_bars: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The file's bars, then its relative moves chained on until there are ``n`` bars.

    Each file bar ``j >= 1`` is turned into four ratios to the previous close,
    ``open_j / close_{j-1}``, ``high_j / ...``, ``low_j / ...``, ``close_j / ...``. Appended
    bar ``k`` (``k >= 45,031``) takes the ratios of file bar ``j = 1 + (k - 45,031) mod
    45,030`` (bar 0 has no previous close, so the cycle is bars 1..45,030) and multiplies
    them by the previous appended close; its volume is bar ``j``'s volume. The path is
    therefore continuous (including the file's own open-vs-previous-close gaps) and every
    bar is the shape of a real one. The month's drift (-17 %) compounds: the close is
    46,377 at bar 0, 38,544 at bar 45,030 (the file's last), 32,034 at bar 90,060 and
    28,920 at bar 99,999; the lowest low is 27,291, the highest high 48,080 (in the file).
    Rounding is monotone, so ``low <= open, close <= high`` carries over exactly.
    Timestamps continue the file's one-minute grid.
    """
    m = len(file_bars["close"])
    if n <= m:
        return {name: file_bars[name][:n].copy() for name in _BAR_COLUMNS}
    prev_close = file_bars["close"][:-1]
    source = 1 + np.arange(n - m) % (m - 1)  # index of the file bar replayed
    ratios = {
        name: (file_bars[name][1:] / prev_close)[source - 1]
        for name in ("open", "high", "low", "close")
    }
    # Close by close, as the running product from the last file close (not ``last *
    # cumprod(ratios)``, which rounds differently from ``prev * ratio`` below and could
    # put a close one ulp beyond its bar's low or high).
    chain = np.multiply.accumulate(np.concatenate(([file_bars["close"][-1]], ratios["close"])))
    prev, close = chain[:-1], chain[1:]
    appended = {
        "ts": file_bars["ts"][-1] + BAR_NS * np.arange(1, n - m + 1, dtype=np.int64),
        "open": prev * ratios["open"],
        "high": prev * ratios["high"],
        "low": prev * ratios["low"],
        "close": close,
        "volume": file_bars["volume"][source],
    }
    return {
        name: np.concatenate((file_bars[name], appended[name])) for name in _BAR_COLUMNS
    }


@functools.cache
def _bars(n: int) -> dict[str, np.ndarray]:
    candles = read_candles(FTX_CANDLES)
    file_bars = {name: np.asarray(getattr(candles, name)) for name in _BAR_COLUMNS}
    bars = _extend(file_bars, n)
    assert (np.diff(bars["ts"]) == BAR_NS).all()
    assert (bars["low"] <= np.minimum(bars["open"], bars["close"])).all()
    assert (bars["high"] >= np.maximum(bars["open"], bars["close"])).all()
    for array in bars.values():
        array.flags.writeable = False
    return bars


def bars_100k(n: int = N_BARS) -> dict[str, np.ndarray]:
    """100,000 one-minute bars (``n`` if given) grown from the FTX BTC-PERP 1m candles.

    Returns ``ts`` (int64 epoch ns of each bar's open, as ``liveopt.data.read_candles``
    reads the file) and float64 ``open, high, low, close, volume`` (volume in USD, as in
    the file). How the file is extended is described in ``_extend``.
    """
    return {name: array.copy() for name, array in _bars(n).items()}


# ---------------------------------------------------------------------------------------
# Ticks
# ---------------------------------------------------------------------------------------


@functools.cache
def _ticks(n: int, seed: int) -> dict[str, np.ndarray]:
    per_bar = max(4, math.ceil(n / N_BARS))
    n_bars = math.ceil(n / per_bar)
    bars = _bars(N_BARS)
    o, h, lo, c, v = (bars[k][:n_bars] for k in ("open", "high", "low", "close", "volume"))
    rng = np.random.default_rng(seed)

    # The path open -> first extreme -> second extreme -> close, parametrised by the
    # distance travelled along it, s in [0, total]; a rising bar dips first.
    up = c >= o
    first = np.where(up, lo, h)
    second = np.where(up, h, lo)
    d1 = np.abs(first - o)
    d12 = d1 + np.abs(second - first)
    total = d12 + np.abs(c - second)

    # Four ticks per bar sit exactly on the open, the two extremes and the close, so a
    # stop or target the bar reaches is also reached by its ticks; the rest fall at
    # uniformly random points of the path.
    s = np.empty((n_bars, per_bar))
    s[:, 0] = 0.0
    s[:, 1] = d1
    s[:, 2] = d12
    s[:, 3] = total
    s[:, 4:] = rng.random((n_bars, per_bar - 4)) * total[:, None]
    price = np.empty_like(s)
    price[:, :4] = np.stack((o, first, second, c), axis=1)
    r = s[:, 4:]
    on_leg1 = o[:, None] + np.sign(first - o)[:, None] * r
    on_leg2 = first[:, None] + np.sign(second - first)[:, None] * (r - d1[:, None])
    on_leg3 = second[:, None] + np.sign(c - second)[:, None] * (r - d12[:, None])
    on_leg23 = np.where(r <= d12[:, None], on_leg2, on_leg3)
    price[:, 4:] = np.where(r <= d1[:, None], on_leg1, on_leg23)
    np.clip(price, lo[:, None], h[:, None], out=price)

    # Time within the bar is proportional to the distance travelled (a flat bar spreads
    # its ticks evenly); the close trades in the bar's last nanosecond.
    even = np.linspace(0.0, 1.0, per_bar)
    frac = np.where(total[:, None] > 0.0, s / np.where(total > 0.0, total, 1.0)[:, None], even)
    order = np.argsort(frac, axis=1, kind="stable")
    frac = np.take_along_axis(frac, order, axis=1)
    price = np.take_along_axis(price, order, axis=1)
    ts = bars["ts"][:n_bars, None] + (frac * (BAR_NS - 1)).astype(np.int64)

    # Sizes split the bar's USD volume at random (exponential weights), in BTC.
    weight = rng.exponential(1.0, (n_bars, per_bar))
    size = weight / weight.sum(axis=1, keepdims=True) * v[:, None] / price

    ts, price, size = (a.reshape(-1)[:n] for a in (ts, price, size))
    # Taker side by the tick rule (an uptick was a buy); unchanged prices toss a coin.
    step = np.diff(price, prepend=price[0])
    coin = rng.integers(0, 2, n).astype(np.int8) * 2 - 1
    side = np.where(step > 0.0, 1, np.where(step < 0.0, -1, coin)).astype(np.int8)
    ticks = {"ts": ts, "price": price, "size": size, "side": side}
    for array in ticks.values():
        array.flags.writeable = False
    return ticks


def ticks(n: int = 1_000_000, seed: int = TICKS_SEED) -> dict[str, np.ndarray]:
    """``n`` trade ticks derived from ``bars_100k()``: ts, price, size, side.

    Each bar yields ``max(4, ceil(n / 100,000))`` ticks (so large ``n`` spans all 100k bars
    and small ``n`` the first ``n / 4``), the first ``n`` of them are returned. Within a bar
    the ticks walk its open -> extreme -> extreme -> close path (a rising bar visits its
    low first): four of them are exactly the open, the two extremes and the close, the
    others at random points along the path. Timestamps grow with the distance walked,
    inside ``[bar ts, bar ts + 60 s)`` and never decreasing; sizes (BTC) split the bar's USD
    volume with random exponential weights; ``side`` (int8, +1 buy / -1 sell) follows the
    tick rule, with a coin toss on an unchanged price. ``seed`` drives only the random
    points, sizes and coin tosses.

    Returns ``ts`` int64 ns, ``price`` and ``size`` float64, ``side`` int8.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    return {name: array.copy() for name, array in _ticks(n, seed).items()}


# ---------------------------------------------------------------------------------------
# The RSI grid
# ---------------------------------------------------------------------------------------

RSI_PERIOD = 14
LEVERAGE = 10.0
FEE = 0.0006  # taker fee per side, as a fraction of the fill's notional

# Axis lengths of the 1,000-variant grid, in grid order (oversold slowest).
_AXES = (5, 5, 8, 5)
# Each axis spans a fixed range; the 1,000-variant grid takes round values in it.
_RANGES = (
    (20.0, 40.0),  # oversold RSI: 20, 25, 30, 35, 40
    (60.0, 80.0),  # overbought RSI: 60, 65, 70, 75, 80
    (10.0, 80.0),  # stop-loss ROI %: 10, 20, ..., 80 (price 1 % .. 8 % at 10x)
    (10.0, 90.0),  # take-profit ROI %: 10, 30, 50, 70, 90 (price 1 % .. 9 % at 10x)
)


@dataclass(frozen=True)
class RsiGrid:
    """RSI mean-reversion variants as parallel float64 arrays (one entry per variant).

    The rule, long only: enter when RSI(``period``) at a bar's close is below
    ``oversold``; exit when it is above ``overbought``; an open position is also closed
    by a stop-loss ``sl_frac`` below or a take-profit ``tp_frac`` above its entry fill
    price. ROIs are percent of margin at ``leverage``: ``frac = roi / leverage / 100``.
    """

    oversold: np.ndarray
    overbought: np.ndarray
    sl_roi: np.ndarray
    tp_roi: np.ndarray
    period: int = RSI_PERIOD
    leverage: float = LEVERAGE
    fee: float = FEE

    @property
    def sl_frac(self) -> np.ndarray:
        return self.sl_roi / self.leverage / 100.0

    @property
    def tp_frac(self) -> np.ndarray:
        return self.tp_roi / self.leverage / 100.0

    def __len__(self) -> int:
        return len(self.oversold)


def rsi_grid_params(n: int = 1000) -> RsiGrid:
    """The RSI grid: 5 oversold x 5 overbought x 8 stop-loss x 5 take-profit = 1,000.

    Oversold 20..40 step 5, overbought 60..80 step 5, stop-loss ROI 10..80 % step 10,
    take-profit ROI 10..90 % step 20; RSI(14), leverage 10, fee 0.06 % per side. Variants
    are in grid order, oversold varying slowest and take-profit fastest.

    Another ``n`` scales every axis by ``k = ceil((n / 1000) ** (1/4))`` (evenly spaced
    over the same ranges, so ``k = 1`` is the grid above) and keeps ``n`` variants evenly
    strided through it: fewer variants still span the whole grid, more stay distinct.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    k = max(1, math.ceil((n / math.prod(_AXES)) ** 0.25 - 1e-9))
    axes = [np.linspace(lo, hi, size * k) for size, (lo, hi) in zip(_AXES, _RANGES, strict=True)]
    full = [a.reshape(-1) for a in np.meshgrid(*axes, indexing="ij")]
    keep = np.linspace(0, len(full[0]) - 1, n).round().astype(np.int64)
    assert len(np.unique(keep)) == n
    return RsiGrid(*(a[keep].copy() for a in full))
