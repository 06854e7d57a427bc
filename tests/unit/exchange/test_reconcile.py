"""Reconciler: local positions and stops against the scripted exchange of test_stops."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveopt.exchange.reconcile import (
    OrphanStopCancelled,
    PositionDrift,
    ReconcileEvent,
    ReconcileFailed,
    Reconciler,
    ReconcilerConfig,
    StopDiscrepancy,
    TradingHalted,
)
from liveopt.exchange.stops import ExchangePosition, ExchangeStop, StopState
from tests.unit.exchange.test_stops import (
    CANCEL_OUTCOMES,
    PLACE_OUTCOMES,
    POSITION,
    SYMBOL,
    Harness,
    ScriptedGateway,
    make,
    oid,
)

OTHER = "ETHUSDTM"


def reconciler_for(h: Harness, *symbols: str, **config: object) -> tuple[Reconciler, list]:
    events: list = []
    reconciler = Reconciler(h.gateway, symbols=symbols, clock=h.clock, sleep=h.clock.sleep,
                            config=ReconcilerConfig(**config), sink=events.append)
    reconciler.track(h.coordinator)
    return reconciler, events


def of(events, kind):
    return [event for event in events if isinstance(event, kind)]


async def protected(price: str = "99000", **kwargs) -> Harness:
    h = make(**kwargs)
    await h.coordinator.update(price)
    assert h.coordinator.state is StopState.PROTECTED
    return h


def test_missing_stop_is_placed_again_through_the_coordinator():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h)
        h.gateway.stops.clear()  # triggered or cancelled by hand
        report = await reconciler.reconcile()
        assert [(e.problem, e.action) for e in of(report.events, StopDiscrepancy)] == [
            ("missing", "replaced")]
        await h.coordinator.settle()
        assert [(s.client_oid, s.stop_price) for s in h.gateway.live()] == [(oid(2), "99000")]
        assert h.coordinator.state is StopState.PROTECTED
        assert not reconciler.halted

    asyncio.run(scenario())


@pytest.mark.parametrize(("field", "value"), [
    ("stop_price", "95000"), ("size", 2), ("side", "buy"), ("reduce_only", False)])
def test_wrong_stop_is_replaced_new_one_first_then_the_wrong_one_cancelled(field, value):
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h)
        (stop,) = h.gateway.live()
        h.gateway.stops[stop.id] = msgspec.structs.replace(stop, **{field: value})
        report = await reconciler.reconcile()
        assert [e.problem for e in of(report.events, StopDiscrepancy)] == ["wrong"]
        await h.coordinator.settle()
        live = h.gateway.live()
        assert [(s.client_oid, s.stop_price, s.size, s.side, s.reduce_only) for s in live] == [
            (oid(2), "99000", 5, "sell", True)]
        assert h.gateway.ops("place", "cancel")[-2:] == [("place", oid(2)), ("cancel", oid(1))]
        assert h.gateway.never_unprotected()

    asyncio.run(scenario())


def test_extra_liveopt_stop_of_a_known_position_is_cancelled_and_the_confirmed_one_kept():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h)
        extra = h.gateway.add_stop(client_oid_value=oid(9), stop_price="90000")
        manual = h.gateway.add_stop(client_oid_value="manual-1", stop_price="91000")
        report = await reconciler.reconcile()
        assert [(e.problem, e.order_id) for e in of(report.events, StopDiscrepancy)] == [
            ("extra", extra.id)]
        await h.coordinator.settle()
        assert {s.client_oid for s in h.gateway.live()} == {oid(1), manual.client_oid}

    asyncio.run(scenario())


def test_orphan_liveopt_stops_of_a_flat_symbol_are_cancelled_and_foreign_ones_left():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h, OTHER)
        h.gateway.positions[OTHER] = ExchangePosition(symbol=OTHER, id="", qty=0)
        orphan = h.gateway.add_stop(client_oid_value="stop-ETHUSDTM-old-3", stop_price="3000",
                                    symbol=OTHER)
        foreign = h.gateway.add_stop(client_oid_value="manual-7", stop_price="2900",
                                     symbol=OTHER)
        report = await reconciler.reconcile()
        cancelled = of(report.events, OrphanStopCancelled)
        assert [(e.order_id, e.ok) for e in cancelled] == [(orphan.id, True)]
        assert [s.id for s in h.gateway.live(OTHER)] == [foreign.id]
        assert reconciler.metrics().orphans_cancelled == 1

    asyncio.run(scenario())


def test_unknown_exchange_position_halts_trading_and_is_never_adopted():
    async def scenario():
        h = await protected()
        reconciler, events = reconciler_for(h, OTHER)
        h.gateway.positions[OTHER] = ExchangePosition(symbol=OTHER, id="eth-9", qty=-2)
        placed_before = len(h.gateway.requests)
        first = await reconciler.reconcile()
        second = await reconciler.reconcile()
        assert reconciler.halted and "eth-9" in reconciler.halt_reason
        assert first.halted and second.halted
        halts = of(events, TradingHalted)
        assert [(e.symbol, e.position_id, e.qty) for e in halts] == [(OTHER, "eth-9", -2)]
        assert OTHER not in reconciler.coordinators
        assert len(h.gateway.requests) == placed_before
        reconciler.resume()
        assert not reconciler.halted and reconciler.halt_reason == ""

    asyncio.run(scenario())


def test_local_position_the_exchange_does_not_have_is_dropped_with_a_drift_event():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h)
        h.gateway.positions[SYMBOL] = ExchangePosition(symbol=SYMBOL, id=POSITION, qty=0)
        report = await reconciler.reconcile()
        drift = of(report.events, PositionDrift)
        assert [(e.local_qty, e.exchange_qty, e.action) for e in drift] == [(5, 0, "dropped")]
        assert SYMBOL not in reconciler.coordinators
        assert h.gateway.live() == []  # its stop is now an orphan and was cancelled
        assert not reconciler.halted

    asyncio.run(scenario())


def test_a_different_position_under_a_known_symbol_drops_the_local_one_and_halts():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h)
        h.gateway.positions[SYMBOL] = ExchangePosition(symbol=SYMBOL, id="pos2", qty=7)
        report = await reconciler.reconcile()
        assert [e.action for e in of(report.events, PositionDrift)] == ["dropped"]
        assert [e.position_id for e in of(report.events, TradingHalted)] == ["pos2"]
        assert reconciler.halted

    asyncio.run(scenario())


def test_exchange_size_change_moves_the_stop_size():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h)
        h.gateway.positions[SYMBOL] = ExchangePosition(symbol=SYMBOL, id=POSITION, qty=3)
        report = await reconciler.reconcile()
        assert [(e.local_qty, e.exchange_qty, e.action)
                for e in of(report.events, PositionDrift)] == [(5, 3, "resized")]
        await h.coordinator.settle()
        assert [(s.size, s.stop_price) for s in h.gateway.live()] == [(3, "99000")]

    asyncio.run(scenario())


def test_position_without_any_stop_target_is_reported_not_invented():
    async def scenario():
        h = make()
        reconciler, _ = reconciler_for(h)
        report = await reconciler.reconcile()
        assert [(e.problem, e.action) for e in of(report.events, StopDiscrepancy)] == [
            ("no_target", "none")]
        assert h.gateway.requests == []

    asyncio.run(scenario())


def test_busy_coordinator_is_skipped_for_the_pass():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h)
        gate = h.gateway.hold("place")
        h.clock.advance(2)
        h.coordinator.submit("99500")
        await asyncio.sleep(0)
        report = await reconciler.reconcile()
        assert report.skipped == (SYMBOL,) and report.events == ()
        gate.set()
        await h.coordinator.settle()
        report = await reconciler.reconcile()
        assert report.checked == (SYMBOL,) and report.events == ()

    asyncio.run(scenario())


def test_exchange_read_failure_is_reported_and_other_symbols_still_checked():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h, OTHER)
        h.gateway.positions[OTHER] = ExchangePosition(symbol=OTHER, id="eth-1", qty=1)
        h.gateway.then("position", "fail")  # ETHUSDTM sorts first
        report = await reconciler.reconcile()
        assert [e.symbol for e in of(report.events, ReconcileFailed)] == [OTHER]
        assert report.checked == (SYMBOL,)
        assert not reconciler.halted
        assert reconciler.metrics().failures == 1

    asyncio.run(scenario())


def test_stops_the_coordinator_gave_up_cancelling_are_cancelled_by_the_reconciler():
    async def scenario():
        h = await protected(max_cancel_attempts=2)
        reconciler, _ = reconciler_for(h)
        h.gateway.then("cancel", "fail", "fail")
        h.clock.advance(2)
        await h.coordinator.update("99500")
        assert len(h.gateway.live()) == 2 and h.coordinator.stale_order_ids
        report = await reconciler.reconcile()
        assert [e.problem for e in of(report.events, StopDiscrepancy)] == ["extra"]
        await h.coordinator.settle()
        assert [s.stop_price for s in h.gateway.live()] == ["99500"]

    asyncio.run(scenario())


def test_run_reconciles_on_an_interval_with_the_injected_sleep():
    async def scenario():
        h = await protected()
        reconciler, _ = reconciler_for(h, interval_ns=5_000_000_000)
        await reconciler.run(passes=3)
        assert reconciler.metrics().passes == 3
        assert h.clock.sleeps[-2:] == [5.0, 5.0]

    asyncio.run(scenario())


def test_reconcile_events_are_tagged_frozen_structs_that_round_trip():
    async def scenario():
        h = await protected()
        reconciler, events = reconciler_for(h, OTHER)
        h.gateway.positions[OTHER] = ExchangePosition(symbol=OTHER, id="x", qty=1)
        h.gateway.stops.clear()
        await reconciler.reconcile()
        return events

    events = asyncio.run(scenario())
    assert {type(e) for e in events} == {TradingHalted, StopDiscrepancy}
    decoder = msgspec.json.Decoder(ReconcileEvent)
    for event in events:
        assert decoder.decode(msgspec.json.encode(event)) == event


def test_config_refuses_a_non_positive_interval():
    with pytest.raises(ValueError, match="interval_ns"):
        ReconcilerConfig(interval_ns=0)


def test_tracking_a_second_position_for_one_symbol_is_refused():
    h = make()
    reconciler, _ = reconciler_for(h)
    with pytest.raises(ValueError, match="already has position"):
        reconciler.track(make().coordinator)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    targets=st.lists(st.integers(900_000, 900_020), min_size=1, max_size=6),
    place_script=st.lists(PLACE_OUTCOMES, max_size=4),
    cancel_script=st.lists(CANCEL_OUTCOMES, max_size=8),
    lose_stop=st.booleans(),
)
def test_after_any_failures_one_healthy_pass_leaves_exactly_the_target_stop(
        targets, place_script, cancel_script, lose_stop):
    async def scenario():
        gateway = ScriptedGateway()
        gateway.then("place", *place_script).then("cancel", *cancel_script)
        h = make(gateway, debounce_ns=0, max_cancel_attempts=2)
        reconciler, _ = reconciler_for(h)
        for ticks in targets:
            h.coordinator.submit(f"{ticks / 10:.1f}")
            await asyncio.sleep(0)
        await h.coordinator.settle()
        gateway.script.clear()  # the exchange is healthy again
        if lose_stop:
            gateway.stops.clear()
        await reconciler.reconcile()
        await h.coordinator.settle()
        last = f"{targets[-1] / 10:.1f}".removesuffix(".0")
        assert [(s.stop_price, s.client_oid) for s in gateway.live()] == [
            (last, h.coordinator.active.client_oid)]
        assert gateway.never_unprotected() or lose_stop

    asyncio.run(scenario())


def test_exchange_stop_and_position_records_are_frozen():
    stop = ExchangeStop(id="1", client_oid=oid(1), side="sell", size=1, stop="down",
                        stop_price="1")
    with pytest.raises(AttributeError):
        stop.size = 2
