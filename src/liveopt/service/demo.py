"""``liveopt demo`` and ``liveopt run``: the daemon in the foreground until Ctrl-C.

The demo is the embedded default: the local simulator and the daemon in one process, in
mode ``sim`` (the main strategy's orders go to the simulator, the variants trade on
paper), the optimizer on, no network and no configuration file. Its market runs
:data:`DEMO_SPEED` times faster than the clock, so one-minute candles close every few
seconds and the dashboard moves at once, and its variants trade on short timeframes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import msgspec

from liveopt.optimizer import DEFAULT_CONFIG, Range
from liveopt.service.config import (
    ApiSettings,
    ExchangeSettings,
    JournalSettings,
    OptimizerSettings,
    ServiceConfig,
    ServiceSettings,
)
from liveopt.service.daemon import Daemon
from liveopt.sim.config import SimConfig

__all__ = ["DEMO_DATA_DIR", "DEMO_PORT", "DEMO_SPEED", "DEMO_VARIANTS", "demo_config",
           "demo_sim_config", "format_exit_summary", "run_daemon"]

DEMO_PORT = 8765
DEMO_VARIANTS = 200
#: Market time runs this many times faster than the clock: a 1m candle every 3 s.
DEMO_SPEED = 60.0  # a 1m candle every second: 135 closed trades in the first 40 s (200 variants)
#: The demo's data directory, relative to the working directory.
DEMO_DATA_DIR = "liveopt-demo"
# The demo's search space: short timeframes, so that the variants warm up within the first
# minute, and score thresholds reaching lower than the defaults, so that many of them
# trade while the dashboard is watched (the main strategy keeps mid-range values).
DEMO_SPACE = msgspec.structs.replace(
    DEFAULT_CONFIG, timeframes=("1m", "5m"), default_timeframe="1m",
    strong_buy=Range(0.1, 0.6, 0.05, 0.4), buy=Range(0.05, 0.1, 0.05, 0.1),
    sell=Range(-0.1, -0.05, 0.05, -0.1), strong_sell=Range(-0.6, -0.1, 0.05, -0.4),
    min_confidence=Range(0.2, 0.7, 0.05, 0.5))
LEADERS_SHOWN = 5


def demo_config(*, port: int = DEMO_PORT, variants: int = DEMO_VARIANTS,
                data_dir: str | Path = DEMO_DATA_DIR, seed: int = 0,
                snapshot_interval_s: float = 10.0) -> ServiceConfig:
    """The demo's configuration: mode ``sim`` on an in-process simulator, the optimizer on
    with ``variants`` variants, the API on 127.0.0.1:``port``."""
    return ServiceConfig(
        service=ServiceSettings(data_dir=str(data_dir), mode="sim"),
        exchange=ExchangeSettings(use_simulator=True),
        optimizer=OptimizerSettings(enabled=True, variants=variants, seed=seed,
                                    generation="random", evaluate_every_s=10.0,
                                    space=DEMO_SPACE),
        api=ApiSettings(port=port),
        journal=JournalSettings(snapshot_interval_s=snapshot_interval_s),
    )


def demo_sim_config(config: ServiceConfig, *, speed: float = DEMO_SPEED,
                    seed: int = 0) -> SimConfig:
    """The demo's simulator: a free port on loopback, the configured symbol."""
    return SimConfig(port=0, symbols=(config.service.symbol,), seed=seed, speed=speed)


def format_exit_summary(daemon: Daemon) -> str:
    """A few lines for the end of a run: ticks, trades, the leaders."""
    status = daemon.controller.status()
    lines = [f"ticks processed {status.ticks_processed:,}, trades closed "
             f"{status.trades_closed:,}, variants active {status.variants_active}/"
             f"{status.variants}"]
    leaders = daemon.controller.results(limit=LEADERS_SHOWN)
    if leaders:
        lines.append("leaders (variant, net PnL, ROI %, trades):")
        for row in leaders:
            lines.append(f"  {row.variant_id:>5} {row.net_pnl:>12,.2f} {row.roi_pct:>8.3f} "
                         f"{row.trades:>6}")
    return "\n".join(lines)


async def run_daemon(config: ServiceConfig, *, environ: Mapping[str, str],
                     out: TextIO | None = None, duration_s: float | None = None,
                     sim_config: SimConfig | None = None) -> Daemon:
    """Start the daemon, run it until SIGINT/SIGTERM (or ``duration_s``), stop it, print
    the summary; return the stopped daemon."""
    out = out or sys.stdout
    daemon = await Daemon.start(config, environ=environ, out=out, sim_config=sim_config)
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, daemon.request_stop)
            handled.append(signum)
    try:
        await daemon.wait(duration_s)
        summary = format_exit_summary(daemon)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await daemon.stop()
    print(summary, file=out, flush=True)
    return daemon
