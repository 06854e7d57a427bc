"""A tiny KuCoin futures REST server for the REST client's tests (not the simulator).

It verifies every signed request with ``liveopt.exchange.signing.signature_matches`` over
the raw path and query as received and the raw body, records what it received, keeps a
small order book of accepted orders keyed by clientOid, and can be scripted per endpoint
key: a canned reply, a connection dropped before or after the request is handled, or a
reply that never comes.
"""

import asyncio
import json
import re
from collections.abc import Callable

import msgspec
from aiohttp import web

from liveopt.exchange.signing import Credentials, prehash, signature_matches, signed_passphrase

# Documented values from kucoin-protocol.md (3.7 contract sample, 3.4 order sample,
# 2.1 tickerV2 sample, 1.1 bullet intervals); the shapes follow the reference's field lists.
CONTRACT_SAMPLE = {
    "symbol": "XBTUSDTM", "rootSymbol": "USDT", "type": "FFWCSX", "baseCurrency": "XBT",
    "quoteCurrency": "USDT", "settleCurrency": "USDT", "firstOpenDate": 1585555200000,
    "expireDate": None, "settleDate": None, "maxOrderQty": 1000000, "maxPrice": 1000000.0,
    "lotSize": 1, "tickSize": 0.1, "indexPriceTickSize": 0.01, "multiplier": 0.001,
    "initialMargin": 0.008, "maintainMargin": 0.004, "maxRiskLimit": 100000,
    "minRiskLimit": 100000, "riskStep": 50000, "makerFeeRate": 0.0002,
    "takerFeeRate": 0.0006, "takerFixFee": 0.0, "makerFixFee": 0.0, "settlementFee": None,
    "isDeleverage": True, "isQuanto": True, "isInverse": False, "markMethod": "FairPrice",
    "fairMethod": "FundingRate", "indexSymbol": ".KXBTUSDT", "status": "Open",
    "fundingFeeRate": 0.000052, "predictedFundingFeeRate": 0.000083,
    "fundingRateGranularity": 28800000, "openInterest": "8724443", "turnoverOf24h": 1.5e9,
    "volumeOf24h": 16000.5, "markPrice": 88987.45, "indexPrice": 88990.1,
    "lastTradePrice": 88987.4, "maxLeverage": 125, "sourceExchanges": ["kucoin", "binance"],
    "lowPrice": 87000.0, "highPrice": 90000.0, "priceChgPct": 0.012, "priceChg": 1055.3,
    "supportCross": True, "buyLimit": 93000.0, "sellLimit": 85000.0, "k": 490.0, "m": 300.0,
}
SECOND_CONTRACT = {**CONTRACT_SAMPLE, "symbol": "ETHUSDTM", "baseCurrency": "ETH",
                   "tickSize": 0.01, "multiplier": 0.01, "maxLeverage": 100}
TICKER_SAMPLE = {
    "sequence": 1709284589209, "symbol": "XBTUSDTM", "side": "sell", "size": 5,
    "tradeId": "1794100537695", "price": "88987.4", "bestBidPrice": "88987.4",
    "bestBidSize": 713, "bestAskPrice": "88987.5", "bestAskSize": 1037,
    "ts": 1731665526461000000,
}
LEVEL2_SAMPLE = {
    "sequence": 1709284589209, "symbol": "XBTUSDTM",
    "bids": [[88987.4, 713], ["88987.3", 20]], "asks": [[88987.5, 1037], [88990, 4]],
    "ts": 1731665526461000000,
}
KLINE_SAMPLE = [
    [1731898200000, 90638.6, 90700.0, 90600.1, 90650.2, 21],
    [1731898260000, "90650.2", "90660", "90640.5", "90655.5", "33", "2991.4"],
]
ACCOUNT_SAMPLE = {
    "accountEquity": 394.439280806, "unrealisedPNL": 20.15278, "marginBalance": 371.3942988,
    "positionMargin": 102.20664159, "orderMargin": 10.06002012, "frozenFunds": 0.0,
    "availableBalance": 290.326799096, "currency": "USDT", "riskRatio": 0.0065289525,
    "maxWithdrawAmount": 290.3264,
}
POSITION_SAMPLE = {
    "id": "500000000000988255", "symbol": "XBTUSDTM", "crossMode": False,
    "marginMode": "ISOLATED", "positionSide": "BOTH", "leverage": 2.88,
    "delevPercentage": 0.18, "openingTimestamp": 1729155616322,
    "currentTimestamp": 1729482542135, "currentQty": -3, "currentCost": -202.29,
    "currentComm": 0.0577, "unrealisedCost": -202.29, "realisedGrossCost": 0.0,
    "realisedCost": 0.0577, "isOpen": True, "markPrice": 68900.7, "markValue": -206.70,
    "posCost": -202.29, "posInit": 67.43, "posMargin": 67.5, "posMaint": 1.18,
    "realisedGrossPnl": 0.0, "realisedPnl": -0.0577, "unrealisedPnl": -4.41,
    "unrealisedPnlPcnt": -0.0218, "unrealisedRoePcnt": -0.0654, "avgEntryPrice": 67430.9,
    "liquidationPrice": 89314.33, "bankruptPrice": 89975.16, "settleCurrency": "USDT",
    "isInverse": False, "autoDeposit": False, "maintMarginReq": 0.005, "riskLimit": 500000,
    "realLeverage": 2.88, "maintainMargin": 0.005, "newFieldFromTheFuture": {"x": 1},
}
ORDER_ACK_SAMPLE = {"orderId": "234125150956625920", "clientOid": "5c52e11203aa677f33e493fb"}

CODE_OK = "200000"


class Recorded(msgspec.Struct, frozen=True):
    """One request as the server received it."""

    method: str
    raw_path: str  # path and query exactly as on the request line
    headers: dict[str, str]
    body: str
    peer_port: int  # the client's port: equal ports mean a reused connection


class Fault(msgspec.Struct, frozen=True):
    """A scripted misbehaviour for the next request to one endpoint key.

    kind: ``"reply"`` (send ``status``/``payload``/``headers`` instead of handling),
    ``"drop_before"`` (close the connection without handling), ``"drop_after"`` (handle,
    then close without replying), ``"stall"`` (handle, then never reply)."""

    kind: str
    status: int = 200
    payload: object = None
    headers: dict[str, str] = {}


_ROUTES: tuple[tuple[str, re.Pattern[str], str, bool], ...] = tuple(
    (method, re.compile(f"^{pattern}$"), key, signed)
    for method, pattern, key, signed in (
        ("GET", "/api/v1/timestamp", "GET /api/v1/timestamp", False),
        ("POST", "/api/v1/bullet-public", "POST /api/v1/bullet-public", False),
        ("POST", "/api/v1/bullet-private", "POST /api/v1/bullet-private", True),
        ("GET", "/api/v1/contracts/active", "GET /api/v1/contracts/active", False),
        ("GET", "/api/v1/contracts/[^/]+", "GET /api/v1/contracts/{symbol}", False),
        ("GET", "/api/v1/ticker", "GET /api/v1/ticker", False),
        ("GET", "/api/v1/level2/snapshot", "GET /api/v1/level2/snapshot", False),
        ("GET", "/api/v1/kline/query", "GET /api/v1/kline/query", False),
        ("GET", "/api/v1/account-overview", "GET /api/v1/account-overview", True),
        ("POST", "/api/v1/orders", "POST /api/v1/orders", True),
        ("GET", "/api/v1/orders/byClientOid", "GET /api/v1/orders/byClientOid", True),
        ("DELETE", "/api/v1/orders/client-order/[^/]+",
         "DELETE /api/v1/orders/client-order/{clientOid}", True),
        ("DELETE", "/api/v1/orders/[^/]+", "DELETE /api/v1/orders/{orderId}", True),
        ("DELETE", "/api/v3/orders", "DELETE /api/v3/orders", True),
        ("DELETE", "/api/v1/stopOrders", "DELETE /api/v1/stopOrders", True),
        ("GET", "/api/v1/orders", "GET /api/v1/orders", True),
        ("GET", "/api/v1/stopOrders", "GET /api/v1/stopOrders", True),
        ("GET", "/api/v1/position", "GET /api/v1/position", True),
        ("GET", "/api/v1/positions", "GET /api/v1/positions", True),
    )
)


class FakeKucoin:
    """The server. ``server_time_ms`` is its clock (injected); ``start()`` returns the base
    URL on 127.0.0.1 with an OS-chosen port."""

    def __init__(self, credentials: Credentials, server_time_ms: Callable[[], int]) -> None:
        self.credentials = credentials
        self.server_time_ms = server_time_ms
        self.requests: list[Recorded] = []
        self.faults: dict[str, list[Fault]] = {}
        self.orders: dict[str, dict] = {}  # clientOid -> order item
        self.rate_limit_headers = {"gw-ratelimit-limit": "2000",
                                   "gw-ratelimit-remaining": "1990",
                                   "gw-ratelimit-reset": "29000"}
        self._next_order_id = 100000000000000000
        self._runner: web.AppRunner | None = None
        self._stalled: list[asyncio.Event] = []
        self.base_url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # the OS-chosen port
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        for event in self._stalled:
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def script(self, key: str, *faults: Fault) -> None:
        """Queue faults for the next requests to ``key`` (e.g. ``"POST /api/v1/orders"``)."""
        self.faults.setdefault(key, []).extend(faults)

    def received(self, key: str) -> list[Recorded]:
        """The recorded requests that matched ``key``."""
        return [r for r in self.requests if _route(r.method, r.raw_path.split("?")[0])[0] == key]

    # ---- plumbing -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(Recorded(request.method, request.raw_path, dict(request.headers),
                                      body, peer[1] if peer else 0))
        key, signed = _route(request.method, request.path)
        if key is None:
            return self._reply(404, {"code": "404000", "msg": "Not Found"})
        queue = self.faults.get(key)
        fault = queue.pop(0) if queue else None
        if fault is not None and fault.kind == "reply":
            return self._reply(fault.status, fault.payload, fault.headers)
        if fault is not None and fault.kind == "drop_before":
            return self._drop(request)
        if signed:
            refusal = self._check_auth(request, body)
            if refusal is not None:
                return self._reply(401, {"code": refusal[0], "msg": refusal[1]})
        status, payload = self._dispatch(key, request, body)
        if fault is not None and fault.kind == "drop_after":
            return self._drop(request)
        if fault is not None and fault.kind == "stall":
            event = asyncio.Event()
            self._stalled.append(event)
            await event.wait()
        return self._reply(status, payload)

    def _drop(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=200)

    def _reply(self, status: int, payload: object,
               headers: dict[str, str] | None = None) -> web.Response:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        merged = {**self.rate_limit_headers, **(headers or {})}
        return web.Response(status=status, text=text, content_type="application/json",
                            headers=merged)

    def _check_auth(self, request: web.Request, body: str) -> tuple[str, str] | None:
        names = ("KC-API-KEY", "KC-API-SIGN", "KC-API-TIMESTAMP", "KC-API-PASSPHRASE",
                 "KC-API-KEY-VERSION")
        if any(name not in request.headers for name in names):
            return ("400001", "Please check the header of your request")
        if request.headers["KC-API-KEY"] != self.credentials.key:
            return ("400003", "KC-API-KEY not exists")
        if request.headers["KC-API-KEY-VERSION"] not in ("2", "3"):
            return ("400003", "unsupported key version")
        if request.headers["KC-API-PASSPHRASE"] != signed_passphrase(self.credentials):
            return ("400004", "Invalid KC-API-PASSPHRASE")
        timestamp = request.headers["KC-API-TIMESTAMP"]
        if not timestamp.isdigit() or abs(int(timestamp) - self.server_time_ms()) > 5000:
            return ("400002", "Invalid KC-API-TIMESTAMP")
        text = prehash(timestamp, request.method, request.raw_path, body)
        if not signature_matches(self.credentials.secret, text, request.headers["KC-API-SIGN"]):
            return ("400005", "Invalid KC-API-SIGN")
        return None

    def _dispatch(self, key: str, request: web.Request, body: str) -> tuple[int, object]:
        query = request.query
        ok = lambda data: (200, {"code": CODE_OK, "data": data})  # noqa: E731
        match key:
            case "GET /api/v1/timestamp":
                return ok(self.server_time_ms())
            case "POST /api/v1/bullet-public" | "POST /api/v1/bullet-private":
                return ok({"token": "tok-" + key[-7:], "instanceServers": [{
                    "endpoint": self.base_url.replace("http", "ws") + "/", "encrypt": False,
                    "protocol": "websocket", "pingInterval": 18000, "pingTimeout": 10000}]})
            case "GET /api/v1/contracts/active":
                return ok([CONTRACT_SAMPLE, SECOND_CONTRACT])
            case "GET /api/v1/contracts/{symbol}":
                symbol = request.path.rsplit("/", 1)[1]
                for contract in (CONTRACT_SAMPLE, SECOND_CONTRACT):
                    if contract["symbol"] == symbol:
                        return ok(contract)
                return 200, {"code": "400100", "msg": f"contract {symbol} not exists"}
            case "GET /api/v1/ticker":
                return ok(TICKER_SAMPLE)
            case "GET /api/v1/level2/snapshot":
                return ok(LEVEL2_SAMPLE)
            case "GET /api/v1/kline/query":
                return ok(KLINE_SAMPLE)
            case "GET /api/v1/account-overview":
                return ok({**ACCOUNT_SAMPLE, "currency": query.get("currency", "USDT")})
            case "GET /api/v1/position":
                return ok({**POSITION_SAMPLE, "symbol": query["symbol"]})
            case "GET /api/v1/positions":
                return ok([POSITION_SAMPLE])
            case "POST /api/v1/orders":
                return self._add_order(json.loads(body))
            case "GET /api/v1/orders/byClientOid":
                return ok(self.orders.get(query.get("clientOid", "")))
            case "DELETE /api/v1/orders/{orderId}":
                return self._cancel(request.path.rsplit("/", 1)[1])
            case "DELETE /api/v1/orders/client-order/{clientOid}":
                if "symbol" not in query:
                    return 200, {"code": "400100", "msg": "symbol is required"}
                client_oid = request.path.rsplit("/", 1)[1]
                order = self.orders.get(client_oid)
                if order is None or order["symbol"] != query["symbol"]:
                    return 200, {"code": "100004", "msg": "Order is in not cancelable state"}
                status, payload = self._cancel(order["id"])
                return (status, payload) if payload["code"] != CODE_OK else ok(
                    {"clientOid": client_oid})
            case "DELETE /api/v3/orders" | "DELETE /api/v1/stopOrders":
                stops = key.endswith("stopOrders")
                ids = [o["id"] for o in self.orders.values() if o["isActive"]
                       and bool(o["stop"]) == stops
                       and o["symbol"] == query.get("symbol", o["symbol"])]
                for order_id in ids:
                    self._cancel(order_id)
                return ok({"cancelledOrderIds": ids})
            case "GET /api/v1/orders" | "GET /api/v1/stopOrders":
                stops = key.endswith("stopOrders")
                items = [o for o in self.orders.values() if o["isActive"]
                         and bool(o["stop"]) == stops
                         and o["symbol"] == query.get("symbol", o["symbol"])]
                return ok(_page(items, int(query.get("currentPage", 1)),
                                int(query.get("pageSize", 50))))
        raise AssertionError(f"unrouted {key}")

    def _add_order(self, body: dict) -> tuple[int, object]:
        client_oid = body.get("clientOid")
        if not client_oid:
            return 200, {"code": "400100", "msg": "clientOid is required"}
        if client_oid in self.orders:
            return 200, {"code": "300018", "msg": "clientOid parameter repeated"}
        self._next_order_id += 1
        order_id = str(self._next_order_id)
        stop = body.get("stop", "")
        self.orders[client_oid] = {
            "id": order_id, "symbol": body["symbol"], "type": body.get("type", "limit"),
            "side": body.get("side", "sell"), "price": body.get("price"),
            "size": body.get("size", 0), "value": "0", "dealValue": "0", "dealSize": 0,
            "stp": "", "stop": stop, "stopPriceType": body.get("stopPriceType", ""),
            "stopTriggered": False, "stopPrice": body.get("stopPrice"),
            "timeInForce": body.get("timeInForce", "GTC"), "postOnly": False,
            "hidden": False, "iceberg": False, "leverage": str(body.get("leverage", 1)),
            "forceHold": False, "closeOrder": body.get("closeOrder", False),
            "visibleSize": 0, "clientOid": client_oid, "remark": None, "tags": "",
            "isActive": True, "cancelExist": False, "createdAt": self.server_time_ms(),
            "updatedAt": self.server_time_ms(), "endAt": None,
            "orderTime": self.server_time_ms() * 1_000_000, "settleCurrency": "USDT",
            "marginMode": body.get("marginMode", "ISOLATED"), "avgDealPrice": "0",
            "filledSize": 0, "filledValue": "0", "status": "open",
            "reduceOnly": body.get("reduceOnly", False),
        }
        return 200, {"code": CODE_OK, "data": {"orderId": order_id, "clientOid": client_oid}}

    def _cancel(self, order_id: str) -> tuple[int, dict]:
        for client_oid, order in self.orders.items():
            if order["id"] == order_id:
                if not order["isActive"]:
                    return 200, {"code": "100004", "msg": "Order is in not cancelable state"}
                self.orders[client_oid] = {**order, "isActive": False, "status": "done",
                                           "cancelExist": True}
                return 200, {"code": CODE_OK, "data": {"cancelledOrderIds": [order_id]}}
        return 200, {"code": "100004", "msg": "Order is in not cancelable state"}


def _route(method: str, path: str) -> tuple[str | None, bool]:
    for route_method, pattern, key, signed in _ROUTES:
        if route_method == method and pattern.match(path):
            return key, signed
    return None, False


def _page(items: list[dict], page: int, page_size: int) -> dict:
    total_page = max(1, -(-len(items) // page_size))
    start = (page - 1) * page_size
    return {"currentPage": page, "pageSize": page_size, "totalNum": len(items),
            "totalPage": total_page, "items": items[start:start + page_size]}
