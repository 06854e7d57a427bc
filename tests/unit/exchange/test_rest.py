"""The signed REST client against a real aiohttp server on 127.0.0.1 that verifies every
signature (tests/unit/exchange/fake_kucoin.py)."""

import asyncio
import logging
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.exchange.client_oid import client_oid
from liveopt.exchange.errors import (
    AuthenticationError,
    DuplicateClientOidError,
    InsufficientFundsError,
    InvalidRequestError,
    KucoinError,
    MalformedResponseError,
    NotCancelableError,
    OrderNotFoundError,
    RateLimitedError,
    ServerError,
    TimestampError,
    TransportError,
    error_from_response,
)
from liveopt.exchange.priority import Priority
from liveopt.exchange.rest import KucoinFuturesRest, RestConfig
from liveopt.exchange.rest_models import (
    AccountOverview,
    Contract,
    Order,
    OrderAck,
    OrderRequest,
    OrderRequestError,
    Position,
    StopOrder,
    Ticker,
)
from liveopt.exchange.signing import Credentials, prehash, signature_matches, signed_passphrase
from tests.unit.exchange.fake_kucoin import (
    ACCOUNT_SAMPLE,
    CONTRACT_SAMPLE,
    KLINE_SAMPLE,
    LEVEL2_SAMPLE,
    ORDER_ACK_SAMPLE,
    POSITION_SAMPLE,
    TICKER_SAMPLE,
    FakeKucoin,
    Fault,
)

CREDENTIALS = Credentials("key-123", "s3cret-xyz-value", "pass-phrase-9", key_version="3")
START_NS = 1_700_000_000_000 * 1_000_000
SCENARIO_TIMEOUT_S = 20.0


class ManualClock:
    """A wall clock that moves only when told to."""

    def __init__(self, now_ns: int = START_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance_s(self, seconds: float) -> None:
        self.now_ns += int(seconds * 1_000_000_000)


class RecordingBudget:
    """A stand-in for PingBudgetManager that records the calls it gets."""

    def __init__(self, server: FakeKucoin | None = None) -> None:
        self.calls: list[tuple] = []
        self.server = server

    async def acquire(self, endpoint_key, priority, *, timeout_s=None):
        seen = len(self.server.requests) if self.server is not None else -1
        self.calls.append(("acquire", endpoint_key, priority, timeout_s, seen))

    def record_response(self, endpoint_key, status, headers, code):
        self.calls.append(("record", endpoint_key, status,
                           headers.get("gw-ratelimit-remaining"), code))


class Harness(msgspec.Struct):
    rest: KucoinFuturesRest
    server: FakeKucoin
    clock: ManualClock
    sleeps: list[float]


def run_with_server(scenario, *, credentials=CREDENTIALS, server_ahead_ms=0, budget=None,
                    client_credentials=None, **config):
    """Start the fake server and a client pointed at it, run ``scenario(h)``, clean up."""

    async def main():
        clock = ManualClock()
        server = FakeKucoin(credentials,
                            lambda: clock.now_ns // 1_000_000 + server_ahead_ms)
        base_url = await server.start()
        sleeps: list[float] = []

        async def record_sleep(seconds: float) -> None:
            sleeps.append(seconds)

        settings_ = {"time_sync_interval_s": None, **config}
        chosen_budget = budget(server) if callable(budget) else budget
        rest = KucoinFuturesRest(
            client_credentials or credentials, config=RestConfig(base_url=base_url, **settings_),
            budget=chosen_budget, clock_ns=clock, sleep=record_sleep, rng=random.Random(3))
        try:
            # a bound, so that a regression shows as a failure instead of a hung run
            return await asyncio.wait_for(scenario(Harness(rest, server, clock, sleeps)),
                                          SCENARIO_TIMEOUT_S)
        finally:
            await rest.close()
            await server.stop()

    return asyncio.run(main())


def limit_request(oid="limit-1", size=3, price="88987.4", **options) -> OrderRequest:
    return OrderRequest.limit(oid, "XBTUSDTM", "buy", size, price, 5, **options)


def stop_request(oid="stop-1", size=3) -> OrderRequest:
    return OrderRequest.stop_market(oid, "XBTUSDTM", "sell", size, "down", "87000.5", 5)


# ---- signing ----------------------------------------------------------------------------


@pytest.mark.parametrize("key_version", ["2", "3"])
def test_private_request_is_signed_so_the_server_verifies_it(key_version):
    credentials = Credentials("key-123", "s3cret-xyz-value", "pass-phrase-9", key_version)

    async def scenario(h):
        overview = await h.rest.account_overview("USDT")
        (received,) = h.server.received("GET /api/v1/account-overview")
        headers = received.headers
        assert received.raw_path == "/api/v1/account-overview?currency=USDT"
        assert headers["KC-API-KEY"] == "key-123"
        assert headers["KC-API-KEY-VERSION"] == key_version
        assert headers["KC-API-PASSPHRASE"] == signed_passphrase(credentials)
        assert headers["KC-API-PASSPHRASE"] != credentials.passphrase
        text = prehash(headers["KC-API-TIMESTAMP"], "GET", received.raw_path, "")
        assert signature_matches(credentials.secret, text, headers["KC-API-SIGN"])
        return overview

    assert run_with_server(scenario, credentials=credentials).currency == "USDT"


def test_query_string_is_signed_exactly_as_it_is_sent():
    async def scenario(h):
        await h.rest.stop_orders("XBTUSDTM", page=2, page_size=7)
        (received,) = h.server.received("GET /api/v1/stopOrders")
        assert received.raw_path == "/api/v1/stopOrders?symbol=XBTUSDTM&currentPage=2&pageSize=7"
        text = prehash(received.headers["KC-API-TIMESTAMP"], "GET", received.raw_path)
        assert signature_matches(CREDENTIALS.secret, text, received.headers["KC-API-SIGN"])
        # the same request signed without its query would not verify
        bare = prehash(received.headers["KC-API-TIMESTAMP"], "GET", "/api/v1/stopOrders")
        assert not signature_matches(CREDENTIALS.secret, bare, received.headers["KC-API-SIGN"])

    run_with_server(scenario)


def test_order_body_is_the_exact_compact_json_that_was_signed():
    request = limit_request(reduce_only=True, margin_mode="ISOLATED", time_in_force="IOC")

    async def scenario(h):
        await h.rest.place_order(request)
        (received,) = h.server.received("POST /api/v1/orders")
        assert received.body == msgspec.json.encode(request).decode()
        assert " " not in received.body
        assert received.headers["Content-Type"].startswith("application/json")
        text = prehash(received.headers["KC-API-TIMESTAMP"], "POST", "/api/v1/orders",
                       received.body)
        assert signature_matches(CREDENTIALS.secret, text, received.headers["KC-API-SIGN"])
        return msgspec.json.decode(received.body)

    body = run_with_server(scenario)
    assert body["price"] == "88987.4" and body["size"] == 3 and body["leverage"] == 5
    assert body["reduceOnly"] is True and body["timeInForce"] == "IOC"
    assert body["clientOid"] == "limit-1" and body["type"] == "limit"


def test_public_endpoints_are_sent_without_auth_headers():
    async def scenario(h):
        await h.rest.ticker("XBTUSDTM")
        (received,) = h.server.received("GET /api/v1/ticker")
        assert not any(name.startswith("KC-API") for name in received.headers)

    run_with_server(scenario)


@pytest.mark.parametrize(("wrong", "code"), [
    (Credentials("other-key", "s3cret-xyz-value", "pass-phrase-9"), "400003"),
    (Credentials("key-123", "another-secret", "pass-phrase-9"), "400004"),
])
def test_wrong_credentials_raise_authentication_error_with_the_code(wrong, code):
    async def scenario(h):
        with pytest.raises(AuthenticationError) as caught:
            await h.rest.position("XBTUSDTM")
        return caught.value

    error = run_with_server(scenario, client_credentials=wrong)
    assert error.code == code and error.http_status == 401
    assert error.endpoint == "GET /api/v1/position"


def test_private_endpoint_without_credentials_fails_before_sending():
    async def main():
        rest = KucoinFuturesRest(config=RestConfig(base_url="http://127.0.0.1:9"))
        try:
            with pytest.raises(KucoinError, match="credentials"):
                await rest.account_overview()
        finally:
            await rest.close()

    asyncio.run(main())


def test_requests_reuse_one_session_and_connection():
    async def scenario(h):
        await h.rest.ticker("XBTUSDTM")
        session = h.rest._session
        await h.rest.contract("XBTUSDTM")
        await h.rest.position("XBTUSDTM")
        assert h.rest._session is session
        assert len({r.peer_port for r in h.server.requests}) == 1

    run_with_server(scenario)


# ---- time sync --------------------------------------------------------------------------


def test_time_sync_offset_is_used_in_the_signed_timestamp():
    async def scenario(h):
        offset_ns = await h.rest.sync_time()
        h.clock.advance_s(12.5)
        await h.rest.account_overview()
        (received,) = h.server.received("GET /api/v1/account-overview")
        return offset_ns, int(received.headers["KC-API-TIMESTAMP"]), h.clock.now_ns

    offset_ns, timestamp_ms, local_ns = run_with_server(scenario, server_ahead_ms=7_000)
    assert offset_ns == 7_000 * 1_000_000
    assert timestamp_ms == local_ns // 1_000_000 + 7_000


def test_skewed_clock_gets_400002_then_resyncs_once_and_succeeds():
    async def scenario(h):
        await h.rest.account_overview()
        return ([r.raw_path.split("?")[0] for r in h.server.requests], h.rest.stats())

    paths, stats = run_with_server(scenario, server_ahead_ms=-9_000)
    assert paths == ["/api/v1/account-overview", "/api/v1/timestamp",
                     "/api/v1/account-overview"]
    assert stats.errors_by_code == {"400002": 1} and stats.time_syncs == 1


def test_persistent_timestamp_refusal_is_raised_after_one_resync():
    refusal = Fault("reply", 200, {"code": "400002", "msg": "Invalid KC-API-TIMESTAMP"})

    async def scenario(h):
        h.server.script("GET /api/v1/position", refusal, refusal)
        with pytest.raises(TimestampError):
            await h.rest.position("XBTUSDTM")
        return len(h.server.received("GET /api/v1/timestamp"))

    assert run_with_server(scenario) == 1


def test_stale_server_time_is_resynced_before_a_signed_request():
    async def scenario(h):
        await h.rest.position("XBTUSDTM")
        h.clock.advance_s(30)
        await h.rest.position("XBTUSDTM")
        h.clock.advance_s(31)
        await h.rest.position("XBTUSDTM")
        await h.rest.ticker("XBTUSDTM")  # public: no sync needed
        return len(h.server.received("GET /api/v1/timestamp"))

    assert run_with_server(scenario, time_sync_interval_s=60.0) == 2


# ---- idempotent orders ------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop_after", "stall"])
def test_retry_after_a_lost_reply_resends_the_same_client_oid_and_creates_one_order(fault):
    request = limit_request(oid=client_oid("entry", "XBTUSDTM", 42, 1))

    async def scenario(h):
        h.server.script("POST /api/v1/orders", Fault(fault))
        ack = await h.rest.place_order(request)
        posted = h.server.received("POST /api/v1/orders")
        return ack, posted, dict(h.server.orders), h.rest.stats()

    ack, posted, orders, stats = run_with_server(scenario, request_timeout_s=0.3)
    assert len(orders) == 1
    (stored,) = orders.values()
    assert ack == OrderAck(order_id=stored["id"], client_oid=request.client_oid, existing=True)
    assert len(posted) == 2
    assert posted[0].body == posted[1].body  # the same clientOid, byte for byte
    assert stats.transport_errors == 1 and stats.duplicate_orders_resolved == 1


def test_placing_the_same_order_twice_returns_the_first_one():
    async def scenario(h):
        first = await h.rest.place_order(stop_request())
        second = await h.rest.place_order(stop_request())
        return first, second, len(h.server.orders)

    first, second, count = run_with_server(scenario)
    assert count == 1 and not first.existing and second.existing
    assert second.order_id == first.order_id


def test_client_oid_reused_for_a_different_order_raises_duplicate():
    async def scenario(h):
        await h.rest.place_order(limit_request(oid="same-id", size=1))
        with pytest.raises(DuplicateClientOidError, match="different order"):
            await h.rest.place_order(limit_request(oid="same-id", size=2))
        return len(h.server.orders)

    assert run_with_server(scenario) == 1


def test_duplicate_whose_order_cannot_be_found_is_raised():
    duplicate = Fault("reply", 200, {"code": "300018", "msg": "clientOid parameter repeated"})

    async def scenario(h):
        h.server.script("POST /api/v1/orders", duplicate)
        with pytest.raises(DuplicateClientOidError):
            await h.rest.place_order(limit_request())
        return len(h.server.received("GET /api/v1/orders/byClientOid"))

    assert run_with_server(scenario) == 2


# ---- errors -----------------------------------------------------------------------------


def test_error_code_is_checked_even_on_http_200():
    async def scenario(h):
        h.server.script("POST /api/v1/orders",
                        Fault("reply", 200, {"code": "300003", "msg": "balance not enough"}))
        with pytest.raises(InsufficientFundsError) as caught:
            await h.rest.place_order(limit_request())
        return caught.value

    error = run_with_server(scenario)
    assert (error.code, error.http_status, error.endpoint) == ("300003", 200,
                                                               "POST /api/v1/orders")
    assert "balance not enough" in str(error)


@pytest.mark.parametrize(("status", "code", "expected"), [
    (429, "429000", RateLimitedError),
    (200, "200002", RateLimitedError),
    (200, "1015", RateLimitedError),
    (429, "", RateLimitedError),
    (401, "400001", AuthenticationError),
    (401, "400005", AuthenticationError),
    (403, "400007", AuthenticationError),
    (200, "400002", TimestampError),
    (400, "100001", InvalidRequestError),
    (200, "300000", InvalidRequestError),
    (400, "400100", InvalidRequestError),
    (200, "300003", InsufficientFundsError),
    (200, "300018", DuplicateClientOidError),
    (200, "100004", NotCancelableError),
    (200, "20001", OrderNotFoundError),
    (500, "500000", ServerError),
    (503, "", ServerError),
    (404, "", InvalidRequestError),
])
def test_error_from_response_maps_code_and_status_to_the_class(status, code, expected):
    error = error_from_response(code, "text", status, "GET /api/v1/x")
    assert type(error) is expected
    assert (error.code, error.http_status, error.endpoint) == (code, status, "GET /api/v1/x")


@pytest.mark.parametrize(("status", "payload", "expected"), [
    (429, {"code": "429000", "msg": "Too Many Requests"}, RateLimitedError),
    (200, {"code": "100004", "msg": "Order is in not cancelable state"}, NotCancelableError),
    (400, {"code": "400100", "msg": "Invalid Parameter."}, InvalidRequestError),
    (502, "<html>bad gateway</html>", ServerError),
])
def test_replies_from_the_server_raise_their_typed_error(status, payload, expected):
    async def scenario(h):
        for _ in range(3):
            h.server.script("GET /api/v1/position", Fault("reply", status, payload))
        with pytest.raises(expected) as caught:
            await h.rest.position("XBTUSDTM")
        return caught.value

    error = run_with_server(scenario)
    assert error.http_status == status and error.endpoint == "GET /api/v1/position"


def test_rate_limit_is_not_retried_and_carries_the_reset_time():
    async def scenario(h):
        h.server.script("GET /api/v1/ticker", Fault(
            "reply", 429, {"code": "429000", "msg": "Too Many Requests"},
            {"gw-ratelimit-reset": "1234", "gw-ratelimit-remaining": "0"}))
        with pytest.raises(RateLimitedError) as caught:
            await h.rest.ticker("XBTUSDTM")
        return caught.value, len(h.server.requests)

    error, sent = run_with_server(scenario)
    assert error.reset_ms == 1234 and error.retryable and sent == 1


def test_server_error_is_retried_with_jittered_backoff_then_succeeds():
    async def scenario(h):
        h.server.script("GET /api/v1/ticker",
                        Fault("reply", 503, {"code": "500000", "msg": "busy"}),
                        Fault("reply", 503, {"code": "500000", "msg": "busy"}))
        ticker = await h.rest.ticker("XBTUSDTM")
        return ticker, list(h.sleeps)

    ticker, sleeps = run_with_server(scenario, retry_backoff_s=0.1, max_attempts=3)
    assert ticker.symbol == "XBTUSDTM"
    assert len(sleeps) == 2
    assert 0.08 <= sleeps[0] <= 0.12 and 0.16 <= sleeps[1] <= 0.24


def test_dropped_connections_end_in_a_retryable_transport_error_after_max_attempts():
    async def scenario(h):
        # aiohttp itself may repeat an idempotent request once on a dropped keep-alive
        # connection, so script more drops than attempts and count the client's view.
        h.server.script("GET /api/v1/ticker", *[Fault("drop_before")] * 10)
        with pytest.raises(TransportError) as caught:
            await h.rest.ticker("XBTUSDTM")
        return caught.value, h.rest.stats(), len(h.sleeps)

    error, stats, slept = run_with_server(scenario, max_attempts=3)
    assert error.retryable and error.code == "" and error.http_status == 0
    assert stats.transport_errors == 3 and stats.retries == 2 and slept == 2


def test_malformed_data_raises_an_error_naming_the_field():
    async def scenario(h):
        h.server.script("GET /api/v1/ticker", Fault(
            "reply", 200, {"code": "200000", "data": {**TICKER_SAMPLE, "bestBidSize": "x"}}))
        with pytest.raises(MalformedResponseError, match="bestBidSize"):
            await h.rest.ticker("XBTUSDTM")

    run_with_server(scenario)


# ---- rate-limit budget ------------------------------------------------------------------


def test_budget_is_acquired_before_and_told_after_each_request():
    async def scenario(h):
        await h.rest.sync_time()
        ack = await h.rest.place_order(limit_request())
        await h.rest.cancel_order(ack.order_id)
        await h.rest.ticker("XBTUSDTM", priority=Priority.LOW)
        return h.rest._budget.calls

    calls = run_with_server(scenario, budget=RecordingBudget, budget_timeout_s=2.5)
    assert calls == [
        ("acquire", "GET /api/v1/timestamp", Priority.MEDIUM, 2.5, 0),
        ("record", "GET /api/v1/timestamp", 200, "1990", "200000"),
        ("acquire", "POST /api/v1/orders", Priority.HIGH, 2.5, 1),
        ("record", "POST /api/v1/orders", 200, "1990", "200000"),
        ("acquire", "DELETE /api/v1/orders/{orderId}", Priority.CRITICAL, 2.5, 2),
        ("record", "DELETE /api/v1/orders/{orderId}", 200, "1990", "200000"),
        ("acquire", "GET /api/v1/ticker", Priority.LOW, 2.5, 3),
        ("record", "GET /api/v1/ticker", 200, "1990", "200000"),
    ]


def test_budget_is_told_about_a_429_with_its_code():
    async def scenario(h):
        h.server.script("GET /api/v1/positions", Fault(
            "reply", 429, {"code": "429000", "msg": "Too Many Requests"},
            {"gw-ratelimit-remaining": "0"}))
        with pytest.raises(RateLimitedError):
            await h.rest.positions()
        return h.rest._budget.calls[-1]

    assert run_with_server(scenario, budget=RecordingBudget) == (
        "record", "GET /api/v1/positions", 429, "0", "429000")


def test_real_ping_budget_manager_is_charged_and_blocks_after_a_429():
    budget_module = pytest.importorskip("liveopt.exchange.budget")
    # The budget runs on its own (real, monotonic) clock: its waits are real, so the test
    # only takes paths that grant at once or fail at once.
    budget = budget_module.PingBudgetManager()

    async def scenario(h):
        await h.rest.ticker("XBTUSDTM")
        await h.rest.place_order(limit_request())
        h.server.script("GET /api/v1/position", Fault(
            "reply", 429, {"code": "429000", "msg": "Too Many Requests"},
            {"gw-ratelimit-reset": "5000", "gw-ratelimit-remaining": "0"}))
        with pytest.raises(RateLimitedError):
            await h.rest.position("XBTUSDTM")
        sent = len(h.server.requests)
        # the futures pool is now blocked for 5 s: a 1 s deadline fails at once, unsent
        with pytest.raises(budget_module.BudgetDeadlineError, match="GET /api/v1/positions"):
            await h.rest.positions()
        return sent, len(h.server.requests)

    sent_before, sent_after = run_with_server(scenario, budget=budget, budget_timeout_s=1.0)
    assert sent_before == sent_after == 3
    pools = {pool.pool: pool for pool in budget.metrics().pools}
    granted = {(name, p.priority): p.granted for name, pool in pools.items()
               for p in pool.priorities}
    assert granted[("public", "MEDIUM")] == 1
    assert granted[("futures", "HIGH")] == 1 and granted[("futures", "MEDIUM")] == 1
    assert pools["futures"].rate_limited == 1 and pools["public"].rate_limited == 0


# ---- decoding the documented shapes -------------------------------------------------------


def test_contracts_decode_from_the_documented_sample():
    async def scenario(h):
        return await h.rest.contract("XBTUSDTM"), await h.rest.active_contracts()

    contract, active = run_with_server(scenario)
    assert isinstance(contract, Contract)
    assert (contract.tick_size, contract.lot_size, contract.multiplier) == (
        CONTRACT_SAMPLE["tickSize"], CONTRACT_SAMPLE["lotSize"], CONTRACT_SAMPLE["multiplier"])
    assert (contract.maker_fee_rate, contract.taker_fee_rate) == (0.0002, 0.0006)
    assert contract.max_leverage == 125 and contract.is_inverse is False
    assert contract.maintain_margin == CONTRACT_SAMPLE["maintainMargin"]
    assert [c.symbol for c in active] == ["XBTUSDTM", "ETHUSDTM"]


def test_unknown_contract_is_an_invalid_request():
    async def scenario(h):
        with pytest.raises(InvalidRequestError, match="NOPEUSDTM"):
            await h.rest.contract("NOPEUSDTM")

    run_with_server(scenario)


def test_market_data_decodes_ticker_book_and_klines():
    async def scenario(h):
        return (await h.rest.ticker("XBTUSDTM"), await h.rest.level2_snapshot("XBTUSDTM"),
                await h.rest.klines("XBTUSDTM", 1, start_ms=1731898200000,
                                    end_ms=1731898300000), h.server.requests[-1].raw_path)

    ticker, book, klines, kline_path = run_with_server(scenario)
    assert isinstance(ticker, Ticker)
    assert (ticker.best_bid_price, ticker.best_bid_size) == ("88987.4", 713)
    assert (ticker.best_ask_price, ticker.ts) == ("88987.5", TICKER_SAMPLE["ts"])
    assert book.sequence == LEVEL2_SAMPLE["sequence"]
    assert book.bids == [(88987.4, 713), (88987.3, 20)] and book.asks[1] == (88990.0, 4)
    assert kline_path == ("/api/v1/kline/query?symbol=XBTUSDTM&granularity=1"
                          "&from=1731898200000&to=1731898300000")
    first, second = klines
    assert (first.time_ms, first.open, first.high, first.low, first.close) == tuple(
        KLINE_SAMPLE[0][:5])
    assert first.turnover is None and second.turnover == 2991.4 and second.high == 90660.0


def test_account_and_positions_decode_with_irregular_and_unknown_fields():
    async def scenario(h):
        return (await h.rest.account_overview(), await h.rest.position("XBTUSDTM"),
                await h.rest.positions())

    account, position, positions = run_with_server(scenario)
    assert isinstance(account, AccountOverview)
    assert account.unrealised_pnl == ACCOUNT_SAMPLE["unrealisedPNL"]
    assert account.available_balance == ACCOUNT_SAMPLE["availableBalance"]
    assert isinstance(position, Position) and positions == [position]
    assert position.current_qty == -3 and position.is_open
    assert position.avg_entry_price == POSITION_SAMPLE["avgEntryPrice"]
    assert position.liquidation_price == POSITION_SAMPLE["liquidationPrice"]
    assert position.deleverage_percentage == POSITION_SAMPLE["delevPercentage"]


def test_bullet_tokens_point_at_the_server_and_hide_the_token():
    async def scenario(h):
        return await h.rest.bullet_public(), await h.rest.bullet_private(), h.rest.base_url

    public, private, base_url = run_with_server(scenario)
    assert public.instance_servers[0].endpoint == base_url.replace("http", "ws") + "/"
    assert public.instance_servers[0].ping_interval == 18000
    assert private.token != public.token and private.token not in repr(private)


def test_order_ack_sample_decodes():
    ack = msgspec.json.decode(msgspec.json.encode(ORDER_ACK_SAMPLE), type=OrderAck)
    assert ack == OrderAck("234125150956625920", "5c52e11203aa677f33e493fb", existing=False)


def test_order_lookup_returns_the_order_or_raises_not_found():
    async def scenario(h):
        await h.rest.place_order(stop_request(oid="stop-9"))
        order = await h.rest.order_by_client_oid("stop-9")
        with pytest.raises(OrderNotFoundError, match="missing-1"):
            await h.rest.order_by_client_oid("missing-1")
        return order

    order = run_with_server(scenario)
    assert isinstance(order, Order)
    assert (order.stop, order.stop_price, order.stop_price_type) == ("down", "87000.5", "MP")
    assert order.reduce_only and order.size == 3 and order.leverage == "5"


# ---- cancels and lists --------------------------------------------------------------------


def test_cancels_by_id_client_oid_all_and_stops():
    async def scenario(h):
        first = await h.rest.place_order(limit_request(oid="l-1"))
        await h.rest.place_order(limit_request(oid="l-2"))
        await h.rest.place_order(limit_request(oid="l-3"))
        stop = await h.rest.place_order(stop_request(oid="s-1"))
        cancelled = await h.rest.cancel_order(first.order_id)
        with pytest.raises(NotCancelableError):
            await h.rest.cancel_order(first.order_id)
        by_oid = await h.rest.cancel_order_by_client_oid("XBTUSDTM", "l-2")
        (delete,) = h.server.received("DELETE /api/v1/orders/client-order/{clientOid}")
        remaining = await h.rest.cancel_all_orders("XBTUSDTM")
        stops = await h.rest.cancel_all_stop_orders("XBTUSDTM")
        return (first, stop, cancelled, by_oid, delete.raw_path, remaining, stops,
                await h.rest.all_open_orders(), await h.rest.all_stop_orders())

    first, stop, cancelled, by_oid, path, remaining, stops, left, left_stops = \
        run_with_server(scenario)
    assert cancelled == [first.order_id]
    assert by_oid == "l-2" and path == "/api/v1/orders/client-order/l-2?symbol=XBTUSDTM"
    assert len(remaining) == 1 and stop.order_id not in remaining
    assert stops == [stop.order_id]
    assert left == [] and left_stops == []


def test_list_helpers_follow_every_page():
    async def scenario(h):
        for index in range(5):
            await h.rest.place_order(stop_request(oid=f"s-{index}"))
        for index in range(3):
            await h.rest.place_order(limit_request(oid=f"l-{index}"))
        stops = await h.rest.all_stop_orders("XBTUSDTM", page_size=2)
        orders = await h.rest.all_open_orders("XBTUSDTM", page_size=2)
        pages = [r.raw_path for r in h.server.received("GET /api/v1/stopOrders")]
        return stops, orders, pages

    stops, orders, pages = run_with_server(scenario)
    assert [s.client_oid for s in stops] == [f"s-{i}" for i in range(5)]
    assert all(isinstance(s, StopOrder) for s in stops)
    assert [o.client_oid for o in orders] == [f"l-{i}" for i in range(3)]
    assert [p.split("currentPage=")[1][0] for p in pages] == ["1", "2", "3"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda rest: rest.ticker("XBT/USDTM"), "symbol"),
    (lambda rest: rest.cancel_order("../../api"), "orderId"),
    (lambda rest: rest.cancel_order_by_client_oid("XBTUSDTM", "bad oid"), "clientOid"),
    (lambda rest: rest.klines("XBTUSDTM", 7), "granularity_min"),
    (lambda rest: rest.open_orders(page_size=5000), "page_size"),
])
def test_bad_arguments_are_refused_before_sending(call, message):
    async def main():
        rest = KucoinFuturesRest(CREDENTIALS, config=RestConfig(base_url="http://127.0.0.1:9"))
        try:
            with pytest.raises(ValueError, match=message):
                await call(rest)
        finally:
            await rest.close()

    asyncio.run(main())


# ---- secrets ----------------------------------------------------------------------------


def test_secrets_never_reach_logs_reprs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    wrong = Credentials("key-123", "wrong-secret-abc", "pass-phrase-9")
    secrets = [CREDENTIALS.secret, CREDENTIALS.passphrase, signed_passphrase(CREDENTIALS),
               wrong.secret, signed_passphrase(wrong)]

    async def scenario(h):
        errors = []
        await h.rest.place_order(limit_request())
        h.server.script("GET /api/v1/ticker", *[Fault("drop_before")] * 10)
        h.server.script("GET /api/v1/position", Fault(
            "reply", 429, {"code": "429000", "msg": f"echo {CREDENTIALS.secret}"}))
        for call in (lambda: h.rest.ticker("XBTUSDTM"), lambda: h.rest.position("XBTUSDTM")):
            try:
                await call()
            except KucoinError as error:
                errors.append(error)
        other = KucoinFuturesRest(wrong, config=RestConfig(base_url=h.rest.base_url))
        try:
            await other.position("XBTUSDTM")
        except AuthenticationError as error:
            errors.append(error)
        finally:
            await other.close()
        signatures = [r.headers["KC-API-SIGN"] for r in h.server.requests
                      if "KC-API-SIGN" in r.headers]
        return errors, signatures, repr(h.rest) + repr(other) + repr(h.rest.stats())

    errors, signatures, reprs = run_with_server(scenario)
    assert len(errors) == 3 and signatures
    texts = [caplog.text, reprs] + [f"{e} {e!r} {e.message}" for e in errors]
    for secret in secrets + signatures:
        for text in texts:
            assert secret not in text


# ---- OrderRequest ----------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"client_oid": "has space"}, "clientOid"),
    ({"client_oid": "x" * 41}, "clientOid"),
    ({"symbol": ""}, "symbol"),
    ({"price": None}, "price"),
    ({"price": "abc"}, "price"),
    ({"price": "-1"}, "price"),
    ({"price": "1e5"}, "price"),
    ({"size": 0}, "size"),
    ({"size": 2.5}, "size"),
    ({"size": True}, "size"),
    ({"size": None}, "size"),
    ({"side": None}, "side"),
    ({"side": "long"}, "side"),
    ({"leverage": None}, "leverage"),
    ({"leverage": 0}, "leverage"),
    ({"type": "stop"}, "type"),
    ({"type": "market"}, "price"),
    ({"stop": "down"}, "stopPrice"),
    ({"stop": "down", "stop_price": "87000"}, "stopPriceType"),
    ({"stop": "sideways", "stop_price": "87000", "stop_price_type": "MP"}, "stop"),
    ({"stop_price": "87000"}, "stopPrice"),
    ({"stop_price_type": "TP"}, "stopPriceType"),
    ({"stop": "down", "stop_price": "0", "stop_price_type": "MP"}, "stopPrice"),
    ({"margin_mode": "isolated"}, "marginMode"),
    ({"time_in_force": "FOK"}, "timeInForce"),
    ({"post_only": True, "time_in_force": "IOC"}, "postOnly"),
    ({"remark": "r" * 101}, "remark"),
])
def test_order_request_rejects_invalid_fields_by_name(fields, field):
    base = {"client_oid": "oid-1", "symbol": "XBTUSDTM", "side": "buy", "type": "limit",
            "price": "100.5", "size": 1, "leverage": 3}
    with pytest.raises(OrderRequestError) as caught:
        OrderRequest(**{**base, **fields})
    assert caught.value.field == field and field in str(caught.value)


def test_close_order_may_omit_side_size_and_leverage():
    request = OrderRequest(client_oid="close-1", symbol="XBTUSDTM", type="market",
                           close_order=True)
    assert msgspec.json.decode(msgspec.json.encode(request)) == {
        "clientOid": "close-1", "symbol": "XBTUSDTM", "type": "market", "closeOrder": True}


def test_stop_market_helper_builds_a_reduce_only_mark_price_stop():
    request = stop_request()
    wire = msgspec.json.decode(msgspec.json.encode(request))
    assert wire["stop"] == "down" and wire["stopPrice"] == "87000.5"
    assert wire["stopPriceType"] == "MP" and wire["reduceOnly"] is True
    assert wire["type"] == "market" and "price" not in wire


# Our struct -> the official SDK's model of the same shape (test-only use of the SDK).
_SDK_MODELS = [
    (OrderRequest, "futures.order.model_add_order_req", "AddOrderReq"),
    (StopOrder, "futures.order.model_get_stop_order_list_items", "GetStopOrderListItems"),
    (Order, "futures.order.model_get_order_by_client_oid_resp", "GetOrderByClientOidResp"),
    (Contract, "futures.market.model_get_symbol_resp", "GetSymbolResp"),
    (Ticker, "futures.market.model_get_ticker_resp", "GetTickerResp"),
    (AccountOverview, "account.account.model_get_futures_account_resp",
     "GetFuturesAccountResp"),
    (Position, "futures.positions.model_get_position_details_resp", "GetPositionDetailsResp"),
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("ours", "module", "name"), _SDK_MODELS,
                         ids=[m[0].__name__ for m in _SDK_MODELS])
def test_wire_names_are_the_official_sdk_names(ours, module, name):
    sdk = pytest.importorskip(f"kucoin_universal_sdk.generate.{module}")
    theirs = getattr(sdk, name)
    official = {field.alias or attr for attr, field in theirs.model_fields.items()}
    wire = {field.encode_name for field in msgspec.structs.fields(ours)} - {"existing"}
    assert wire <= official, sorted(wire - official)


_oids = st.text("abcXYZ019_-", min_size=1, max_size=40)
_prices = st.decimals(min_value="0.1", max_value="1000000", places=1).map(str)


@settings(max_examples=150, deadline=None)
@given(oid=_oids, side=st.sampled_from(["buy", "sell"]), size=st.integers(1, 10**6),
       price=_prices, leverage=st.integers(1, 125), stop=st.sampled_from([None, "up", "down"]),
       market=st.booleans(), reduce_only=st.booleans())
def test_valid_requests_encode_to_compact_json_that_decodes_to_the_same_request(
        oid, side, size, price, leverage, stop, market, reduce_only):
    request = OrderRequest(
        client_oid=oid, symbol="XBTUSDTM", side=side, size=size, leverage=leverage,
        type="market" if market else "limit", price=None if market else price,
        stop=stop, stop_price=price if stop else None, stop_price_type="TP" if stop else None,
        reduce_only=reduce_only)
    body = msgspec.json.encode(request)
    assert b" " not in body
    assert msgspec.json.decode(body, type=OrderRequest) == request
    wire = msgspec.json.decode(body)
    assert isinstance(wire["size"], int) and wire["clientOid"] == oid
    assert ("price" in wire) is (not market) and ("stop" in wire) is (stop is not None)
    assert all(isinstance(wire[name], str) for name in ("price", "stopPrice") if name in wire)


@settings(max_examples=100, deadline=None)
@given(size=st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans()))
def test_any_non_positive_or_non_int_size_is_refused(size):
    with pytest.raises(OrderRequestError) as caught:
        OrderRequest.limit("oid", "XBTUSDTM", "buy", size, "1.0", 1)
    assert caught.value.field == "size"
