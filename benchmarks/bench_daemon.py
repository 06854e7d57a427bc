"""The daemon's tick path under load: simulator WebSocket -> feed decode -> controller
micro-batches -> engine -> journals and telemetry, against the engine alone.

Each run starts the simulator in a child process (``daemon_sim_process.py``), so its CPU
is not the daemon's. Its market is the seeded generator with
one volatility regime whose trade arrival rate is RATE per second (Poisson, in steps of
10 ms), running for SECONDS of market time and then going quiet; the child then prints how
many trades it generated and its WebSocket counters. In this process runs the daemon
itself, ``liveopt.service.daemon.Daemon`` (what ``liveopt run`` starts), pointed at the
child: paper mode, the optimizer on with random variants of the default
``OptimizerConfig``, the engine's safety limits out of reach (so the work per tick does not
shrink as variants stop), telemetry every 0.25 s, its data directory (journals, tick log,
snapshots) in a temporary directory, and one telemetry WebSocket client reading every
message. Its feed subscribes to the default topics (trades, tickers, top-5 depth,
candles), so the engine gets trades, quotes and depth. A recorder in front of the
controller's ``on_market_event`` notes each trade's lag and keeps the events for the
engine-alone run.

Reported per run (one row):

- **ticks/s**: trades delivered to the engine per second of wall time, from the market's
  start to the receipt of the last trade (its batch is processed at most
  ``batch_interval_s`` later); **ev/s**: all market events (trades, quotes, depth) the
  engine processed (``status().ticks_processed``) per second of the same time;
- **latency**: the controller's tick-to-decision recorder (receive time of a batch's oldest
  trade to the end of the engine pass), p50/p90/p99/max in ms;
- **lag**: receive time minus the exchange's trade timestamp (the simulator stamps trades
  with its market clock, the wall clock at speed 1), p99, max, and the median over the
  last quarter of the run ("end"), which grows through the run when trades arrive faster
  than they are processed;
- **lost**: trades generated but not processed; **disc**: slow-consumer disconnects by the
  simulator. Frames rejected by the decoder, events refused by the engine, controller
  errors, sink errors and dropped telemetry clients must be 0 in every run, and trades
  may be lost only together with a slow-consumer disconnect (an overload), never in a
  sustained run (asserted); every closed trade must be in a journal;
- **CPU s** and **us/tick**: this process's CPU time over the run (``time.process_time``:
  feed, controller, engine, journals, API, telemetry and the benchmark's own per-trade
  recorder), in total and per trade; **engine**: the same events pushed into a fresh
  engine with the same variants through ``Engine.on_trade``/``on_quote``/``on_depth`` with
  a ``flush`` every ``batch_max_ticks``, CPU per trade; **ratio**: the first over the
  second (the service overhead); **loop** and **sim**: the share of wall time the daemon's
  and the simulator's event loops were busy (not waiting in ``select``), measured by a
  timing selector; **ceiling**: ticks/s divided by the daemon loop's busy share, the rate
  at which its loop would have no slack left (an estimate: the cost per tick falls as
  batches fill).

A rate is **sustained** when nothing is lost and the end lag stays under 100 ms (a daemon
processing 95 % of the offered rate is 190-250 ms behind over the last quarter of a 5 s
run; one that keeps up is behind by the 10 ms trade grid plus the 5 ms batch interval).
The simulator's send queue is raised to 2 s of frames, so that a scheduling stall of the
shared VM is not taken for an overload. Rates are stepped up
(doubling) for each variant count until one is not sustained, then once more halfway
between the last two; the table says which side gave out: a loop busy 90 % of its wall
time has no slack left; when neither is, both wait for CPU time the shared VM gives to
other work.

Run (about two minutes on the 2-core VM; the table is printed in the terminal summary)::

    .venv/bin/pytest benchmarks/bench_daemon.py --benchmark-enable -p no:cacheprovider -q -s

Under ``--benchmark-disable`` (the default) each variant count runs once at 500 ticks/s
for 0.5 s, with the same checks.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import aiohttp
import daemon_sim_process
import numpy as np
import pytest
from daemon_sim_process import SYMBOL, TimedSelector, busy_share, run_timed

from liveopt.engine import EngineConfig
from liveopt.exchange.messages import DepthTop5, QuoteTick, TradeTick
from liveopt.service.config import (
    ApiSettings,
    OptimizerSettings,
    ServiceConfig,
    ServiceSettings,
    TelemetrySettings,
)
from liveopt.service.controller_config import (
    ControllerConfig,
    controller_config_from,
    engine_factory,
)
from liveopt.service.daemon import Daemon

SEED = 11
# The default EngineConfig with its safety limits out of reach (checked, never hit).
ENGINE_CONFIG = EngineConfig(max_loss_pct=100.0, max_drawdown_pct=100.0,
                             halt_below_pct=100.0, baseline_max_drawdown_pct=100.0)
SUSTAINED_LAG_MS = 100.0
LOOP_SATURATED = 0.90  # an event loop busy this share of its wall time has no slack
TELEMETRY_CADENCE_S = 0.25


class Plan(NamedTuple):
    variant_counts: tuple[int, ...]
    rates: tuple[int, ...]  # stepped up in order until one is not sustained
    seconds: float  # market time of each run


FULL = Plan(variant_counts=(10, 1000), rates=(1000, 2000, 4000, 8000, 16000, 32000),
            seconds=5.0)
TINY = Plan(variant_counts=(10, 1000), rates=(500,), seconds=0.5)

_ROWS: list[dict[str, object]] = []


# ---------------------------------------------------------------------------------------
# The daemon side
# ---------------------------------------------------------------------------------------


class _Recorder:
    """Stands in for the controller's ``on_market_event`` (the daemon's feed sink calls
    it): notes each trade's lag, keeps every event for the engine-alone run, and hands the
    event on."""

    def __init__(self, on_event) -> None:
        self._on_event = on_event
        self.events: list[object] = []
        self.trades = 0
        self.lags_ns: list[int] = []
        self.last_ns = 0  # wall-clock receive time of the last trade

    def __call__(self, event: object) -> None:
        if isinstance(event, TradeTick):
            self.last_ns = time.time_ns()
            self.lags_ns.append(self.last_ns - event.ts_ns)
            self.trades += 1
        self.events.append(event)
        self._on_event(event)


async def _read_telemetry(url: str, counts: dict[str, int]) -> None:
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(f"{url}/ws/telemetry") as ws:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                counts["messages"] += 1


async def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def _until_received(received, total: int, stall_s: float = 2.0) -> None:
    """Wait until ``total`` trades have arrived, or until none has for ``stall_s`` (trades
    lost to an overload never arrive)."""
    last, last_change = received(), time.monotonic()
    while last < total:
        await asyncio.sleep(0.002)
        now, count = time.monotonic(), received()
        if count != last:
            last, last_change = count, now
        elif now - last_change > stall_s:
            return


def service_config(variants: int, data_dir: Path) -> ServiceConfig:
    """The daemon's configuration: paper mode, the optimizer on with random variants,
    the engine limits out of reach, the API on a free loopback port."""
    return ServiceConfig(
        service=ServiceSettings(data_dir=str(data_dir), mode="paper", symbol=SYMBOL),
        optimizer=OptimizerSettings(enabled=True, variants=variants, seed=SEED,
                                    generation="random"),
        engine=ENGINE_CONFIG, api=ApiSettings(port=0),
        telemetry=TelemetrySettings(cadence_s=TELEMETRY_CADENCE_S))


async def _run_daemon(variants: int, rate: int, seconds: float, data_dir: Path,
                      selector: TimedSelector) -> dict[str, object]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, daemon_sim_process.__file__, str(rate), str(seconds), str(SEED),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    try:
        url = json.loads(await child.stdout.readline())["url"]
        sim_report = asyncio.ensure_future(child.stdout.readline())
        daemon = await Daemon.start(service_config(variants, data_dir),
                                    environ={"LIVEOPT_API_TOKEN": "bench-" + "t" * 26},
                                    out=io.StringIO(), rest_url=url)
    except BaseException:
        child.kill()
        await child.wait()
        raise
    controller = daemon.controller
    # The feed's sink looks the controller's method up at every event; the market has
    # not started yet (it waits for the subscription), so no event bypasses the recorder.
    recorder = _Recorder(controller.on_market_event)
    controller.on_market_event = recorder  # type: ignore[method-assign]
    telemetry = {"messages": 0}
    reader = asyncio.ensure_future(_read_telemetry(daemon.url, telemetry))
    try:
        cpu0, wall0, idle0 = time.process_time(), time.perf_counter(), selector.idle_s
        sim = json.loads(await asyncio.wait_for(sim_report, seconds + 60.0))
        await _until_received(lambda: recorder.trades, sim["trades"])
        controller.flush()
        busy = busy_share(selector, idle0, wall0)
        cpu = time.process_time() - cpu0
        await _wait(lambda: telemetry["messages"] > 1, 10.0, "telemetry updates")
        status = controller.status()
        # The recorder behind health()'s p50/p99, for p90 and the maximum as well.
        recorder_latency = controller._latency
        latency = {f"p{q}": recorder_latency.percentile_ms(q) for q in (50, 90, 99, 100)}
        rejected_by_engine = controller._batcher.rejected  # counted, not yet in a view
        dropped_clients = daemon.api.feed.clients_dropped
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await daemon.stop()
        child.stdin.close()
        await child.wait()
    stats = daemon.feed.stats()
    # From the market's start (the simulator's wall clock) to the last trade received.
    wall_s = (recorder.last_ns - sim["begin_ns"]) / 1e9
    lags_ms = np.asarray(recorder.lags_ns, dtype=float) / 1e6
    return {
        "variants": variants, "rate": rate, "trades": sim["trades"],
        "offered_per_s": sim["trades"] / seconds,
        "processed": recorder.trades, "events": status.ticks_processed, "wall_s": wall_s,
        "ticks_per_s": recorder.trades / wall_s,
        "latency": latency, "latency_count": controller.latency().count,
        "lag_p99_ms": float(np.percentile(lags_ms, 99)) if lags_ms.size else 0.0,
        "lag_max_ms": float(lags_ms.max()) if lags_ms.size else 0.0,
        "lag_end_ms": float(np.median(lags_ms[-max(1, lags_ms.size // 4):]))
        if lags_ms.size else 0.0,
        "lost": {
            "not processed": sim["trades"] - recorder.trades,
            "decoder rejected": sum(stats.rejected.values()),
            "sequence gaps": stats.gaps, "missing": stats.missing,
            "reconnects": stats.reconnects, "sink errors": stats.sink_errors,
            "slow disconnects (sim)": sim["slow_disconnects"],
            "engine rejected": rejected_by_engine,
            "telemetry clients dropped": dropped_clients,
            "market loop errors (sim)": sim["market_loop_errors"],
            "daemon part failures": sum(daemon.part_failures.values()),
        },
        "cpu_s": cpu, "sim_cpu_s": sim["cpu_s"], "loop_busy": busy,
        "sim_loop_busy": sim["loop_busy"], "sim_cpu_share": sim["cpu_s"] / sim["wall_s"],
        "trades_closed": controller.engine.trades_closed,
        "journaled": _lines(data_dir / "experimental-trades.jsonl"),
        "main_journaled": _lines(data_dir / "trades.jsonl"),
        "telemetry_messages": telemetry["messages"], "controller_errors": controller.errors,
        "recorded": recorder.events,
    }


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def _engine_alone(variants: int, events: list[object], batch: int) -> float:
    """CPU seconds of a fresh engine with the daemon's variants fed ``events`` (trades,
    quotes, top-5 depth) one call each, as the daemon's batcher converts them, flushed
    and drained every ``batch`` events as the micro-batches are."""
    config = service_config(variants, Path("."))
    engine = engine_factory(controller_config_from(config), config.engine,
                            config.optimizer.space)(None)
    calls = []
    for e in events:
        if isinstance(e, TradeTick):
            calls.append((engine.on_trade, (e.ts_ns, e.price, float(e.size), e.side)))
        elif isinstance(e, QuoteTick):
            calls.append((engine.on_quote, (e.ts_ns, e.bid, float(e.bid_size), e.ask,
                                            float(e.ask_size))))
        elif isinstance(e, DepthTop5):
            calls.append((engine.on_depth, (e.ts_ns, float(sum(e.bid_sizes)),
                                            float(sum(e.ask_sizes)))))
    last = 0
    ordered = []
    for call, args in calls:  # the batcher's rule: an event stamped earlier runs at `last`
        last = max(last, args[0])
        ordered.append((call, (last, *args[1:])))
    cpu0 = time.process_time()
    for start in range(0, len(ordered), batch):
        for call, args in ordered[start:start + batch]:
            call(*args)
        engine.flush()
        engine.drain_fills()
    cpu = time.process_time() - cpu0
    assert engine.events_processed == len(ordered)
    return cpu


def _sustained(row: dict[str, object]) -> bool:
    # Falling behind shows as a lag that grows through the run: at 95 % of the offered
    # rate the last quarter of a 5 s run is 190-250 ms behind. A stall of the VM delays
    # the trades around it but not the median of the last quarter; the pipeline's fixed
    # latency (the 10 ms trade grid, the batch interval) stays far below the bound.
    return (row["lag_end_ms"] < SUSTAINED_LAG_MS  # type: ignore[operator]
            and row["processed"] == row["trades"])


#: Losses an overload causes: the simulator drops a consumer whose queue is full, the
#: feed reconnects and sees the gap. Anything else lost or refused is a bug.
OVERLOAD_LOSSES = ("not processed", "sequence gaps", "missing", "reconnects",
                   "slow disconnects (sim)")


def _check_valid(row: dict[str, object]) -> None:
    """Correctness of a run, whatever its speed: nothing rejected, every closed trade
    journaled, telemetry flowing; trades lost only to an overload the simulator reported
    (a slow-consumer disconnect), and nothing lost in a sustained run."""
    lost: dict[str, int] = row["lost"]  # type: ignore[assignment]
    assert row["trades"] > 0, "the simulator generated no trade"
    assert all(v == 0 for k, v in lost.items() if k not in OVERLOAD_LOSSES), lost
    overloaded = lost["slow disconnects (sim)"] > 0
    assert overloaded or all(lost[k] == 0 for k in OVERLOAD_LOSSES), lost
    assert not (row["sustained"] and overloaded), lost
    assert row["controller_errors"] == 0
    assert row["journaled"] + row["main_journaled"] == row["trades_closed"]
    assert row["latency_count"] > 0 and row["telemetry_messages"] > 1


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------


def _enabled(config: pytest.Config) -> bool:
    return not (config.getoption("benchmark_disable")
                and not config.getoption("benchmark_enable"))


@pytest.fixture(scope="module")
def plan(request) -> Plan:
    return FULL if _enabled(request.config) else TINY


@pytest.fixture(scope="module")
def warm() -> None:
    """Load (or compile) the engine's kernel once, outside every measured run."""
    for variants in (10, 1000):
        _engine_alone(variants, [TradeTick(symbol=SYMBOL, ts_ns=10**18 + i, price=60_000.0,
                                           size=1, side=1, sequence=i, trade_id=str(i))
                                 for i in range(300)], 256)


def _run(variants: int, rate: int, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        row, _ = run_timed(lambda selector: _run_daemon(variants, rate, seconds, Path(tmp),
                                                          selector))
    events = row.pop("recorded")
    row["engine_cpu_s"] = _engine_alone(variants, events, ControllerConfig().batch_max_ticks)
    row["sustained"] = _sustained(row)
    return row


@pytest.mark.parametrize("variants", [10, 1000])
def test_daemon_sustains_stepped_tick_rates_without_losing_a_tick(benchmark, plan, warm,
                                                                   variants):
    if variants not in plan.variant_counts:
        pytest.skip(f"{variants} variants are not in this plan")
    rows: list[dict[str, object]] = []

    def step_up() -> None:
        sustained = 0
        for rate in plan.rates:
            row = _run(variants, rate, plan.seconds)
            rows.append(row)
            _check_valid(row)
            if not row["sustained"]:
                if sustained:  # one bisection step between the last two rates
                    row = _run(variants, (sustained + rate) // 2, plan.seconds)
                    rows.append(row)
                    _check_valid(row)
                break
            sustained = rate

    try:
        benchmark.pedantic(step_up, rounds=1, iterations=1)
    finally:
        _ROWS.extend(rows)  # reported even when a check failed
    assert rows and all(r["processed"] == r["trades"] for r in rows if r["sustained"])


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _gave_out(row: dict[str, object]) -> str:
    if row["loop_busy"] >= LOOP_SATURATED:  # type: ignore[operator]
        return "the daemon's loop is saturated"
    if row["sim_loop_busy"] >= LOOP_SATURATED:  # type: ignore[operator]
        return "the simulator's loop is saturated"
    return "neither loop is saturated: both wait for the CPU the VM gives them"


def _report_lines() -> list[str]:
    lines = [
        f"{os.cpu_count()} CPUs, 1-min load {os.getloadavg()[0]:.2f}; simulator in a child "
        "process; liveopt.service.daemon.Daemon, paper mode, default feed topics; times in ms",
        "latency: receive of a batch's oldest trade to the end of its engine pass "
        "(controller recorder); lag: receive minus exchange timestamp",
        f"{'variants':>8} {'offered/s':>9} {'ticks/s':>7} {'ev/s':>6} {'p50':>5} {'p90':>5} "
        f"{'p99':>5} {'max':>6} {'lag end':>7} {'lag max':>7} {'lost':>5} {'disc':>4} "
        f"{'CPU s':>5} {'us/tick':>7} {'engine':>6} {'ratio':>6} {'loop':>5} {'sim':>5} "
        f"{'ceiling':>7}  verdict",
    ]
    best: dict[int, int] = {}
    failed: dict[int, str] = {}
    for r in _ROWS:
        lat = r["latency"]
        n = max(int(r["processed"]), 1)  # type: ignore[call-overload]
        daemon_us = 1e6 * r["cpu_s"] / n  # type: ignore[operator]
        engine_us = 1e6 * r["engine_cpu_s"] / n  # type: ignore[operator]
        ratio = daemon_us / engine_us if engine_us > 0 else float("nan")
        variants = int(r["variants"])  # type: ignore[call-overload]
        if r["sustained"]:
            verdict = "sustained"
            best[variants] = int(r["rate"])  # type: ignore[call-overload]
        else:
            verdict = "NOT sustained"
            failed[variants] = _gave_out(r)
        lines.append(
            f"{variants:>8,} {r['offered_per_s']:>9,.0f} {r['ticks_per_s']:>7,.0f} "
            f"{r['events'] / r['wall_s']:>6,.0f} "
            f"{_fmt(lat['p50'], '.1f'):>5} {_fmt(lat['p90'], '.1f'):>5} "
            f"{_fmt(lat['p99'], '.1f'):>5} {_fmt(lat['p100'], '.1f'):>6} "
            f"{r['lag_end_ms']:>7.1f} {r['lag_max_ms']:>7.1f} "
            f"{r['lost']['not processed']:>5,} {r['lost']['slow disconnects (sim)']:>4} "
            f"{r['cpu_s']:>5.2f} {daemon_us:>7.1f} {engine_us:>6.2f} {ratio:>5.0f}x "
            f"{100 * r['loop_busy']:>4.0f}% {100 * r['sim_loop_busy']:>4.0f}% "
            f"{r['ticks_per_s'] / max(r['loop_busy'], 1e-9):>7,.0f}  {verdict}")
    for variants in sorted({int(r["variants"]) for r in _ROWS}):  # type: ignore[call-overload]
        limit = (f"; the next step was not ({failed[variants]})" if variants in failed
                 else "; so was every step (the limit is higher)")
        lines.append(f"max sustained rate with {variants:,} variants: "
                     f"{best.get(variants, 0):,} trades/s (the rate setting){limit}")
    lines += [
        "lost: trades not processed; disc: slow-consumer disconnects by the simulator",
        "us/tick: this process's CPU per trade (feed, controller, engine, journals, API, "
        "telemetry, the benchmark's recorder); engine: the engine alone on the same events "
        "(us/trade); ratio: the service overhead; ceiling: ticks/s / loop",
        "loop, sim: share of wall time the daemon's and the simulator's event loops were "
        "busy (not waiting in select)",
    ]
    return lines


@pytest.fixture(scope="module", autouse=True)
def _report(terminal_sections):
    yield
    if _ROWS:
        terminal_sections["daemon under load"] = _report_lines()
