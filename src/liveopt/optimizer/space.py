"""The optimizer's search space: one stepped :class:`Range` per parameter, checked once.

The bounds and steps are the origin system's (OptimizerConfig B.1.1, the PR-03 design in
B.1.2 and the signal-weight defaults in B.2.3 of ``origin-system.md``). Everything here is
validated at construction, so the generator can assume a well-formed space.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from liveopt.timeframes import canonical_timeframe

#: The indicators of the signal model, in the column order of ``VariantSet.weights``.
WEIGHT_NAMES: tuple[str, ...] = (
    "rsi",
    "williams_r",
    "macd",
    "ao",
    "ema_trend",
    "stochastic",
    "bollinger",
    "kdj",
    "obv",
    "orderbook",
)

#: The float parameters of a variant, in the order they are hashed (see ``variants``).
FLOAT_PARAMS: tuple[str, ...] = (
    "rsi_oversold",
    "rsi_overbought",
    "strong_buy",
    "buy",
    "sell",
    "strong_sell",
    "min_confidence",
    "stop_loss_roi",
    "take_profit_roi",
    "break_even_buffer",
    "trailing_step",
    "trailing_move",
    "position_size_pct",
    "max_hold_s",
)

# Grid values are rounded to this many decimals, so that low + k * step gives the same
# float for the same k whatever the accumulated error (0.3 + 2 * 0.1 != 0.5 otherwise).
GRID_DECIMALS = 12
# Tolerance, in steps, for "(high - low) / step is an integer" and "value is on the grid".
_STEP_TOLERANCE = 1e-9


class Range(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A stepped interval ``low, low + step, ..., high`` and a default value.

    A Range is checked by the :class:`OptimizerConfig` that holds it (so that errors can
    name the field): ``step > 0``, ``low <= default <= high`` and ``(high - low) / step``
    an integer within 1e-9. The default need not be a grid point: the origin's
    ``trailing_move`` default 0.05 lies between the points of its 0.02 grid. It is used
    as-is for the baseline and for parameters a generation mode holds fixed, and never
    drawn.

    Parameters
    ----------
    low, high : float
        The first and last grid values.
    step : float
        The distance between neighbouring grid values.
    default : float
        The value used when the parameter is not searched.
    """

    low: float
    high: float
    step: float
    default: float

    def __post_init__(self) -> None:
        # Ranges are often written with integers (Range(0, 40, 5, 25)); store floats so
        # that arithmetic and hashing see one type.
        for name in ("low", "high", "step", "default"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"Range.{name} must be a number, got {value!r}")
            msgspec.structs.force_setattr(self, name, float(value))

    @property
    def size(self) -> int:
        """The number of grid values (1 when ``low == high``)."""
        return round((self.high - self.low) / self.step) + 1

    def values(self) -> np.ndarray:
        """Return every grid value, lowest first, as float64."""
        return self.value_at(np.arange(self.size))

    def value_at(self, index: np.ndarray | int) -> np.ndarray:
        """Return the grid value(s) at integer step ``index`` (``low + index * step``)."""
        raw = self.low + np.asarray(index, dtype=np.float64) * self.step
        # + 0.0 turns a rounded -0.0 into 0.0, so equal values have equal bytes.
        return np.round(raw, GRID_DECIMALS) + 0.0

    def index_of(self, values: np.ndarray | float) -> np.ndarray:
        """Return the step index of each value, or -1 where a value is not a grid value."""
        position = (np.asarray(values, dtype=np.float64) - self.low) / self.step
        nearest = np.rint(position)
        on_grid = (np.abs(position - nearest) <= _STEP_TOLERANCE) & (nearest >= 0)
        on_grid &= nearest <= self.size - 1
        return np.where(on_grid, nearest, -1).astype(np.int64)

    def contains(self, values: np.ndarray | float) -> np.ndarray:
        """Return whether each value lies within ``[low, high]`` (with float tolerance)."""
        slack = _STEP_TOLERANCE * self.step
        array = np.asarray(values, dtype=np.float64)
        return (array >= self.low - slack) & (array <= self.high + slack)

    def check(self, name: str) -> None:
        """Check the Range's own invariants, naming it ``name`` in any error.

        Raises
        ------
        ValueError
            If a bound is not finite, ``step <= 0``, ``low > high``, the default is
            outside ``[low, high]`` or ``(high - low) / step`` is not an integer.
        """
        for bound in ("low", "high", "step", "default"):
            if not math.isfinite(getattr(self, bound)):
                raise ValueError(f"{name}: {bound} {getattr(self, bound)} is not finite")
        if self.step <= 0.0:
            raise ValueError(f"{name}: step {self.step} must be > 0")
        if self.low > self.high:
            raise ValueError(f"{name}: low {self.low} is above high {self.high}")
        if self.default < self.low:
            raise ValueError(f"{name}: default {self.default} is below low {self.low}")
        if self.default > self.high:
            raise ValueError(f"{name}: default {self.default} is above high {self.high}")
        steps = (self.high - self.low) / self.step
        if abs(steps - round(steps)) > _STEP_TOLERANCE:
            raise ValueError(
                f"{name}: (high - low) / step = ({self.high} - {self.low}) / {self.step} "
                f"= {steps:.12g} is not an integer"
            )


class WeightRanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One :class:`Range` per indicator of the signal model, in points.

    Points are the origin's unit (B.1.1, B.2.3): a variant's weights are its points
    divided by their sum. Bounds and step 5 are the origin's for the seven scored
    indicators; kdj, obv and orderbook use the same step with their B.2.3 maxima. The
    defaults are the origin's default signal weights; the order book (DOM) is off (0).
    """

    rsi: Range = Range(0.0, 40.0, 5.0, 25.0)
    williams_r: Range = Range(0.0, 30.0, 5.0, 20.0)
    macd: Range = Range(0.0, 35.0, 5.0, 20.0)
    ao: Range = Range(0.0, 25.0, 5.0, 15.0)
    ema_trend: Range = Range(0.0, 40.0, 5.0, 20.0)
    stochastic: Range = Range(0.0, 20.0, 5.0, 10.0)
    bollinger: Range = Range(0.0, 20.0, 5.0, 10.0)
    kdj: Range = Range(0.0, 20.0, 5.0, 15.0)
    obv: Range = Range(0.0, 15.0, 5.0, 10.0)
    orderbook: Range = Range(0.0, 15.0, 5.0, 0.0)

    def ranges(self) -> tuple[Range, ...]:
        """Return the ranges in :data:`WEIGHT_NAMES` order."""
        return tuple(getattr(self, name) for name in WEIGHT_NAMES)


class OptimizerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The search space of the variant generator; defaults are the origin's bounds.

    Parameters
    ----------
    weights : WeightRanges
        Indicator weights in points (normalised to fractions in each variant).
    rsi_oversold, rsi_overbought : Range
        RSI levels (B.1.1): 20-35 and 65-80, step 5, defaults 30 and 70.
    strong_buy, buy, sell, strong_sell : Range
        Thresholds on the normalised score in [-1, 1] (PR-03), step 0.05.
    min_confidence : Range
        Minimum signal confidence to act on, 0.5-0.9 step 0.05, default 0.6.
    stop_loss_roi, take_profit_roi : Range
        Stop-loss and take-profit as ROI on margin, in percent (B.1.1, B.1.4).
    break_even_buffer, trailing_step, trailing_move : Range
        Trailing-stop settings as ROI on margin, in percent (B.1.1, B.1.4).
    leverage : Range
        Integer leverage 3-20 (low, high and step must be integers).
    position_size_pct : Range
        Margin per trade as a percentage of paper capital, 0.1-1.0 step 0.1.
    timeframes : tuple of str
        Canonical timeframe names a variant may trade on.
    default_timeframe : str
        The baseline's timeframe; one of ``timeframes``.
    max_hold_s : Range
        Maximum holding time in seconds (PR-03 timing), 600-3600 step 300.

    Raises
    ------
    ValueError
        On a malformed Range (the message names the field and the bound), a bound
        outside what the parameter can mean, overlapping threshold or RSI ranges, all
        weights fixed at zero, or an unknown or non-canonical timeframe.
    """

    weights: WeightRanges = WeightRanges()
    rsi_oversold: Range = Range(20.0, 35.0, 5.0, 30.0)
    rsi_overbought: Range = Range(65.0, 80.0, 5.0, 70.0)
    strong_buy: Range = Range(0.5, 0.8, 0.05, 0.65)
    buy: Range = Range(0.3, 0.5, 0.05, 0.4)
    sell: Range = Range(-0.5, -0.3, 0.05, -0.4)
    strong_sell: Range = Range(-0.8, -0.5, 0.05, -0.65)
    min_confidence: Range = Range(0.5, 0.9, 0.05, 0.6)
    stop_loss_roi: Range = Range(0.3, 2.0, 0.1, 0.5)
    take_profit_roi: Range = Range(1.0, 5.0, 0.5, 2.0)
    break_even_buffer: Range = Range(0.05, 0.5, 0.05, 0.1)
    trailing_step: Range = Range(0.05, 0.3, 0.05, 0.15)
    trailing_move: Range = Range(0.02, 0.1, 0.02, 0.05)
    leverage: Range = Range(3.0, 20.0, 1.0, 10.0)
    position_size_pct: Range = Range(0.1, 1.0, 0.1, 0.5)
    timeframes: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h")
    default_timeframe: str = "5m"
    max_hold_s: Range = Range(600.0, 3600.0, 300.0, 1800.0)

    def __post_init__(self) -> None:
        for name, value_range in self.named_ranges():
            value_range.check(name)
        self._check_meaning()
        self._check_cross_field()
        self._check_timeframes()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizerConfig:
        """Build a config from plain data (e.g. decoded JSON or TOML); missing fields
        take their defaults.

        Raises
        ------
        msgspec.ValidationError
            A ``ValueError`` subclass, on an unknown field (named in the message, with
            its path), a wrong type, or any check of the constructor.
        """
        return msgspec.convert(data, cls)

    def named_ranges(self) -> tuple[tuple[str, Range], ...]:
        """Return ``(name, Range)`` for every stepped parameter: the weights (named
        ``weights.<indicator>``), then :data:`FLOAT_PARAMS`, then ``leverage``."""
        weights = tuple(
            (f"weights.{name}", getattr(self.weights, name)) for name in WEIGHT_NAMES
        )
        floats = tuple((name, getattr(self, name)) for name in FLOAT_PARAMS)
        return (*weights, *floats, ("leverage", self.leverage))

    def _check_meaning(self) -> None:
        # Bounds outside which a parameter means nothing (a negative weight, a
        # threshold beyond the score's [-1, 1], a non-positive stop).
        limits: list[tuple[str, Range, float | None, float | None, bool]] = [
            (f"weights.{name}", getattr(self.weights, name), 0.0, None, False)
            for name in WEIGHT_NAMES
        ]
        limits += [
            ("rsi_oversold", self.rsi_oversold, 0.0, 100.0, False),
            ("rsi_overbought", self.rsi_overbought, 0.0, 100.0, False),
            ("strong_buy", self.strong_buy, 0.0, 1.0, True),
            ("buy", self.buy, 0.0, 1.0, True),
            ("sell", self.sell, -1.0, 0.0, False),
            ("strong_sell", self.strong_sell, -1.0, 0.0, False),
            ("min_confidence", self.min_confidence, 0.0, 1.0, False),
            ("stop_loss_roi", self.stop_loss_roi, 0.0, None, True),
            ("take_profit_roi", self.take_profit_roi, 0.0, None, True),
            ("break_even_buffer", self.break_even_buffer, 0.0, None, False),
            ("trailing_step", self.trailing_step, 0.0, None, True),
            ("trailing_move", self.trailing_move, 0.0, None, True),
            ("leverage", self.leverage, 1.0, None, False),
            ("position_size_pct", self.position_size_pct, 0.0, 100.0, True),
            ("max_hold_s", self.max_hold_s, 0.0, None, True),
        ]
        for name, value_range, minimum, maximum, low_exclusive in limits:
            if minimum is not None and (
                value_range.low < minimum or (low_exclusive and value_range.low == minimum)
            ):
                relation = "> " if low_exclusive else ">= "
                raise ValueError(f"{name}: low {value_range.low} must be {relation}{minimum}")
            if maximum is not None and value_range.high > maximum:
                raise ValueError(f"{name}: high {value_range.high} must be <= {maximum}")
        # sell must stay strictly below zero: a zero sell threshold fires on every tick.
        if self.sell.high >= 0.0:
            raise ValueError(f"sell: high {self.sell.high} must be < 0")
        if self.strong_sell.high >= 0.0:
            raise ValueError(f"strong_sell: high {self.strong_sell.high} must be < 0")
        for bound in ("low", "high", "step", "default"):
            value = getattr(self.leverage, bound)
            if not value.is_integer():
                raise ValueError(f"leverage: {bound} {value} is not an integer")

    def _check_cross_field(self) -> None:
        # Thresholds: every strong value is at least as extreme as every plain one. The
        # ranges may share an end point (the defaults meet at 0.5 and -0.5); a variant
        # with strong_buy == buy simply has no plain-BUY band.
        if self.strong_buy.low < self.buy.high:
            raise ValueError(
                f"strong_buy: low {self.strong_buy.low} is below buy high {self.buy.high}"
            )
        if self.strong_sell.high > self.sell.low:
            raise ValueError(
                f"strong_sell: high {self.strong_sell.high} is above sell low {self.sell.low}"
            )
        if self.rsi_oversold.high >= self.rsi_overbought.low:
            raise ValueError(
                f"rsi_oversold: high {self.rsi_oversold.high} must be below "
                f"rsi_overbought low {self.rsi_overbought.low}"
            )
        if all(value_range.high == 0.0 for value_range in self.weights.ranges()):
            raise ValueError("weights: every weight range has high 0; at least one must be > 0")

    def _check_timeframes(self) -> None:
        if not self.timeframes:
            raise ValueError("timeframes: at least one timeframe is required")
        for name in self.timeframes:
            if canonical_timeframe(name) != name:
                raise ValueError(
                    f"timeframes: {name!r} must be given by its canonical name "
                    f"{canonical_timeframe(name)!r}"
                )
        if len(set(self.timeframes)) != len(self.timeframes):
            raise ValueError(f"timeframes: duplicate entries in {list(self.timeframes)}")
        if self.default_timeframe not in self.timeframes:
            raise ValueError(
                f"default_timeframe: {self.default_timeframe!r} is not one of "
                f"timeframes {list(self.timeframes)}"
            )
