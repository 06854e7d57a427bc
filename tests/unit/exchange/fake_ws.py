"""A scriptable KuCoin-like WebSocket server for the feed tests (127.0.0.1, port 0).

It speaks the control protocol (welcome, ping/pong, subscribe/ack, error frames) and lets
each test push market frames from a per-connection script. Frame builders produce the
documented futures shapes (kucoin-protocol.md section 2).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from liveopt.exchange.tokens import BulletToken, InstanceServer

Script = Callable[["FakeConnection"], Awaitable[None]]


class FakeConnection:
    """One accepted client connection, as the server saw it."""

    def __init__(self, ws: ServerConnection, index: int) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        self.ws = ws
        self.index = index
        self.token = query.get("token", [""])[0]
        self.connect_id = query.get("connectId", [""])[0]
        self.received: list[dict] = []
        self.subscribed: list[str] = []
        self.pings: list[str] = []
        self._changed = asyncio.Event()

    async def send(self, frame: dict | str) -> None:
        """Send a frame (a dict is JSON-encoded)."""
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def wait_subscribed(self, count: int) -> None:
        """Wait until ``count`` subscribes have been received and acked."""
        while len(self.subscribed) < count:
            self._changed.clear()
            await self._changed.wait()

    def _note(self) -> None:
        self._changed.set()


class FakeKucoinServer:
    """Run with ``async with FakeKucoinServer(...) as server``; see the flags below.

    ``scripts[i]`` runs on the i-th connection once the welcome has been sent (a missing
    script leaves the connection idle). The flags may be changed while it runs.
    """

    def __init__(self, scripts: list[Script] | None = None) -> None:
        self.scripts = scripts or []
        self.send_welcome = True
        self.answer_pings = True
        self.send_acks = True
        self.refuse_topics: set[str] = set()
        self.connections: list[FakeConnection] = []
        self.script_errors: list[BaseException] = []
        self.endpoint = ""
        self._server = None
        self._new_connection = asyncio.Event()

    async def __aenter__(self) -> FakeKucoinServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, ping_interval=None)
        port = self._server.sockets[0].getsockname()[1]
        self.endpoint = f"ws://127.0.0.1:{port}/endpoint"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def wait_connections(self, count: int) -> list[FakeConnection]:
        """Wait until ``count`` connections have been accepted."""
        while len(self.connections) < count:
            self._new_connection.clear()
            await self._new_connection.wait()
        return self.connections

    async def _handle(self, ws: ServerConnection) -> None:
        conn = FakeConnection(ws, len(self.connections))
        self.connections.append(conn)
        self._new_connection.set()
        if self.send_welcome:
            await conn.send({"id": conn.connect_id, "type": "welcome"})
        script = self.scripts[conn.index] if conn.index < len(self.scripts) else None
        task = asyncio.create_task(script(conn)) if script else None
        if task is not None:
            task.add_done_callback(self._record_failure)
        try:
            async for raw in ws:
                await self._answer(conn, json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            if task is not None:
                task.cancel()

    def _record_failure(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.script_errors.append(task.exception())

    async def _answer(self, conn: FakeConnection, request: dict) -> None:
        conn.received.append(request)
        if request["type"] == "ping":
            conn.pings.append(request["id"])
            if self.answer_pings:
                await conn.send({"id": request["id"], "type": "pong", "timestamp": 1})
        elif request["type"] == "subscribe":
            if request["topic"].partition(":")[0] in self.refuse_topics:
                await conn.send(
                    {"id": request["id"], "type": "error", "code": 400, "data": "bad topic"}
                )
                return
            conn.subscribed.append(request["topic"])
            if self.send_acks and request.get("response"):
                await conn.send({"id": str(request["id"]), "type": "ack"})
        conn._note()


class TokenIssuer:
    """A ``token_provider`` that issues a new token per call (``tok-1``, ``tok-2``, ...)."""

    def __init__(
        self,
        server: FakeKucoinServer,
        ping_interval_ms: int = 10_000,
        ping_timeout_ms: int = 10_000,
    ) -> None:
        self.server = server
        self.ping_interval_ms = ping_interval_ms
        self.ping_timeout_ms = ping_timeout_ms
        self.issued: list[str] = []

    async def __call__(self) -> BulletToken:
        token = f"tok-{len(self.issued) + 1}"
        self.issued.append(token)
        return BulletToken(
            token=token,
            instance_servers=[
                InstanceServer(
                    endpoint=self.server.endpoint,
                    ping_interval=self.ping_interval_ms,
                    ping_timeout=self.ping_timeout_ms,
                    encrypt=False,
                )
            ],
        )


# -- frame builders (current documented shapes) ---------------------------------------------


def trade_frame(
    symbol: str,
    sequence: int,
    *,
    price: str = "100.5",
    size: int = 1,
    side: str = "buy",
    ts: int | None = None,
) -> dict:
    """A ``/contractMarket/execution`` message in the current shape."""
    return {
        "topic": f"/contractMarket/execution:{symbol}",
        "type": "message",
        "subject": "match",
        "sn": sequence,
        "data": {
            "symbol": symbol,
            "sequence": sequence,
            "side": side,
            "size": size,
            "price": price,
            "takerOrderId": "t",
            "makerOrderId": "m",
            "tradeId": str(sequence),
            "ts": ts if ts is not None else 1_700_000_000_000_000_000 + sequence,
        },
    }


def ticker_frame(
    symbol: str, sequence: int, *, bid: str = "100.0", ask: str = "100.1", ts: int | None = None
) -> dict:
    """A ``/contractMarket/tickerV2`` message."""
    return {
        "topic": f"/contractMarket/tickerV2:{symbol}",
        "type": "message",
        "subject": "tickerV2",
        "sn": sequence,
        "data": {
            "symbol": symbol,
            "sequence": sequence,
            "bestBidSize": 3,
            "bestBidPrice": bid,
            "bestAskPrice": ask,
            "bestAskSize": 4,
            "ts": ts if ts is not None else 1_700_000_000_000_000_000 + sequence,
        },
    }
