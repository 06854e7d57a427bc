"""``liveopt sim``: run the local KuCoin futures simulator until SIGINT or SIGTERM.

``liveopt.cli`` registers it with :func:`add_parser` and dispatches to :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TextIO

import msgspec

from liveopt.exchange.signing import Credentials
from liveopt.sim.config import (
    DEFAULT_API_KEY,
    DEFAULT_API_PASSPHRASE,
    DEFAULT_API_SECRET,
    DEFAULT_SYMBOLS,
    FaultConfig,
    SimConfig,
)
from liveopt.sim.server import start_sim


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``sim`` sub-command."""
    parser = subparsers.add_parser(
        "sim", help="run the local KuCoin-futures-compatible exchange simulator",
        description="A local KuCoin futures exchange (REST + WebSocket) on a replayed or "
                    "generated market. See docs/simulator.md.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8088, help="port, 0 = any free (8088)")
    parser.add_argument("--data", default=None,
                        help="trades or candles file replayed for the first symbol "
                             "(default: seeded generator)")
    parser.add_argument("--seed", type=int, default=0, help="generator and fault seed (0)")
    parser.add_argument("--speed", type=float, default=1.0, help="market time factor (1)")
    parser.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS),
                        help="comma-separated contracts (XBTUSDTM; also ETHUSDTM, SOLUSDTM)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    parser.add_argument("--api-passphrase", default=DEFAULT_API_PASSPHRASE)
    parser.add_argument("--ping-interval-ms", type=int, default=18_000)
    parser.add_argument("--ping-timeout-ms", type=int, default=10_000)
    parser.add_argument("--idle-timeout-s", type=float, default=60.0)
    faults = parser.add_argument_group("fault injection (all off by default)")
    faults.add_argument("--drop-connections-every", type=float, default=0.0, metavar="S",
                        help="close every WebSocket connection every S seconds")
    faults.add_argument("--frame-delay-ms", type=float, default=0.0, metavar="MS",
                        help="hold every market-data frame for MS milliseconds")
    faults.add_argument("--burst-429-every", type=float, default=0.0, metavar="S",
                        help="every S seconds, answer all REST requests with 429 ...")
    faults.add_argument("--burst-429-for", type=float, default=0.0, metavar="S",
                        help="... for S seconds")
    faults.add_argument("--malformed-frame-rate", type=float, default=0.0, metavar="P",
                        help="probability that a market-data frame is sent malformed")
    faults.add_argument("--sequence-gap-rate", type=float, default=0.0, metavar="P",
                        help="probability that a sequenced frame is withheld (a gap)")
    faults.add_argument("--order-failure-rate", type=float, default=0.0, metavar="P",
                        help="probability that an order endpoint fails (1 = always)")
    faults.add_argument("--order-failure-status", type=int, default=500, choices=(500, 503),
                        help="HTTP status of failing order endpoints (500 -> code 500000)")
    faults.add_argument("--order-failure-after-apply", action="store_true",
                        help="carry out a failing order request, then answer the failure")
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Build the validated configuration; ValueError names the bad flag's field."""
    faults = FaultConfig(
        drop_connections_every_s=args.drop_connections_every,
        frame_delay_ms=args.frame_delay_ms,
        burst_429_every_s=args.burst_429_every,
        burst_429_duration_s=args.burst_429_for,
        malformed_frame_rate=args.malformed_frame_rate,
        sequence_gap_rate=args.sequence_gap_rate,
        order_failure_rate=args.order_failure_rate,
        order_failure_status=args.order_failure_status,
        order_failure_after_apply=args.order_failure_after_apply,
    )
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    return SimConfig(
        host=args.host, port=args.port, data=args.data, seed=args.seed, speed=args.speed,
        symbols=symbols,
        credentials=Credentials(args.api_key, args.api_secret, args.api_passphrase),
        ping_interval_ms=args.ping_interval_ms, ping_timeout_ms=args.ping_timeout_ms,
        idle_timeout_s=args.idle_timeout_s, faults=faults,
    )


async def serve(config: SimConfig, out: TextIO = sys.stdout,
                stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set, or until SIGINT/SIGTERM when ``stop`` is not given."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
            except (NotImplementedError, RuntimeError):  # not the main thread / no support
                pass
    try:
        sim = await start_sim(config)
        try:
            print(f"liveopt sim: REST {sim.url}  WebSocket {sim.ws_url}  "
                  f"symbols {','.join(config.symbols)}  API key {config.credentials.key!r}",
                  file=out, flush=True)
            if config.faults.any_enabled:
                print(f"liveopt sim: faults {msgspec.json.encode(config.faults).decode()}",
                      file=out, flush=True)
            await stop.wait()
        finally:
            await sim.stop()
            print("liveopt sim: stopped", file=out, flush=True)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``liveopt sim``; returns the process exit status."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"liveopt sim: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config))
    except (ValueError, OSError) as exc:
        print(f"liveopt sim: {exc}", file=sys.stderr)
        return 1
    return 0
