"""The simulator's REST side on a real server (127.0.0.1, port 0): envelopes, routes,
signature verification with its error codes, rate-limit pools and headers, and orders."""

from __future__ import annotations

import argparse
import asyncio
import io
import signal
import subprocess
import sys

import aiohttp
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.exchange.signing import Credentials, auth_headers, sign
from liveopt.sim import cli as sim_cli
from liveopt.sim.auth import AuthError, RequestVerifier
from liveopt.sim.config import SimConfig
from liveopt.sim.ratelimit import PUBLIC, EndpointCost, RateLimiter
from liveopt.sim.server import start_sim

START_NS = 1_700_000_000_000_000_000
S = 1_000_000_000
CREDS = Credentials("sim-key", "sim-secret", "sim-passphrase")
RATE_HEADERS = ("gw-ratelimit-limit", "gw-ratelimit-remaining", "gw-ratelimit-reset")


class ManualClock:
    """A server clock the test moves by hand."""

    def __init__(self, now_ns: int = START_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * S)


class Reply(msgspec.Struct, frozen=True):
    status: int
    body: dict
    headers: dict


class Api:
    """A tiny signed client for the tests (the real client lives in liveopt.exchange)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, clock: ManualClock,
                 credentials: Credentials = CREDS) -> None:
        self.session, self.url, self.clock, self.credentials = session, url, clock, credentials

    async def call(self, method: str, path: str, body: dict | None = None, *,
                   signed: bool = False, headers: dict | None = None) -> Reply:
        text = msgspec.json.encode(body).decode() if body is not None else ""
        sent = {"Content-Type": "application/json"}
        if signed:
            sent.update(auth_headers(self.credentials, self.clock() // 1_000_000, method, path,
                                     text))
        sent.update(headers or {})
        async with self.session.request(method, self.url + path, data=text or None,
                                        headers=sent) as resp:
            return Reply(resp.status, await resp.json(), dict(resp.headers))


def run_with_sim(scenario, clock: ManualClock | None = None, **overrides):
    """Start a simulator, run ``scenario(api, sim)``, stop it."""
    clock = clock or ManualClock()

    async def main():
        config = SimConfig(tick_ms=600_000, **overrides)
        sim = await start_sim(config, clock=clock)
        sim.server.tick()
        try:
            async with aiohttp.ClientSession() as session:
                return await scenario(Api(session, sim.url, clock), sim)
        finally:
            await sim.stop()

    return asyncio.run(main())


# --- public routes ------------------------------------------------------------------------

PUBLIC_ROUTES = [
    ("/api/v1/contracts/active", list),
    ("/api/v1/contracts/XBTUSDTM", dict),
    ("/api/v1/ticker?symbol=XBTUSDTM", dict),
    ("/api/v1/level2/snapshot?symbol=XBTUSDTM", dict),
    ("/api/v1/level2/depth20?symbol=XBTUSDTM", dict),
    ("/api/v1/level2/depth100?symbol=XBTUSDTM", dict),
    ("/api/v1/kline/query?symbol=XBTUSDTM&granularity=1", list),
    ("/api/v1/timestamp", int),
]


def test_every_public_route_answers_in_the_success_envelope_with_rate_headers():
    async def scenario(api, sim):
        for path, data_type in PUBLIC_ROUTES:
            reply = await api.call("GET", path)
            assert reply.status == 200, path
            assert reply.body["code"] == "200000", path
            assert isinstance(reply.body["data"], data_type), path
            assert all(name in reply.headers for name in RATE_HEADERS), path

    run_with_sim(scenario)


def test_depth20_and_depth100_are_capped_at_their_depth():
    async def scenario(api, sim):
        full = (await api.call("GET", "/api/v1/level2/snapshot?symbol=XBTUSDTM")).body["data"]
        d20 = (await api.call("GET", "/api/v1/level2/depth20?symbol=XBTUSDTM")).body["data"]
        assert len(d20["bids"]) == min(20, len(full["bids"]))
        assert d20["bids"] == full["bids"][: len(d20["bids"])]
        assert d20["sequence"] == full["sequence"]

    run_with_sim(scenario)


def test_server_time_is_the_server_clock_in_milliseconds():
    clock = ManualClock()

    async def scenario(api, sim):
        first = (await api.call("GET", "/api/v1/timestamp")).body["data"]
        clock.advance(1.5)
        second = (await api.call("GET", "/api/v1/timestamp")).body["data"]
        assert first == START_NS // 1_000_000
        assert second - first == 1500

    run_with_sim(scenario, clock)


def test_unknown_path_answers_404000():
    async def scenario(api, sim):
        reply = await api.call("GET", "/api/v1/no-such-thing")
        assert reply.status == 404
        assert reply.body["code"] == "404000"
        assert all(name in reply.headers for name in RATE_HEADERS)

    run_with_sim(scenario)


def test_unknown_symbol_and_missing_parameter_answer_400100_naming_them():
    async def scenario(api, sim):
        reply = await api.call("GET", "/api/v1/ticker?symbol=NOPEUSDTM")
        assert reply.body["code"] == "400100"
        assert "NOPEUSDTM" in reply.body["msg"]
        reply = await api.call("GET", "/api/v1/kline/query?symbol=XBTUSDTM")
        assert reply.body["code"] == "400100"
        assert "granularity" in reply.body["msg"]
        reply = await api.call("GET", "/api/v1/kline/query?symbol=XBTUSDTM&granularity=x")
        assert "granularity" in reply.body["msg"]

    run_with_sim(scenario)


def test_bullet_public_returns_a_websocket_endpoint_on_the_same_server():
    async def scenario(api, sim):
        reply = await api.call("POST", "/api/v1/bullet-public")
        data = reply.body["data"]
        server = data["instanceServers"][0]
        assert isinstance(data["token"], str) and data["token"]
        assert server["endpoint"] == f"ws://127.0.0.1:{sim.port}/endpoint"
        assert server["encrypt"] is False
        assert server["protocol"] == "websocket"
        assert (server["pingInterval"], server["pingTimeout"]) == (1234, 567)

    run_with_sim(scenario, ping_interval_ms=1234, ping_timeout_ms=567)


def test_bullet_private_requires_a_signature():
    async def scenario(api, sim):
        unsigned = await api.call("POST", "/api/v1/bullet-private")
        assert (unsigned.status, unsigned.body["code"]) == (401, "400001")
        signed = await api.call("POST", "/api/v1/bullet-private", signed=True)
        assert signed.body["code"] == "200000"
        assert signed.body["data"]["token"] != ""

    run_with_sim(scenario)


def test_a_failing_handler_answers_500000_in_the_envelope_and_the_server_goes_on():
    async def scenario(api, sim):
        def broken(symbol):
            raise RuntimeError("core bug")

        sim.server.exchange.ticker = broken
        reply = await api.call("GET", "/api/v1/ticker?symbol=XBTUSDTM")
        assert (reply.status, reply.body["code"]) == (500, "500000")
        assert all(name in reply.headers for name in RATE_HEADERS)
        assert (await api.call("GET", "/api/v1/timestamp")).status == 200

    run_with_sim(scenario)


def test_refused_requests_are_counted_by_code():
    async def scenario(api, sim):
        await api.call("GET", "/api/v1/nowhere")
        await api.call("GET", "/api/v1/nowhere")
        await api.call("GET", "/api/v1/positions")
        await api.call("GET", "/api/v1/ticker?symbol=NOPEUSDTM")
        assert sim.rejections() == {"404000": 2, "400001": 1, "400100": 1}

    run_with_sim(scenario)


# --- authentication ---------------------------------------------------------------------------

def _tampered(name: str, clock: ManualClock) -> dict:
    path = "/api/v1/positions"
    good = auth_headers(CREDS, clock() // 1_000_000, "GET", path)
    if name == "missing":
        return {}
    if name == "skew":
        return auth_headers(CREDS, clock() // 1_000_000 - 5_001, "GET", path)
    if name == "key":
        return {**good, "KC-API-KEY": "someone-else"}
    if name == "passphrase":
        return {**good, "KC-API-PASSPHRASE": sign(CREDS.secret, "wrong-passphrase")}
    if name == "signature":
        return {**good, "KC-API-SIGN": sign(CREDS.secret, "something else")}
    raise AssertionError(name)


@pytest.mark.parametrize(("tamper", "code"), [
    ("missing", "400001"), ("skew", "400002"), ("key", "400003"), ("passphrase", "400004"),
    ("signature", "400005"),
])
def test_each_auth_failure_answers_its_own_code(tamper, code):
    clock = ManualClock()

    async def scenario(api, sim):
        reply = await api.call("GET", "/api/v1/positions", headers=_tampered(tamper, clock))
        assert reply.status == 401
        assert reply.body["code"] == code
        assert CREDS.secret not in reply.body["msg"]
        assert all(name in reply.headers for name in RATE_HEADERS)

    run_with_sim(scenario, clock)


def test_signature_covers_the_query_string_as_sent():
    clock = ManualClock()

    async def scenario(api, sim):
        good = await api.call("GET", "/api/v1/position?symbol=XBTUSDTM", signed=True)
        assert good.body["code"] == "200000"
        assert good.body["data"]["symbol"] == "XBTUSDTM"
        signed_for_other = auth_headers(CREDS, clock() // 1_000_000, "GET",
                                        "/api/v1/position?symbol=XBTUSDTM")
        bad = await api.call("GET", "/api/v1/position?symbol=ETHUSDTM",
                             headers=signed_for_other)
        assert bad.body["code"] == "400005"

    run_with_sim(scenario, clock, symbols=("XBTUSDTM", "ETHUSDTM"))


def test_signature_covers_the_body():
    clock = ManualClock()

    async def scenario(api, sim):
        body = {"clientOid": "a1", "side": "buy", "symbol": "XBTUSDTM", "leverage": 3,
                "type": "market", "size": 1}
        headers = auth_headers(CREDS, clock() // 1_000_000, "POST", "/api/v1/orders",
                               msgspec.json.encode({**body, "size": 2}).decode())
        reply = await api.call("POST", "/api/v1/orders", body, headers=headers)
        assert reply.body["code"] == "400005"
        assert sim.exchange.list_orders(None, None, 1, 50).total_num == 0

    run_with_sim(scenario, clock)


def test_key_version_2_with_a_signed_passphrase_is_accepted():
    clock = ManualClock()

    async def scenario(api, sim):
        headers = auth_headers(Credentials(CREDS.key, CREDS.secret, CREDS.passphrase,
                                           key_version="2"),
                               clock() // 1_000_000, "GET", "/api/v1/positions")
        reply = await api.call("GET", "/api/v1/positions", headers=headers)
        assert reply.body["code"] == "200000"
        assert headers["KC-API-KEY-VERSION"] == "2"

    run_with_sim(scenario, clock)


def test_custom_credentials_replace_the_defaults():
    custom = Credentials("my-key", "my-secret", "my-pass")

    async def scenario(api, sim):
        default = await api.call("GET", "/api/v1/positions", signed=True)
        assert default.body["code"] == "400003"
        api.credentials = custom
        reply = await api.call("GET", "/api/v1/positions", signed=True)
        assert reply.body["code"] == "200000"

    run_with_sim(scenario, credentials=custom)


def test_verifier_accepts_the_documented_test_vector():
    # kucoin-protocol.md 3.1: secret, prehash and expected KC-API-SIGN.
    creds = Credentials("vector-key", "f03a5284-5c39-4aaa-9b20-dea10bdcf8e3", "pass")
    verifier = RequestVerifier(creds)
    headers = {"KC-API-KEY": "vector-key", "KC-API-TIMESTAMP": "1547015186532",
               "KC-API-SIGN": "7QP/oM0ykidMdrfNEUmng8eZjg/ZvPafjIqmxiVfYu4=",
               "KC-API-PASSPHRASE": sign(creds.secret, "pass"), "KC-API-KEY-VERSION": "2"}
    assert verifier.verify(headers, "POST", "/api/v1/deposit-addresses",
                           '{"currency":"BTC"}', 1547015186532) == "vector-key"
    with pytest.raises(AuthError) as caught:
        verifier.verify(headers, "POST", "/api/v1/deposit-addresses", '{"currency":"ETH"}',
                        1547015186532)
    assert caught.value.code == "400005"
    assert "f03a5284" not in repr(verifier) and "f03a5284" not in str(caught.value)


# --- rate limits ------------------------------------------------------------------------------

def test_remaining_quota_drops_by_each_endpoint_weight():
    async def scenario(api, sim):
        first = await api.call("GET", "/api/v1/timestamp")
        second = await api.call("GET", "/api/v1/contracts/XBTUSDTM")
        private = await api.call("GET", "/api/v1/positions", signed=True)
        assert int(first.headers["gw-ratelimit-limit"]) == 2000
        assert int(first.headers["gw-ratelimit-remaining"]) == 2000 - 2
        assert int(second.headers["gw-ratelimit-remaining"]) == 2000 - 2 - 3
        # Private endpoints draw from the key's Futures pool, not the IP's Public pool.
        assert int(private.headers["gw-ratelimit-limit"]) == 1500
        assert int(private.headers["gw-ratelimit-remaining"]) == 1500 - 2

    run_with_sim(scenario, futures_pool_quota=1500)


def test_an_exhausted_pool_answers_429_until_its_window_resets():
    clock = ManualClock()

    async def scenario(api, sim):
        replies = [await api.call("GET", "/api/v1/timestamp") for _ in range(6)]
        assert [r.status for r in replies] == [200] * 5 + [429]
        assert replies[-1].body == {"code": "429000", "msg": "Too Many Requests"}
        assert replies[-1].headers["gw-ratelimit-remaining"] == "0"
        assert int(replies[-1].headers["gw-ratelimit-reset"]) == 30_000
        futures = await api.call("GET", "/api/v1/positions", signed=True)
        assert futures.status == 200  # another pool
        clock.advance(30.0)
        assert (await api.call("GET", "/api/v1/timestamp")).status == 200

    run_with_sim(scenario, clock, public_pool_quota=10)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 15), st.integers(0, 5_000)), max_size=80),
       st.integers(10, 100))
def test_a_pool_never_admits_more_than_its_quota_per_window(requests, quota):
    limiter = RateLimiter({PUBLIC: quota}, window_s=30.0)
    now_ms = 0
    window_start, used = None, 0
    for weight, gap_ms in requests:
        now_ms += gap_ms
        decision = limiter.charge(EndpointCost(PUBLIC, weight), "ip", now_ms * 1_000_000)
        if window_start is None or now_ms - window_start >= 30_000:
            window_start, used = now_ms, 0
        if decision.allowed:
            used += weight
        assert used <= quota
        assert decision.remaining == quota - used
        assert 0 < decision.reset_ms <= 30_000


# --- orders, positions, account ----------------------------------------------------------------

def _limit(client_oid: str, price: str, **extra) -> dict:
    return {"clientOid": client_oid, "side": "buy", "symbol": "XBTUSDTM", "leverage": 5,
            "type": "limit", "price": price, "size": 2, **extra}


def test_an_order_can_be_placed_found_listed_and_cancelled():
    async def scenario(api, sim):
        bid = sim.exchange.ticker("XBTUSDTM").best_bid_price
        placed = await api.call("POST", "/api/v1/orders", _limit("o-1", bid), signed=True)
        assert placed.body["code"] == "200000"
        order_id = placed.body["data"]["orderId"]
        assert placed.body["data"]["clientOid"] == "o-1"

        by_id = await api.call("GET", f"/api/v1/orders/{order_id}", signed=True)
        by_oid = await api.call("GET", "/api/v1/orders/byClientOid?clientOid=o-1", signed=True)
        assert by_id.body["data"]["id"] == by_oid.body["data"]["id"] == order_id
        active = await api.call("GET", "/api/v1/orders?status=active&symbol=XBTUSDTM",
                                signed=True)
        assert [o["id"] for o in active.body["data"]["items"]] == [order_id]

        cancelled = await api.call("DELETE", f"/api/v1/orders/{order_id}", signed=True)
        assert cancelled.body["data"] == {"cancelledOrderIds": [order_id]}
        again = await api.call("DELETE", f"/api/v1/orders/{order_id}", signed=True)
        assert again.body["code"] == "100004"
        done = await api.call("GET", "/api/v1/orders?status=done", signed=True)
        assert order_id in [o["id"] for o in done.body["data"]["items"]]

    run_with_sim(scenario)


def test_a_repeated_client_oid_answers_300018_and_places_nothing():
    async def scenario(api, sim):
        bid = sim.exchange.ticker("XBTUSDTM").best_bid_price
        first = await api.call("POST", "/api/v1/orders", _limit("dup", bid), signed=True)
        second = await api.call("POST", "/api/v1/orders", _limit("dup", bid), signed=True)
        assert first.body["code"] == "200000"
        assert (second.status, second.body["code"]) == (200, "300018")
        assert sim.exchange.list_orders("XBTUSDTM", None, 1, 50).total_num == 1

    run_with_sim(scenario)


def test_cancel_by_client_oid_requires_the_symbol():
    async def scenario(api, sim):
        bid = sim.exchange.ticker("XBTUSDTM").best_bid_price
        await api.call("POST", "/api/v1/orders", _limit("c-1", bid), signed=True)
        missing = await api.call("DELETE", "/api/v1/orders/client-order/c-1", signed=True)
        assert missing.body["code"] == "400100"
        assert "symbol" in missing.body["msg"]
        ok = await api.call("DELETE", "/api/v1/orders/client-order/c-1?symbol=XBTUSDTM",
                            signed=True)
        assert ok.body["data"] == {"clientOid": "c-1"}

    run_with_sim(scenario)


def test_cancel_all_and_cancel_all_stops_cancel_their_own_kind():
    async def scenario(api, sim):
        bid = sim.exchange.ticker("XBTUSDTM").best_bid_price
        limit = await api.call("POST", "/api/v1/orders", _limit("l-1", bid), signed=True)
        stop = await api.call("POST", "/api/v1/orders", _limit(
            "s-1", bid, stop="down", stopPriceType="TP", stopPrice="1000",
            reduceOnly=False), signed=True)
        assert stop.body["code"] == "200000", stop.body
        stops = await api.call("GET", "/api/v1/stopOrders?symbol=XBTUSDTM", signed=True)
        assert [o["id"] for o in stops.body["data"]["items"]] == [stop.body["data"]["orderId"]]

        no_symbol = await api.call("DELETE", "/api/v3/orders", signed=True)
        assert no_symbol.body["code"] == "400100"
        cancelled = await api.call("DELETE", "/api/v3/orders?symbol=XBTUSDTM", signed=True)
        assert cancelled.body["data"]["cancelledOrderIds"] == [limit.body["data"]["orderId"]]
        cancelled_stops = await api.call("DELETE", "/api/v1/stopOrders?symbol=XBTUSDTM",
                                         signed=True)
        assert cancelled_stops.body["data"]["cancelledOrderIds"] == [
            stop.body["data"]["orderId"]]

    run_with_sim(scenario)


def test_the_test_order_endpoint_validates_without_placing():
    async def scenario(api, sim):
        bid = sim.exchange.ticker("XBTUSDTM").best_bid_price
        good = await api.call("POST", "/api/v1/orders/test", _limit("t-1", bid), signed=True)
        assert good.body["code"] == "200000"
        assert good.body["data"]["clientOid"] == "t-1"
        bad = await api.call("POST", "/api/v1/orders/test", _limit("t-2", bid, size=0),
                             signed=True)
        assert bad.body["code"] == "400100"
        assert "size" in bad.body["msg"]
        assert sim.exchange.list_orders(None, None, 1, 50).total_num == 0

    run_with_sim(scenario)


def test_a_market_order_opens_a_position_visible_in_position_and_account():
    async def scenario(api, sim):
        placed = await api.call("POST", "/api/v1/orders", {
            "clientOid": "m-1", "side": "buy", "symbol": "XBTUSDTM", "leverage": 10,
            "type": "market", "size": 3}, signed=True)
        assert placed.body["code"] == "200000"
        position = await api.call("GET", "/api/v1/position?symbol=XBTUSDTM", signed=True)
        assert position.body["data"]["currentQty"] == 3
        assert position.body["data"]["isOpen"] is True
        listed = await api.call("GET", "/api/v1/positions", signed=True)
        assert [p["symbol"] for p in listed.body["data"]] == ["XBTUSDTM"]
        account = await api.call("GET", "/api/v1/account-overview?currency=USDT", signed=True)
        assert account.body["data"]["positionMargin"] > 0
        assert account.body["data"]["currency"] == "USDT"

    run_with_sim(scenario)


def test_a_body_that_is_not_a_json_object_answers_400100():
    clock = ManualClock()

    async def scenario(api, sim):
        text = "[1, 2]"
        headers = auth_headers(CREDS, clock() // 1_000_000, "POST", "/api/v1/orders", text)
        headers["Content-Type"] = "application/json"
        async with api.session.post(api.url + "/api/v1/orders", data=text,
                                    headers=headers) as resp:
            body = await resp.json()
        assert (resp.status, body["code"]) == (400, "400100")
        assert "body" in body["msg"]

    run_with_sim(scenario, clock)


# --- command line -----------------------------------------------------------------------------

def _parse(argv: list[str]):
    parser = argparse.ArgumentParser(prog="liveopt")
    sim_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_flags_become_a_validated_config():
    args = _parse(["sim", "--port", "0", "--seed", "5", "--speed", "2", "--symbols",
                   "XBTUSDTM,ETHUSDTM", "--api-key", "k", "--api-secret", "s",
                   "--api-passphrase", "p", "--sequence-gap-rate", "0.1",
                   "--order-failure-status", "503", "--burst-429-every", "10",
                   "--burst-429-for", "2"])
    config = sim_cli.config_from_args(args)
    assert (config.port, config.seed, config.speed) == (0, 5, 2.0)
    assert config.symbols == ("XBTUSDTM", "ETHUSDTM")
    assert config.credentials.key == "k"
    assert config.faults.sequence_gap_rate == 0.1
    assert config.faults.order_failure_status == 503
    assert (config.faults.burst_429_every_s, config.faults.burst_429_duration_s) == (10, 2)
    assert args.run is sim_cli.run


def test_cli_defaults_are_local_and_documented():
    config = sim_cli.config_from_args(_parse(["sim"]))
    assert config.host == "127.0.0.1"
    assert (config.credentials.key, config.credentials.secret,
            config.credentials.passphrase) == ("sim-key", "sim-secret", "sim-passphrase")
    assert not config.faults.any_enabled


def test_cli_rejects_a_bad_flag_value_with_exit_status_2(capsys):
    assert sim_cli.run(_parse(["sim", "--malformed-frame-rate", "3"])) == 2
    assert "malformed_frame_rate" in capsys.readouterr().err


def test_serve_prints_the_rest_url_and_stops_when_asked():
    out = io.StringIO()

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(sim_cli.serve(SimConfig(port=0), out, stop))
        for _ in range(200):
            if "REST http://" in out.getvalue():
                break
            await asyncio.sleep(0.005)
        url = out.getvalue().split("REST ")[1].split()[0]
        async with aiohttp.ClientSession() as session, session.get(
                url + "/api/v1/timestamp") as resp:
            assert (await resp.json())["code"] == "200000"
        stop.set()
        await task

    asyncio.run(main())
    assert out.getvalue().rstrip().endswith("liveopt sim: stopped")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_sim_command_stops_cleanly_on_a_signal(signum):
    script = ("import argparse, sys\n"
              "from liveopt.sim import cli\n"
              "p = argparse.ArgumentParser(); cli.add_parser(p.add_subparsers())\n"
              "sys.exit(cli.run(p.parse_args(['sim', '--port', '0'])))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "REST http://127.0.0.1:" in first
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out
