"""The real liveopt exchange clients against the real simulator on 127.0.0.1 (issue 5: "the
liveopt client's tests run against it").

Every test starts ``liveopt sim`` in-process on port 0 (short ping interval, fast market
loop) and drives it only through the clients: ``MarketDataClient`` with
``KucoinFuturesRest.bullet_public`` as token provider, ``KucoinFuturesRest`` with a shared
``PingBudgetManager``, ``StopReplaceCoordinator`` over ``RestStopGateway`` and the
``Reconciler``. The simulator's core (``RunningSim.exchange``) is read directly only to
check what the exchange holds.

Determinism: the feed tests run the seeded generator (their assertions hold for any number
of frames); the REST, stop and reconciler tests run a scripted market (``ScriptedMarket``:
a deep, static ladder the test moves by hand), so prices, fills and fees are exact and a
stop triggers only when the test moves the market through it. No assertion is about
wall-clock durations; ``_wait_for`` only bounds how long a test waits before failing.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from liveopt.exchange.budget import BudgetConfig, EndpointCost, PingBudgetManager
from liveopt.exchange.client_oid import client_oid
from liveopt.exchange.errors import RateLimitedError, ServerError
from liveopt.exchange.feed import FeedConfig, MarketDataClient, SequenceGap
from liveopt.exchange.messages import CandleUpdate, DepthTop5, QuoteTick, TradeTick
from liveopt.exchange.reconcile import (
    OrphanStopCancelled,
    PositionDrift,
    Reconciler,
    StopDiscrepancy,
    TradingHalted,
)
from liveopt.exchange.rest import KucoinFuturesRest, RestConfig
from liveopt.exchange.rest_models import OrderRequest
from liveopt.exchange.signing import Credentials
from liveopt.exchange.stops import (
    ExchangeStop,
    RestStopGateway,
    StopReplaceCoordinator,
    StopRequest,
    StopState,
)
from liveopt.exchange.tokens import BulletToken
from liveopt.exchange.trade_math import decode_contract_spec, gross_pnl, net_pnl
from liveopt.sim.config import (
    DEFAULT_API_KEY,
    DEFAULT_API_PASSPHRASE,
    DEFAULT_API_SECRET,
    FaultConfig,
    SimConfig,
)
from liveopt.sim.contracts import default_contracts
from liveopt.sim.exchange import SimExchange
from liveopt.sim.market import MarketBook, MarketEvent
from liveopt.sim.server import RunningSim, start_sim

SYMBOL = "XBTUSDTM"
CREDENTIALS = Credentials(DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_API_PASSPHRASE)
SEED = 20240601
LEVERAGE = 5
WAIT_LIMIT_S = 2.5  # how long a condition may take before the test fails (never asserted)

# A fast market loop and a short keep-alive, so that every test runs well under 3 s.
FAST = {"tick_ms": 10, "depth5_interval_ms": 50, "candle_interval_ms": 100,
        "ping_interval_ms": 200, "ping_timeout_ms": 1000}
# The budget's table lacks the account overview (not in the reference's weight table).
BUDGET_CONFIG = BudgetConfig(endpoint_overrides={
    "GET /api/v1/account-overview": EndpointCost(pool="futures", weight=5)})


# ----------------------------------------------------------------------------- harness


class ScriptedMarket:
    """A ``MarketSource`` whose other traders hold a deep static ladder around a price the
    test sets: best bid at the price, best ask one tick above, ``levels`` levels of
    ``size`` lots a side, no trades. A new ladder is published only after ``move_to``."""

    def __init__(self, price: str, tick_size: str = "0.1", levels: int = 10,
                 size: int = 1000) -> None:
        self._tick = Decimal(tick_size)
        self._levels = levels
        self._size = size
        self._bid_ticks = self._ticks(price)
        self._pending = True
        self._start_ns: int | None = None

    def _ticks(self, price: str) -> int:
        ratio = Decimal(price) / self._tick
        assert ratio == ratio.to_integral_value(), f"{price} is not on the tick grid"
        return int(ratio)

    @property
    def bid(self) -> Decimal:
        return self._bid_ticks * self._tick

    @property
    def ask(self) -> Decimal:
        return (self._bid_ticks + 1) * self._tick

    def move_to(self, price: str) -> None:
        """Lay the ladder with its best bid at ``price`` on the next market step."""
        self._bid_ticks = self._ticks(price)
        self._pending = True

    def start(self, start_ns: int) -> None:
        self._start_ns = start_ns

    def events_until(self, now_ns: int) -> list[MarketEvent]:
        assert self._start_ns is not None
        if not self._pending:
            return []
        self._pending = False
        bid = self._bid_ticks
        return [MarketBook(
            ts_ns=max(now_ns, self._start_ns),
            bids=tuple((bid - i, self._size) for i in range(self._levels)),
            asks=tuple((bid + 1 + i, self._size) for i in range(self._levels)))]


def _scripted_exchange(market: ScriptedMarket, start_ns: int) -> SimExchange:
    return SimExchange({SYMBOL: default_contracts()[SYMBOL]}, {SYMBOL: market},
                       start_ns=start_ns)


async def _start(market: ScriptedMarket | None = None, **config: Any) -> RunningSim:
    settings = {**FAST, "seed": SEED, **config}
    if market is None:
        return await start_sim(SimConfig(**settings))
    clock = time.time_ns
    return await start_sim(SimConfig(**settings), clock=clock,
                           exchange=_scripted_exchange(market, clock()))


def _rest(sim: RunningSim, budget: PingBudgetManager | None = None, **config: Any
          ) -> KucoinFuturesRest:
    settings = {"base_url": sim.url, "request_timeout_s": 5.0, "retry_backoff_s": 0.01,
                "retry_backoff_max_s": 0.05, **config}
    return KucoinFuturesRest(CREDENTIALS, config=RestConfig(**settings), budget=budget,
                             rng=random.Random(SEED))


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=15))


async def _wait_for(condition: Callable[[], bool], what: str,
                    limit_s: float = WAIT_LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _sim_stops(sim: RunningSim) -> list[Any]:
    return list(sim.exchange.list_stop_orders(SYMBOL, 1, 100).items)


def _sim_orders_with(sim: RunningSim, oid: str) -> list[Any]:
    return [o for o in sim.exchange.list_orders(SYMBOL, None, 1, 1000).items
            if o.client_oid == oid]


def _feed_config(**overrides: Any) -> FeedConfig:
    return FeedConfig(use_system_proxy=False, welcome_timeout_s=2.0, ack_timeout_s=2.0,
                      open_timeout_s=2.0, close_timeout_s=0.5, **overrides)


class _Feed:
    """A ``MarketDataClient`` on the simulator with a recording sink and token provider."""

    def __init__(self, rest: KucoinFuturesRest, symbols: tuple[str, ...],
                 config: FeedConfig) -> None:
        self.events: list[Any] = []
        self.tokens: list[str] = []
        self._rest = rest
        self.client = MarketDataClient(symbols, token_provider=self._token, sink=self.events.append,
                                       config=config, rng=random.Random(SEED))
        self._task: asyncio.Task[None] | None = None

    async def _token(self) -> BulletToken:
        token = await self._rest.bullet_public()
        self.tokens.append(token.token)
        return token

    def of(self, kind: type, symbol: str | None = None) -> list[Any]:
        return [e for e in self.events
                if isinstance(e, kind) and (symbol is None or e.symbol == symbol)]

    def start(self) -> None:
        self._task = asyncio.create_task(self.client.run())

    async def stop(self) -> None:
        self.client.stop()
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout=3)


# ----------------------------------------------------------------------------- 1. feed


def test_feed_receives_trades_quotes_depth_and_candles_with_contiguous_trade_sequences():
    symbols = (SYMBOL, "ETHUSDTM")

    async def scenario() -> None:
        sim = await _start(symbols=symbols, speed=10.0)
        rest = _rest(sim)
        feed = _Feed(rest, symbols, _feed_config())
        try:
            feed.start()

            def enough() -> bool:
                return all(len(feed.of(TradeTick, s)) >= 10 and feed.of(QuoteTick, s)
                           and feed.of(DepthTop5, s) and len(feed.of(CandleUpdate, s)) >= 2
                           for s in symbols)

            await _wait_for(enough, "trades, quotes, depth and candles of both symbols")
            # Two keep-alive rounds (ping every 200 ms) answered in time.
            await asyncio.sleep(0.45)
            await feed.stop()
        finally:
            await rest.close()
            await sim.stop()

        stats = feed.client.stats()
        assert stats.rejected == {}
        assert (stats.gaps, stats.missing, stats.duplicates, stats.stale) == (0, 0, 0, 0)
        assert (stats.reconnects, stats.connect_failures, stats.ping_timeouts) == (0, 0, 0)
        assert stats.internal_errors == 0 and stats.sink_errors == 0
        assert len(feed.tokens) == 1  # one connection (both symbols share each topic)
        assert not feed.of(SequenceGap)
        for symbol in symbols:
            trades = feed.of(TradeTick, symbol)
            sequences = [t.sequence for t in trades]
            assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
            assert len({t.trade_id for t in trades}) == len(trades)
            assert all(t.price > 0 and t.size >= 1 and t.side in (1, -1) for t in trades)
            for quote in feed.of(QuoteTick, symbol):
                assert 0 < quote.bid < quote.ask
            for depth in feed.of(DepthTop5, symbol):
                assert len(depth.bid_prices) == len(depth.ask_prices) == 5
                assert list(depth.bid_prices) == sorted(depth.bid_prices, reverse=True)
                assert list(depth.ask_prices) == sorted(depth.ask_prices)
                assert depth.bid_prices[0] < depth.ask_prices[0]
            for candle in feed.of(CandleUpdate, symbol):
                assert candle.timeframe == "1min"
                assert candle.low <= min(candle.open, candle.close)
                assert candle.high >= max(candle.open, candle.close)
        assert stats.events["TradeTick"] == len(feed.of(TradeTick))

    _run(scenario)


# ----------------------------------------------------------------------------- 2. feed faults


def test_feed_under_drops_malformed_frames_and_gaps_reconnects_with_fresh_tokens_and_never_repeats_a_trade():  # noqa: E501
    async def scenario() -> None:
        faults = FaultConfig(drop_connections_every_s=0.4, malformed_frame_rate=0.05,
                             sequence_gap_rate=0.05)
        sim = await _start(speed=10.0, faults=faults)
        rest = _rest(sim)
        feed = _Feed(rest, (SYMBOL,), _feed_config(backoff_base_s=0.02, backoff_cap_s=0.1))
        try:
            feed.start()

            def enough() -> bool:
                stats = feed.client.stats()
                malformed = sum(n for kind, n in stats.rejected.items()
                                if kind.startswith("malformed"))
                return (stats.reconnects >= 2 and malformed >= 1 and stats.gaps >= 1
                        and stats.connected and len(feed.of(TradeTick)) >= 20)

            await _wait_for(enough, "two reconnects, a malformed frame and a gap")
            await feed.stop()
            counts = sim.fault_counts()
        finally:
            await rest.close()
            await sim.stop()

        stats = feed.client.stats()
        # Every (re)connect asked the REST client for a new token, and got a distinct one.
        assert len(feed.tokens) == stats.reconnects + 1
        assert len(set(feed.tokens)) == len(feed.tokens)
        assert counts.connections_dropped >= 2
        # Malformed frames are counted, never delivered, never fatal.
        malformed = sum(n for kind, n in stats.rejected.items() if kind.startswith("malformed"))
        assert 1 <= malformed <= counts.frames_malformed
        assert set(stats.rejected) <= {"malformed_frame", "malformed_execution",
                                       "malformed_tickerV2", "malformed_level2Depth5",
                                       "malformed_limitCandle"}
        assert stats.internal_errors == 0 and stats.sink_errors == 0
        # No trade reaches the sink twice, and sequences only go up.
        trades = feed.of(TradeTick, SYMBOL)
        assert len({t.trade_id for t in trades}) == len(trades)
        sequences = [t.sequence for t in trades]
        assert all(b > a for a, b in itertools.pairwise(sequences))
        # Every hole in the trade sequence was reported as a gap, just before the trade
        # that revealed it, and the counters agree with the reports.
        gaps = feed.of(SequenceGap)
        assert len(gaps) == stats.gaps >= 1
        assert sum(g.missing for g in gaps) == stats.missing
        holes = {(a.sequence, b.sequence) for a, b in itertools.pairwise(trades)
                 if b.sequence != a.sequence + 1}
        assert holes == {(g.expected - 1, g.received) for g in gaps}
        for index, event in enumerate(feed.events):
            if isinstance(event, SequenceGap):
                following = feed.events[index + 1]
                assert isinstance(following, TradeTick)
                assert following.sequence == event.received

    _run(scenario)


# ----------------------------------------------------------------------------- 3. REST


def test_rest_orders_positions_and_balance_move_by_the_fees_of_the_contract_spec():
    market = ScriptedMarket("60000.0")

    async def scenario() -> None:
        sim = await _start(market)
        budget = PingBudgetManager(BUDGET_CONFIG)
        rest = _rest(sim, budget)
        try:
            await rest.sync_time()
            spec = decode_contract_spec(msgspec.json.encode(await rest.contract(SYMBOL)))
            before = await rest.account_overview("USDT")

            # A resting limit order: placed, listed, cancelled.
            limit_oid = client_oid("test", SYMBOL, "limit", 1)
            ack = await rest.place_order(OrderRequest.limit(
                limit_oid, SYMBOL, "buy", 3, "55000", LEVERAGE))
            assert ack.client_oid == limit_oid and not ack.existing
            listed = await rest.open_orders(SYMBOL)
            assert [(o.id, o.client_oid, o.price, o.size) for o in listed.items] == [
                (ack.order_id, limit_oid, "55000", 3)]
            assert (await rest.account_overview("USDT")).order_margin > 0
            assert await rest.cancel_order(ack.order_id) == [ack.order_id]
            assert (await rest.open_orders(SYMBOL)).items == []
            assert (await rest.order_by_client_oid(limit_oid)).status == "done"

            # A market order opens a long at the best ask ...
            open_oid = client_oid("test", SYMBOL, "open", 1)
            await rest.place_order(OrderRequest.market(open_oid, SYMBOL, "buy", 10, LEVERAGE))
            position = await rest.position(SYMBOL)
            assert position.is_open and position.current_qty == 10
            entry = Decimal(str(position.avg_entry_price))
            assert entry == market.ask
            assert Decimal((await rest.order_by_client_oid(open_oid)).avg_deal_price) == entry

            # ... and a reduce-only close order closes it at the best bid.
            close_oid = client_oid("test", SYMBOL, "close", 1)
            await rest.place_order(OrderRequest(client_oid=close_oid, symbol=SYMBOL,
                                                type="market", close_order=True,
                                                reduce_only=True))
            flat = await rest.position(SYMBOL)
            assert flat.current_qty == 0 and not flat.is_open
            close = await rest.order_by_client_oid(close_oid)
            exit_price = Decimal(close.avg_deal_price)
            assert (close.side, close.filled_size, exit_price) == ("sell", 10, market.bid)
            after = await rest.account_overview("USDT")
        finally:
            await rest.close()
            await sim.stop()

        # Both fills took liquidity: the balance moved by the gross PnL minus each fill's
        # taker fee on its own notional, as trade_math computes it from the contract spec.
        gross = gross_pnl(spec, 1, entry, exit_price, 10)
        expected = net_pnl(spec, 1, entry, exit_price, 10, spec.taker_fee, spec.taker_fee)
        fees = gross - expected
        assert spec.taker_fee == Decimal("0.0006") and spec.multiplier == Decimal("0.001")
        assert after.account_equity - before.account_equity == pytest.approx(
            float(expected), abs=1e-9)
        assert after.margin_balance - before.margin_balance == pytest.approx(
            float(expected), abs=1e-9)
        assert sim.exchange.total_fees == pytest.approx(float(fees), abs=1e-9)
        assert after.position_margin == 0 and after.order_margin == 0
        metrics = budget.metrics()
        assert metrics.rate_limited == 0 and metrics.unknown_endpoint_calls == 0
        # Every attempt was granted by the shared budget first.
        granted = sum(p.granted for pool in metrics.pools for p in pool.priorities)
        assert granted == rest.stats().requests

    _run(scenario)


# ----------------------------------------------------------------------------- 4. idempotency


def test_order_whose_reply_is_lost_after_apply_is_retried_with_the_same_client_oid_and_exists_once():  # noqa: E501
    market = ScriptedMarket("60000.0")

    async def scenario() -> None:
        sim = await _start(market)
        rest_sleep_calls: list[float] = []

        async def sleep_and_heal(seconds: float) -> None:
            # The retry's backoff: the exchange recovers before the client tries again.
            rest_sleep_calls.append(seconds)
            sim.set_faults(FaultConfig())
            await asyncio.sleep(0)

        rest = KucoinFuturesRest(
            CREDENTIALS, config=RestConfig(base_url=sim.url, retry_backoff_s=0.01),
            budget=PingBudgetManager(BUDGET_CONFIG), sleep=sleep_and_heal,
            rng=random.Random(SEED))
        oid = client_oid("test", SYMBOL, "idempotent", 1)
        try:
            await rest.sync_time()
            sim.set_faults(FaultConfig(order_failure_rate=1.0, order_failure_after_apply=True))
            ack = await rest.place_order(OrderRequest.limit(oid, SYMBOL, "buy", 2, "55000",
                                                            LEVERAGE))
            stats = rest.stats()
            listed = await rest.open_orders(SYMBOL)
        finally:
            await rest.close()
            await sim.stop()

        assert sim.fault_counts().order_failures == 1
        assert len(rest_sleep_calls) == 1  # one retry
        assert ack.existing and ack.client_oid == oid
        assert stats.retries == 1 and stats.duplicate_orders_resolved == 1
        assert stats.errors_by_code.get("500000") == 1 and stats.errors_by_code.get("300018") == 1
        orders = _sim_orders_with(sim, oid)
        assert [o.id for o in orders] == [ack.order_id]
        assert [o.id for o in listed.items] == [ack.order_id]

    _run(scenario)


def test_order_whose_every_reply_is_lost_fails_but_repeating_it_resolves_to_the_one_order():
    market = ScriptedMarket("60000.0")

    async def scenario() -> None:
        sim = await _start(market)
        rest = _rest(sim, PingBudgetManager(BUDGET_CONFIG))
        oid = client_oid("test", SYMBOL, "unknown-outcome", 1)
        request = OrderRequest.limit(oid, SYMBOL, "sell", 4, "65000", LEVERAGE)
        try:
            await rest.sync_time()
            sim.set_faults(FaultConfig(order_failure_rate=1.0, order_failure_after_apply=True))
            with pytest.raises(ServerError):
                await rest.place_order(request)
            failed_attempts = sim.fault_counts().order_failures
            sim.set_faults(FaultConfig())
            ack = await rest.place_order(request)
        finally:
            await rest.close()
            await sim.stop()

        assert failed_attempts == 3  # max_attempts, all applied, all answered 500
        assert ack.existing
        assert [o.id for o in _sim_orders_with(sim, oid)] == [ack.order_id]
        assert len(sim.exchange.list_orders(SYMBOL, "active", 1, 100).items) == 1

    _run(scenario)


# ----------------------------------------------------------------------------- 5. 429 burst


def test_429_burst_is_recorded_by_the_budget_which_degrades_and_requests_recover_after():
    async def scenario() -> None:
        # A 1 s rate window, so the reset the 429 announces (and the block) is short.
        sim = await _start(rate_window_s=1.0)
        budget = PingBudgetManager(BUDGET_CONFIG)
        rest = _rest(sim, budget)
        try:
            await rest.sync_time()
            assert (await rest.position(SYMBOL)).current_qty == 0
            futures = _pool(budget, "futures")
            assert (futures.target_utilisation, futures.rate_limited) == (0.70, 0)

            # Every request is refused during the burst (it runs from 50 ms on).
            sim.set_faults(FaultConfig(burst_429_every_s=0.05, burst_429_duration_s=0.05))
            await asyncio.sleep(0.1)
            with pytest.raises(RateLimitedError) as refused:
                await rest.position(SYMBOL)
            during = _pool(budget, "futures")
            sim.set_faults(FaultConfig())

            # After the burst the same request goes through (after the announced reset).
            position = await rest.position(SYMBOL)
            after = _pool(budget, "futures")
            metrics = budget.metrics()
        finally:
            await rest.close()
            await sim.stop()

        assert refused.value.code == "429000" and refused.value.http_status == 429
        assert refused.value.reset_ms is not None and refused.value.reset_ms <= 1000
        assert during.rate_limited == 1
        assert during.target_utilisation == pytest.approx(0.55)
        assert during.blocked_until_ns is not None
        assert during.capacity < futures.capacity
        assert position.current_qty == 0
        # The degrade stays until a quiet minute has passed; only the futures pool was hit.
        assert after.target_utilisation == pytest.approx(0.55)
        assert metrics.rate_limited == 1
        assert _pool(budget, "public").rate_limited == 0
        assert sim.rejections().get("429000") == 1
        assert sim.fault_counts().rest_429_bursts >= 1

    _run(scenario)


def _pool(budget: PingBudgetManager, name: str) -> Any:
    return next(p for p in budget.metrics().pools if p.pool == name)


# ----------------------------------------------------------------------------- 6. stops


class RecordingGateway:
    """``RestStopGateway`` that snapshots the simulator's stop list around every call."""

    def __init__(self, inner: RestStopGateway, sim: RunningSim) -> None:
        self._inner = inner
        self._sim = sim
        self.calls: list[str] = []
        self.snapshots: list[tuple[str, tuple[tuple[str, str], ...]]] = []

    def _snap(self, when: str) -> None:
        stops = tuple((s.client_oid, s.stop_price) for s in _sim_stops(self._sim))
        self.snapshots.append((when, stops))

    async def place_stop(self, request: StopRequest) -> str:
        self.calls.append(f"place {request.client_oid} {request.stop_price}")
        self._snap("before place")
        try:
            return await self._inner.place_stop(request)
        finally:
            self._snap("after place")

    async def cancel(self, symbol: str, order_id: str) -> None:
        self.calls.append(f"cancel {order_id}")
        self._snap("before cancel")
        try:
            await self._inner.cancel(symbol, order_id)
        finally:
            self._snap("after cancel")

    async def open_stops(self, symbol: str) -> list[ExchangeStop]:
        return await self._inner.open_stops(symbol)

    async def position(self, symbol: str) -> Any:
        return await self._inner.position(symbol)

    async def close_position(self, symbol: str, client_oid: str) -> str:
        self.calls.append(f"close {client_oid}")
        return await self._inner.close_position(symbol, client_oid)


async def _open_long(rest: KucoinFuturesRest, lots: int, tag: str) -> None:
    await rest.place_order(OrderRequest.market(client_oid("test", SYMBOL, tag), SYMBOL, "buy",
                                               lots, LEVERAGE))


def _coordinator(gateway: Any, position: Any, events: list[Any]) -> StopReplaceCoordinator:
    return StopReplaceCoordinator(gateway, symbol=SYMBOL, position_id=position.id,
                                  qty=position.qty, tick_size="0.1", clock=time.monotonic_ns,
                                  rng=random.Random(SEED), sink=events.append)


def test_stop_moves_never_leave_the_position_without_a_stop_and_the_last_one_triggers():
    market = ScriptedMarket("60000.0")

    async def scenario() -> None:
        sim = await _start(market)
        rest = _rest(sim, PingBudgetManager(BUDGET_CONFIG))
        gateway = RecordingGateway(RestStopGateway(rest, leverage=LEVERAGE), sim)
        events: list[Any] = []
        try:
            await rest.sync_time()
            await _open_long(rest, 10, "stop-long")
            position = await gateway.position(SYMBOL)
            assert position.qty == 10
            coordinator = _coordinator(gateway, position, events)
            per_step: list[list[tuple[str, Decimal, int, str, str, bool]]] = []

            def record_step() -> None:
                per_step.append([(s.client_oid, Decimal(s.stop_price), s.size, s.side, s.stop,
                                  s.reduce_only) for s in _sim_stops(sim)])

            for price in ("58000", "58100", "58250", "58400"):
                assert await coordinator.update(price, mark_price="60000.05")
                assert coordinator.state is StopState.PROTECTED
                record_step()
            # A burst while idle coalesces into one placement at the last target.
            placements = coordinator.metrics().placements
            for price in ("58500", "58600", "58700"):
                coordinator.submit(price)
            await coordinator.settle()
            record_step()
            burst_placements = coordinator.metrics().placements - placements
            final_oid = coordinator.stop_client_oid(coordinator.revision)
            active = coordinator.active
            assert active is not None

            # The market falls through the stop: it triggers and closes the position.
            market.move_to("58000.0")
            await _wait_for(lambda: sim.exchange.position(SYMBOL).current_qty == 0,
                            "the stop to close the position")
            flat = await rest.position(SYMBOL)
            stops_after = await rest.all_stop_orders(SYMBOL)
            stop_order = await rest.order_by_client_oid(final_oid)
            await coordinator.close()
        finally:
            await rest.close()
            await sim.stop()

        targets = ["58000", "58100", "58250", "58400", "58700"]
        for step, target in zip(per_step, targets, strict=True):
            assert len(step) == 1, step
            _oid, price, size, side, direction, reduce_only = step[0]
            assert (price, size, side, direction, reduce_only) == (
                Decimal(target), 10, "sell", "down", True)
        assert per_step[-1][0][0] == final_oid == active.client_oid
        assert burst_placements == 1 and coordinator.metrics().superseded == 2
        # Never without a stop: every snapshot after the first placement holds one, and a
        # new stop is always placed before the old one is cancelled.
        first_stop = next(i for i, (_, stops) in enumerate(gateway.snapshots) if stops)
        assert gateway.snapshots[:first_stop] == [("before place", ())]
        assert all(stops for _, stops in gateway.snapshots[first_stop:])
        kinds = [call.split()[0] for call in gateway.calls]
        assert kinds == ["place"] + ["place", "cancel"] * 4
        # The last stop fired: the position is flat, the stop list empty.
        assert flat.current_qty == 0
        assert stops_after == []
        assert stop_order.status == "done" and stop_order.stop_triggered
        fill = sim.exchange.fills()[-1]
        assert (fill.side, fill.size, Decimal(str(fill.price))) == ("sell", 10, market.bid)
        assert not any(type(e).__name__ == "EmergencyClose" for e in events)

    _run(scenario)


def test_stop_placed_but_answered_500_is_cleaned_up_when_the_target_moves_during_the_retry():
    # The exchange applies a stop and answers 500 (every REST attempt); while the
    # coordinator backs off, the exchange heals and the target moves. The first stop exists
    # on the exchange although no reply said so: the coordinator must treat that outcome
    # as unknown (as a timeout) and remove it once the new stop is confirmed.
    market = ScriptedMarket("60000.0")

    async def scenario() -> None:
        sim = await _start(market)
        rest = _rest(sim, PingBudgetManager(BUDGET_CONFIG))
        gateway = RestStopGateway(rest, leverage=LEVERAGE)
        events: list[Any] = []
        try:
            await rest.sync_time()
            await _open_long(rest, 10, "lost-stop")
            position = await gateway.position(SYMBOL)
            backoffs: list[float] = []

            async def backoff(seconds: float) -> None:
                backoffs.append(seconds)
                if len(backoffs) == 1:  # during the first back-off
                    sim.set_faults(FaultConfig())
                    assert coordinator.submit("58500")
                await asyncio.sleep(0)

            coordinator = StopReplaceCoordinator(
                gateway, symbol=SYMBOL, position_id=position.id, qty=position.qty,
                tick_size="0.1", clock=time.monotonic_ns, rng=random.Random(SEED),
                sleep=backoff, sink=events.append)
            sim.set_faults(FaultConfig(order_failure_rate=1.0, order_failure_after_apply=True))
            coordinator.submit("58000")
            await coordinator.settle()
            stops = [(s.client_oid, Decimal(s.stop_price)) for s in _sim_stops(sim)]
            await coordinator.close()
        finally:
            await rest.close()
            await sim.stop()

        assert sim.fault_counts().order_failures == 3  # the REST client's three attempts
        assert len(backoffs) == 1 and coordinator.state is StopState.PROTECTED
        assert coordinator.active is not None
        assert coordinator.active.client_oid == coordinator.stop_client_oid(2)
        # Exactly one stop, at the last target; revision 1 (placed, reply lost) is gone.
        assert stops == [(coordinator.stop_client_oid(2), Decimal("58500"))]

    _run(scenario)


# ----------------------------------------------------------------------------- 7. reconciler


def test_reconciler_halts_trading_on_a_position_opened_behind_its_back():
    market = ScriptedMarket("60000.0")

    async def scenario() -> None:
        sim = await _start(market)
        rest = _rest(sim, PingBudgetManager(BUDGET_CONFIG))
        events: list[Any] = []
        reconciler = Reconciler(RestStopGateway(rest, leverage=LEVERAGE), symbols=[SYMBOL],
                                clock=time.monotonic_ns, sink=events.append)
        try:
            await rest.sync_time()
            quiet = await reconciler.reconcile()
            await _open_long(rest, 7, "unknown")
            report = await reconciler.reconcile()
            again = await reconciler.reconcile()
        finally:
            await rest.close()
            await sim.stop()

        assert quiet.events == () and not quiet.halted
        assert report.halted and reconciler.halted
        halts = [e for e in report.events if isinstance(e, TradingHalted)]
        assert [(h.symbol, h.qty) for h in halts] == [(SYMBOL, 7)]
        assert SYMBOL in reconciler.halt_reason
        assert again.halted and again.events == ()  # reported once, the halt stands
        assert _sim_stops(sim) == []  # never adopted: no stop was placed for it
        assert sim.exchange.position(SYMBOL).current_qty == 7
        assert events == list(report.events)

    _run(scenario)


def test_reconciler_repairs_a_missing_stop_and_cancels_the_orphan_once_flat():
    market = ScriptedMarket("60000.0")

    async def scenario() -> None:
        sim = await _start(market)
        rest = _rest(sim, PingBudgetManager(BUDGET_CONFIG))
        gateway = RestStopGateway(rest, leverage=LEVERAGE)
        coordinator_events: list[Any] = []
        reconciler = Reconciler(gateway, symbols=[SYMBOL], clock=time.monotonic_ns)
        try:
            await rest.sync_time()
            await _open_long(rest, 5, "repair")
            coordinator = _coordinator(gateway, await gateway.position(SYMBOL),
                                       coordinator_events)
            reconciler.track(coordinator)
            await coordinator.update("57000")
            first = coordinator.active
            assert first is not None
            clean = await reconciler.reconcile()

            # Someone cancels the stop by hand.
            await rest.cancel_order(first.order_id)
            assert _sim_stops(sim) == []
            found = await reconciler.reconcile()
            await coordinator.settle()
            repaired = _sim_stops(sim)
            settled = await reconciler.reconcile()

            # The position is closed by hand: the local copy is dropped, the stop orphaned.
            await rest.place_order(OrderRequest(
                client_oid=client_oid("test", SYMBOL, "manual-close"), symbol=SYMBOL,
                type="market", close_order=True, reduce_only=True))
            closed = await reconciler.reconcile()
            left = _sim_stops(sim)
        finally:
            await rest.close()
            await sim.stop()

        assert clean.events == () and clean.checked == (SYMBOL,)
        missing = [e for e in found.events if isinstance(e, StopDiscrepancy)]
        assert [(e.problem, e.action, e.order_id) for e in missing] == [
            ("missing", "replaced", first.order_id)]
        assert not found.halted
        assert [(s.client_oid, Decimal(s.stop_price), s.size, s.side, s.stop, s.reduce_only)
                for s in repaired] == [
            (coordinator.stop_client_oid(2), Decimal("57000"), 5, "sell", "down", True)]
        assert settled.events == () and coordinator.state is StopState.PROTECTED
        drift = [e for e in closed.events if isinstance(e, PositionDrift)]
        orphans = [e for e in closed.events if isinstance(e, OrphanStopCancelled)]
        assert [(e.action, e.local_qty, e.exchange_qty) for e in drift] == [("dropped", 5, 0)]
        assert [(e.client_oid, e.ok) for e in orphans] == [(coordinator.stop_client_oid(2), True)]
        assert left == [] and reconciler.coordinators == {} and not closed.halted

    _run(scenario)
