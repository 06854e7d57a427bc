"""Command line: ``liveopt demo``, ``liveopt run``, ``liveopt replay``, ``liveopt indicators``
and ``liveopt sim``.

``demo`` is the embedded default: it needs no network and no configuration. It starts the
local exchange simulator and the daemon against it in one process and prints the
dashboard's URL (docs/quickstart.md). ``run`` is the daemon on a configuration file
(docs/configuration.md). ``replay`` runs the variants over a file (``liveopt replay
--bundled`` over the bundled synthetic trades).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

import msgspec
import numpy as np

from liveopt.data.columns import Candles
from liveopt.data.readers import DataFormatError, read_market_data, read_trades
from liveopt.data.synthetic import BUNDLED_TRADES_PATH, bundled_trades
from liveopt.optimizer import MODES, OptimizerConfig
from liveopt.sim import cli as sim_cli
from liveopt.timeframes import TIMEFRAMES, canonical_timeframe

if TYPE_CHECKING:
    from liveopt.replay import ReplaySummary, VariantReplaySummary

DEFAULT_TIMEFRAMES = ("1m", "5m", "15m", "1h")
DEFAULT_VARIANTS = 200
LEADERBOARD_ROWS = 10


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value: float) -> str:
    return "warming up" if math.isnan(value) else f"{value:,.4f}"


def format_summary(summary: ReplaySummary, timeframe: str) -> str:
    """Render an indicator replay summary."""
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


def _num(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def format_leaderboard(summary: VariantReplaySummary) -> str:
    """Render a variant replay: what ran, how fast, and the best variants."""
    lines = [
        f"source      {summary.source} ({summary.input})",
        f"ticks       {summary.ticks:,} ({_iso(summary.first_ts)} .. {_iso(summary.last_ts)}"
        f" UTC), {summary.rejected:,} input rows rejected",
        f"variants    {summary.variants:,} ({summary.mode}, seed {summary.seed}) on "
        f"{summary.timeframe}; variant 0 is the baseline",
        f"trades      {summary.trades:,} closed",
        f"speed       {summary.elapsed_s:.3f} s, {summary.variant_ticks_per_s:,.0f} "
        "variant-ticks/s (processing only)",
        "",
        f"top {len(summary.top)} by net PnL:",
        f"  {'id':>6} {'net PnL':>11} {'ROI %':>8} {'trades':>7} {'win %':>6} "
        f"{'Sharpe/tr':>9} {'max DD %':>8}  config",
    ]
    for row in summary.top:
        lines.append(
            f"  {row.id:>6} {row.net_pnl:>11,.2f} {row.roi_pct:>8.3f} {row.trades:>7,} "
            f"{_num(row.win_rate * 100, '6.1f'):>6} {_num(row.sharpe, '9.3f'):>9} "
            f"{row.max_drawdown * 100:>8.3f}  {row.config_hash}"
        )
    return "\n".join(lines)


class ProgressBar:
    """A one-line progress bar on a terminal stream, redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO, label: str, width: int = 30) -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.drawn < 0.1:
            return
        self.drawn = now
        share = done / total if total else 1.0
        filled = round(share * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {share:6.1%} {done:,}/{total:,} "
            f"{now - self.started:6.1f} s"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _parse_timeframes(text: str) -> list[str]:
    return [canonical_timeframe(part.strip()) for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveopt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def variant_options(command: argparse.ArgumentParser, default_timeframe: str | None):
        command.add_argument("--variants", type=int, default=DEFAULT_VARIANTS,
                             help="variants including the baseline (default: %(default)s)")
        command.add_argument("--seed", type=int, default=0, help="generator seed")
        command.add_argument("--mode", choices=MODES, default="random",
                             help="variant generation mode (default: %(default)s)")
        command.add_argument(
            "--timeframe", default=default_timeframe,
            help="candle timeframe the variants trade on (default: 1m for trades, the "
            "bar length for candles)" if default_timeframe is None else "(default: 1m)",
        )
        command.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
        command.add_argument("--progress", action=argparse.BooleanOptionalAction,
                             default=None, help="progress bar on stderr (default: if a tty)")

    demo = commands.add_parser(
        "demo", help="the local simulator and the daemon in one process (no network, no "
        "configuration); prints the dashboard URL")
    demo.add_argument("--port", type=int, default=8765,
                      help="API and dashboard port on 127.0.0.1 (default: %(default)s)")
    demo.add_argument("--variants", type=int, default=DEFAULT_VARIANTS,
                      help="variants including the main strategy (default: %(default)s)")
    demo.add_argument("--data-dir", default="liveopt-demo",
                      help="journals, snapshots and the API token (default: ./%(default)s)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the simulated market and of the variants")
    demo.add_argument("--speed", type=float, default=60.0,  # service.demo.DEMO_SPEED
                      help="market time per clock time (default: %(default)s, a 1m candle "
                      "every second)")
    demo.add_argument("--duration", type=float, default=None, metavar="S",
                      help="stop after S seconds (default: run until Ctrl-C)")
    run = commands.add_parser("run", help="the daemon (default: paper trading on KuCoin's "
                              "public feed)")
    run.add_argument("--config", default=None, metavar="PATH",
                     help="TOML configuration (docs/configuration.md; default: all defaults)")
    run.add_argument("--duration", type=float, default=None, metavar="S",
                     help="stop after S seconds (default: run until Ctrl-C or SIGTERM)")
    replay = commands.add_parser("replay", help="run variants over a trades or candles file")
    replay.add_argument("path", nargs="?",
                        help="CSV or CSV.gz: ts,price,size,side or ts,open,high,...")
    replay.add_argument("--bundled", action="store_true",
                        help="replay the bundled synthetic trades instead of a file")
    variant_options(replay, None)
    replay.add_argument(
        "--on-error", choices=("raise", "skip"), default="raise",
        help="stop at the first bad row (default), or skip bad rows and report how many",
    )
    indicators = commands.add_parser(
        "indicators", help="replay trades through the indicators alone and print them"
    )
    indicators.add_argument("path", nargs="?", help="trades CSV(.gz); default: bundled")
    indicators.add_argument(
        "--timeframes", default=",".join(DEFAULT_TIMEFRAMES),
        help=f"comma-separated, from {', '.join(TIMEFRAMES)} (default: %(default)s)",
    )
    indicators.add_argument("--on-error", choices=("raise", "skip"), default="raise")
    sim_cli.add_parser(commands)
    return parser


def _loading_notice() -> None:
    # Importing the engine loads the Numba kernels: from the on-disk cache in a second or
    # two, or compiled on the first run after installation, which takes about a minute.
    print("liveopt: loading the compiled core (the first run compiles it, about a minute)",
          file=sys.stderr, flush=True)


def _bar_timeframe(data: Candles) -> str:
    # The most common spacing between bars names their timeframe.
    if len(data) < 2:
        raise ValueError("a candles file needs at least two bars to tell their timeframe")
    steps, counts = np.unique(data.ts[1:] - data.ts[:-1], return_counts=True)
    step = int(steps[counts.argmax()])
    for name, length in TIMEFRAMES.items():
        if length == step:
            return name
    raise ValueError(f"bars are {step / 1e9:g} s apart, which is not one of {list(TIMEFRAMES)}")


def _run_variants(args, data) -> int:
    from liveopt.engine import EngineConfig
    from liveopt.optimizer import generate_variants
    from liveopt.replay import replay_variants

    if not len(data):
        print(f"liveopt: error: no data in {data.source}", file=sys.stderr)
        return 2
    is_candles = isinstance(data, Candles)
    bar = _bar_timeframe(data) if is_candles else "1m"
    timeframe = canonical_timeframe(args.timeframe or bar)
    if args.variants < 1:
        raise ValueError(f"--variants must be >= 1, got {args.variants}")
    space = OptimizerConfig(timeframes=(timeframe,), default_timeframe=timeframe)
    variants = generate_variants(args.variants, args.mode, args.seed, space)
    config = EngineConfig(bar_timeframe=bar)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = ProgressBar(sys.stderr, "replay") if show else None
    summary, _ = replay_variants(data, variants, config, seed=args.seed, mode=args.mode,
                                 top=LEADERBOARD_ROWS, progress=progress)
    print(format_leaderboard(summary))
    if args.json:
        with open(args.json, "wb") as handle:
            handle.write(msgspec.json.format(msgspec.json.encode(summary)) + b"\n")
    return 0


def _run_daemon(args) -> int:
    from liveopt.service.config import ConfigError, load_config
    from liveopt.service.daemon import DaemonStartError
    from liveopt.service.demo import demo_config, demo_sim_config, run_daemon

    try:
        if args.command == "demo":
            if args.variants < 1:
                raise ConfigError(f"--variants: {args.variants} must be >= 1")
            if not args.speed > 0:
                raise ConfigError(f"--speed: {args.speed} must be > 0")
            config = demo_config(port=args.port, variants=args.variants,
                                 data_dir=args.data_dir, seed=args.seed)
            sim_config = demo_sim_config(config, speed=args.speed, seed=args.seed)
        else:
            config = load_config(args.config, os.environ)
            sim_config = None
        _loading_notice()
        asyncio.run(run_daemon(config, environ=os.environ, duration_s=args.duration,
                               sim_config=sim_config))
    except (ConfigError, DaemonStartError) as error:
        print(f"liveopt: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. the API port is taken
        print(f"liveopt: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``liveopt`` command."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "sim":
        return sim_cli.run(args)
    if args.command in ("demo", "run"):
        return _run_daemon(args)
    if args.command == "replay" and (args.path is None) == (not args.bundled):
        parser.error("replay: give a file or --bundled (not both)")
    try:
        if args.command == "indicators":
            timeframes = _parse_timeframes(args.timeframes)
            trades = (bundled_trades() if args.path is None
                      else read_trades(args.path, on_error=args.on_error))
            if not len(trades):
                print(f"liveopt: error: no trades in {trades.source or BUNDLED_TRADES_PATH}",
                      file=sys.stderr)
                return 2
            _loading_notice()
            from liveopt.replay import default_specs, replay_trades

            summary = replay_trades(trades, default_specs(timeframes))
            print(format_summary(summary, timeframes[0]))
            return 0
        data = (bundled_trades() if args.bundled
                else read_market_data(args.path, on_error=args.on_error))
        _loading_notice()
        return _run_variants(args, data)
    except (DataFormatError, ValueError, OSError) as error:
        print(f"liveopt: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
