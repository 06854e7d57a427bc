"""The simulator side of ``bench_daemon.py``, run as its child process::

    python daemon_sim_process.py RATE SECONDS SEED

The simulator (``liveopt.sim``) on a free loopback port, whose market is the seeded
generator with one volatility regime trading RATE times per second (Poisson, in 10 ms
steps). It prints ``{"url": ...}``, starts the market when a client subscribes to the
trade topic, lets it trade for SECONDS, prints the counters as one JSON line (trades
generated, the market's start on the wall clock, CPU and event-loop busy share, WebSocket
counters) and stops when its standard input closes. Also the timing event-loop selector
both processes use.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import sys
import time

from liveopt.exchange.messages import EXECUTION
from liveopt.sim.config import SimConfig
from liveopt.sim.contracts import default_contracts
from liveopt.sim.exchange import SimExchange
from liveopt.sim.market import GeneratedMarket, GeneratorConfig, MarketTrade, RegimeParams
from liveopt.sim.server import start_sim

SYMBOL = "XBTUSDTM"
STEP_NS = 10_000_000  # generator step: trades are stamped on a 10 ms grid
SIM_TICK_MS = 10
# The simulator drops a client whose send queue is full. Its default 1,024 frames are
# 128 ms at 8,000 trades/s, shorter than the scheduling stalls of a shared 2-core VM; a
# queue of 2 s of frames makes a drop mean a real shortfall, not a stall.
SIM_QUEUE_S = 2.0


class TimedSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The event loop's selector, timing how long the loop waits in it (idle)."""

    idle_s = 0.0

    def select(self, timeout=None):
        start = time.perf_counter()
        try:
            return super().select(timeout)
        finally:
            self.idle_s += time.perf_counter() - start


def run_timed(main) -> tuple[object, TimedSelector]:
    """``asyncio.run(main(selector))`` on a loop whose idle time ``selector`` measures."""
    selector = TimedSelector()
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selector)) as runner:
        return runner.run(main(selector)), selector


def busy_share(selector: TimedSelector, idle0: float, wall0: float) -> float:
    """Share of the wall time since ``wall0`` (``perf_counter``) the loop was not idle,
    ``idle0`` being the selector's idle time then."""
    wall = time.perf_counter() - wall0
    return 1.0 - (selector.idle_s - idle0) / wall if wall > 0 else 0.0


class TimedMarket:
    """A generated market that starts when :meth:`begin` is called (once the daemon has
    subscribed, so that every trade is sent to it), stops trading ``seconds`` later, and
    counts its trades."""

    def __init__(self, market: GeneratedMarket, seconds: float) -> None:
        self._market = market
        self._seconds_ns = int(seconds * 1e9)
        self._end_ns: int | None = None
        self._last_ns = 0
        self.trades = 0

    @property
    def finished(self) -> bool:
        return self._end_ns is not None and self._last_ns >= self._end_ns

    def start(self, start_ns: int) -> None:
        """The exchange's start: nothing trades before :meth:`begin`."""

    def begin(self, now_ns: int) -> None:
        self._market.start(now_ns)
        self._end_ns = now_ns + self._seconds_ns

    def events_until(self, now_ns: int) -> list:
        if self._end_ns is None:
            return []
        self._last_ns = now_ns
        events = self._market.events_until(min(now_ns, self._end_ns))
        self.trades += sum(isinstance(event, MarketTrade) for event in events)
        return events


def bench_exchange(rate: float, seconds: float, seed: int, start_ns: int
                    ) -> tuple[SimExchange, TimedMarket]:
    spec = default_contracts()[SYMBOL]
    regime = RegimeParams(name="bench", vol_bps_per_sqrt_s=0.6, trades_per_s=rate,
                          spread_ticks=2.0, mean_duration_s=1e9)
    market = TimedMarket(GeneratedMarket(SYMBOL, seed, spec.start_price, spec.tick_size,
                                          GeneratorConfig(step_ns=STEP_NS, regimes=(regime,))),
                          seconds)
    exchange = SimExchange({SYMBOL: spec}, {SYMBOL: market}, start_ns=start_ns)
    return exchange, market


async def serve(rate: float, seconds: float, seed: int, selector: TimedSelector) -> None:
    """Start the simulator, print its URL, start the market when the daemon
    has subscribed, print the counters when it has ended, and stop when stdin closes."""
    start_ns = time.time_ns()
    exchange, market = bench_exchange(rate, seconds, seed, start_ns)
    queue = max(1024, int(rate * SIM_QUEUE_S))
    sim = await start_sim(SimConfig(seed=seed, tick_ms=SIM_TICK_MS, send_queue_size=queue),
                          exchange=exchange)
    print(json.dumps({"url": sim.url}), flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    while not sim.server.hub.subscribed_keys(EXECUTION):
        await asyncio.sleep(0.002)
    begin_ns = sim.server.now_ns()
    market.begin(begin_ns)
    cpu0, wall0, idle0 = time.process_time(), time.perf_counter(), selector.idle_s
    while not market.finished:
        await asyncio.sleep(0.05)
    busy = busy_share(selector, idle0, wall0)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await asyncio.sleep(2 * SIM_TICK_MS / 1000)  # the last tick's frames leave the queue
    counts = sim.ws_counts()
    print(json.dumps({"trades": market.trades, "begin_ns": begin_ns,
                      "cpu_s": cpu, "wall_s": wall, "loop_busy": busy,
                      "slow_disconnects": counts.slow_disconnects,
                      "connections_opened": counts.connections_opened,
                      "market_loop_errors": sim.server.market_loop_errors}), flush=True)
    await stdin_closed
    await sim.stop()


if __name__ == "__main__":
    run_timed(lambda selector: serve(float(sys.argv[1]), float(sys.argv[2]),
                                     int(sys.argv[3]), selector))
