"""Columnar containers for market data: one contiguous numpy array per field."""

from __future__ import annotations

import msgspec
import numpy as np


def _frozen_array(values: np.ndarray, dtype: type) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=dtype)
    array.flags.writeable = False
    return array


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """One input row that was rejected, and why.

    Parameters
    ----------
    line : int
        1-based line number in the file (the header is line 1).
    column : str
        Name of the offending column.
    reason : str
        What was wrong with the value.
    """

    line: int
    column: str
    reason: str


class Trades(msgspec.Struct, frozen=True, kw_only=True):
    """Trades as columns. Arrays are read-only and of equal length.

    Parameters
    ----------
    ts : numpy.ndarray
        int64 epoch nanoseconds, non-decreasing.
    price : numpy.ndarray
        float64, finite and > 0.
    size : numpy.ndarray
        float64, finite and >= 0.
    side : numpy.ndarray
        int8, +1 for a buy (taker bought), -1 for a sell.
    rejected : int
        Number of input rows rejected while reading (only with ``on_error="skip"``).
    rejections : tuple of Rejection
        The first rejected rows, for the report (at most
        ``liveopt.data.readers.MAX_REPORTED_REJECTIONS``).
    source : str
        Where the data came from (a file path, or a description).
    """

    ts: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray
    rejected: int = 0
    rejections: tuple[Rejection, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.ts)
        if not (len(self.price) == len(self.size) == len(self.side) == n):
            raise ValueError("Trades columns must have equal length")

    @classmethod
    def from_arrays(cls, ts, price, size, side, **kwargs) -> Trades:
        """Build from array-likes, converting dtypes and freezing the arrays."""
        return cls(
            ts=_frozen_array(ts, np.int64),
            price=_frozen_array(price, np.float64),
            size=_frozen_array(size, np.float64),
            side=_frozen_array(side, np.int8),
            **kwargs,
        )

    def __len__(self) -> int:
        return len(self.ts)


class Candles(msgspec.Struct, frozen=True, kw_only=True):
    """OHLCV candles as columns. Arrays are read-only and of equal length.

    Parameters
    ----------
    ts : numpy.ndarray
        int64 epoch nanoseconds of each candle's open, strictly increasing.
    open, high, low, close, volume : numpy.ndarray
        float64 columns.
    rejected : int
        Number of input rows rejected while reading (only with ``on_error="skip"``).
    rejections : tuple of Rejection
        The first rejected rows, for the report.
    source : str
        Where the data came from.
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    rejected: int = 0
    rejections: tuple[Rejection, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.ts)
        columns = (self.open, self.high, self.low, self.close, self.volume)
        if any(len(column) != n for column in columns):
            raise ValueError("Candles columns must have equal length")

    @classmethod
    def from_arrays(cls, ts, open, high, low, close, volume, **kwargs) -> Candles:
        """Build from array-likes, converting dtypes and freezing the arrays."""
        return cls(
            ts=_frozen_array(ts, np.int64),
            open=_frozen_array(open, np.float64),
            high=_frozen_array(high, np.float64),
            low=_frozen_array(low, np.float64),
            close=_frozen_array(close, np.float64),
            volume=_frozen_array(volume, np.float64),
            **kwargs,
        )

    def __len__(self) -> int:
        return len(self.ts)
