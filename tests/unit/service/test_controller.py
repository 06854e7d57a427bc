"""``LiveOptimizerController`` driven with real engine passes over bundled market data.

No network and no wall time: a stepping clock, list journals and a recording router are
injected (``controller_kit``). Async operations run in ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import itertools
import math

import msgspec
import numpy as np
import pytest

from liveopt.exchange.feed import SequenceGap
from liveopt.exchange.messages import CandleUpdate, QuoteTick
from liveopt.scoring import PromotionGate
from liveopt.service.errors import ConflictError, InvalidRequestError, NotFoundError
from liveopt.service.events import (
    AlertRaised,
    EmergencyStop,
    MetricsUpdated,
    PromotionApplied,
    PromotionCandidate,
    TradeExecuted,
    VariantStarted,
    VariantStopped,
)
from liveopt.service.promotion import PROMOTIONS_FILE
from liveopt.service.views import Alert, PromotionRecord
from tests.unit.service.controller_kit import (
    CLOCK_STEP_NS,
    FREE,
    N_VARIANTS,
    ListJournal,
    RecordingRouter,
    SteppingClock,
    feed,
    make_controller,
    ticks,
)

N_TICKS = 12_000
DECISION = ("side", "entry_ts_ns", "exit_ts_ns", "entry_price", "exit_price", "exit_reason")


async def never(_: float) -> None:  # a cadence that never fires: the tests call tick()
    await asyncio.Event().wait()


def drain(subscription) -> list:
    events = []
    while (event := subscription.get_nowait()) is not None:
        events.append(event)
    return events


def test_closed_trades_go_to_the_main_or_the_experimental_journal(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        events = controller.subscribe(maxsize=100_000)
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        return controller, drain(events)

    controller, events = asyncio.run(scenario())
    main, experimental = controller.main.records, controller.experimental.records
    assert main and experimental
    assert {r.variant_id for r in main} == {0}
    assert 0 not in {r.variant_id for r in experimental}
    hashes = controller.engine.variants.config_hash
    assert all(r.config_hash == int(hashes[r.variant_id]) for r in main + experimental)
    executed = [e for e in events if isinstance(e, TradeExecuted)]
    assert [e.trade for e in executed if e.main] == main
    assert [e.trade for e in executed if not e.main] == experimental
    assert len(main) + len(experimental) == controller.engine.trades_closed
    started = [e for e in events if isinstance(e, VariantStarted)]
    assert sorted(e.variant_id for e in started) == list(range(N_VARIANTS))
    page = controller.trades(main=False, variant_id=experimental[0].variant_id, limit=5)
    assert page.items[0] == [r for r in experimental
                             if r.variant_id == experimental[0].variant_id][-1]


def test_micro_batching_gives_the_same_results_as_one_tick_at_a_time(tmp_path):
    async def run(batch: int, folder):
        controller = make_controller(folder, sleep=never, batch_max_ticks=batch)
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        return controller

    one = asyncio.run(run(1, tmp_path / "one"))
    batched = asyncio.run(run(500, tmp_path / "batched"))
    assert one.main.records == batched.main.records
    assert one.experimental.records == batched.experimental.records
    assert one.engine.metrics().tobytes() == batched.engine.metrics().tobytes()
    assert one.latency().count == N_TICKS
    assert batched.latency().count == math.ceil(N_TICKS / 500)


def test_latency_runs_from_the_oldest_tick_of_a_batch_to_the_end_of_its_pass(tmp_path):
    batch = 100
    n = 20 * batch

    async def scenario():
        controller = make_controller(tmp_path, sleep=never, batch_max_ticks=batch)
        await controller.start()
        feed(controller, ticks(0, n))
        return controller

    controller = asyncio.run(scenario())
    histogram = controller.latency()
    # The batch's first tick is read at t0; 99 more receipts and the pass's end follow,
    # one clock step each.
    expected_ms = batch * CLOCK_STEP_NS / 1e6
    assert histogram.count == n // batch
    assert histogram.sum_ms == pytest.approx(expected_ms * histogram.count)
    assert histogram.counts == sorted(histogram.counts)
    assert histogram.counts[-1] == histogram.count and math.isinf(histogram.le_ms[-1])
    first_bucket = next(i for i, le in enumerate(histogram.le_ms) if le >= expected_ms)
    assert histogram.counts[first_bucket] == histogram.count
    assert (first_bucket == 0) or histogram.counts[first_bucket - 1] == 0
    health = controller.health()
    assert health.latency_p50_ms == pytest.approx(expected_ms)
    assert health.latency_p99_ms == pytest.approx(expected_ms)
    assert controller.status().ticks_processed == n


def test_other_feed_events_are_counted_not_dropped_silently(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        controller.on_market_event(ticks(0, 1)[0])  # before start: ignored, counted
        await controller.start()
        good = ticks(1, 3)
        feed(controller, good)
        late = QuoteTick(symbol="XBTUSDTM", ts_ns=good[0].ts_ns - 1, bid=good[0].price - 1,
                         bid_size=3, ask=good[0].price + 1, ask_size=4, sequence=1)
        crossed = msgspec.structs.replace(late, ts_ns=good[-1].ts_ns, bid=10.0, ask=9.0)
        candle = CandleUpdate(symbol="XBTUSDTM", timeframe="1min", start_ns=0, open=1.0,
                              high=1.0, low=1.0, close=1.0, volume=1.0, turnover=1.0,
                              push_ts_ns=0)
        gap = SequenceGap(topic="t", symbol="XBTUSDTM", expected=3, received=5, missing=2,
                          ts_ns=0)
        feed(controller, [late, crossed, candle, gap, object()])
        return controller

    controller = asyncio.run(scenario())
    batcher = controller._batcher
    assert controller.ignored_before_start == 1
    assert batcher.ticks == 3  # two trades and the late quote (processed at the last time)
    assert batcher.reordered == 1
    assert batcher.rejected == 1
    assert batcher.candles_ignored == 1 and batcher.gaps == 1 and batcher.unknown == 1
    assert controller.status().feed.malformed == 1


def test_the_leaderboard_is_ranked_and_carries_gate_verdicts(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        events = controller.subscribe(maxsize=100_000)
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        controller.tick()
        return controller, drain(events)

    controller, events = asyncio.run(scenario())
    rows = controller.results()
    assert [r.rank for r in rows] == list(range(1, N_VARIANTS + 1))
    scores = [r.score for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert {r.variant_id for r in rows} == set(range(N_VARIANTS))
    main = next(r for r in rows if r.is_main)
    assert main.variant_id == 0 and main.gate is None
    assert all(r.gate is not None for r in rows if not r.is_main)
    metrics = controller.engine.metrics()
    for row in rows:
        assert row.trades == metrics["trades"][row.variant_id]
        assert row.net_pnl == pytest.approx(metrics["net_pnl"][row.variant_id])
    gate = controller.gate()
    passing = [r.variant_id for r in rows if r.gate and r.gate.promoted]
    assert gate.candidates == passing
    assert sum(gate.failed_by_reason.values()) == sum(
        len(r.gate.reasons) for r in rows if r.gate)
    assert controller.results(limit=3) == rows[:3]
    assert any(isinstance(e, MetricsUpdated) for e in events)
    detail = controller.variant(rows[0].variant_id)
    assert detail.result == rows[0]
    assert detail.params["timeframe"] in ("1m", "5m")
    assert detail.metrics["trades"] == rows[0].trades
    assert detail.equity_curve.equity == [pytest.approx(rows[0].equity)]
    with pytest.raises(NotFoundError):
        controller.variant(N_VARIANTS)


def test_promotion_makes_the_main_strategy_trade_as_the_promoted_variant(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        events = controller.subscribe(maxsize=100_000)
        source = int(np.flatnonzero(controller.engine.variants.timeframe
                                    != controller.engine.variants.timeframe[0])[0])
        before = controller.engine.variants[0]
        record = await controller.promote(source)  # from a flat start
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        return controller, source, before, record, drain(events)

    controller, source, before, record, events = asyncio.run(scenario())
    engine = controller.engine
    assert engine.variants[0] == engine.variants[source]
    assert record.previous_params != record.new_params
    assert record.new_config_hash == int(engine.variants.config_hash[source])
    assert record.previous_config_hash == before.config_hash()
    main = [tuple(getattr(r, f) for f in DECISION) for r in controller.main.records]
    copied = [tuple(getattr(r, f) for f in DECISION) for r in controller.experimental.records
              if r.variant_id == source]
    assert main and main == copied
    assert controller.status().main_config_hash == record.new_config_hash
    assert [e.record for e in events if isinstance(e, PromotionApplied)] == [record]
    lines = (tmp_path / PROMOTIONS_FILE).read_bytes().splitlines()
    assert [msgspec.json.decode(x, type=PromotionRecord) for x in lines] == [record]


def test_rollback_restores_the_previous_main_parameters_and_survives_a_restart(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        original = controller.engine.variants[0]
        await controller.start()
        feed(controller, ticks(0, 3_000))
        promoted = await controller.promote(3)
        restarted = make_controller(tmp_path, sleep=never)  # reads the audit log
        after_restart = restarted.engine.variants[0]
        undone = await controller.rollback()
        with pytest.raises(ConflictError):
            await controller.rollback()
        undone_after_restart = await restarted.rollback()
        return (controller, original, promoted, after_restart, undone, restarted,
                undone_after_restart)

    (controller, original, promoted, after_restart, undone, restarted,
     undone_after_restart) = asyncio.run(scenario())
    assert controller.engine.variants[0] == original
    assert after_restart == controller.engine.variants[3]
    assert undone.action == "rollback" and undone.variant_id == 3
    assert undone.new_params == promoted.previous_params
    assert undone.new_config_hash == promoted.previous_config_hash
    assert restarted.engine.variants[0] == original
    assert undone_after_restart.new_params == promoted.previous_params
    actions = [r.action for r in controller.promotions()]
    assert actions == ["promote", "rollback"]
    lines = (tmp_path / PROMOTIONS_FILE).read_bytes().splitlines()
    assert len(lines) == 3  # promote, and a rollback from each controller


def test_conflicts_and_bad_requests_raise_typed_errors(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        with pytest.raises(ConflictError):
            await controller.stop()
        await controller.start()
        with pytest.raises(ConflictError):
            await controller.start()
        with pytest.raises(ConflictError):
            await controller.reset()
        with pytest.raises(ConflictError):
            await controller.promote(0)
        with pytest.raises(NotFoundError):
            await controller.promote(N_VARIANTS)
        with pytest.raises(InvalidRequestError):
            await controller.promote("1")  # type: ignore[arg-type]
        await controller.promote(2)
        with pytest.raises(ConflictError, match="already"):
            await controller.promote(2)
        await controller.rollback()
        with pytest.raises(ConflictError, match="no promotion"):
            await controller.rollback()
        with pytest.raises(InvalidRequestError):
            controller.trades(limit=0)
        await controller.aclose()

    asyncio.run(scenario())


def test_the_emergency_stop_halts_every_variant_and_start_resumes_them(tmp_path):
    router = RecordingRouter()

    async def scenario():
        controller = make_controller(tmp_path, sleep=never, mode="sim", router=router)
        events = controller.subscribe(maxsize=100_000)
        await controller.start()
        feed(controller, ticks(0, 4_000))
        report = await controller.stop(flatten=True)
        feed(controller, ticks(4_000, 8_000))  # positions close at the next price
        stopped_metrics = controller.engine.metrics()
        trades_after_stop = [r for r in controller.experimental.records
                             if r.entry_ts_ns > ticks(3_999, 4_000)[0].ts_ns]
        alerts = controller.alerts()
        health = controller.health()
        await controller.start()
        resumed_metrics = controller.engine.metrics()
        return (report, stopped_metrics, trades_after_stop, alerts, health, resumed_metrics,
                drain(events), controller)

    (report, stopped, after, alerts, health, resumed, events,
     controller) = asyncio.run(scenario())
    assert not stopped["active"].any()
    assert (stopped["side"] == 0).all()
    assert after == []  # no entries after the stop
    assert report.flatten and report.orders_cancelled == 2 and report.position_closed
    assert ("flatten", None) in router.calls
    assert [e.source for e in events if isinstance(e, EmergencyStop)] == ["api"]
    assert "emergency_stop" in [a.kind for a in alerts]
    assert health.status == "stopped"
    assert resumed["active"].all()
    assert router.resumed == 2  # at each start
    assert controller.status().running


def test_a_variant_whose_handling_raises_is_stopped_and_the_rest_continue(tmp_path):
    async def reference():
        controller = make_controller(tmp_path / "reference", sleep=never)
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        return controller

    traded = sorted({r.variant_id for r in asyncio.run(reference()).experimental.records})
    crashing = set(traded[:3])  # variants that do trade, so their handling runs

    def hook(record):
        if record.variant_id in crashing:
            raise RuntimeError(f"bad row of {record.variant_id}")

    async def scenario():
        controller = make_controller(tmp_path / "crash", sleep=never, trade_hook=hook)
        events = controller.subscribe(maxsize=100_000)
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        controller.tick()
        return controller, drain(events)

    controller, events = asyncio.run(scenario())
    stopped = {e.variant_id: e.reason for e in events if isinstance(e, VariantStopped)}
    assert set(stopped) == crashing
    assert all(reason.startswith("crashed: RuntimeError: bad row") for reason in stopped.values())
    metrics = controller.engine.metrics()
    assert not metrics["active"][sorted(crashing)].any()
    assert metrics["active"][[v for v in range(N_VARIANTS) if v not in crashing]].all()
    journaled = {r.variant_id for r in controller.experimental.records}
    assert journaled.isdisjoint(crashing) and len(journaled) > 3
    raised = [e.alert for e in events if isinstance(e, AlertRaised)]
    assert [a.kind for a in raised] == ["variant_crash_rate"]
    assert f"3 of {N_VARIANTS}" in raised[0].message
    assert controller.health().variant_crashes == 3
    rows = {r.variant_id: r for r in controller.results()}
    assert all(not rows[v].active and rows[v].stop_reason == stopped[v] for v in crashing)


def test_memory_alert_follows_the_injected_reading(tmp_path):
    reading = {"pct": 50.0}
    total = 8 * 2**30

    def memory():
        from liveopt.service.runtime_metrics import MemoryReading
        return MemoryReading(rss_bytes=int(total * reading["pct"] / 100), total_bytes=total)

    async def scenario():
        controller = make_controller(tmp_path, sleep=never, memory_reader=memory)
        events = controller.subscribe(maxsize=1000)
        await controller.start()
        controller.tick()
        quiet = drain(events)
        reading["pct"] = 91.0
        controller.tick()
        controller.tick()  # still active: not raised twice
        loud = drain(events)
        health = controller.health()
        reading["pct"] = 20.0
        controller.tick()
        return quiet, loud, health, controller.alerts()

    quiet, loud, health, after = asyncio.run(scenario())
    assert not [e for e in quiet if isinstance(e, AlertRaised)]
    raised = [e.alert for e in loud if isinstance(e, AlertRaised)]
    assert [a.kind for a in raised] == ["memory"]
    assert health.status == "degraded" and health.memory_pct == pytest.approx(91.0)
    assert after == []


def test_journal_failures_are_errors_not_crashes(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never,
                                     experimental_journal=ListJournal(fail=True))
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        return controller

    controller = asyncio.run(scenario())
    assert controller.journal_errors > 0 and controller.errors == controller.journal_errors
    assert controller.health().variant_crashes == 0
    assert controller.main.records


def test_main_fills_reach_the_router_in_order_and_failures_are_alerted(tmp_path):
    async def scenario(router, mode, folder):
        controller = make_controller(folder, sleep=never, mode=mode, router=router)
        events = controller.subscribe(maxsize=100_000)
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        await controller._router.drain() if controller._router else None
        controller.tick()
        return controller, drain(events)

    router = RecordingRouter()
    controller, _ = asyncio.run(scenario(router, "sim", tmp_path / "sim"))
    kinds = [kind for kind, _ in router.calls]
    assert kinds and kinds[:2] == ["entry", "exit"]
    assert all(a != b for a, b in itertools.pairwise(kinds))  # alternate
    assert kinds.count("exit") == len(controller.main.records)
    assert all(int(payload["variant"]) == 0 for _, payload in router.calls)

    paper = RecordingRouter()
    asyncio.run(scenario(paper, "paper", tmp_path / "paper"))
    assert paper.calls == []

    failing = RecordingRouter(fail=True)
    controller, events = asyncio.run(scenario(failing, "sim", tmp_path / "fail"))
    assert controller._router.failures == len(failing.calls) > 0
    assert "order_router" in [e.alert.kind for e in events if isinstance(e, AlertRaised)]
    assert controller.main.records  # the engine path went on


def test_a_slow_subscriber_loses_its_oldest_events_without_stalling(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        slow = controller.subscribe(maxsize=5)
        everything = controller.subscribe(maxsize=1_000_000)
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        return controller, drain(slow), drain(everything), slow.dropped

    controller, kept, all_events, dropped = asyncio.run(scenario())
    assert len(all_events) > 5
    assert kept == all_events[-5:]
    assert dropped == len(all_events) - 5
    assert controller.status().ticks_processed == N_TICKS


def test_the_cadence_loop_publishes_metrics_on_the_injected_sleep(tmp_path):
    async def scenario():
        clock = SteppingClock()
        beats = asyncio.Queue()

        async def sleep(seconds):
            await beats.get()

        controller = make_controller(tmp_path, clock=clock, sleep=sleep)
        events = controller.subscribe(maxsize=100_000)
        await controller.start()
        feed(controller, ticks(0, 2_000))
        for _ in range(3):
            beats.put_nowait(None)
            for _ in range(5):
                await asyncio.sleep(0)
        await controller.aclose()
        return [e for e in drain(events) if isinstance(e, MetricsUpdated)]

    updates = asyncio.run(scenario())
    assert len(updates) == 3
    assert all(u.ticks_processed == 2_000 for u in updates)
    assert [u.ts_ns for u in updates] == sorted(u.ts_ns for u in updates)


def test_reset_builds_fresh_accounts_and_keeps_the_promoted_main(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        await controller.start()
        feed(controller, ticks(0, 4_000))
        await controller.promote(5)
        promoted = controller.engine.variants[0]
        await controller.stop()
        await controller.reset()
        return controller, promoted

    controller, promoted = asyncio.run(scenario())
    metrics = controller.engine.metrics()
    assert (metrics["trades"] == 0).all() and metrics["active"].all()
    assert controller.engine.variants[0] == promoted
    assert controller.results()[0].trades == 0


@pytest.mark.parametrize("auto", [True, False], ids=["auto_promote", "announce_only"])
def test_gate_candidates_are_announced_once_and_auto_promotion_applies_the_best(
        tmp_path, auto):
    lenient = PromotionGate(min_trades=5, confidence=0.6, correction="none")
    hooked = []  # what the after-promotion hook saw (the daemon snapshots there)

    async def scenario():
        controller = make_controller(tmp_path, sleep=never, engine_config=FREE, gate=lenient,
                                     auto_promote=auto, after_promotion=hooked.append)
        events = controller.subscribe(maxsize=100_000)
        before = controller.engine.variants[0]
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        controller.evaluate()
        candidates = controller.gate().candidates
        hashes = controller.engine.variants.config_hash.copy()
        controller.evaluate()  # same candidates: nothing new, and within the cooldown
        return controller, before, candidates, hashes, drain(events)

    controller, before, candidates, hashes, events = asyncio.run(scenario())
    assert candidates, "the lenient gate passed nobody on this stream"
    announced = [e.variant_id for e in events if isinstance(e, PromotionCandidate)]
    assert announced == candidates
    assert all(e.verdict.promoted for e in events if isinstance(e, PromotionCandidate))
    applied = [e.record for e in events if isinstance(e, PromotionApplied)]
    if auto:
        assert [(r.variant_id, r.source) for r in applied] == [(candidates[0], "auto")]
        assert hooked == applied
        assert applied[0].evidence is not None and applied[0].evidence.promoted
        assert int(hashes[0]) == int(hashes[candidates[0]])
        assert controller.engine.variants[0] == controller.engine.variants[candidates[0]]
    else:
        assert applied == [] and hooked == []
        assert controller.engine.variants[0] == before


def test_a_router_that_never_answers_does_not_stall_the_engine(tmp_path):
    class StuckRouter(RecordingRouter):
        async def on_entry(self, fill):
            self.calls.append(("entry", fill))
            await asyncio.Event().wait()

    router = StuckRouter()

    async def scenario():
        controller = make_controller(tmp_path, sleep=never, mode="live", router=router)
        await controller.start()
        feed(controller, ticks(0, N_TICKS))
        for _ in range(3):
            await asyncio.sleep(0)
        pending = controller._router.pending
        await controller.aclose()
        return controller, pending

    controller, pending = asyncio.run(scenario())
    assert [kind for kind, _ in router.calls] == ["entry"]  # the worker waits on it...
    assert pending == 2 * len(controller.main.records) - 1  # ...the rest queue up
    assert controller.status().ticks_processed == N_TICKS  # and the engine went on


def test_subscriptions_iterate_until_closed(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        subscription = controller.subscribe(maxsize=10_000)
        received = []

        async def consume():
            async for event in subscription:
                received.append(event)

        consumer = asyncio.create_task(consume())
        await controller.start()
        feed(controller, ticks(0, 3_000))
        await asyncio.sleep(0)
        subscription.close()
        await asyncio.wait_for(consumer, timeout=5)
        return controller, received, subscription

    controller, received, subscription = asyncio.run(scenario())
    trades = [e for e in received if isinstance(e, TradeExecuted)]
    assert len(trades) == len(controller.main.records) + len(controller.experimental.records)
    assert subscription.dropped == 0 and controller._hub.subscribers == 0


def test_events_can_be_pushed_through_an_engine_input_wrapper(tmp_path):
    seen = []

    class Logged:  # a write-ahead log would sit here
        def __init__(self, engine):
            self.engine = engine

        def on_trade(self, ts, price, size, side):
            seen.append(ts)
            self.engine.on_trade(ts, price, size, side)

    async def scenario(folder, **kwargs):
        controller = make_controller(folder, sleep=never, **kwargs)
        await controller.start()
        feed(controller, ticks(0, 3_000))
        return controller

    wrapped = asyncio.run(scenario(tmp_path / "wrapped", engine_input=Logged))
    plain = asyncio.run(scenario(tmp_path / "plain"))
    assert seen == [t.ts_ns for t in ticks(0, 3_000)]
    assert wrapped.experimental.records == plain.experimental.records


def test_budget_pools_show_in_health_and_new_429s_raise_the_rate_limit_alert(tmp_path):
    from types import SimpleNamespace

    class Budget:
        def __init__(self):
            self.rate_limited = 0

        def metrics(self):
            pool = SimpleNamespace(pool="futures", tokens_available=1500, capacity=2000,
                                   target_utilisation=0.8, rate_limited=self.rate_limited)
            return SimpleNamespace(pools=(pool,), rate_limited=self.rate_limited)

    budget = Budget()

    async def scenario():
        controller = make_controller(tmp_path, sleep=never, budget=budget)
        events = controller.subscribe(maxsize=1000)
        await controller.start()
        controller.tick()
        budget.rate_limited = 4
        controller.tick()
        health = controller.health()
        controller.tick()  # no new 429s: the alert clears
        return health, drain(events), controller.alerts()

    health, events, after = asyncio.run(scenario())
    assert [(b.pool, b.tokens, b.capacity, b.rate_limited) for b in health.budget] == [
        ("futures", 1500.0, 2000.0, 4)]
    raised = [e.alert for e in events if isinstance(e, AlertRaised)]
    assert [a.kind for a in raised] == ["rate_limit"] and raised[0].message.startswith("4 ")
    assert after == []


def test_the_daemon_config_maps_onto_the_controller_config_and_bad_values_are_named():
    from liveopt.service.config import ServiceConfig
    from liveopt.service.controller_config import ControllerConfig, controller_config_from

    service = ServiceConfig()
    config = controller_config_from(service)
    assert config.mode == service.service.mode == "paper"
    assert config.variants == service.optimizer.variants
    assert config.alerts.crash_rate_pct == pytest.approx(100 * service.alerts.crash_rate)
    for field, value in (("mode", "real"), ("batch_interval_s", 0.0), ("variants", 0),
                         ("generation", "magic")):
        with pytest.raises(ValueError, match=field):
            ControllerConfig(**{field: value})


def test_with_the_optimizer_off_only_the_main_strategy_runs(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never, optimizer_enabled=False)
        await controller.start()
        feed(controller, ticks(0, 3_000))
        controller.tick()
        return controller

    controller = asyncio.run(scenario())
    assert len(controller.engine) == 1
    assert [r.variant_id for r in controller.results()] == [0]
    assert controller.gate().candidates == [] and controller.experimental.records == []


def test_an_alert_of_another_part_is_published_once_and_listed_until_cleared(tmp_path):
    async def scenario():
        controller = make_controller(tmp_path, sleep=never)
        events = controller.subscribe(maxsize=1000)
        alert = Alert(kind="unknown_position", severity="critical",
                      message="XBTUSDTM: a position the router does not know", ts_ns=1)
        controller.raise_alert(alert)
        controller.raise_alert(alert)  # still active: not published again
        listed = controller.alerts()
        health = controller.health().alerts
        controller.clear_alert("unknown_position")
        return drain(events), listed, health, controller.alerts()

    events, listed, health, after = asyncio.run(scenario())
    assert [e for e in events if isinstance(e, AlertRaised)] == [
        AlertRaised(alert=listed[-1])
    ]
    assert listed[-1].kind == "unknown_position" and listed == health
    assert all(a.kind != "unknown_position" for a in after)
