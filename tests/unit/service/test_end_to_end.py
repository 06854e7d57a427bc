"""End to end: the ``liveopt demo`` components (the simulator, the daemon in mode ``sim``
with the optimizer on) driven only through their public surfaces: the journal files, the
HTTP API, the telemetry WebSocket and the simulator's order book of the account."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from liveopt.service.config import ServiceConfig, TelemetrySettings
from liveopt.service.daemon import Daemon
from liveopt.service.demo import demo_config
from liveopt.service.recovery import SNAPSHOT_FILE
from liveopt.service.router_orders import is_router_order
from liveopt.sim.server import RunningSim
from tests.unit.service.test_daemon import (
    NO_LIMITS,
    QUICK_SPACE,
    SYMBOL,
    TOKEN,
    journal_lines,
    start_fast_sim,
    wait_until,
)

VARIANTS = 16


def demo_equivalent(data_dir: Path) -> ServiceConfig:
    """``liveopt demo``'s configuration on a free port, with a quickly trading space."""
    config = demo_config(port=0, variants=VARIANTS, data_dir=data_dir, seed=1)
    return msgspec.structs.replace(
        config, engine=NO_LIMITS,
        optimizer=msgspec.structs.replace(config.optimizer, space=QUICK_SPACE),
        telemetry=TelemetrySettings(cadence_s=0.2))


def run_demo(data_dir: Path, scenario: Callable[[Daemon, RunningSim], Awaitable[None]]
             ) -> None:
    """Start the simulator (a sparse, fast market) and the demo-equivalent daemon on it, run
    ``scenario``, stop both."""

    async def body() -> None:
        sim = await start_fast_sim()
        try:
            daemon = await Daemon.start(demo_equivalent(data_dir),
                                        environ={"LIVEOPT_API_TOKEN": TOKEN},
                                        out=io.StringIO(), rest_url=sim.url)
            try:
                assert daemon.router is not None  # mode sim: the main strategy is routed
                await scenario(daemon, sim)
            finally:
                await daemon.stop()
        finally:
            await sim.stop()

    asyncio.run(asyncio.wait_for(body(), timeout=40))


async def _telemetry(url: str, updates: int, limit: int = 2000) -> list[dict[str, Any]]:
    # One WebSocket client's messages, in order, until ``updates`` updates have arrived
    # (trade events can come in bursts between two updates, so a fixed count of messages
    # may hold none).
    received: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/ws/telemetry") as ws:
        while sum(m["type"] == "update" for m in received) < updates:
            assert len(received) < limit, f"no {updates} updates in {limit} messages"
            received.append(await asyncio.wait_for(ws.receive_json(), timeout=5))
    return received


def test_ticks_flow_variants_trade_on_paper_journal_grows_and_telemetry_streams(
        tmp_path: Path) -> None:
    async def scenario(daemon: Daemon, sim: RunningSim) -> None:
        experimental = "experimental-trades.jsonl"
        await wait_until(lambda: daemon.controller.status().ticks_processed > 500, "ticks")
        await wait_until(lambda: len(journal_lines(tmp_path, experimental)) >= 2,
                         "variant trades in the journal")
        first = len(journal_lines(tmp_path, experimental))
        await wait_until(lambda: len(journal_lines(tmp_path, experimental)) > first,
                         "the journal to grow")
        lines = [msgspec.json.decode(line) for line in journal_lines(tmp_path, experimental)]
        assert all(line["variant_id"] != 0 for line in lines)
        assert {"config_hash", "side", "entry_ts_ns", "exit_price", "net_pnl",
                "exit_reason"} <= set(lines[0])

        messages = await _telemetry(daemon.url, 2)
        assert messages[0]["type"] == "init"
        updates = [m for m in messages[1:] if m["type"] == "update"]
        assert updates, [m["type"] for m in messages]
        assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)
        rows = updates[-1]["leaderboard"]
        assert rows and any(row["is_main"] for row in rows)
        assert {row["variant_id"] for row in rows} <= set(range(VARIANTS))
        for row in rows:
            assert isinstance(row["net_pnl"], float | int)
            assert isinstance(row["trades"], int)
        assert updates[-1]["status"]["ticks_processed"] >= messages[0]["status"][
            "ticks_processed"]
        assert updates[-1]["status"]["running"] is True

        async with aiohttp.ClientSession() as http, \
                http.get(f"{daemon.url}/api/trades/experimental?limit=5") as reply:
            page = await reply.json()
        assert reply.status == 200
        assert page["total"] >= len(lines) and len(page["items"]) == min(5, page["total"])

        # Only the main strategy's orders reach the simulator, all of them the router's.
        def orders() -> list:
            return list(sim.exchange.list_orders(SYMBOL, None, 1, 1000).items)

        await wait_until(lambda: len(orders()) > 0, "the main strategy's first order")
        assert all(is_router_order(order.client_oid) for order in orders())

    run_demo(tmp_path, scenario)


def test_stop_refuses_a_missing_token_then_halts_with_it_and_metrics_and_openapi_serve(
        tmp_path: Path) -> None:
    async def scenario(daemon: Daemon, sim: RunningSim) -> None:
        url = daemon.url
        await wait_until(lambda: daemon.controller.status().ticks_processed > 0, "ticks")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/optimizer/stop") as reply:
                assert reply.status == 401
                assert (await reply.json())["error"] == "unauthorized"
            async with http.post(f"{url}/api/optimizer/stop",
                                 headers={"Authorization": "Bearer wrong-token-value"}) as reply:
                assert reply.status == 401
            assert daemon.controller.status().running is True

            snapshots = daemon.snapshots
            async with http.post(f"{url}/api/optimizer/stop",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
                assert reply.status == 200
                report = await reply.json()
            assert report["flatten"] is False
            async with http.get(f"{url}/api/optimizer/status") as reply:
                status = await reply.json()
            assert status["running"] is False
            assert status["variants_active"] == 0
            # The stop is not in the tick log: a snapshot right after it keeps it.
            assert daemon.snapshots == snapshots + 1
            saved = msgspec.msgpack.decode((tmp_path / SNAPSHOT_FILE).read_bytes())
            assert saved["extra"] == {"running": False}

            async with http.post(f"{url}/api/optimizer/stop",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
                assert reply.status == 409

            async with http.get(f"{url}/metrics") as reply:
                assert reply.status == 200
                metrics = await reply.text()
            assert "# TYPE liveopt_" in metrics
            async with http.get(f"{url}/openapi.json") as reply:
                assert reply.status == 200
                document = await reply.json()
            assert "/api/optimizer/stop" in document["paths"]

    run_demo(tmp_path, scenario)
