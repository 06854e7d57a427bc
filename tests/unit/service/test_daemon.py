"""The daemon as a whole process part: start and stop, what paper mode sends, the live-mode
refusals, the token printed once, configuration errors, and ``liveopt demo``.

Real components throughout: the simulator and the daemon's servers on 127.0.0.1 port 0,
the data directory in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from liveopt.cli import main
from liveopt.engine import EngineConfig
from liveopt.exchange.feed import FeedStats
from liveopt.optimizer import OptimizerConfig, Range
from liveopt.service.config import (
    ApiSettings,
    ExchangeSettings,
    JournalSettings,
    OptimizerSettings,
    ServiceConfig,
    ServiceSettings,
    TelemetrySettings,
)
from liveopt.service.daemon import Daemon, DaemonStartError
from liveopt.service.demo import run_daemon
from liveopt.service.recovery import SNAPSHOT_FILE
from liveopt.service.wiring import exchange_credentials, feed_status_provider
from liveopt.sim.config import DEFAULT_API_KEY, SimConfig
from liveopt.sim.contracts import default_contracts
from liveopt.sim.exchange import SimExchange
from liveopt.sim.market import GeneratedMarket, GeneratorConfig
from liveopt.sim.server import RunningSim, start_sim

SYMBOL = "XBTUSDTM"
#: Thresholds so low that variants trade within a few simulated minutes.
QUICK_SPACE = OptimizerConfig(
    strong_buy=Range(0.05, 0.15, 0.05, 0.1),
    buy=Range(0.02, 0.04, 0.01, 0.03),
    sell=Range(-0.04, -0.02, 0.01, -0.03),
    strong_sell=Range(-0.15, -0.05, 0.05, -0.1),
    min_confidence=Range(0.05, 0.15, 0.05, 0.1),
    timeframes=("1m",), default_timeframe="1m",
)
NO_LIMITS = EngineConfig(max_loss_pct=None, max_drawdown_pct=None, halt_below_pct=None,
                         baseline_max_drawdown_pct=None)
# A sparse market (a tenth of the default book updates and trades per market second) run
# 1200 times faster than the clock: a 1m candle every 50 ms at about the event rate of the
# default market at speed 120, which the client keeps up with on 2 shared cores.
SIM_SPEED = 1200.0
SPARSE = 10.0
WAIT_LIMIT_S = 15.0
TOKEN = "test-token-0123456789abcdef"


def quick_config(data_dir: Path, *, mode: str = "paper", variants: int = 12,
                 **service: Any) -> ServiceConfig:
    """A daemon configuration that trades at once on a fast simulated market."""
    return ServiceConfig(
        service=ServiceSettings(data_dir=str(data_dir), mode=mode, **service),
        optimizer=OptimizerSettings(enabled=True, variants=variants, seed=1,
                                    generation="random", space=QUICK_SPACE),
        engine=NO_LIMITS, api=ApiSettings(port=0),
        telemetry=TelemetrySettings(cadence_s=0.2),
        journal=JournalSettings(fsync_interval_s=0.2, snapshot_interval_s=60.0),
    )


def sparse_exchange(start_ns: int) -> SimExchange:
    """The simulator's exchange core on a market :data:`SPARSE` times quieter."""
    base = GeneratorConfig()
    quiet = msgspec.structs.replace(
        base, step_ns=int(base.step_ns * SPARSE),
        regimes=tuple(msgspec.structs.replace(regime, trades_per_s=regime.trades_per_s / SPARSE)
                      for regime in base.regimes))
    spec = default_contracts()[SYMBOL]
    market = GeneratedMarket(SYMBOL, 1, spec.start_price, spec.tick_size, quiet)
    return SimExchange({SYMBOL: spec}, {SYMBOL: market}, start_ns=start_ns)


async def start_fast_sim() -> RunningSim:
    """The simulator on a free port, a sparse market at :data:`SIM_SPEED`."""
    return await start_sim(SimConfig(port=0, symbols=(SYMBOL,), seed=1, speed=SIM_SPEED),
                           exchange=sparse_exchange(time.time_ns()))


async def wait_until(condition: Callable[[], bool], what: str,
                     limit_s: float = WAIT_LIMIT_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def run_with_sim(scenario: Callable[[RunningSim], Awaitable[None]]) -> None:
    """Run ``scenario(sim)`` in a fresh event loop with a simulator, then stop it."""

    async def body() -> None:
        sim = await start_fast_sim()
        try:
            await scenario(sim)
        finally:
            await sim.stop()

    asyncio.run(asyncio.wait_for(body(), timeout=40))


def journal_lines(data_dir: Path, name: str) -> list[bytes]:
    """The complete lines of a journal file."""
    path = data_dir / name
    return path.read_bytes().splitlines() if path.exists() else []


# --- start and stop --------------------------------------------------------------------


def test_daemon_starts_serves_health_and_stops_with_a_final_snapshot(tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        out = io.StringIO()
        daemon = await Daemon.start(quick_config(tmp_path), environ={"LIVEOPT_API_TOKEN": TOKEN},
                                    out=out, rest_url=sim.url)
        try:
            assert daemon.url.startswith("http://127.0.0.1:")
            assert f"dashboard: {daemon.url}/" in out.getvalue()
            await wait_until(lambda: daemon.controller.status().ticks_processed > 0, "ticks")
            async with aiohttp.ClientSession() as http, \
                    http.get(f"{daemon.url}/api/health") as reply:
                assert reply.status == 200
                health = await reply.json()
            assert health["feed"]["state"] == "connected"
            assert health["status"] in ("ok", "degraded")
            snapshots_before = daemon.snapshots
        finally:
            await daemon.stop()
        assert daemon.snapshots == snapshots_before + 1  # the final one
        assert (tmp_path / SNAPSHOT_FILE).exists()
        assert daemon.controller.status().feed.state == "stopped"
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(f"{daemon.url}/api/health")
        await daemon.stop()  # idempotent

    run_with_sim(scenario)


def test_paper_mode_trades_on_paper_and_sends_no_order_to_the_exchange(
        tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        daemon = await Daemon.start(quick_config(tmp_path), environ={"LIVEOPT_API_TOKEN": TOKEN},
                                    out=io.StringIO(), rest_url=sim.url)
        try:
            assert daemon.router is None
            # The main strategy (variant 0) trades on paper: its fills are in the engine.
            await wait_until(lambda: daemon.controller.engine.metrics()["trades"][0] >= 1,
                             "a closed paper trade of the main strategy")
        finally:
            await daemon.stop()
        assert journal_lines(tmp_path, "trades.jsonl"), "the main journal has its trades"
        exchange = sim.exchange
        assert list(exchange.list_orders(SYMBOL, None, 1, 100).items) == []
        assert list(exchange.list_stop_orders(SYMBOL, 1, 100).items) == []
        assert exchange.position(SYMBOL).current_qty == 0

    run_with_sim(scenario)


@pytest.mark.parametrize(("mode", "real_url", "named"), [
    ("live", False, "live_confirmed"),
    ("sim", True, "routes only to the local simulator"),
])
def test_routing_to_an_unconfirmed_destination_is_refused_before_any_order(
        tmp_path: Path, mode: str, real_url: bool, named: str) -> None:
    # A ServiceConfig built directly skips load_config's live-mode checks; the daemon's
    # own check still refuses, before any request (the real URL is never contacted).
    async def scenario(sim: RunningSim) -> None:
        url = "https://api-futures.kucoin.com" if real_url else sim.url
        with pytest.raises(DaemonStartError, match=named):
            await Daemon.start(quick_config(tmp_path, mode=mode),
                               environ={"LIVEOPT_API_TOKEN": TOKEN}, out=io.StringIO(),
                               rest_url=url)
        assert list(sim.exchange.list_orders(SYMBOL, None, 1, 100).items) == []

    run_with_sim(scenario)


@pytest.mark.parametrize(("toml", "environ", "named"), [
    ('[service]\nmode = "live"\nconfirm_live = true\n', {}, "KUCOIN_API_KEY"),
    ('[service]\nmode = "live"\n',
     {"KUCOIN_API_KEY": "k", "KUCOIN_API_SECRET": "s3cret-v", "KUCOIN_API_PASSPHRASE": "p"},
     "service.confirm_live"),
])
def test_run_refuses_live_mode_without_keys_or_confirmation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        toml: str, environ: dict[str, str], named: str) -> None:
    for name in ("KUCOIN_API_KEY", "KUCOIN_API_SECRET", "KUCOIN_API_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "liveopt.toml"
    path.write_text(toml + f'data_dir = "{tmp_path / "data"}"\n')
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert named in err
    assert "s3cret-v" not in err
    assert not (tmp_path / "data").exists(), "nothing started"


@pytest.mark.parametrize(("toml", "field"), [
    ("[optimizer]\nvariants = 0\n", "optimizer.variants"),
    ("[api]\nprot = 8000\n", "api.prot"),
    ('[router]\ntake_profit_order = "maybe"\n', "router.take_profit_order"),
])
def test_run_with_a_bad_config_exits_2_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, field: str) -> None:
    path = tmp_path / "liveopt.toml"
    path.write_text(toml)
    assert main(["run", "--config", str(path)]) == 2
    assert re.search(rf"liveopt: error: .*{re.escape(field)}", capsys.readouterr().err)


def test_a_feed_that_ends_is_counted_and_shown_in_health_and_the_daemon_goes_on(
        tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        daemon = await Daemon.start(quick_config(tmp_path), environ={"LIVEOPT_API_TOKEN": TOKEN},
                                    out=io.StringIO(), rest_url=sim.url)
        try:
            await wait_until(lambda: daemon.controller.status().ticks_processed > 0, "ticks")
            errors = daemon.controller.health().errors
            daemon.feed.stop()  # the feed task returns although the daemon did not stop it
            await wait_until(lambda: daemon.part_failures.get("feed") == 1, "the failure count")
            async with aiohttp.ClientSession() as http, \
                    http.get(f"{daemon.url}/api/health") as reply:
                assert reply.status == 200
                health = await reply.json()
            assert health["feed"]["state"] == "stopped"
            assert health["status"] == "degraded"
            assert health["errors"] == errors + 1
        finally:
            await daemon.stop()

    run_with_sim(scenario)


def test_promotion_through_the_api_sets_the_routers_risk_and_survives_a_restart(
        tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        environ = {"LIVEOPT_API_TOKEN": TOKEN}
        config = quick_config(tmp_path, mode="sim")
        daemon = await Daemon.start(config, environ=environ, out=io.StringIO(),
                                    rest_url=sim.url)
        try:
            assert daemon.router is not None
            variants = daemon.controller.engine.variants
            chosen = next(v for v in range(1, len(variants))
                          if variants[v].leverage != variants[0].leverage)
            snapshots = daemon.snapshots
            async with aiohttp.ClientSession() as http, http.post(
                    f"{daemon.url}/api/optimizer/promote", json={"variantId": chosen},
                    headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
                assert reply.status == 200, await reply.text()
            assert daemon.router.status().leverage == variants[chosen].leverage
            assert daemon.snapshots == snapshots + 1
            promoted = daemon.controller.status().main_config_hash
            assert promoted == int(variants.config_hash[chosen])
        finally:
            await daemon.stop()
        restarted = await Daemon.start(config, environ=environ, out=io.StringIO(),
                                       rest_url=sim.url)
        try:
            assert restarted.recovery is not None
            status = restarted.controller.status()
            assert status.main_config_hash == promoted and status.running
            assert restarted.router is not None
            assert restarted.router.status().leverage == variants[chosen].leverage
        finally:
            await restarted.stop()

    run_with_sim(scenario)


def test_an_emergency_stop_survives_a_restart_and_start_resumes_the_variants(
        tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        environ = {"LIVEOPT_API_TOKEN": TOKEN}
        auth = {"Authorization": f"Bearer {TOKEN}"}
        daemon = await Daemon.start(quick_config(tmp_path), environ=environ,
                                    out=io.StringIO(), rest_url=sim.url)
        try:
            async with aiohttp.ClientSession() as http, \
                    http.post(f"{daemon.url}/api/optimizer/stop", headers=auth) as reply:
                assert reply.status == 200
        finally:
            await daemon.stop()
        restarted = await Daemon.start(quick_config(tmp_path), environ=environ,
                                       out=io.StringIO(), rest_url=sim.url)
        try:
            status = restarted.controller.status()
            assert not status.running and status.variants_active == 0
            async with aiohttp.ClientSession() as http, \
                    http.post(f"{restarted.url}/api/optimizer/start", headers=auth) as reply:
                assert reply.status == 200
                started = await reply.json()
            assert started["running"] is True
            assert started["variants_active"] == started["variants"]
        finally:
            await restarted.stop()

    run_with_sim(scenario)


# --- the token -------------------------------------------------------------------------


def test_generated_token_is_printed_at_the_first_start_only(tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        outputs = []
        for _ in range(2):
            out = io.StringIO()
            daemon = await Daemon.start(quick_config(tmp_path), environ={}, out=out,
                                        rest_url=sim.url)
            await daemon.stop()
            outputs.append(out.getvalue())
        token = (tmp_path / "api-token").read_text().strip()
        assert daemon.token.value == token and daemon.token.source == "file"
        assert outputs[0].count(token) == 1
        assert token not in outputs[1]

    run_with_sim(scenario)


def test_token_from_the_environment_is_never_printed(tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        out = io.StringIO()
        daemon = await Daemon.start(quick_config(tmp_path), environ={"LIVEOPT_API_TOKEN": TOKEN},
                                    out=out, rest_url=sim.url)
        await daemon.stop()
        assert daemon.token.source == "env"
        assert TOKEN not in out.getvalue()
        assert not (tmp_path / "api-token").exists()

    run_with_sim(scenario)


def test_changed_variants_on_a_saved_state_is_a_clear_start_error(tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        environ = {"LIVEOPT_API_TOKEN": TOKEN}
        daemon = await Daemon.start(quick_config(tmp_path), environ=environ,
                                    out=io.StringIO(), rest_url=sim.url)
        await daemon.stop()
        with pytest.raises(DaemonStartError, match="move the data directory aside"):
            await Daemon.start(quick_config(tmp_path, variants=13), environ=environ,
                               out=io.StringIO(), rest_url=sim.url)

    run_with_sim(scenario)


# --- liveopt demo ----------------------------------------------------------------------


def test_demo_with_a_duration_exits_0_printing_the_url_and_a_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "demo"
    assert main(["demo", "--duration", "2", "--port", "0", "--variants", "20",
                 "--speed", "60", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    url = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/", out)
    assert url, out
    token = (data_dir / "api-token").read_text().strip()
    assert f"API token (generated, saved to {data_dir / 'api-token'}): {token}" in out
    ticks = re.search(r"ticks processed ([\d,]+), trades closed ([\d,]+), variants active "
                      r"(\d+)/20", out)
    assert ticks, out
    assert int(ticks[1].replace(",", "")) > 0
    assert "leaders (variant, net PnL, ROI %, trades):" in out
    snapshot = msgspec.msgpack.decode((data_dir / SNAPSHOT_FILE).read_bytes())
    assert snapshot["extra"] == {"running": True}


def test_run_daemon_stops_cleanly_on_sigterm_and_prints_the_summary(tmp_path: Path) -> None:
    async def scenario(sim: RunningSim) -> None:
        config = msgspec.structs.replace(
            quick_config(tmp_path), exchange=ExchangeSettings(rest_url=sim.url))
        out = io.StringIO()

        async def terminate_once_serving() -> None:
            await wait_until(lambda: "dashboard:" in out.getvalue(), "the start")
            os.kill(os.getpid(), signal.SIGTERM)  # handled by run_daemon's loop handler

        killer = asyncio.get_running_loop().create_task(terminate_once_serving())
        daemon = await run_daemon(config, environ={"LIVEOPT_API_TOKEN": TOKEN}, out=out)
        await killer
        assert "ticks processed" in out.getvalue()
        assert daemon.controller.status().feed.state == "stopped"
        assert (tmp_path / SNAPSHOT_FILE).exists()

    run_with_sim(scenario)


# --- the feed status the controller reports --------------------------------------------


@given(connected=st.booleans(), stopped=st.booleans(),
       frames=st.integers(min_value=0, max_value=10**6),
       rejected=st.dictionaries(st.sampled_from(["malformed:ticker", "unknown_topic", "error"]),
                                st.integers(min_value=0, max_value=1000)),
       last_frame=st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
       now=st.integers(min_value=0, max_value=10**12))
def test_feed_status_follows_the_feed_counters(connected: bool, stopped: bool, frames: int,
                                               rejected: dict[str, int],
                                               last_frame: int | None, now: int) -> None:
    stats = FeedStats(frames=frames, events={}, duplicates=3, stale=0, gaps=2, missing=5,
                      sequence_resets=0, rejected=rejected, ping_timeouts=0,
                      connect_failures=0, reconnects=4, sink_errors=0, internal_errors=0,
                      last_frame_ns=last_frame, connected=connected)
    status = feed_status_provider(lambda: stats, SYMBOL, stopped=lambda: stopped,
                                  clock_ns=lambda: now)()
    if stopped:
        assert status.state == "stopped"
    elif connected:
        assert status.state == "connected"
    else:
        assert status.state == ("connecting" if frames == 0 else "disconnected")
    assert status.malformed == sum(rejected.values())
    assert (status.reconnects, status.gaps, status.duplicates) == (4, 2, 3)
    if last_frame is None:
        assert status.last_event_age_s is None
    else:
        assert status.last_event_age_s == max(0, now - last_frame) / 1e9


def test_keys_reach_the_rest_client_only_outside_paper_mode(tmp_path: Path) -> None:
    keys = {"KUCOIN_API_KEY": "key-1", "KUCOIN_API_SECRET": "s3cret-v",
            "KUCOIN_API_PASSPHRASE": "phrase"}
    paper, sim = quick_config(tmp_path), quick_config(tmp_path, mode="sim")
    live = quick_config(tmp_path, mode="live", confirm_live=True)
    assert exchange_credentials(paper, keys) is None  # paper: no key, whatever is set
    from_env = exchange_credentials(sim, keys)
    assert from_env is not None and from_env.key == "key-1"
    builtin = exchange_credentials(sim, {})
    assert builtin is not None and builtin.key == DEFAULT_API_KEY
    from_env = exchange_credentials(live, keys)
    assert from_env is not None and from_env.key == "key-1"
    assert "s3cret-v" not in repr(from_env)


def test_the_demo_command_defaults_to_the_demo_module_s_speed():
    from liveopt.cli import build_parser
    from liveopt.service.demo import DEMO_SPEED

    assert build_parser().parse_args(["demo"]).speed == DEMO_SPEED
