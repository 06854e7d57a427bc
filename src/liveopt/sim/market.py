"""Market sources of the simulator: where the other traders' trades and book come from.

A :class:`MarketSource` is asked for everything that happened up to a time and answers
with :class:`MarketTrade` prints and :class:`MarketBook` ladders (the other traders'
liquidity), in time order, prices in integer ticks and sizes in integer lots.

- :class:`GeneratedMarket` is a seeded random market: Markov-switching volatility regimes
  (calm, normal, turbulent), a mid price doing a random walk whose step scales with the
  regime's volatility, a spread in ticks that widens with volatility, Poisson trade
  arrivals with heavy-tailed (Pareto) sizes, and a ladder of levels around the mid.
- :class:`ReplayMarket` replays a trades or candles file (:mod:`liveopt.data`), shifted to
  start at the exchange's start time and sped up by a factor.

Both are deterministic: the same seed and the same queries give identical events.
"""

from __future__ import annotations

import math
import os
from typing import Literal, Protocol, runtime_checkable

import msgspec
import numpy as np

from liveopt.data.columns import Candles, Trades
from liveopt.data.readers import read_market_data
from liveopt.units import NS_PER_SECOND

__all__ = [
    "GeneratedMarket",
    "GeneratorConfig",
    "MarketBook",
    "MarketEvent",
    "MarketSource",
    "MarketTrade",
    "RegimeParams",
    "ReplayMarket",
]


class MarketTrade(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A trade between two other traders.

    Parameters
    ----------
    ts_ns : int
        When it happened (simulator time, ns).
    price_ticks : int
        Trade price in ticks.
    size : int
        Size in lots, >= 1.
    side : str
        Taker side, ``"buy"`` or ``"sell"``.
    """

    ts_ns: int
    price_ticks: int
    size: int
    side: str


class MarketBook(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The other traders' resting liquidity at a time, replacing the previous ladder.

    Parameters
    ----------
    ts_ns : int
        When the ladder took this shape (ns).
    bids, asks : tuple of (price_ticks, size)
        Levels best first; bids strictly descending, asks strictly ascending, every
        bid below every ask, sizes >= 1.
    """

    ts_ns: int
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


MarketEvent = MarketTrade | MarketBook


@runtime_checkable
class MarketSource(Protocol):
    """Where a symbol's market comes from. The exchange calls :meth:`start` once, then
    :meth:`events_until` with non-decreasing times."""

    def start(self, start_ns: int) -> None:
        """Anchor the source's time line at ``start_ns`` (called once, before any query)."""
        ...

    def events_until(self, now_ns: int) -> list[MarketEvent]:
        """Return the events with ``ts_ns <= now_ns`` not returned before, in time order."""
        ...


# ----------------------------------------------------------------------------- generator


class RegimeParams(msgspec.Struct, frozen=True, kw_only=True):
    """One volatility regime of :class:`GeneratedMarket`.

    Parameters
    ----------
    name : str
        ``"calm"``, ``"normal"`` or ``"turbulent"`` (free text, for reports).
    vol_bps_per_sqrt_s : float
        Standard deviation of the mid's log return over one second, in basis points.
    trades_per_s : float
        Mean trade arrival rate.
    spread_ticks : float
        Mean spread in ticks (at least one tick is always kept).
    mean_duration_s : float
        Mean time the regime lasts before switching.
    """

    name: str
    vol_bps_per_sqrt_s: float
    trades_per_s: float
    spread_ticks: float
    mean_duration_s: float


class GeneratorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Parameters of :class:`GeneratedMarket`.

    Parameters
    ----------
    step_ns : int
        Time step of the generator (book updates happen at most once per step).
    levels : int
        Levels per side of the generated ladder.
    regimes : tuple of RegimeParams
        The regimes; switching picks uniformly among the other regimes.
    size_tail_alpha : float
        Pareto tail exponent of trade sizes (smaller is heavier).
    size_scale_lots : float
        Typical trade size in lots.
    max_trade_lots : int
        Cap of one trade's size.
    level_size_lots : float
        Typical size of a level near the top; deeper levels hold more.
    level_changes_per_step : float
        Mean number of levels whose size is refreshed per step besides the moves.
    """

    step_ns: int = 200_000_000
    levels: int = 20
    # Daily volatility about 0.7 %, 1.8 % and 5 %: calm, normal and turbulent crypto days.
    regimes: tuple[RegimeParams, ...] = (
        RegimeParams(name="calm", vol_bps_per_sqrt_s=0.25, trades_per_s=2.0,
                     spread_ticks=1.0, mean_duration_s=120.0),
        RegimeParams(name="normal", vol_bps_per_sqrt_s=0.6, trades_per_s=5.0,
                     spread_ticks=2.0, mean_duration_s=90.0),
        RegimeParams(name="turbulent", vol_bps_per_sqrt_s=1.8, trades_per_s=12.0,
                     spread_ticks=6.0, mean_duration_s=30.0),
    )
    size_tail_alpha: float = 1.7
    size_scale_lots: float = 20.0
    max_trade_lots: int = 5_000
    level_size_lots: float = 300.0
    level_changes_per_step: float = 2.0

    def __post_init__(self) -> None:
        if self.step_ns <= 0:
            raise ValueError(f"step_ns: must be > 0, got {self.step_ns!r}")
        if self.levels < 1:
            raise ValueError(f"levels: must be >= 1, got {self.levels!r}")
        if not self.regimes:
            raise ValueError("regimes: at least one regime is needed")
        if not self.size_tail_alpha > 0:
            raise ValueError(f"size_tail_alpha: must be > 0, got {self.size_tail_alpha!r}")
        if self.max_trade_lots < 1:
            raise ValueError(f"max_trade_lots: must be >= 1, got {self.max_trade_lots!r}")


class GeneratedMarket:
    """A seeded random market for one symbol (see the module docstring).

    Parameters
    ----------
    symbol : str
        The symbol it feeds (informational).
    seed : int
        Seed of its private ``numpy.random.Generator``; same seed, same events.
    start_price : float
        Initial mid price.
    tick_size : float
        The contract's tick.
    config : GeneratorConfig, optional
        Regimes, sizes and step; defaults are plausible for a liquid perpetual.
    """

    def __init__(
        self,
        symbol: str,
        seed: int,
        start_price: float,
        tick_size: float,
        config: GeneratorConfig | None = None,
    ) -> None:
        if not start_price > 0:
            raise ValueError(f"start_price: must be > 0, got {start_price!r}")
        if not tick_size > 0:
            raise ValueError(f"tick_size: must be > 0, got {tick_size!r}")
        self.symbol = symbol
        self.seed = seed
        self.config = config or GeneratorConfig()
        self._rng = np.random.default_rng(seed)
        self._mid_ticks = start_price / tick_size
        self._regime = min(1, len(self.config.regimes) - 1)
        self._regime_switches = 0
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self._next_step_ns: int | None = None
        self._step_s = self.config.step_ns / NS_PER_SECOND

    @property
    def regime(self) -> str:
        """Name of the current volatility regime."""
        return self.config.regimes[self._regime].name

    @property
    def regime_switches(self) -> int:
        """How many times the regime has switched so far."""
        return self._regime_switches

    def start(self, start_ns: int) -> None:
        """Anchor the time line; the first ladder is published at ``start_ns``."""
        if self._next_step_ns is not None:
            raise RuntimeError(f"{self.symbol}: market source already started")
        self._next_step_ns = start_ns

    def events_until(self, now_ns: int) -> list[MarketEvent]:
        """Run the generator's steps up to ``now_ns`` and return their events."""
        if self._next_step_ns is None:
            raise RuntimeError(f"{self.symbol}: start() must be called before events_until()")
        events: list[MarketEvent] = []
        while self._next_step_ns <= now_ns:
            self._step(self._next_step_ns, events)
            self._next_step_ns += self.config.step_ns
        return events

    # -- one step: regime, mid, trades against the current ladder, new ladder
    def _step(self, ts_ns: int, out: list[MarketEvent]) -> None:
        config = self.config
        rng = self._rng
        first = not self._bids
        if not first:
            self._maybe_switch_regime()
        regime = config.regimes[self._regime]
        if not first:
            sigma = regime.vol_bps_per_sqrt_s * 1e-4 * math.sqrt(self._step_s)
            self._mid_ticks *= math.exp(sigma * float(rng.standard_normal()))
            n_trades = int(rng.poisson(regime.trades_per_s * self._step_s))
            for _ in range(n_trades):
                self._trade(ts_ns, out)
        self._rebuild_ladder(regime)
        out.append(
            MarketBook(
                ts_ns=ts_ns,
                bids=tuple(sorted(self._bids.items(), reverse=True)),
                asks=tuple(sorted(self._asks.items())),
            )
        )

    def _maybe_switch_regime(self) -> None:
        regimes = self.config.regimes
        if len(regimes) < 2:
            return
        # Exponential regime durations: switch with probability step/mean per step.
        p_switch = min(1.0, self._step_s / regimes[self._regime].mean_duration_s)
        if self._rng.random() < p_switch:
            others = [i for i in range(len(regimes)) if i != self._regime]
            self._regime = others[int(self._rng.integers(len(others)))]
            self._regime_switches += 1

    def _trade(self, ts_ns: int, out: list[MarketEvent]) -> None:
        config = self.config
        rng = self._rng
        side = "buy" if rng.random() < 0.5 else "sell"
        lots = config.size_scale_lots * (1.0 + float(rng.pareto(config.size_tail_alpha)))
        size = max(1, min(config.max_trade_lots, int(lots)))
        book = self._asks if side == "buy" else self._bids
        if not book:
            return
        best = min(book) if side == "buy" else max(book)
        out.append(MarketTrade(ts_ns=ts_ns, price_ticks=best, size=size, side=side))
        # The print takes liquidity at the top: an emptied level is gone, so the next print
        # of the step trades one level further (price impact); the ladder refills it.
        if book[best] <= size:
            del book[best]
        else:
            book[best] -= size

    def _rebuild_ladder(self, regime: RegimeParams) -> None:
        config = self.config
        rng = self._rng
        extra = float(rng.exponential(max(regime.spread_ticks - 1.0, 0.0))) if (
            regime.spread_ticks > 1.0) else 0.0
        spread = max(1, round(1.0 + extra))
        best_bid = math.floor(self._mid_ticks - spread / 2.0)
        best_ask = best_bid + spread
        bid_prices = [best_bid - k for k in range(config.levels)]
        ask_prices = [best_ask + k for k in range(config.levels)]
        self._bids = self._refresh_side(self._bids, bid_prices)
        self._asks = self._refresh_side(self._asks, ask_prices)
        # A few random levels change size every step, as other traders add and cancel.
        n_changes = int(rng.poisson(config.level_changes_per_step))
        for _ in range(n_changes):
            side_book, prices = (
                (self._bids, bid_prices) if rng.random() < 0.5 else (self._asks, ask_prices)
            )
            depth = int(rng.integers(len(prices)))
            side_book[prices[depth]] = self._level_size(depth)

    def _refresh_side(self, old: dict[int, int], prices: list[int]) -> dict[int, int]:
        fresh: dict[int, int] = {}
        for depth, price in enumerate(prices):
            size = old.get(price, 0)
            fresh[price] = size if size > 0 else self._level_size(depth)
        return fresh

    def _level_size(self, depth: int) -> int:
        # Lognormal sizes whose scale grows with distance from the top.
        scale = self.config.level_size_lots * (1.0 + 0.15 * depth)
        return max(1, int(scale * float(self._rng.lognormal(0.0, 0.6))))


# ----------------------------------------------------------------------------- replay


class ReplayMarket:
    """Replay of a trades or candles file as other traders' trades.

    Trades are replayed as they are. A candle becomes four trades inside its bar: open,
    then low then high for a rising bar (close >= open) or high then low for a falling one,
    then close, each with a quarter of the bar's volume (at least one lot). After each
    trade a small ladder is laid around it: the traded side's best level at the trade price
    and the other side one tick away. Times are shifted so that the first row happens at
    the exchange's start time and divided by ``speed``.

    Parameters
    ----------
    symbol : str
        The symbol it feeds.
    data : Trades or Candles
        Market data from :mod:`liveopt.data`.
    tick_size : float
        The contract's tick; prices are rounded to it.
    speed : float
        Replay speed factor (2.0 replays an hour in 30 minutes).
    seed : int
        Seed of the ladder sizes.
    multiplier : float or None
        When given, sizes in the file are base-currency amounts and become
        ``round(size / multiplier)`` lots; when ``None`` they are already lots.
    levels : int
        Levels per side of the synthesised ladder.
    """

    def __init__(
        self,
        symbol: str,
        data: Trades | Candles,
        tick_size: float,
        *,
        speed: float = 1.0,
        seed: int = 0,
        multiplier: float | None = None,
        levels: int = 10,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed: must be > 0, got {speed!r}")
        if not tick_size > 0:
            raise ValueError(f"tick_size: must be > 0, got {tick_size!r}")
        if levels < 1:
            raise ValueError(f"levels: must be >= 1, got {levels!r}")
        self.symbol = symbol
        self.speed = float(speed)
        self.levels = levels
        self._rng = np.random.default_rng(seed)
        ts, price, size, side = _as_prints(data)
        if len(ts) == 0:
            raise ValueError(f"data: {data.source or 'market data'} has no rows to replay")
        lots = size if multiplier is None else size / multiplier
        self._offset_ns = (ts - ts[0]).astype(np.int64)
        self._price_ticks = np.rint(price / tick_size).astype(np.int64)
        self._sizes = np.maximum(1, np.rint(lots)).astype(np.int64)
        self._sides = side
        self._cursor = 0
        self._start_ns: int | None = None

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        symbol: str,
        tick_size: float,
        *,
        speed: float = 1.0,
        seed: int = 0,
        multiplier: float | None = None,
        levels: int = 10,
    ) -> ReplayMarket:
        """Read a trades or candles file with :func:`liveopt.data.readers.read_market_data`
        (which raises ``DataFormatError`` naming the file, line and column of a bad row)."""
        return cls(symbol, read_market_data(path), tick_size, speed=speed, seed=seed,
                   multiplier=multiplier, levels=levels)

    @property
    def exhausted(self) -> bool:
        """Whether every row has been replayed."""
        return self._cursor >= len(self._price_ticks)

    def start(self, start_ns: int) -> None:
        """Anchor the replay: the first row happens at ``start_ns``."""
        if self._start_ns is not None:
            raise RuntimeError(f"{self.symbol}: market source already started")
        self._start_ns = start_ns

    def events_until(self, now_ns: int) -> list[MarketEvent]:
        """Return the replayed trades (each followed by its ladder) up to ``now_ns``."""
        if self._start_ns is None:
            raise RuntimeError(f"{self.symbol}: start() must be called before events_until()")
        events: list[MarketEvent] = []
        n = len(self._price_ticks)
        while self._cursor < n:
            i = self._cursor
            ts_ns = self._start_ns + int(int(self._offset_ns[i]) / self.speed)
            if ts_ns > now_ns:
                break
            price = int(self._price_ticks[i])
            side: Literal["buy", "sell"] = "buy" if self._sides[i] > 0 else "sell"
            events.append(MarketTrade(
                ts_ns=ts_ns, price_ticks=price, size=int(self._sizes[i]), side=side))
            events.append(self._ladder(ts_ns, price, side))
            self._cursor += 1
        return events

    def _ladder(self, ts_ns: int, price: int, side: str) -> MarketBook:
        best_bid, best_ask = (price - 1, price) if side == "buy" else (price, price + 1)
        best_bid = max(best_bid, 1)
        sizes = np.maximum(1, (self._rng.lognormal(4.0, 0.6, size=2 * self.levels))).astype(
            np.int64)
        bids = tuple(
            (best_bid - k, int(sizes[k])) for k in range(self.levels) if best_bid - k > 0)
        asks = tuple((best_ask + k, int(sizes[self.levels + k])) for k in range(self.levels))
        return MarketBook(ts_ns=ts_ns, bids=bids, asks=asks)


def _as_prints(data: Trades | Candles) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Trades pass through; candles expand into four prints per bar along open-low/high-close.
    if isinstance(data, Trades):
        return (
            np.asarray(data.ts, dtype=np.int64),
            np.asarray(data.price, dtype=np.float64),
            np.asarray(data.size, dtype=np.float64),
            np.asarray(data.side, dtype=np.int8),
        )
    ts = np.asarray(data.ts, dtype=np.int64)
    n = len(ts)
    bar_ns = int(np.median(np.diff(ts))) if n > 1 else 60 * NS_PER_SECOND
    rising = data.close >= data.open
    second = np.where(rising, data.low, data.high)
    third = np.where(rising, data.high, data.low)
    prices = np.stack([data.open, second, third, data.close], axis=1).reshape(-1)
    offsets = np.array([0, bar_ns // 4, bar_ns // 2, (3 * bar_ns) // 4], dtype=np.int64)
    times = (ts[:, None] + offsets[None, :]).reshape(-1)
    sizes = np.repeat(np.asarray(data.volume, dtype=np.float64) / 4.0, 4)
    # Taker side follows the direction of each leg; the open print takes the bar's direction.
    previous = np.concatenate([[prices[0]], prices[:-1]])
    sides = np.where(prices >= previous, 1, -1).astype(np.int8)
    sides[0::4] = np.where(rising, 1, -1)
    return times, prices.astype(np.float64), sizes, sides
