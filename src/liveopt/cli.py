"""Command line: ``liveopt demo`` and ``liveopt replay``.

``demo`` is the embedded default: it needs no network and no configuration. For now it
replays the bundled synthetic trade set through the live path (ingestion, candles, the
indicator bank) and prints a summary; later it becomes the live demo.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from liveopt.data.readers import DataFormatError, read_trades
from liveopt.data.synthetic import BUNDLED_TRADES_PATH, bundled_trades
from liveopt.timeframes import TIMEFRAMES, canonical_timeframe

if TYPE_CHECKING:
    from liveopt.replay import ReplaySummary

DEFAULT_TIMEFRAMES = ("1m", "5m", "15m", "1h")


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value: float) -> str:
    return "warming up" if math.isnan(value) else f"{value:,.4f}"


def format_summary(summary: ReplaySummary, timeframe: str) -> str:
    """Render a replay summary as the text the commands print."""
    lines = [
        f"source      {summary.source}",
        f"trades      {summary.trades:,} ({_iso(summary.first_ts)} .. {_iso(summary.last_ts)} UTC)",
        f"rejected    {summary.rejected:,} input rows",
        "candles     " + ", ".join(f"{tf}: {n:,}" for tf, n in summary.candles.items()),
        f"indicators  {summary.indicators} unique configurations in the bank",
        f"replay      {summary.wall_seconds:.3f} s, {summary.trades_per_second:,.0f} trades/s"
        " (per-trade ingestion plus one bank update per closed candle)",
        "",
        f"latest values on {timeframe}:",
    ]
    for reading in summary.readings:
        if reading.timeframe != timeframe:
            continue
        values = ", ".join(f"{name} {_fmt(v)}" for name, v in reading.outputs.items())
        lines.append(f"  {reading.label:<34} {values}")
    return "\n".join(lines)


def _parse_timeframes(text: str) -> list[str]:
    return [canonical_timeframe(part.strip()) for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveopt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="replay the bundled synthetic trades through the indicators (no network)"
    )
    demo.add_argument(
        "--timeframes", default=",".join(DEFAULT_TIMEFRAMES),
        help=f"comma-separated, from {', '.join(TIMEFRAMES)} (default: %(default)s)",
    )
    replay = commands.add_parser("replay", help="replay a trades CSV(.gz) through the indicators")
    replay.add_argument("path", help="CSV or CSV.gz with header ts,price,size,side")
    replay.add_argument("--timeframes", default=",".join(DEFAULT_TIMEFRAMES))
    replay.add_argument(
        "--on-error", choices=("raise", "skip"), default="raise",
        help="stop at the first bad row (default), or skip bad rows and report how many",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``liveopt`` command."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        timeframes = _parse_timeframes(args.timeframes)
        if args.command == "demo":
            trades = bundled_trades()
        else:
            trades = read_trades(args.path, on_error=args.on_error)
    except (DataFormatError, ValueError, OSError) as error:
        print(f"liveopt: error: {error}", file=sys.stderr)
        return 2
    if not len(trades):
        print(f"liveopt: error: no trades in {trades.source or BUNDLED_TRADES_PATH}",
              file=sys.stderr)
        return 2
    # Importing the replay loads the Numba kernels: from the on-disk cache in a second or
    # two, or compiled on the first run after installation, which takes about a minute.
    print("liveopt: loading the compiled core (the first run compiles it, about a minute)",
          file=sys.stderr, flush=True)
    from liveopt.replay import default_specs, replay_trades

    summary = replay_trades(trades, default_specs(timeframes))
    print(format_summary(summary, timeframes[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
