"""Candle timeframes: names, lengths in nanoseconds, and parsing at the boundary."""

from __future__ import annotations

from liveopt.units import NS_PER_MINUTE

#: Canonical timeframe names and their lengths in nanoseconds, shortest first.
TIMEFRAMES: dict[str, int] = {
    "1m": NS_PER_MINUTE,
    "5m": 5 * NS_PER_MINUTE,
    "15m": 15 * NS_PER_MINUTE,
    "30m": 30 * NS_PER_MINUTE,
    "1h": 60 * NS_PER_MINUTE,
    "4h": 240 * NS_PER_MINUTE,
}

# KuCoin's granularity names (origin configs use them) map onto the canonical ones.
_ALIASES = {
    "1min": "1m",
    "5min": "5m",
    "15min": "15m",
    "30min": "30m",
    "1hour": "1h",
    "4hour": "4h",
}


def canonical_timeframe(name: str) -> str:
    """Return the canonical name of a timeframe such as ``"5m"`` or ``"5min"``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the supported timeframes.
    """
    key = _ALIASES.get(name, name)
    if key not in TIMEFRAMES:
        supported = ", ".join(TIMEFRAMES)
        raise ValueError(f"unknown timeframe {name!r}; supported: {supported}")
    return key


def timeframe_ns(name: str) -> int:
    """Return the length of a timeframe in nanoseconds."""
    return TIMEFRAMES[canonical_timeframe(name)]
