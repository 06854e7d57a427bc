"""The official KuCoin SDK (``kucoin_universal_sdk``, test-only dependency) works unchanged
against the simulator: its futures REST and WebSocket endpoints are pointed at the local
server and everything else is the SDK's own code (signing with key version 3 and the wall
clock, its token flow, welcome wait, ping, subscribe/ack and typed decoding).

The SDK is synchronous (requests, websocket-client and threads), so it runs in a worker
thread while the simulator runs on the test's event loop."""

from __future__ import annotations

import asyncio
import threading
import warnings

import pytest

# The SDK's pydantic models emit deprecation warnings when imported; they are not ours.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kucoin_universal_sdk.api.client import DefaultClient
    from kucoin_universal_sdk.generate.futures.market.model_get_symbol_req import (
        GetSymbolReqBuilder,
    )
    from kucoin_universal_sdk.generate.futures.market.model_get_ticker_req import (
        GetTickerReqBuilder,
    )
    from kucoin_universal_sdk.generate.futures.order.model_add_order_req import (
        AddOrderReq,
        AddOrderReqBuilder,
    )
    from kucoin_universal_sdk.generate.futures.order.model_cancel_order_by_client_oid_req import (
        CancelOrderByClientOidReqBuilder,
    )
    from kucoin_universal_sdk.generate.futures.order.model_cancel_order_by_id_req import (
        CancelOrderByIdReqBuilder,
    )
    from kucoin_universal_sdk.generate.futures.order.model_get_order_by_client_oid_req import (
        GetOrderByClientOidReqBuilder,
    )
    from kucoin_universal_sdk.model.client_option import ClientOptionBuilder
    from kucoin_universal_sdk.model.common import RestError
    from kucoin_universal_sdk.model.transport_option import TransportOptionBuilder
    from kucoin_universal_sdk.model.websocket_option import WebSocketClientOption

from liveopt.exchange.signing import Credentials
from liveopt.sim.config import SimConfig
from liveopt.sim.server import start_sim

CREDS = Credentials("sdk-key", "sdk-secret", "sdk-passphrase")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sdk_client(url: str, credentials: Credentials = CREDS) -> DefaultClient:
    transport = TransportOptionBuilder().set_max_retries(0).set_read_timeout(5).build()
    option = (ClientOptionBuilder()
              .set_key(credentials.key).set_secret(credentials.secret)
              .set_passphrase(credentials.passphrase)
              .set_futures_endpoint(url).set_spot_endpoint(url).set_broker_endpoint(url)
              .set_transport_option(transport)
              .set_websocket_client_option(WebSocketClientOption(reconnect=False,
                                                                 dial_timeout=5.0))
              .build())
    return DefaultClient(option)


def run_with_sim(blocking_scenario, **overrides):
    """Start the simulator on the wall clock (the SDK signs with it) and run the blocking
    ``blocking_scenario(sim)`` in a worker thread."""

    async def main():
        sim = await start_sim(SimConfig(credentials=CREDS, tick_ms=20, **overrides))
        try:
            return await asyncio.to_thread(blocking_scenario, sim)
        finally:
            await sim.stop()

    return asyncio.run(main())


def test_sdk_reads_contract_ticker_and_server_time():
    def scenario(sim):
        market = sdk_client(sim.url).rest_service().get_futures_service().get_market_api()
        contract = market.get_symbol(GetSymbolReqBuilder().set_symbol("XBTUSDTM").build())
        assert contract.symbol == "XBTUSDTM"
        assert contract.tick_size == 0.1 and contract.multiplier == 0.001
        assert contract.type.value == "FFWCSX"
        assert contract.status.value == "Open"
        ticker = market.get_ticker(GetTickerReqBuilder().set_symbol("XBTUSDTM").build())
        assert ticker.symbol == "XBTUSDTM"
        assert float(ticker.best_ask_price) > float(ticker.best_bid_price)
        assert ticker.common_response.rate_limit.limit == 2000
        assert ticker.common_response.rate_limit.remaining < 2000
        server_time = market.get_server_time()
        assert abs(server_time.data - sim.server.now_ns() // 1_000_000) < 60_000
        all_contracts = market.get_all_symbols()
        assert [c.symbol for c in all_contracts.data] == ["XBTUSDTM", "ETHUSDTM"]

    run_with_sim(scenario, symbols=("XBTUSDTM", "ETHUSDTM"))


def test_sdk_places_finds_and_cancels_orders_with_signed_requests():
    def scenario(sim):
        futures = sdk_client(sim.url).rest_service().get_futures_service()
        orders = futures.get_order_api()
        bid = futures.get_market_api().get_ticker(
            GetTickerReqBuilder().set_symbol("XBTUSDTM").build()).best_bid_price

        def limit(client_oid: str):
            return (AddOrderReqBuilder().set_client_oid(client_oid)
                    .set_side(AddOrderReq.SideEnum.BUY).set_symbol("XBTUSDTM")
                    .set_leverage(3).set_type(AddOrderReq.TypeEnum.LIMIT)
                    .set_price(bid).set_size(1).build())

        placed = orders.add_order(limit("sdk-1"))
        assert placed.client_oid == "sdk-1" and placed.order_id
        found = orders.get_order_by_client_oid(
            GetOrderByClientOidReqBuilder().set_client_oid("sdk-1").build())
        assert found.id == placed.order_id
        cancelled = orders.cancel_order_by_id(
            CancelOrderByIdReqBuilder().set_order_id(placed.order_id).build())
        assert cancelled.cancelled_order_ids == [placed.order_id]

        orders.add_order(limit("sdk-2"))
        by_oid = orders.cancel_order_by_client_oid(
            CancelOrderByClientOidReqBuilder().set_symbol("XBTUSDTM")
            .set_client_oid("sdk-2").build())
        assert by_oid.client_oid == "sdk-2"

    run_with_sim(scenario)


def test_sdk_with_wrong_credentials_gets_the_signature_error():
    def scenario(sim):
        wrong = Credentials(CREDS.key, "not-the-secret", CREDS.passphrase)
        orders = sdk_client(sim.url, wrong).rest_service().get_futures_service().get_order_api()
        try:
            orders.add_order(AddOrderReqBuilder().set_client_oid("x").set_side(
                AddOrderReq.SideEnum.BUY).set_symbol("XBTUSDTM").set_leverage(3).set_type(
                AddOrderReq.TypeEnum.MARKET).set_size(1).build())
        except RestError as exc:
            return str(exc)
        raise AssertionError("a wrongly signed order was accepted")

    # A wrong secret also signs the passphrase wrongly, which is checked first.
    message = run_with_sim(scenario)
    assert "401" in message and "400004" in message


def test_sdk_websocket_receives_ticker_v2_and_execution_messages():
    def scenario(sim):
        ws = sdk_client(sim.url).ws_service().new_futures_public_ws()
        tickers, trades = [], []
        got_both = threading.Event()

        def on_ticker(topic, subject, event):
            tickers.append((topic, subject, event))
            if trades:
                got_both.set()

        def on_trade(topic, subject, event):
            trades.append((topic, subject, event))
            if tickers:
                got_both.set()

        ws.start()
        try:
            ws.ticker_v2("XBTUSDTM", on_ticker)
            ws.execution("XBTUSDTM", on_trade)
            assert got_both.wait(timeout=10), "no tickerV2 and execution messages arrived"
        finally:
            ws.stop()
        topic, subject, ticker = tickers[0]
        assert (topic, subject) == ("/contractMarket/tickerV2:XBTUSDTM", "tickerV2")
        assert ticker.symbol == "XBTUSDTM" and isinstance(ticker.best_bid_price, str)
        assert isinstance(ticker.best_bid_size, int) and ticker.ts > 10**18
        topic, subject, trade = trades[0]
        assert (topic, subject) == ("/contractMarket/execution:XBTUSDTM", "match")
        assert trade.side in ("buy", "sell") and trade.size >= 1
        assert trade.trade_id and isinstance(trade.price, str)
        sequences = [t[2].sequence for t in trades]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))

    run_with_sim(scenario)
