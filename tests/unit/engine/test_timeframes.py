"""Timeframe names and lengths."""

import pytest

from liveopt.timeframes import canonical_timeframe, timeframe_ns
from liveopt.units import NS_PER_MINUTE


@pytest.mark.parametrize(
    ("name", "minutes"), [("1m", 1), ("5m", 5), ("15m", 15), ("30m", 30), ("1h", 60), ("4h", 240)]
)
def test_timeframe_lengths_are_in_nanoseconds(name, minutes):
    assert timeframe_ns(name) == minutes * NS_PER_MINUTE


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("1min", "1m"), ("5min", "5m"), ("15min", "15m"), ("30min", "30m"), ("1hour", "1h"),
     ("4hour", "4h")],
)
def test_kucoin_granularity_names_are_accepted_as_aliases(alias, canonical):
    assert canonical_timeframe(alias) == canonical


def test_unknown_timeframe_names_the_supported_ones():
    with pytest.raises(ValueError, match="unknown timeframe '2m'; supported: 1m, 5m"):
        canonical_timeframe("2m")
