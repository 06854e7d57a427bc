"""StopReplaceCoordinator against a scripted in-memory exchange that records every call."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from decimal import Decimal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveopt.exchange.client_oid import client_oid
from liveopt.exchange.priority import Priority
from liveopt.exchange.rest import KucoinFuturesRest, RestConfig
from liveopt.exchange.signing import Credentials
from liveopt.exchange.stops import (
    DuplicateClientOidError,
    EmergencyClose,
    ExchangePosition,
    ExchangeStop,
    GatewayRateLimitedError,
    GatewayTimeoutError,
    RestStopGateway,
    StopAlreadyGoneError,
    StopCancelled,
    StopCoordinatorConfig,
    StopEvent,
    StopGatewayError,
    StopPlaced,
    StopReplaceCoordinator,
    StopReplaceFailed,
    StopRequest,
    StopState,
    StopStateChanged,
)
from tests.unit.exchange.fake_kucoin import FakeKucoin, Fault

SYMBOL = "XBTUSDTM"
POSITION = "pos1"
NS = 1_000_000_000


def oid(revision: int) -> str:
    return client_oid("stop", SYMBOL, POSITION, revision)


class FakeClock:
    """Injected time: ``sleep`` advances it instead of waiting."""

    def __init__(self, start_ns: int = 1_700_000_000 * NS) -> None:
        self.now_ns = start_ns
        self.sleeps: list[float] = []

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * NS)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


class Entry(msgspec.Struct, frozen=True):
    """One gateway call as the exchange saw it, with the live stop count right after."""

    op: str
    outcome: str
    client_oid: str
    order_id: str
    live: int


class ScriptedGateway:
    """An exchange in memory. Each operation answers "ok" unless a scripted outcome is
    queued for it: "fail", "429", "timeout" (not applied), "accepted_timeout" (applied, then
    no answer), "drop" / "accepted_drop" (hang until the caller times out)."""

    def __init__(self, *, qty: int = 5, symbol: str = SYMBOL,
                 position_id: str = POSITION) -> None:
        self.positions: dict[str, ExchangePosition] = {
            symbol: ExchangePosition(symbol=symbol, id=position_id, qty=qty)}
        self.stops: dict[str, ExchangeStop] = {}
        self.seen_oids: set[str] = set()
        self.timeline: list[Entry] = []
        self.requests: list[StopRequest] = []
        self.script: dict[str, list[str]] = defaultdict(list)
        self.holds: dict[str, asyncio.Event] = {}
        self.closes: list[str] = []
        self._next_id = 1

    # -- scripting and inspection

    def then(self, op: str, *outcomes: str) -> ScriptedGateway:
        self.script[op].extend(outcomes)
        return self

    def hold(self, op: str) -> asyncio.Event:
        self.holds[op] = asyncio.Event()
        return self.holds[op]

    def live(self, symbol: str = SYMBOL) -> list[ExchangeStop]:
        return [stop for stop in self.stops.values() if stop.symbol == symbol]

    def add_stop(self, *, client_oid_value: str, stop_price: str, size: int = 5,
                 side: str = "sell", stop: str = "down", symbol: str = SYMBOL) -> ExchangeStop:
        order = ExchangeStop(id=self._new_id(), client_oid=client_oid_value, side=side,
                             size=size, stop=stop, stop_price=stop_price, symbol=symbol)
        self.stops[order.id] = order
        self.seen_oids.add(client_oid_value)
        return order

    def never_unprotected(self, symbol: str = SYMBOL) -> bool:
        """From the first confirmed stop until an emergency close, at least one stop."""
        armed = False
        for entry in self.timeline:
            if entry.op == "close" and entry.outcome == "ok":
                return True
            if entry.op == "place" and entry.outcome in ("ok", "accepted_timeout"):
                armed = True
            if armed and entry.live == 0:
                return False
        return True

    def ops(self, *kinds: str) -> list[tuple[str, str]]:
        return [(e.op, e.client_oid) for e in self.timeline
                if e.outcome in ("ok", "accepted_timeout") and (not kinds or e.op in kinds)]

    # -- internals

    def _new_id(self) -> str:
        self._next_id += 1
        return f"order-{self._next_id}"

    def _record(self, op: str, outcome: str, client_oid_value: str = "",
                order_id: str = "", symbol: str = SYMBOL) -> None:
        self.timeline.append(Entry(op, outcome, client_oid_value, order_id,
                                   len(self.live(symbol))))

    async def _enter(self, op: str) -> str:
        await asyncio.sleep(0)
        gate = self.holds.get(op)
        if gate is not None:
            await gate.wait()
        return self.script[op].pop(0) if self.script[op] else "ok"

    @staticmethod
    async def _refuse(outcome: str) -> None:
        if outcome == "fail":
            raise StopGatewayError("code 500000: internal error")
        if outcome == "429":
            raise GatewayRateLimitedError("code 429000: too many requests")
        if outcome == "429_reset_20s":
            raise GatewayRateLimitedError("code 429000", retry_after_ns=20 * NS)
        if outcome == "timeout":
            raise GatewayTimeoutError("no answer")
        if outcome == "drop":
            await asyncio.Future()

    @staticmethod
    async def _after(outcome: str) -> None:
        if outcome == "accepted_timeout":
            raise GatewayTimeoutError("no answer")
        if outcome == "accepted_drop":
            await asyncio.Future()

    # -- StopGateway

    async def place_stop(self, request: StopRequest) -> str:
        outcome = await self._enter("place")
        self.requests.append(request)
        if outcome in ("fail", "429", "429_reset_20s", "timeout", "drop"):
            self._record("place", outcome, request.client_oid, symbol=request.symbol)
            await self._refuse(outcome)
        if request.client_oid in self.seen_oids:
            self._record("place", "duplicate", request.client_oid, symbol=request.symbol)
            raise DuplicateClientOidError(f"code 300018: clientOid {request.client_oid}")
        order = self.add_stop(client_oid_value=request.client_oid, side=request.side,
                              size=request.size, stop=request.stop,
                              stop_price=request.stop_price, symbol=request.symbol)
        self._record("place", outcome, request.client_oid, order.id, request.symbol)
        await self._after(outcome)
        return order.id

    async def cancel(self, symbol: str, order_id: str) -> None:
        outcome = await self._enter("cancel")
        known = self.stops.get(order_id)
        coid = known.client_oid if known else ""
        if outcome in ("fail", "429", "timeout", "drop"):
            self._record("cancel", outcome, coid, order_id, symbol)
            await self._refuse(outcome)
        if known is None:
            self._record("cancel", "gone", coid, order_id, symbol)
            raise StopAlreadyGoneError("code 100004: order is in not cancelable state")
        del self.stops[order_id]
        self._record("cancel", outcome, coid, order_id, symbol)
        await self._after(outcome)

    async def open_stops(self, symbol: str) -> list[ExchangeStop]:
        outcome = await self._enter("open_stops")
        await self._refuse(outcome)
        return self.live(symbol)

    async def position(self, symbol: str) -> ExchangePosition:
        outcome = await self._enter("position")
        await self._refuse(outcome)
        return self.positions.get(symbol, ExchangePosition(symbol=symbol, id="", qty=0))

    async def close_position(self, symbol: str, client_oid_value: str) -> str:
        outcome = await self._enter("close")
        if outcome in ("fail", "429", "timeout", "drop"):
            self._record("close", outcome, client_oid_value, symbol=symbol)
            await self._refuse(outcome)
        if client_oid_value in self.seen_oids:
            raise DuplicateClientOidError(f"code 300018: clientOid {client_oid_value}")
        self.seen_oids.add(client_oid_value)
        self.closes.append(client_oid_value)
        position = self.positions[symbol]
        self.positions[symbol] = ExchangePosition(symbol=symbol, id=position.id, qty=0)
        self._record("close", outcome, client_oid_value, symbol=symbol)
        return self._new_id()


class Harness(msgspec.Struct):
    gateway: ScriptedGateway
    coordinator: StopReplaceCoordinator
    clock: FakeClock
    events: list


def make(gateway: ScriptedGateway | None = None, *, qty: int = 5, seed: int = 7,
         **config: object) -> Harness:
    gateway = gateway or ScriptedGateway(qty=qty)
    clock = FakeClock()
    events: list = []
    coordinator = StopReplaceCoordinator(
        gateway, symbol=SYMBOL, position_id=POSITION, qty=qty, tick_size="0.1", clock=clock,
        rng=random.Random(seed), sleep=clock.sleep, config=StopCoordinatorConfig(**config),
        sink=events.append)
    return Harness(gateway, coordinator, clock, events)


def of(events: list, kind: type) -> list:
    return [event for event in events if isinstance(event, kind)]


def states(events: list) -> list[StopState]:
    return [event.state for event in of(events, StopStateChanged)]


# --------------------------------------------------------------------------- ordering


def test_stop_is_placed_before_the_old_one_is_cancelled():
    async def scenario():
        h = make()
        await h.coordinator.update("99000")
        h.clock.advance(2)
        await h.coordinator.update("99500")
        first, second = (e.order_id for e in h.gateway.timeline if e.op == "place")
        assert h.gateway.ops() == [("place", oid(1)), ("place", oid(2)), ("cancel", oid(1))]
        assert h.gateway.never_unprotected()
        assert [s.id for s in h.gateway.live()] == [second] != [first]
        assert h.coordinator.state is StopState.PROTECTED

    asyncio.run(scenario())


def test_stop_client_oids_use_dashes_and_count_revisions_per_position():
    assert oid(1) == "stop-XBTUSDTM-pos1-1"
    h = make()
    assert h.coordinator.stop_client_oid(3) == "stop-XBTUSDTM-pos1-3"
    assert h.coordinator.emergency_client_oid == "emergency-XBTUSDTM-pos1"


def test_burst_of_updates_while_a_placement_is_in_flight_costs_one_more_placement():
    async def scenario():
        h = make()
        gate = h.gateway.hold("place")
        assert h.coordinator.submit("98000")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        burst = [f"{98100 + 100 * i}" for i in range(10)]
        for price in burst:
            assert h.coordinator.submit(price)
        gate.set()
        await h.coordinator.settle()
        placed = of(h.events, StopPlaced)
        assert [e.stop_price for e in placed] == ["98000", burst[-1]]
        assert [s.stop_price for s in h.gateway.live()] == [burst[-1]]
        assert h.coordinator.metrics().superseded == len(burst) - 1

    asyncio.run(scenario())


def test_concurrent_updates_from_several_tasks_end_at_the_last_accepted_target():
    async def scenario():
        h = make()
        accepted: list[str] = []

        async def trader(offset: int) -> None:
            for step in range(4):
                price = str(97000 + 10 * (offset * 4 + step))
                if h.coordinator.submit(price):
                    accepted.append(price)
                for _ in range(offset + 1):
                    await asyncio.sleep(0)

        await asyncio.gather(*(trader(i) for i in range(5)))
        await h.coordinator.settle()
        assert h.coordinator.active is not None
        assert h.coordinator.active.stop_price == accepted[-1]
        assert [s.stop_price for s in h.gateway.live()] == [accepted[-1]]
        assert 1 <= len(of(h.events, StopPlaced)) < len(accepted)
        assert h.gateway.never_unprotected()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- idempotency


def test_retry_after_an_accepted_timeout_finds_the_stop_instead_of_placing_a_second():
    async def scenario():
        h = make()
        h.gateway.then("place", "accepted_timeout")
        await h.coordinator.update("99000")
        assert [r.client_oid for r in h.gateway.requests] == [oid(1), oid(1)]
        assert [s.client_oid for s in h.gateway.live()] == [oid(1)]
        placed = of(h.events, StopPlaced)
        assert len(placed) == 1 and placed[0].found_existing
        assert h.coordinator.active.order_id == h.gateway.live()[0].id
        assert h.coordinator.metrics().duplicate_lookups == 1

    asyncio.run(scenario())


def test_dropped_answer_times_out_and_the_same_revision_is_found_on_retry():
    async def scenario():
        h = make(call_timeout_ns=5_000_000)
        h.gateway.then("place", "accepted_drop")
        await h.coordinator.update("99000")
        assert [s.client_oid for s in h.gateway.live()] == [oid(1)]
        assert h.coordinator.revision == 1
        assert h.coordinator.metrics().timeouts == 1
        assert h.coordinator.state is StopState.PROTECTED

    asyncio.run(scenario())


def test_timed_out_placement_for_a_superseded_target_is_found_and_cancelled():
    async def scenario():
        h = make()
        h.gateway.then("place", "accepted_timeout")
        gate = h.gateway.hold("place")
        assert h.coordinator.submit("99000")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert h.coordinator.submit("99100")
        gate.set()
        await h.coordinator.settle()
        assert [s.client_oid for s in h.gateway.live()] == [oid(2)]
        assert ("cancel", oid(1)) in h.gateway.ops()
        assert h.gateway.never_unprotected()

    asyncio.run(scenario())


def test_a_revision_reused_after_a_restart_moves_on_to_a_fresh_one():
    async def scenario():
        gateway = ScriptedGateway()
        old = gateway.add_stop(client_oid_value=oid(1), stop_price="95000")
        h = make(gateway)
        await h.coordinator.update("99000")
        assert [s.client_oid for s in gateway.live()] == [oid(2)]
        assert gateway.live()[0].stop_price == "99000"
        assert ("cancel", old.client_oid) in gateway.ops()
        assert gateway.never_unprotected()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- debounce


def test_update_under_two_ticks_within_the_debounce_window_is_skipped():
    async def scenario():
        h = make()
        await h.coordinator.update("99000")
        h.clock.advance(1.0)
        assert not await h.coordinator.update("99000.1")
        assert h.coordinator.metrics().debounced == 1
        assert [s.stop_price for s in h.gateway.live()] == ["99000"]

    asyncio.run(scenario())


def test_small_update_after_the_debounce_window_goes_through():
    async def scenario():
        h = make()
        await h.coordinator.update("99000")
        h.clock.advance(1.6)
        assert await h.coordinator.update("99000.1")
        assert [s.stop_price for s in h.gateway.live()] == ["99000.1"]

    asyncio.run(scenario())


def test_tightening_by_the_threshold_within_the_window_is_never_skipped():
    async def scenario():
        h = make()
        await h.coordinator.update("99000")
        h.clock.advance(0.1)
        assert await h.coordinator.update("99000.2")
        assert [s.stop_price for s in h.gateway.live()] == ["99000.2"]

    asyncio.run(scenario())


# --------------------------------------------------------------------------- failures


def test_failed_cancel_keeps_both_stops_and_retries_only_the_old_one():
    async def scenario():
        h = make()
        h.gateway.then("cancel", "fail", "429")
        await h.coordinator.update("99000")
        h.clock.advance(2)
        await h.coordinator.update("99500")
        old, new = (e.order_id for e in h.gateway.timeline if e.op == "place")
        cancels = [e for e in h.gateway.timeline if e.op == "cancel"]
        assert [e.order_id for e in cancels] == [old, old, old]
        assert [e.live for e in cancels] == [2, 2, 1]
        assert [s.id for s in h.gateway.live()] == [new]
        failed = of(h.events, StopReplaceFailed)
        assert [e.operation for e in failed] == ["cancel", "cancel"]
        assert h.coordinator.state is StopState.PROTECTED
        assert h.gateway.never_unprotected()

    asyncio.run(scenario())


def test_five_consecutive_failures_send_an_emergency_close_and_go_critical():
    async def scenario():
        h = make()
        h.gateway.then("place", "fail", "429", "timeout", "fail", "fail")
        await h.coordinator.update("99000")
        assert [r.client_oid for r in h.gateway.requests] == [oid(1)] * 5
        assert h.gateway.closes == ["emergency-XBTUSDTM-pos1"]
        assert h.coordinator.state is StopState.CRITICAL
        closes = of(h.events, EmergencyClose)
        assert len(closes) == 1 and closes[0].ok and closes[0].consecutive_failures == 5
        assert not h.coordinator.submit("99100")
        assert h.coordinator.metrics().rejected == 1
        assert h.coordinator.metrics().emergency_closes == 1

    asyncio.run(scenario())


def test_failing_emergency_close_is_retried_and_reported():
    async def scenario():
        h = make(emergency_attempts=3)
        h.gateway.then("place", *["fail"] * 5).then("close", "fail")
        await h.coordinator.update("99000")
        assert [e.ok for e in of(h.events, EmergencyClose)] == [False, True]
        assert h.gateway.closes == ["emergency-XBTUSDTM-pos1"]

    asyncio.run(scenario())


def test_failures_to_move_a_protecting_stop_can_be_configured_not_to_close():
    async def scenario():
        h = make(emergency_while_protected=False)
        await h.coordinator.update("99000")
        h.gateway.then("place", *["fail"] * 7)
        h.clock.advance(2)
        await h.coordinator.update("99500")
        assert h.gateway.closes == []
        assert [s.stop_price for s in h.gateway.live()] == ["99500"]
        assert h.coordinator.state is StopState.PROTECTED
        assert h.gateway.never_unprotected()

    asyncio.run(scenario())


def test_rate_limited_failures_back_off_longer_than_plain_ones():
    async def scenario(outcome: str) -> list[float]:
        h = make()
        h.gateway.then("place", outcome, outcome, outcome)
        await h.coordinator.update("99000")
        return h.clock.sleeps

    plain = asyncio.run(scenario("fail"))
    limited = asyncio.run(scenario("429"))
    config = StopCoordinatorConfig()
    floor = config.rate_limited_min_delay_ns / NS * (1 - config.retry_jitter)
    assert len(plain) == len(limited) == 3
    assert all(a < b for a, b in itertools.pairwise(plain))
    assert all(delay >= floor for delay in limited)
    assert max(plain) < floor


def test_rate_limit_reset_announced_by_the_exchange_is_honoured():
    async def scenario():
        h = make()
        h.gateway.then("place", "429_reset_20s")
        await h.coordinator.update("99000")
        assert len(h.clock.sleeps) == 1
        assert h.clock.sleeps[0] >= 20 * (1 - StopCoordinatorConfig().retry_jitter)
        assert h.coordinator.state is StopState.PROTECTED

    asyncio.run(scenario())


def test_backoff_jitter_comes_from_the_injected_random_source():
    async def scenario(seed: int) -> list[float]:
        h = make(seed=seed)
        h.gateway.then("place", "fail", "fail")
        await h.coordinator.update("99000")
        return h.clock.sleeps

    assert asyncio.run(scenario(1)) == asyncio.run(scenario(1))
    assert asyncio.run(scenario(1)) != asyncio.run(scenario(2))


# --------------------------------------------------------------------------- states


def test_unprotected_position_recovers_on_its_own_with_backoff():
    async def scenario():
        h = make()
        h.gateway.then("place", "fail", "timeout")
        await h.coordinator.update("99000")
        assert states(h.events) == [
            StopState.RECOVERING, StopState.UNPROTECTED, StopState.RECOVERING,
            StopState.UNPROTECTED, StopState.RECOVERING, StopState.PROTECTED]
        assert len(h.clock.sleeps) == 2
        assert h.coordinator.metrics().recoveries == 1
        assert h.coordinator.is_protected and not h.coordinator.needs_attention

    asyncio.run(scenario())


def test_a_missing_stop_reported_by_the_reconciler_is_placed_again_under_a_new_revision():
    async def scenario():
        h = make()
        await h.coordinator.update("99000")
        h.gateway.stops.clear()
        h.coordinator.invalidate(None, "stop missing on the exchange")
        assert h.coordinator.state is StopState.UNPROTECTED
        await h.coordinator.settle()
        assert [(s.client_oid, s.stop_price) for s in h.gateway.live()] == [(oid(2), "99000")]
        assert h.coordinator.state is StopState.PROTECTED

    asyncio.run(scenario())


def test_updating_state_is_reported_while_an_older_stop_protects():
    async def scenario():
        h = make()
        await h.coordinator.update("99000")
        gate = h.gateway.hold("place")
        h.clock.advance(2)
        h.coordinator.submit("99500")
        await asyncio.sleep(0)
        assert h.coordinator.state is StopState.UPDATING
        assert h.coordinator.is_protected
        gate.set()
        await h.coordinator.settle()
        assert h.coordinator.state is StopState.PROTECTED

    asyncio.run(scenario())


def test_adopted_stop_advances_the_revision_and_is_replaced_like_any_other():
    async def scenario():
        gateway = ScriptedGateway()
        existing = gateway.add_stop(client_oid_value=oid(4), stop_price="98000")
        h = make(gateway)
        h.coordinator.adopt(existing)
        assert h.coordinator.state is StopState.PROTECTED and h.coordinator.revision == 4
        h.clock.advance(2)
        await h.coordinator.update("99000")
        assert [s.client_oid for s in gateway.live()] == [oid(5)]
        assert ("cancel", oid(4)) in gateway.ops()

    asyncio.run(scenario())


def test_a_broken_event_sink_is_counted_and_does_not_stop_the_coordinator():
    async def scenario():
        gateway = ScriptedGateway()
        clock = FakeClock()

        def sink(event: StopEvent) -> None:
            raise RuntimeError("sink down")

        coordinator = StopReplaceCoordinator(
            gateway, symbol=SYMBOL, position_id=POSITION, qty=5, tick_size="0.1",
            clock=clock, rng=random.Random(1), sleep=clock.sleep, sink=sink)
        await coordinator.update("99000")
        assert coordinator.state is StopState.PROTECTED
        assert coordinator.metrics().sink_errors > 0

    asyncio.run(scenario())


def test_events_are_frozen_tagged_structs_that_round_trip_through_json():
    async def scenario():
        h = make()
        h.gateway.then("place", "fail").then("cancel", "fail")
        await h.coordinator.update("99000")
        h.clock.advance(2)
        await h.coordinator.update("99500")
        return h.events

    events = asyncio.run(scenario())
    kinds = {type(e) for e in events}
    assert {StopStateChanged, StopPlaced, StopCancelled, StopReplaceFailed} <= kinds
    decoder = msgspec.json.Decoder(StopEvent)
    for event in events:
        assert decoder.decode(msgspec.json.encode(event)) == event
        assert event.symbol == SYMBOL and event.ts_event > 0
    with pytest.raises(AttributeError):
        events[0].symbol = "other"


# --------------------------------------------------------------------------- validation


def test_long_stop_is_a_reduce_only_sell_down_rounded_down_to_the_tick():
    async def scenario():
        h = make(qty=5)
        await h.coordinator.update("99000.17")
        (request,) = h.gateway.requests
        assert (request.side, request.stop, request.stop_price, request.size) == (
            "sell", "down", "99000.1", 5)
        assert request.reduce_only is True and request.stop_price_type == "MP"

    asyncio.run(scenario())


def test_short_stop_is_a_reduce_only_buy_up_rounded_up_to_the_tick():
    async def scenario():
        h = make(qty=-3)
        await h.coordinator.update(99000.11)
        (request,) = h.gateway.requests
        assert (request.side, request.stop, request.stop_price, request.size) == (
            "buy", "up", "99000.2", 3)
        assert request.reduce_only is True

    asyncio.run(scenario())


def test_stop_on_the_wrong_side_of_the_mark_price_is_refused():
    h = make(qty=5)
    with pytest.raises(ValueError, match="below the mark price"):
        h.coordinator.submit("100100", mark_price="100000")
    short = make(qty=-5)
    with pytest.raises(ValueError, match="above the mark price"):
        short.coordinator.submit("99900", mark_price="100000")
    assert h.coordinator.metrics().rejected == 1
    assert h.gateway.timeline == []


@pytest.mark.parametrize("bad", ["abc", "-5", "0", float("nan"), True, None])
def test_bad_stop_prices_are_refused_naming_the_field(bad):
    h = make()
    with pytest.raises(ValueError, match="stop_price"):
        h.coordinator.submit(bad)
    assert h.coordinator.metrics().rejected == 1


def test_stop_larger_than_the_position_is_refused():
    h = make(qty=5)
    with pytest.raises(ValueError, match="size 6 exceeds the position"):
        h.coordinator.submit("99000", size=6)


@pytest.mark.parametrize(("field", "overrides"), [
    ("reduce_only", {"reduce_only": False}),
    ("side", {"side": "hold"}),
    ("a stop-loss is side", {"side": "buy", "stop": "down"}),
    ("size", {"size": 0}),
    ("stop_price", {"stop_price": "-1"}),
    ("client_oid", {"client_oid": "stop:XBTUSDTM:pos1:1"}),
    ("stop_price_type", {"stop_price_type": "XX"}),
])
def test_stop_request_refuses_invalid_fields_by_name(field, overrides):
    fields = {"symbol": SYMBOL, "side": "sell", "size": 1, "stop": "down",
              "stop_price": "99000", "client_oid": oid(1)}
    fields.update(overrides)
    with pytest.raises(ValueError, match=field):
        StopRequest(**fields)


def test_config_refuses_inconsistent_timings_by_name():
    with pytest.raises(ValueError, match="retry_base_ns"):
        StopCoordinatorConfig(retry_base_ns=10 * NS, retry_max_ns=NS)
    with pytest.raises(ValueError, match="max_consecutive_failures"):
        StopCoordinatorConfig(max_consecutive_failures=0)
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        msgspec.json.decode(b'{"debounce":1}', type=StopCoordinatorConfig)


def test_coordinator_refuses_a_flat_position_and_a_side_flip():
    with pytest.raises(ValueError, match="qty"):
        make(qty=0)
    h = make(qty=5)
    with pytest.raises(ValueError, match="flips the side"):
        h.coordinator.resize(-5)


def test_resize_moves_the_stop_size_with_the_position():
    async def scenario():
        h = make(qty=5)
        await h.coordinator.update("99000")
        h.coordinator.resize(3)
        await h.coordinator.settle()
        assert [(s.size, s.stop_price) for s in h.gateway.live()] == [(3, "99000")]

    asyncio.run(scenario())


# --------------------------------------------------------------------------- property

PLACE_OUTCOMES = st.sampled_from(["ok", "fail", "429", "timeout", "accepted_timeout"])
CANCEL_OUTCOMES = st.sampled_from(["ok", "fail", "429", "timeout", "accepted_timeout"])
LOOKUP_OUTCOMES = st.sampled_from(["ok", "fail", "timeout"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    targets=st.lists(st.tuples(st.integers(900_000, 999_000), st.integers(0, 4)),
                     min_size=1, max_size=8),
    place_script=st.lists(PLACE_OUTCOMES, max_size=8),
    cancel_script=st.lists(CANCEL_OUTCOMES, max_size=4),
    lookup_script=st.lists(LOOKUP_OUTCOMES, max_size=4),
    qty=st.sampled_from([4, -4]),
)
def test_no_moment_without_a_stop_and_the_last_target_wins(targets, place_script,
                                                           cancel_script, lookup_script, qty):
    async def scenario():
        gateway = ScriptedGateway(qty=qty)
        gateway.then("place", *place_script).then("cancel", *cancel_script)
        gateway.then("open_stops", *lookup_script)
        h = make(gateway, qty=qty, debounce_ns=0, call_timeout_ns=None, max_cancel_attempts=10)
        for ticks, yields in targets:
            accepted = h.coordinator.submit(Decimal(ticks) / 10)
            assert accepted or h.coordinator.state is StopState.CRITICAL
            for _ in range(yields):
                await asyncio.sleep(0)
        await h.coordinator.settle()
        assert gateway.never_unprotected()
        if h.coordinator.state is StopState.CRITICAL:
            assert gateway.closes == ["emergency-XBTUSDTM-pos1"]
            return
        last = str(Decimal(targets[-1][0]) / 10)
        assert h.coordinator.state is StopState.PROTECTED
        assert h.coordinator.active.stop_price == last
        live = gateway.live()
        assert [(s.id, s.stop_price, s.size) for s in live] == [
            (h.coordinator.active.order_id, last, abs(qty))]
        assert h.coordinator.leftover_client_oids == ()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- REST adapter


class PriorityRecorder:
    """A rate-limit budget that lets everything through and records the priorities."""

    def __init__(self) -> None:
        self.priorities: list[tuple[str, Priority]] = []

    async def acquire(self, endpoint_key, priority, *, timeout_s=None):
        self.priorities.append((endpoint_key, priority))

    def record_response(self, endpoint_key, status, headers, code):
        return None


def test_rest_gateway_replaces_a_stop_over_http_with_critical_priority():
    async def main():
        credentials = Credentials("stop-key", "stop-secret", "stop-passphrase")
        clock = FakeClock()
        server = FakeKucoin(credentials, lambda: clock.now_ns // 1_000_000)
        base_url = await server.start()
        budget = PriorityRecorder()
        rest = KucoinFuturesRest(
            credentials, config=RestConfig(base_url=base_url, time_sync_interval_s=None),
            budget=budget, clock_ns=clock, sleep=clock.sleep, rng=random.Random(1))
        try:
            gateway = RestStopGateway(rest, leverage=5)
            position = await gateway.position(SYMBOL)  # the documented sample: short 3
            assert position.qty == -3 and position.id
            coordinator = StopReplaceCoordinator(
                gateway, symbol=SYMBOL, position_id=position.id, qty=position.qty,
                tick_size="0.1", clock=clock, rng=random.Random(1), sleep=clock.sleep)
            await coordinator.update("70000.05")
            clock.advance(2)
            await coordinator.update("69500")

            bodies = [msgspec.json.decode(r.body) for r in server.received("POST /api/v1/orders")]
            assert [b["clientOid"] for b in bodies] == [coordinator.stop_client_oid(1),
                                                        coordinator.stop_client_oid(2)]
            first = bodies[0]
            assert (first["side"], first["stop"], first["stopPrice"], first["stopPriceType"],
                    first["reduceOnly"], first["size"], first["type"]) == (
                "buy", "up", "70000.1", "MP", True, 3, "market")
            kinds = [(r.method, r.raw_path.split("?")[0]) for r in server.requests
                     if r.method in ("POST", "DELETE")]
            assert [method for method, _ in kinds] == ["POST", "POST", "DELETE"]
            live = await gateway.open_stops(SYMBOL)
            assert [(s.client_oid, s.stop_price, s.reduce_only) for s in live] == [
                (coordinator.stop_client_oid(2), "69500", True)]
            by_key = dict(budget.priorities)
            assert by_key["POST /api/v1/orders"] is Priority.CRITICAL
            assert by_key["DELETE /api/v1/orders/{orderId}"] is Priority.CRITICAL
            assert by_key["GET /api/v1/stopOrders"] is Priority.MEDIUM

            with pytest.raises(StopAlreadyGoneError):
                await gateway.cancel(SYMBOL, "123456")
            server.script("POST /api/v1/orders", Fault(
                "reply", status=429, payload={"code": "429000", "msg": "Too Many Requests"}))
            with pytest.raises(GatewayRateLimitedError):
                await gateway.place_stop(StopRequest(
                    symbol=SYMBOL, side="buy", size=3, stop="up", stop_price="71000",
                    client_oid=coordinator.stop_client_oid(3)))
            await gateway.close_position(SYMBOL, coordinator.emergency_client_oid)
            close = msgspec.json.decode(server.received("POST /api/v1/orders")[-1].body)
            assert (close["clientOid"], close["type"], close["closeOrder"],
                    close["reduceOnly"]) == (coordinator.emergency_client_oid, "market", True,
                                             True)
        finally:
            await rest.close()
            await server.stop()

    asyncio.run(main())
