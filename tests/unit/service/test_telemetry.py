"""The telemetry WebSocket on a real server (127.0.0.1, port 0) over the fake controller:
init first, updates per cadence with per-client ``seq``, events forwarded, one build and
one encoding per update for all clients, slow clients dropped (1013) without stalling the
producer or the fast clients, and shutdown closing clients (1001).

Most tests drive the cadence by hand (``ManualCadence`` replaces the feed's sleep), so
what is asserted never depends on timing; one test runs the real timer at 50 ms."""

from __future__ import annotations

import asyncio
import base64
import os
import socket

import aiohttp
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.service.api import create_app, serve
from liveopt.service.events import AlertRaised, PromotionApplied
from liveopt.service.telemetry import CLOSE_TOO_SLOW, encode_split
from liveopt.service.telemetry_messages import (
    TELEMETRY_VERSION,
    TelemetryEvent,
    TelemetryInit,
    TelemetryMessage,
    TelemetryUpdate,
)
from liveopt.service.views import Alert
from tests.unit.service.fake_controller import (
    MAIN_VARIANT_ID,
    FakeController,
    ManualClock,
    StaticToken,
)

TOKEN = "telemetry-test-token"
STEP_TIMEOUT_S = 10.0  # a safety net against hangs, never a measured duration

_decoder = msgspec.json.Decoder(TelemetryMessage, strict=True)


class ManualCadence:
    """The feed's sleep: each call parks until the test releases it."""

    def __init__(self) -> None:
        self.parked: list[asyncio.Future[None]] = []

    async def __call__(self, _seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self.parked.append(future)
        await future

    async def release(self) -> None:
        """Let one cadence pass, and wait until the producer has parked again."""
        await until(lambda: self.parked)
        self.parked.pop(0).set_result(None)
        await until(lambda: self.parked)


async def until(condition, timeout: float = STEP_TIMEOUT_S) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), timeout)


def run_feed(scenario, controller: FakeController | None = None, *, manual: bool = True,
             **options):
    """Serve a fake controller; run ``scenario(session, api, controller, cadence)``."""
    controller = controller or FakeController(12, running=True)
    cadence = ManualCadence() if manual else None

    async def main():
        extra = {"sleep": cadence} if cadence is not None else {}
        app = create_app(controller, token=StaticToken(TOKEN), clock_ns=ManualClock(),
                         **extra, **options)
        api = await serve(app, port=0)
        try:
            async with aiohttp.ClientSession() as session:
                return await asyncio.wait_for(scenario(session, api, controller, cadence), 60)
        finally:
            await api.stop()

    return asyncio.run(main())


async def receive(ws) -> TelemetryInit | TelemetryUpdate | TelemetryEvent:
    message = await asyncio.wait_for(ws.receive(), STEP_TIMEOUT_S)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return _decoder.decode(message.data)


def test_a_client_gets_init_first_then_one_update_per_cadence_with_increasing_seq():
    async def scenario(session, api, controller, cadence):
        ws = await session.ws_connect(api.url + "/ws/telemetry")
        messages = [await receive(ws)]
        for _ in range(3):
            controller.advance(10)  # also publishes a MetricsUpdated event
            await cadence.release()
            messages.append(await receive(ws))
            messages.append(await receive(ws))
        await ws.close()
        return messages

    messages = run_feed(scenario)
    first = messages[0]
    assert isinstance(first, TelemetryInit)
    assert first.seq == 1 and first.version == TELEMETRY_VERSION
    assert first.main_variant_id == MAIN_VARIANT_ID
    assert [message.seq for message in messages] == list(range(1, 8))
    updates = [message for message in messages if isinstance(message, TelemetryUpdate)]
    events = [message for message in messages if isinstance(message, TelemetryEvent)]
    assert [update.status.ticks_processed for update in updates] == [10, 20, 30]
    assert [event.event.ticks_processed for event in events] == [10, 20, 30]


def test_updates_flow_on_the_real_timer_at_a_short_cadence():
    async def scenario(session, api, controller, _cadence):
        ws = await session.ws_connect(api.url + "/ws/telemetry")
        messages = [await receive(ws) for _ in range(4)]
        await ws.close()
        return messages

    messages = run_feed(scenario, manual=False, cadence_s=0.05)
    assert isinstance(messages[0], TelemetryInit) and messages[0].cadence_s == 0.05
    assert all(isinstance(message, TelemetryUpdate) for message in messages[1:])
    assert [message.seq for message in messages] == [1, 2, 3, 4]


def test_the_leaderboard_always_carries_the_main_row_and_its_equity_curve():
    controller = FakeController(30, running=True)
    controller.set_net_pnl(MAIN_VARIANT_ID, -500.0)  # ranked last

    async def scenario(session, api, controller, cadence):
        ws = await session.ws_connect(api.url + "/ws/telemetry")
        init = await receive(ws)
        await cadence.release()
        update = await receive(ws)
        await ws.close()
        return init, update, controller.results()

    init, update, ranked = run_feed(scenario, controller, leaderboard_rows=5,
                                    equity_leaders=2)
    for message in (init, update):
        ids = [row.variant_id for row in message.leaderboard]
        assert ids == [*(row.variant_id for row in ranked[:5]), MAIN_VARIANT_ID]
        assert [curve.variant_id for curve in message.equity] == [*ids[:2], MAIN_VARIANT_ID]
        assert message.gate == controller.gate()


def test_service_events_are_forwarded_as_telemetry_events():
    alert = Alert(kind="memory", severity="warning", message="memory over 80%", ts_ns=7)

    async def scenario(session, api, controller, cadence):
        ws = await session.ws_connect(api.url + "/ws/telemetry")
        await receive(ws)
        controller.publish(AlertRaised(alert=alert))
        forwarded = await receive(ws)
        async with session.post(api.url + "/api/optimizer/promote", json={"variantId": 3},
                                headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200
        promoted = await receive(ws)
        await ws.close()
        return forwarded, promoted

    forwarded, promoted = run_feed(scenario)
    assert isinstance(forwarded, TelemetryEvent) and forwarded.seq == 2
    assert forwarded.event == AlertRaised(alert=alert)
    assert isinstance(promoted, TelemetryEvent) and promoted.seq == 3
    assert isinstance(promoted.event, PromotionApplied)
    assert promoted.event.record.variant_id == 3


def test_each_update_is_built_once_and_every_client_gets_the_same_bytes_but_its_own_seq():
    async def scenario(session, api, controller, cadence):
        early = await session.ws_connect(api.url + "/ws/telemetry")
        await receive(early)
        controller.publish(AlertRaised(alert=Alert(kind="rate_limit", severity="warning",
                                                   message="429", ts_ns=1)))
        await receive(early)  # now one message ahead of the others
        late = [await session.ws_connect(api.url + "/ws/telemetry") for _ in range(2)]
        for ws in late:
            await receive(ws)
        await until(lambda: api.feed.client_count == 3)
        await cadence.release()
        raw = [(await asyncio.wait_for(ws.receive(), STEP_TIMEOUT_S)).data
               for ws in [early, *late]]
        for ws in [early, *late]:
            await ws.close()
        return raw, api.feed.updates_built

    raw, built = run_feed(scenario)
    assert built == 1
    decoded = [_decoder.decode(text) for text in raw]
    assert [message.seq for message in decoded] == [3, 2, 2]
    stripped = {msgspec.json.encode(msgspec.structs.replace(m, seq=0)) for m in decoded}
    assert len(stripped) == 1


def test_a_client_whose_queue_overflows_is_closed_with_1013_and_counted():
    async def scenario(session, api, controller, cadence):
        ws = await session.ws_connect(api.url + "/ws/telemetry")
        await receive(ws)
        await until(lambda: api.feed.client_count == 1)
        update = api.feed.build_update()
        # Synchronously, so the client's writer cannot empty its one-slot queue in between.
        api.feed.broadcast(update)
        api.feed.broadcast(update)
        received = []
        while True:
            message = await asyncio.wait_for(ws.receive(), STEP_TIMEOUT_S)
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            received.append(_decoder.decode(message.data))
        async with session.get(api.url + "/metrics") as response:
            metrics = await response.text()
        return received, ws.close_code, api.feed.clients_dropped, metrics

    received, code, dropped, metrics = run_feed(scenario, client_queue=1)
    assert code == CLOSE_TOO_SLOW
    assert dropped == 1
    assert [message.seq for message in received] == [2]
    assert "liveopt_telemetry_clients_dropped_total 1" in metrics.splitlines()


async def _never_reading_client(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # A raw socket with a tiny receive buffer that completes the WebSocket handshake and
    # then never reads: the server's buffers toward it fill and its queue overflows.
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws/telemetry HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP_TIMEOUT_S)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def test_a_client_that_never_reads_is_dropped_while_a_fast_client_keeps_receiving():
    controller = FakeController(300, running=True)  # large updates fill buffers quickly

    async def scenario(session, api, controller, cadence):
        fast = await session.ws_connect(api.url + "/ws/telemetry", max_msg_size=0)
        seqs = [(await receive(fast)).seq]
        updates = []

        async def read_fast():
            while True:
                message = await receive(fast)
                seqs.append(message.seq)
                if isinstance(message, TelemetryUpdate):
                    updates.append(message.seq)

        reader_task = asyncio.get_running_loop().create_task(read_fast())
        slow_reader, slow_writer = await _never_reading_client(api.url)
        await until(lambda: api.feed.client_count == 2)
        releases = 0
        while api.feed.clients_dropped == 0:
            assert releases < 2000, "the silent client was never dropped"
            controller.advance(1)
            await cadence.release()
            releases += 1
            # The fast client keeps up: it has this update before the next cadence.
            await until(lambda n=releases: len(updates) == n)
        dropped_at = len(updates)
        for _ in range(3):
            releases += 1
            await cadence.release()
            await until(lambda n=releases: len(updates) == n)
        reader_task.cancel()
        # The dropped connection ends: its leftovers drain, then EOF (or a reset).
        try:
            while await asyncio.wait_for(slow_reader.read(1 << 16), STEP_TIMEOUT_S):
                pass
        except ConnectionResetError:
            pass
        slow_writer.close()
        await fast.close()
        return seqs, updates, dropped_at, api.feed.client_count, releases

    seqs, updates, dropped_at, clients, releases = run_feed(
        scenario, controller, client_queue=4, leaderboard_rows=300)
    assert seqs == list(range(1, len(seqs) + 1))  # the fast client lost nothing
    assert len(updates) == releases == dropped_at + 3
    assert clients == 1


def test_a_failing_controller_read_skips_one_update_and_the_feed_goes_on():
    async def scenario(session, api, controller, cadence):
        ws = await session.ws_connect(api.url + "/ws/telemetry")
        await receive(ws)
        real_gate = controller.gate
        calls = {"n": 0}

        def flaky_gate():
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("read failed")
            return real_gate()

        controller.gate = flaky_gate
        await cadence.release()  # fails
        await cadence.release()  # succeeds
        update = await receive(ws)
        await ws.close()
        return update, api.feed.errors

    update, errors = run_feed(scenario)
    assert isinstance(update, TelemetryUpdate) and update.seq == 2
    assert errors == 1


def test_stopping_the_server_closes_clients_with_going_away():
    controller = FakeController(4, running=True)

    async def main():
        app = create_app(controller, token=StaticToken(TOKEN), sleep=ManualCadence())
        api = await serve(app, port=0)
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(api.url + "/ws/telemetry")
            await receive(ws)
            # Read concurrently, as a real client does, so it can answer the close frame.
            closing = asyncio.get_running_loop().create_task(ws.receive())
            await api.stop()
            message = await asyncio.wait_for(closing, STEP_TIMEOUT_S)
            return message.type, ws.close_code, controller.subscriber_count

    kind, code, subscribers = asyncio.run(main())
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert code == 1001
    assert subscribers == 0


@settings(max_examples=60, deadline=None)
@given(seq=st.integers(min_value=0, max_value=2**53), text=st.text(max_size=40),
       ts=st.integers(min_value=0, max_value=2**62))
def test_splicing_seq_into_the_encoded_message_equals_encoding_with_that_seq(seq, text, ts):
    alert = Alert(kind="memory", severity="warning", message=text + '"seq":0,', ts_ns=ts)
    message = TelemetryEvent(seq=0, event=AlertRaised(alert=alert))
    frame = encode_split(message)
    assert frame.with_seq(seq) == msgspec.json.encode(msgspec.structs.replace(message, seq=seq))
