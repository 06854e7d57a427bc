"""The indicator bank: every unique indicator configuration of every variant, updated once
per closed candle of its timeframe, in one compiled call.

Variants use different periods and timeframes, and many share configurations. The bank
deduplicates the specs, lays them out as rows of the kernel state grouped by kind (the
kernel runs one loop per kind, with no per-row dispatch), and exposes the latest outputs
as one ``float64[n_rows, 3]`` array that later kernels index by row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from liveopt._core import indicators as kernels
from liveopt.indicators.batch import as_series
from liveopt.indicators.specs import IndicatorSpec, allocate
from liveopt.timeframes import TIMEFRAMES


class IndicatorBank:
    """Deduplicated indicator configurations over one or more timeframes.

    Parameters
    ----------
    specs : iterable of IndicatorSpec
        Configurations, duplicates allowed (they share one row).

    Attributes
    ----------
    specs : tuple of IndicatorSpec
        The unique configurations, in row order.
    timeframes : tuple of str
        The timeframes in use, shortest first; a timeframe's position is its index in
        the ``closed`` mask and candle arrays of :meth:`update`.
    values : numpy.ndarray
        ``float64[n_rows, 3]``, the latest outputs of every row (NaN during warm-up);
        updated in place, so a reference to it stays current.
    """

    def __init__(self, specs: Iterable[IndicatorSpec]) -> None:
        unique = set(specs)
        if not unique:
            raise ValueError("an indicator bank needs at least one indicator spec")
        self.timeframes: tuple[str, ...] = tuple(
            tf for tf in TIMEFRAMES if any(spec.timeframe == tf for spec in unique)
        )
        ordered = sorted(
            unique, key=lambda s: (s.info.code, self.timeframes.index(s.timeframe), s.params)
        )
        self.specs: tuple[IndicatorSpec, ...] = tuple(ordered)
        self._rows = {spec: row for row, spec in enumerate(self.specs)}
        self._layout = allocate(self.specs)
        self._row_timeframe = np.array(
            [self.timeframes.index(spec.timeframe) for spec in self.specs], dtype=np.int64
        )
        # Rows are sorted by kind; kind k occupies rows kind_start[k] .. kind_start[k+1].
        self._kind_start = np.searchsorted(
            self._layout.kinds, np.arange(kernels.N_KINDS + 1)
        ).astype(np.int64)
        self.values: np.ndarray = self._layout.out
        n_tf = len(self.timeframes)
        # Scratch for `update` and `replay`: one-hot "closed" masks, one per timeframe,
        # and one slot per timeframe for the closed candle's high, low, close and volume.
        self._one_hot = np.eye(n_tf, dtype=np.uint8)
        self._closed = np.zeros(n_tf, dtype=np.uint8)
        self._candle = np.zeros((4, n_tf))
        self._candle_rows = tuple(self._candle[k] for k in range(4))
        # A row of each timeframe: all rows of a timeframe have seen the same candles.
        self._first_row = [int(np.argmax(self._row_timeframe == k)) for k in range(n_tf)]

    def __len__(self) -> int:
        return len(self.specs)

    def row(self, spec: IndicatorSpec) -> int:
        """Row of ``spec`` in :attr:`values`."""
        try:
            return self._rows[spec]
        except KeyError:
            raise KeyError(f"{spec.label()} is not in this bank") from None

    def value(self, spec: IndicatorSpec, output: str | None = None) -> float:
        """Latest value of one output of ``spec`` (its first output by default)."""
        column = 0 if output is None else spec.outputs.index(output)
        return float(self.values[self.row(spec), column])

    def _timeframe_index(self, timeframe: str) -> int:
        try:
            return self.timeframes.index(timeframe)
        except ValueError:
            raise ValueError(
                f"timeframe {timeframe!r} is not in this bank {self.timeframes}"
            ) from None

    def candles_seen(self, timeframe: str) -> int:
        """Number of closed candles of ``timeframe`` the bank has consumed."""
        # Every row counts its bars in state column 0.
        row = self._first_row[self._timeframe_index(timeframe)]
        return int(self._layout.state[row, 0])

    def update(self, timeframe: str, high: float, low: float, close: float, volume: float):
        """Advance every configuration of ``timeframe`` by one closed candle.

        Raises
        ------
        ValueError
            On an unknown timeframe or a value that is not finite (a NaN would stay in
            the running state of every indicator for good).
        """
        index = self._timeframe_index(timeframe)
        for name, value in (("high", high), ("low", low), ("close", close), ("volume", volume)):
            if not math.isfinite(value):
                raise ValueError(f"IndicatorBank.update: {name} is not finite: {value!r}")
        bar_high, bar_low, bar_close, bar_volume = self._candle_rows
        bar_high[index] = high
        bar_low[index] = low
        bar_close[index] = close
        bar_volume[index] = volume
        self._advance(self._one_hot[index], bar_high, bar_low, bar_close, bar_volume)

    def update_closed(self, closed: np.ndarray, candles: np.ndarray) -> None:
        """Advance, in one compiled call, every configuration whose timeframe closed.

        ``closed`` is ``uint8[n_timeframes]``; ``candles`` is ``float64[4, n_timeframes]``
        holding the closed candles' high, low, close and volume. This is the hot path:
        inputs are trusted (the caller built them from validated candles). The cost is
        dominated by Numba's unboxing of the kernel's array arguments, about 1 us.
        """
        self._advance(closed, candles[0], candles[1], candles[2], candles[3])

    def _advance(self, closed, high, low, close, volume) -> None:
        layout = self._layout
        kernels.bank_update_nb(
            self._kind_start, self._row_timeframe, layout.params, layout.state, layout.ring,
            layout.ring_base, layout.out, closed, high, low, close, volume,
        )

    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """``(kind_start, row_timeframe, params, state, ring, ring_base, out)``: the bank's
        arguments to ``liveopt._core.indicators.bank_update_nb``, for kernels that advance
        the bank themselves (the variant pass). Mutable state: do not copy."""
        layout = self._layout
        return (self._kind_start, self._row_timeframe, layout.params, layout.state,
                layout.ring, layout.ring_base, layout.out)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The arrays that change as candles arrive (for snapshots): restoring them into
        a bank built from the same specs resumes it exactly."""
        layout = self._layout
        return {"state": layout.state, "ring": layout.ring, "out": layout.out}

    def replay(self, timeframe: str, high, low, close, volume) -> None:
        """Feed a series of closed candles of ``timeframe`` through the bank, in order
        (for warming the bank up from history)."""
        index = self._timeframe_index(timeframe)
        h, lo, c, v = (
            as_series(name, values)
            for name, values in (("high", high), ("low", low), ("close", close),
                                 ("volume", volume))
        )
        if not len(h) == len(lo) == len(c) == len(v):
            raise ValueError("high, low, close and volume must have equal lengths")
        layout = self._layout
        kernels.bank_replay_nb(
            self._kind_start, self._row_timeframe, layout.params, layout.state, layout.ring,
            layout.ring_base, layout.out, self._closed, *self._candle_rows, index, h, lo, c, v,
        )
