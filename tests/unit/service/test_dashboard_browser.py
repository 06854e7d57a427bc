"""The dashboard in a real headless Chromium, served by the real API server over a fake
controller: rows, chart and panels follow the telemetry, the WebSocket comes back after the
server drops it, and the emergency stop needs the right token.

Needs Debian's ``chromium`` (``apt-get install -y -q chromium``); without it every test here
fails with that command in the message. Async tests are plain functions calling
``asyncio.run`` (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from aiohttp import web

from liveopt.service.api import DEFAULT_DASHBOARD_DIR, RunningApi, create_app, serve
from liveopt.service.telemetry import TelemetryFeed
from liveopt.service.token import ApiToken
from liveopt.service.views import Alert
from tests.unit.service.cdp_browser import BrowserError, ChromiumProcess, Page
from tests.unit.service.fake_controller import MAIN_VARIANT_ID, FakeController

TOKEN = "dashboard-test-token-0123456789abcdef"
CADENCE_S = 0.1
LEADERBOARD_ROWS = 20
EQUITY_LEADERS = 3


@pytest.fixture(scope="module")
def chromium() -> Iterator[ChromiumProcess]:
    try:
        browser = ChromiumProcess.launch()
    except BrowserError as error:
        pytest.fail(str(error))
    try:
        yield browser
    finally:
        browser.close()


def _app(fake: FakeController) -> web.Application:
    return create_app(fake, token=ApiToken(value=TOKEN, source="env"), cadence_s=CADENCE_S,
                      leaderboard_rows=LEADERBOARD_ROWS, equity_leaders=EQUITY_LEADERS)


@contextlib.asynccontextmanager
async def _dashboard(chromium: ChromiumProcess, fake: FakeController, *, width: int = 1280,
                     height: int = 900) -> AsyncIterator[tuple[RunningApi, Page]]:
    running = await serve(_app(fake), "127.0.0.1", 0)
    try:
        async with chromium.page(width, height) as page:
            await page.goto(running.url + "/")
            await _wait_updates(page, 1)
            yield running, page
            assert page.script_errors == [], "the page threw script errors"
    finally:
        await running.stop()


async def _wait_updates(page: Page, count: int) -> int:
    return await page.wait_for(
        f"Number(document.body.dataset.updates ?? 0) >= {count}"
        " && Number(document.body.dataset.updates)", what=f"{count} telemetry snapshot(s)")


async def _updates(page: Page) -> int:
    return int(await page.evaluate("Number(document.body.dataset.updates ?? 0)"))


async def _next_snapshot(page: Page) -> None:
    # Two more snapshots: the first may have been built before the test changed the fake.
    await _wait_updates(page, await _updates(page) + 2)


_ROWS_JS = """[...document.querySelectorAll('#leaderboard-body tr')].map(tr => ({
  id: tr.dataset.variantId, main: tr.dataset.main,
  cells: [...tr.children].map(c => ({id: c.dataset.variantId, column: c.dataset.column,
                                      text: c.textContent}))}))"""


def _cell(row: dict, column: str) -> str:
    return next(c["text"] for c in row["cells"] if c["column"] == column)


def _signed(value: float) -> str:
    text = f"{abs(value):,.2f}"
    if text == "0.00":
        return text
    return ("\u2212" if value < 0 else "+") + text  # the page writes a real minus sign


def test_leaderboard_has_a_row_per_variant_in_rank_order_and_follows_a_new_leader(
        chromium: ChromiumProcess) -> None:
    fake = FakeController(variants=12, running=True)

    async def scenario() -> None:
        async with _dashboard(chromium, fake) as (_, page):
            expected = fake.results(LEADERBOARD_ROWS)
            rows = await page.wait_for(f"(r => r.length === {len(expected)} && r)({_ROWS_JS})",
                                       what="one row per variant")
            assert [row["id"] for row in rows] == [str(r.variant_id) for r in expected]
            for row, result in zip(rows, expected, strict=True):
                assert {cell["id"] for cell in row["cells"]} == {row["id"]}
                assert _cell(row, "trades") == str(result.trades)
                assert _cell(row, "net_pnl") == _signed(result.net_pnl)
                assert _cell(row, "rank") == str(result.rank)
                assert row["main"] == ("true" if result.is_main else "false")
            main_row = next(row for row in rows if row["id"] == str(MAIN_VARIANT_ID))
            assert "main" in _cell(main_row, "variant")
            assert _cell(main_row, "gate") == "baseline"

            # The last-ranked variant (not the main strategy) overtakes everyone.
            climber = [r.variant_id for r in expected if not r.is_main][-1]
            new_pnl = expected[0].net_pnl + 123.0
            fake.set_net_pnl(climber, new_pnl)
            first = await page.wait_for(
                f"(r => r[0].id === '{climber}' && r[0])({_ROWS_JS})",
                what=f"variant {climber} to lead")
            assert _cell(first, "net_pnl") == _signed(new_pnl)
            assert _cell(first, "rank") == "1"
            assert _cell(first, "gate") == "pass"
            rows = await page.evaluate(_ROWS_JS)
            assert len(rows) == len(expected)  # moved, not duplicated

    asyncio.run(scenario())


_PATHS_JS = """[...document.querySelectorAll('#equity-chart path.curve')].map(p => ({
  id: p.dataset.variantId, points: Number(p.dataset.points), d: p.getAttribute('d'),
  main: p.classList.contains('curve-main')}))"""


def test_equity_chart_draws_leaders_against_the_main_strategy_and_grows_on_updates(
        chromium: ChromiumProcess) -> None:
    fake = FakeController(variants=12, running=True)
    fake.advance(10)

    async def scenario() -> None:
        async with _dashboard(chromium, fake) as (_, page):
            paths = await page.wait_for(
                f"(p => p.length === {EQUITY_LEADERS + 1} && p)({_PATHS_JS})",
                what="the leaders' and the main strategy's curves")
            leaders = [r.variant_id for r in fake.results() if not r.is_main][:EQUITY_LEADERS]
            assert {p["id"] for p in paths} == {str(v) for v in [*leaders, MAIN_VARIANT_ID]}
            assert [p["id"] for p in paths if p["main"]] == [str(MAIN_VARIANT_ID)]
            for path in paths:
                assert path["points"] == len(path["d"].split("L"))  # "M.." then one "L" each
                assert path["points"] >= 2
            legend = await page.evaluate(
                "[...document.querySelectorAll('#equity-legend li')].map(l => l.dataset.variantId)")
            assert sorted(legend) == sorted(p["id"] for p in paths)

            before = {p["id"]: p for p in paths}
            counts = json.dumps({key: path["points"] for key, path in before.items()})
            fake.advance(10)
            grown = await page.wait_for(
                f"(p => p.every(x => x.points > {counts}[x.id]) && p)({_PATHS_JS})",
                what="every curve to gain a point")
            for path in grown:
                assert path["points"] == before[path["id"]]["points"] + 1
                assert path["d"] != before[path["id"]]["d"]

    asyncio.run(scenario())


def _text(page: Page, element_id: str) -> object:
    return page.evaluate(f"document.getElementById({json.dumps(element_id)}).textContent")


def test_gate_health_and_alert_panels_show_the_controllers_values(
        chromium: ChromiumProcess) -> None:
    fake = FakeController(variants=12, running=True)
    fake.advance(50)

    async def scenario() -> None:
        async with _dashboard(chromium, fake) as (_, page):
            gate = fake.gate()
            assert await _text(page, "gate-alpha") == f"{gate.alpha:.3f}"
            method = await _text(page, "gate-method")
            assert gate.test.replace("_", " ") in method and gate.correction in method
            assert await _text(page, "gate-auto") == ("on" if gate.auto_promote else "off")
            candidates = await _text(page, "gate-candidates")
            assert candidates.startswith(f"{len(gate.candidates)}: ")
            assert all(f"#{v}" in candidates for v in gate.candidates)
            failures = await page.evaluate(
                "Object.fromEntries([...document.querySelectorAll('#gate-failures tr')]"
                ".map(tr => [tr.dataset.reason, tr.children[1].textContent]))")
            assert failures == {k: str(v) for k, v in gate.failed_by_reason.items()}

            health = fake.health()
            assert await _text(page, "health-status") == health.status
            assert await _text(page, "health-p50") == f"{health.latency_p50_ms:.3f} ms"
            assert await _text(page, "health-p99") == f"{health.latency_p99_ms:.1f} ms"
            assert await _text(page, "health-feed") == f"{health.feed.state} ({health.feed.symbol})"
            assert await _text(page, "health-reconnects") == str(health.feed.reconnects)
            assert f"{health.memory_rss_mb:.1f} MB" in await _text(page, "health-memory")
            pools = await page.evaluate(
                "[...document.querySelectorAll('#health-budget tr')].map(tr => ({pool:"
                " tr.dataset.pool, meter: tr.querySelector('meter').value,"
                " limited: tr.children[3].textContent}))")
            assert pools == [{"pool": b.pool, "meter": b.tokens, "limited": str(b.rate_limited)}
                             for b in health.budget]
            assert await page.evaluate(
                "document.getElementById('alerts-active').hidden") is True

            fake.add_alert(Alert(kind="memory", severity="critical", message="memory at 85 %",
                                 ts_ns=fake.clock_ns(), active=True))
            fake.add_alert(Alert(kind="rate_limit", severity="warning", message="429 seen",
                                 ts_ns=fake.clock_ns(), active=False))
            banner = await page.wait_for(
                "(b => !b.hidden && b.textContent)(document.getElementById('alerts-active'))",
                what="the active alert banner")
            assert "memory at 85 %" in banner and "429 seen" not in banner
            resolved = await _text(page, "alerts-inactive")
            assert "429 seen" in resolved
            await page.wait_for("document.getElementById('health-status').textContent"
                                " === 'degraded'", what="the degraded health status")

    asyncio.run(scenario())


def test_telemetry_reconnects_by_itself_after_the_server_drops_the_websocket(
        chromium: ChromiumProcess) -> None:
    fake = FakeController(variants=8, running=True)

    async def scenario() -> None:
        running = await serve(_app(fake), "127.0.0.1", 0)
        restarted: RunningApi | None = None
        try:
            async with chromium.page() as page:
                await page.goto(running.url + "/")
                await page.wait_for("document.getElementById('connection').dataset.state"
                                    " === 'live'", what="the first connection")
                port = running.port
                await running.stop()  # closes every telemetry client, then the socket
                state = await page.wait_for(
                    "(c => c.dataset.state === 'reconnecting' && c.textContent)"
                    "(document.getElementById('connection'))", what="the reconnecting state")
                assert "reconnecting in" in state

                restarted = await serve(_app(fake), "127.0.0.1", port)
                await page.wait_for(
                    "(c => c.dataset.state === 'live' && Number(c.dataset.connections) === 2)"
                    "(document.getElementById('connection'))", what="a second connection")
                # Fresh data flows again on the new connection.
                climber = [r.variant_id for r in fake.results() if not r.is_main][-1]
                fake.set_net_pnl(climber, fake.results()[0].net_pnl + 50.0)
                await page.wait_for(f"({_ROWS_JS})[0].id === '{climber}'",
                                    what="an update after the reconnect")
                assert page.script_errors == []
        finally:
            await running.stop()
            if restarted is not None:
                await restarted.stop()

    asyncio.run(scenario())


async def _press_stop(page: Page, token: str, *, remember: bool, flatten: bool) -> None:
    await page.click("#stop-open")
    await page.wait_for("document.getElementById('stop-dialog').open", what="the stop dialog")
    # The dialog focuses the token field, so typing goes there.
    await page.evaluate("document.getElementById('stop-token').value = ''")
    await page.type_text(token)
    for box, wanted in (("stop-remember", remember), ("stop-flatten", flatten)):
        if await page.evaluate(f"document.getElementById('{box}').checked") != wanted:
            await page.click(f"#{box}")
    await page.click("#stop-confirm")


_RESULT_JS = ("(r => !r.hidden && r.dataset.state !== 'pending' && {state: r.dataset.state,"
              " status: r.dataset.httpStatus ?? null,"
              " text: r.querySelector('.stop-result-text').textContent})"
              "(document.getElementById('stop-result'))")


def test_emergency_stop_with_a_wrong_token_shows_401_and_leaves_the_optimizer_running(
        chromium: ChromiumProcess) -> None:
    fake = FakeController(variants=6, running=True)

    async def scenario() -> None:
        async with _dashboard(chromium, fake) as (_, page):
            await _press_stop(page, "not-the-token-at-all-0000", remember=True, flatten=True)
            result = await page.wait_for(_RESULT_JS, what="the stop result")
            assert result["state"] == "error" and result["status"] == "401"
            assert "401 Unauthorized" in result["text"]
            assert await page.evaluate("document.getElementById('stop-dialog').open") is True
            # A rejected token is not kept, even though "remember" was ticked.
            assert await page.evaluate(
                "sessionStorage.getItem('liveopt.apiToken')") is None
            assert [name for name, _ in fake.calls] == []
            assert fake.running

    asyncio.run(scenario())


def test_emergency_stop_with_the_token_stops_the_optimizer_and_shows_the_report(
        chromium: ChromiumProcess) -> None:
    fake = FakeController(variants=6, running=True)

    async def scenario() -> None:
        async with _dashboard(chromium, fake) as (_, page):
            await _press_stop(page, TOKEN, remember=False, flatten=True)
            result = await page.wait_for(_RESULT_JS, what="the stop result")
            assert result["state"] == "ok", result
            assert fake.calls == [("stop", {"flatten": True})]
            assert not fake.running
            assert "Orders cancelled: 2" in result["text"]
            assert await page.evaluate("document.getElementById('stop-dialog').open") is False
            assert await page.evaluate("sessionStorage.getItem('liveopt.apiToken')") is None
            # The controller's EmergencyStop event and the halted state reach the page.
            await page.wait_for(
                "[...document.querySelectorAll('#events-log li')]"
                ".some(li => li.dataset.type === 'EmergencyStop')",
                what="the EmergencyStop event in the log")
            await page.wait_for("document.getElementById('status-state').textContent"
                                " === 'halted'", what="the halted state")

            # Stopping again: the controller refuses (409) and the page says so.
            await _press_stop(page, TOKEN, remember=True, flatten=False)
            again = await page.wait_for(
                f"(r => r && r.status === '409' && r)({_RESULT_JS})", what="the 409 result")
            assert "409 Conflict" in again["text"]
            assert await page.evaluate("sessionStorage.getItem('liveopt.apiToken')") == TOKEN
            assert fake.calls == [("stop", {"flatten": True}), ("stop", {"flatten": False})]

    asyncio.run(scenario())


def test_remembered_token_is_offered_again_after_a_reload_in_the_same_tab_only(
        chromium: ChromiumProcess) -> None:
    fake = FakeController(variants=4, running=True)
    offered_js = ("document.getElementById('stop-dialog').open && ["
                  "document.getElementById('stop-token').value,"
                  " document.getElementById('stop-remember').checked]")

    async def scenario() -> None:
        async with _dashboard(chromium, fake) as (running, page):
            await _press_stop(page, TOKEN, remember=True, flatten=False)
            result = await page.wait_for(_RESULT_JS, what="the stop result")
            assert result["state"] == "ok", result
            await page.goto(running.url + "/")  # same tab, reloaded
            await _wait_updates(page, 1)
            await page.click("#stop-open")
            offered = await page.wait_for(offered_js, what="the dialog after the reload")
            assert offered == [TOKEN, True]
            assert await page.evaluate("localStorage.length") == 0
            assert "apiToken" not in await page.evaluate("document.cookie")
            await page.click("#stop-cancel")
            async with chromium.page() as other_tab:
                await other_tab.goto(running.url + "/")
                await _wait_updates(other_tab, 1)
                await other_tab.click("#stop-open")
                assert await other_tab.wait_for(offered_js, what="the dialog in a new tab") \
                    == ["", False]
            assert fake.calls == [("stop", {"flatten": False})]

    asyncio.run(scenario())


@pytest.mark.parametrize("width", [1280, 390])
def test_dashboard_fits_the_screen_without_sideways_scrolling(
        chromium: ChromiumProcess, width: int) -> None:
    fake = FakeController(variants=30, running=True)
    fake.advance(10)

    async def scenario() -> None:
        async with _dashboard(chromium, fake, width=width, height=850) as (_, page):
            await page.wait_for(f"({_PATHS_JS}).length > 0", what="the chart")
            layout = await page.evaluate(
                "({scroll: document.documentElement.scrollWidth, view: window.innerWidth,"
                " stop: (b => b.right <= window.innerWidth && b.width > 0)"
                "(document.getElementById('stop-open').getBoundingClientRect()),"
                " chart: document.getElementById('equity-chart').getBoundingClientRect().width,"
                " headers: [...document.querySelectorAll('#leaderboard thead th')]"
                ".map(th => th.getAttribute('scope'))})")
            assert layout["view"] == width
            assert layout["scroll"] <= layout["view"]
            assert layout["stop"] is True
            assert 0 < layout["chart"] <= width
            assert layout["headers"] and all(s == "col" for s in layout["headers"])

    asyncio.run(scenario())


_STRICT_CSP = ("default-src 'self'; connect-src 'self'; img-src 'self'; style-src 'self';"
               " script-src 'self'; object-src 'none'; base-uri 'none'")


def test_seq_gaps_are_shown_as_dropped_messages_on_a_page_under_a_strict_csp(
        chromium: ChromiumProcess) -> None:
    fake = FakeController(variants=5, running=True)
    fake.advance(10)
    feed = TelemetryFeed(fake, cadence_s=CADENCE_S)
    encoder = msgspec.json.Encoder()
    skipped = 4
    sent = asyncio.Event()

    def frame(message: object, seq: int) -> str:
        return encoder.encode(msgspec.structs.replace(message, seq=seq)).decode()

    # A scripted server: the real dashboard files under a strict Content-Security-Policy,
    # and a telemetry socket that skips seq numbers the way a server dropping messages for
    # a slow client would.
    async def telemetry(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(frame(feed.build_init(), 1))
        await ws.send_str(frame(feed.build_update(), 2))
        await ws.send_str(frame(feed.build_update(), 3 + skipped))
        sent.set()
        async for _ in ws:
            pass
        return ws

    async def dashboard_file(request: web.Request) -> web.FileResponse:
        name = request.match_info.get("name", "index.html")
        return web.FileResponse(DEFAULT_DASHBOARD_DIR / name,
                                headers={"Content-Security-Policy": _STRICT_CSP})

    async def scenario() -> None:
        app = web.Application()
        app.router.add_get("/", dashboard_file)
        app.router.add_get("/dashboard/{name}", dashboard_file)
        app.router.add_get("/ws/telemetry", telemetry)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with chromium.page() as page:
                await page.add_init_script(
                    "window.cspViolations = []; document.addEventListener("
                    "'securitypolicyviolation', e => window.cspViolations.push("
                    "e.violatedDirective + ' ' + e.blockedURI));")
                await page.goto(f"http://127.0.0.1:{port}/")
                text = await page.wait_for(
                    "(d => !d.hidden && d.textContent)"
                    "(document.getElementById('connection-dropped'))",
                    what="the dropped counter")
                assert sent.is_set()
                assert text == f"dropped {skipped}"
                assert await _updates(page) == 3  # the init and both updates
                paths = await page.evaluate(_PATHS_JS)
                assert len(paths) == len(feed.build_update().equity)
                assert await page.evaluate("window.cspViolations") == []
                assert page.script_errors == []
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
