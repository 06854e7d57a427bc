"""``/ws/telemetry``: the live feed of the dashboard (see ``docs/telemetry.md``).

One producer serves every client. Each cadence it reads the controller once, builds one
``TelemetryUpdate`` and encodes it once; each ``ServiceEvent`` from ``controller.subscribe()``
is encoded once as a ``TelemetryEvent``. Per client only the ``seq`` number differs: the
encoded message is split around its ``seq`` value and the client's number is spliced in,
so nothing is re-encoded per client.

Every client has a bounded queue of ready frames and its own writer task. The producer only
ever ``put_nowait``s; a client whose queue is full is dropped (closed with 1013 "try again
later", or aborted if it cannot even take the close frame) and counted. A slow client thus
never blocks the producer, the other clients or the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import WSMsgType, web

from liveopt.service.protocol import ControllerApi, EventSubscription
from liveopt.service.telemetry_messages import (
    TELEMETRY_VERSION,
    TelemetryEvent,
    TelemetryInit,
    TelemetryMessage,
    TelemetryUpdate,
)
from liveopt.service.views import VariantResult

log = logging.getLogger(__name__)

#: Close code for a client dropped for being too slow (RFC 6455 "Try Again Later").
CLOSE_TOO_SLOW = 1013
#: Close code when the server shuts down ("Going Away").
CLOSE_GOING_AWAY = 1001
_SEQ_PLACEHOLDER = b'"seq":0,'

Sleep = Callable[[float], Awaitable[None]]


class SplitFrame(msgspec.Struct, frozen=True):
    """An encoded message cut around its ``seq`` value: ``head + str(seq) + tail``."""

    head: bytes
    tail: bytes

    def with_seq(self, seq: int) -> bytes:
        return b"%s%d%s" % (self.head, seq, self.tail)


_encoder = msgspec.json.Encoder()


def encode_split(message: TelemetryMessage) -> SplitFrame:
    """Encode ``message`` (built with ``seq=0``) once, ready for any client's ``seq``."""
    data = _encoder.encode(message)
    # The tag comes first and ``seq`` is every message's first field, so the placeholder's
    # first occurrence is always the seq field itself (nothing before it is user text).
    at = data.find(_SEQ_PLACEHOLDER)
    if at < 0:
        raise ValueError(f"{type(message).__name__} has no leading seq field")
    split = at + len(_SEQ_PLACEHOLDER) - 2  # keep '"seq":' in the head
    return SplitFrame(head=data[:split], tail=data[split + 1:])


class _Client:
    """One connected WebSocket with its bounded queue of ready frames."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None,
                 maxsize: int) -> None:
        self.ws = ws
        self.transport = transport
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize)
        self.seq = 0
        self.dropped = False


class TelemetryFeed:
    """The telemetry producer and the ``/ws/telemetry`` handler.

    Parameters
    ----------
    controller
        What is read (``status``, ``gate``, ``results``, ``equity_curves``, ``health``)
        and subscribed to (``subscribe``).
    cadence_s
        Seconds between two ``update`` messages.
    client_queue
        Frames a client may have pending before it is dropped.
    leaderboard_rows
        Top rows per update; the main strategy's row is always added.
    equity_leaders
        How many leaders' equity curves are sent (plus always the main strategy's).
    clock_ns, sleep
        Injected time sources (deterministic tests).
    close_timeout_s
        How long a dropped client gets to take the close frame before its connection
        is aborted.
    """

    def __init__(self, controller: ControllerApi, *, cadence_s: float = 1.0,
                 client_queue: int = 64, leaderboard_rows: int = 20, equity_leaders: int = 5,
                 clock_ns: Callable[[], int] = time.time_ns, sleep: Sleep = asyncio.sleep,
                 close_timeout_s: float = 1.0, event_queue: int = 10_000) -> None:
        if cadence_s <= 0:
            raise ValueError(f"cadence_s: must be > 0, got {cadence_s}")
        if client_queue < 1:
            raise ValueError(f"client_queue: must be >= 1, got {client_queue}")
        if leaderboard_rows < 1:
            raise ValueError(f"leaderboard_rows: must be >= 1, got {leaderboard_rows}")
        self.controller = controller
        self.cadence_s = cadence_s
        self.client_queue = client_queue
        self.leaderboard_rows = leaderboard_rows
        self.equity_leaders = max(0, equity_leaders)
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._close_timeout_s = close_timeout_s
        self._event_queue = event_queue
        self._clients: set[_Client] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._subscription: EventSubscription | None = None
        self.clients_dropped = 0
        self.messages_sent = 0
        self.updates_built = 0
        self.errors = 0

    # --- counters --------------------------------------------------------------------
    @property
    def client_count(self) -> int:
        return len(self._clients)

    def counters(self) -> dict[str, int]:
        """Counters for ``/metrics``."""
        dropped = self._subscription.dropped if self._subscription is not None else 0
        return {"clients": len(self._clients), "clients_dropped": self.clients_dropped,
                "messages_sent": self.messages_sent, "events_dropped": dropped}

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to the controller and start the producer tasks."""
        if self._tasks:
            return
        self._subscription = self.controller.subscribe(self._event_queue)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run_updates(), name="telemetry-updates"),
                       loop.create_task(self._run_events(self._subscription),
                                        name="telemetry-events")]

    async def stop(self) -> None:
        """Stop producing, close every client (1001) and unsubscribe."""
        if self._subscription is not None:
            self._subscription.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        clients = list(self._clients)
        self._clients.clear()
        for client in clients:
            client.dropped = True
        # In parallel: each close may wait up to close_timeout_s for its client's reply.
        await asyncio.gather(*(self._close(client, CLOSE_GOING_AWAY, "server shutting down")
                               for client in clients))
        for task in list(self._background):
            task.cancel()

    # --- building messages -----------------------------------------------------------
    def _leaderboard(self) -> list[VariantResult]:
        rows = self.controller.results(self.leaderboard_rows)
        if not any(row.is_main for row in rows):
            main = [row for row in self.controller.results() if row.is_main]
            rows = rows + main[:1]
        return rows

    def _curve_ids(self, rows: list[VariantResult]) -> list[int]:
        leaders = [row.variant_id for row in rows if not row.is_main][:self.equity_leaders]
        return leaders + [row.variant_id for row in rows if row.is_main]

    def build_init(self) -> TelemetryInit:
        """The first message a client receives (``seq`` filled in per client)."""
        rows = self._leaderboard()
        main_id = next((row.variant_id for row in rows if row.is_main), -1)
        return TelemetryInit(
            seq=0, version=TELEMETRY_VERSION, cadence_s=self.cadence_s,
            main_variant_id=main_id, status=self.controller.status(),
            gate=self.controller.gate(), leaderboard=rows,
            equity=self.controller.equity_curves(self._curve_ids(rows)),
            health=self.controller.health())

    def build_update(self) -> TelemetryUpdate:
        """One cadence's snapshot of the controller (``seq`` filled in per client)."""
        rows = self._leaderboard()
        return TelemetryUpdate(
            seq=0, ts_ns=self._clock_ns(), status=self.controller.status(),
            gate=self.controller.gate(), leaderboard=rows,
            equity=self.controller.equity_curves(self._curve_ids(rows)),
            health=self.controller.health())

    # --- producer --------------------------------------------------------------------
    def broadcast(self, message: TelemetryMessage) -> None:
        """Encode ``message`` once and queue it for every client; drop full clients."""
        if not self._clients:
            return
        frame = encode_split(message)
        for client in list(self._clients):
            self._offer(client, frame)

    def _offer(self, client: _Client, frame: SplitFrame) -> None:
        if client.queue.full():
            self._drop(client, f"too slow: {client.queue.maxsize} messages pending")
            return
        client.seq += 1
        client.queue.put_nowait(frame.with_seq(client.seq))
        self.messages_sent += 1

    async def _run_updates(self) -> None:
        while True:
            await self._sleep(self.cadence_s)
            if not self._clients:
                continue
            try:
                update = self.build_update()
            except Exception:
                # A failing read must not end the feed: count it and try next cadence.
                self.errors += 1
                log.exception("telemetry: building an update failed")
                continue
            self.updates_built += 1
            self.broadcast(update)

    async def _run_events(self, subscription: EventSubscription) -> None:
        async for event in subscription:
            try:
                self.broadcast(TelemetryEvent(seq=0, event=event))
            except Exception:
                # One unencodable event must not end the forwarding of all later ones.
                self.errors += 1
                log.exception("telemetry: forwarding %s failed", type(event).__name__)

    # --- clients ---------------------------------------------------------------------
    def _drop(self, client: _Client, reason: str) -> None:
        if client.dropped:
            return
        client.dropped = True
        self._clients.discard(client)
        self.clients_dropped += 1
        log.warning("telemetry: dropping a client (%s)", reason)
        task = asyncio.get_running_loop().create_task(self._close(client, CLOSE_TOO_SLOW,
                                                                  reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _close(self, client: _Client, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(client.ws.close(code=code, message=reason.encode()),
                                   self._close_timeout_s)
        except (TimeoutError, ConnectionError, RuntimeError):
            # It cannot even take the close frame (its buffers are full): cut it off.
            if client.transport is not None:
                client.transport.abort()

    async def _write(self, client: _Client) -> None:
        while True:
            frame = await client.queue.get()
            await client.ws.send_frame(frame, WSMsgType.TEXT)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The ``GET /ws/telemetry`` handler (read-only, no token needed)."""
        # No per-message compression: it would cost CPU per client for every message.
        ws = web.WebSocketResponse(heartbeat=20.0, compress=False, max_msg_size=64 * 1024)
        await ws.prepare(request)
        client = _Client(ws, request.transport, self.client_queue)
        try:
            init = self.build_init()
        except Exception as error:
            self.errors += 1
            log.exception("telemetry: building the init message failed")
            await ws.close(code=1011, message=f"init failed: {type(error).__name__}".encode())
            return ws
        # Registered in the same step as its init is queued: no update can come first.
        self._clients.add(client)
        self._offer(client, encode_split(init))
        writer = asyncio.get_running_loop().create_task(self._write(client))
        try:
            async for message in ws:
                # Clients have nothing to say; an error frame ends the connection.
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await writer
            self._clients.discard(client)
        return ws
