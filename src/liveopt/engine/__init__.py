"""The all-variants engine: N variants of a strategy, one market stream, one paper account
each, evaluated together in one compiled pass (``docs/paper-execution.md``)."""

from liveopt.engine.config import EngineConfig
from liveopt.engine.engine import METRICS_DTYPE, STOP_REASON_NAMES, Engine
from liveopt.engine.records import (
    FILL_DTYPE,
    REASON_CODES,
    REASON_NAMES,
    TRADE_DTYPE,
    ClosedTrade,
    FillBatch,
)
from liveopt.indicators.specs import SIGNAL_INDICATORS

__all__ = [
    "FILL_DTYPE",
    "METRICS_DTYPE",
    "REASON_CODES",
    "REASON_NAMES",
    "SIGNAL_INDICATORS",
    "STOP_REASON_NAMES",
    "TRADE_DTYPE",
    "ClosedTrade",
    "Engine",
    "EngineConfig",
    "FillBatch",
]
