"""Typed stub for the Cython module ``liveopt._core.ingest`` (C types in comments)."""

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

MAX_TIMEFRAMES: Final[int]

CandleArrays = tuple[
    npt.NDArray[np.int64],  # ts: bucket starts, epoch ns
    npt.NDArray[np.float64],  # open
    npt.NDArray[np.float64],  # high
    npt.NDArray[np.float64],  # low
    npt.NDArray[np.float64],  # close
    npt.NDArray[np.float64],  # volume
]

TickArrays = tuple[
    npt.NDArray[np.int64],  # ts
    npt.NDArray[np.float64],  # price
    npt.NDArray[np.float64],  # size
    npt.NDArray[np.int8],  # side
]

class TradeIngestor:
    def __init__(
        self,
        timeframes_ns: Sequence[int],  # each int64 > 0, at most MAX_TIMEFRAMES
        tick_capacity: int = 65536,  # Py_ssize_t >= 1
        candle_capacity: int = 1024,  # Py_ssize_t >= 1
    ) -> None: ...
    def push(
        self,
        ts: int,  # int64_t, >= the previous trade's ts
        price: float,  # double
        size: float,  # double
        side: int,  # int, stored as int8
    ) -> int: ...  # uint64_t bitmask: bit k set if timeframe k closed a candle
    def flush(self) -> int: ...  # uint64_t bitmask
    def pending(self, tf: int) -> int: ...
    def drain(self, tf: int) -> CandleArrays: ...
    def current(self, tf: int) -> tuple[int, float, float, float, float, float] | None: ...
    def recent_ticks(self, n: int) -> TickArrays: ...
    @property
    def timeframes_ns(self) -> tuple[int, ...]: ...
    @property
    def tick_count(self) -> int: ...
    @property
    def tick_capacity(self) -> int: ...
    @property
    def last_price(self) -> float | None: ...
    @property
    def last_ts(self) -> int | None: ...

def aggregate_trades(
    ts: npt.NDArray[np.int64],  # const int64_t[::1], non-decreasing
    price: npt.NDArray[np.float64],  # const double[::1]
    size: npt.NDArray[np.float64],  # const double[::1]
    timeframe_ns: int,  # int64_t > 0
    include_last: bool = True,
) -> CandleArrays: ...
