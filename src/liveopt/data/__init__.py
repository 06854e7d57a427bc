"""Market data: readers, columnar containers, candle aggregation and the bundled data set."""

from liveopt.data.candles import candles_from_trades, validate_trades
from liveopt.data.columns import Candles, Rejection, Trades
from liveopt.data.readers import (
    MAX_REPORTED_REJECTIONS,
    DataFormatError,
    read_candles,
    read_market_data,
    read_trades,
)
from liveopt.data.synthetic import (
    BUNDLED_TRADES_PATH,
    bundled_trades,
    generate_trades,
    write_trades_csv,
)

__all__ = [
    "BUNDLED_TRADES_PATH",
    "MAX_REPORTED_REJECTIONS",
    "Candles",
    "DataFormatError",
    "Rejection",
    "Trades",
    "bundled_trades",
    "candles_from_trades",
    "generate_trades",
    "read_candles",
    "read_market_data",
    "read_trades",
    "validate_trades",
    "write_trades_csv",
]
