"""``MainOrderRouter`` against the real local simulator on 127.0.0.1.

Every scenario starts ``liveopt sim`` in-process on port 0 with a scripted market (a deep,
static ladder that moves only when the test says so), so fills, prices and stop triggers are
exact. The router talks to it only through the real ``KucoinFuturesRest``; the simulator's
core (``RunningSim.exchange``) is read directly to check what the exchange holds. The
router's clock counts one second per reading and its sleep does not wait, so debouncing and
back-off never depend on how fast the machine is; no assertion is about wall-clock time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.engine.records import FILL_DTYPE, TRADE_DTYPE
from liveopt.exchange.budget import PingBudgetManager
from liveopt.exchange.client_oid import client_oid
from liveopt.exchange.reconcile import PositionDrift, TradingHalted
from liveopt.exchange.rest import DEFAULT_BASE_URL, KucoinFuturesRest, RestConfig
from liveopt.exchange.rest_models import OrderRequest
from liveopt.exchange.signing import Credentials
from liveopt.exchange.stops import StopCancelled, StopPlaced
from liveopt.exchange.trade_math import (
    ContractSpec,
    Side,
    decode_contract_spec,
    protective_stop_price,
    take_profit_price,
)
from liveopt.service.events import AlertRaised
from liveopt.service.router import MainOrderRouter
from liveopt.service.router_orders import check_destination, take_profit_request
from liveopt.service.router_types import (
    EntryRefused,
    ExitCompleted,
    LiveTradingNotConfirmedError,
    OrderRouted,
    RouteFailed,
    RouterConfig,
    RouterFlattened,
    RouterHalted,
)
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
LEVERAGE = 5
START_PRICE = "60000.0"
FILL_TS = 1_700_000_000_000_000_000
WAIT_LIMIT_S = 3.0  # how long a condition may take before the test fails (never asserted)
FAST_SIM = {"tick_ms": 10, "depth5_interval_ms": 50, "candle_interval_ms": 100}


# ----------------------------------------------------------------------------- harness


class LadderMarket:
    """The other traders: a deep static ladder with the best bid at a price the test sets
    and the best ask one tick above; a new ladder appears only after ``move_to``."""

    def __init__(self, price: str, tick: str = "0.1") -> None:
        self._tick = Decimal(tick)
        self._bid = int(Decimal(price) / self._tick)
        self._changed = True
        self._start_ns = 0

    @property
    def bid(self) -> Decimal:
        return self._bid * self._tick

    @property
    def ask(self) -> Decimal:
        return (self._bid + 1) * self._tick

    def move_to(self, price: str) -> None:
        self._bid = int(Decimal(price) / self._tick)
        self._changed = True

    def start(self, start_ns: int) -> None:
        self._start_ns = start_ns

    def events_until(self, now_ns: int) -> list[MarketEvent]:
        if not self._changed:
            return []
        self._changed = False
        levels = range(20)
        return [MarketBook(ts_ns=max(now_ns, self._start_ns),
                           bids=tuple((self._bid - i, 5000) for i in levels),
                           asks=tuple((self._bid + 1 + i, 5000) for i in levels))]


class StepClock:
    """A clock that advances one second per reading (deterministic event times)."""

    def __init__(self) -> None:
        self.now = FILL_TS

    def __call__(self) -> int:
        self.now += 1_000_000_000
        return self.now


class Harness:
    """The simulator, a REST client, the contract spec and a router with recorded events."""

    def __init__(self, sim: RunningSim, market: LadderMarket, rest: KucoinFuturesRest,
                 spec: ContractSpec) -> None:
        self.sim = sim
        self.market = market
        self.rest = rest
        self.spec = spec
        self.events: list[Any] = []
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] | None = None
        self.router: MainOrderRouter | None = None

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep()
        await asyncio.sleep(0)

    def build(self, sink: Callable[[Any], None] | None = None,
              **config: Any) -> MainOrderRouter:
        settings_ = {"mode": "sim", "position_read_delay_s": 0.01, **config}
        self.router = MainOrderRouter(
            self.rest, symbol=SYMBOL, contract=self.spec, leverage=LEVERAGE,
            budget=PingBudgetManager(), clock_ns=StepClock(), rng=random.Random(7),
            sleep=self.sleep, sink=sink or self.events.append, config=RouterConfig(**settings_))
        return self.router

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def stops(self) -> list[Any]:
        return list(self.sim.exchange.list_stop_orders(SYMBOL, 1, 100).items)

    def open_orders(self) -> list[Any]:
        return list(self.sim.exchange.list_orders(SYMBOL, "active", 1, 100).items)

    def orders_with(self, oid: str) -> list[Any]:
        return [o for o in self.sim.exchange.list_orders(SYMBOL, None, 1, 1000).items
                if o.client_oid == oid]

    def qty(self) -> int:
        return self.sim.exchange.position(SYMBOL).current_qty


def _run(scenario: Callable[[Harness], Awaitable[None]], *, rest_attempts: int = 3,
         **sim_config: Any) -> None:
    async def main() -> None:
        market = LadderMarket(START_PRICE)
        clock = time.time_ns
        exchange = SimExchange({SYMBOL: default_contracts()[SYMBOL]}, {SYMBOL: market},
                               start_ns=clock(), balance=sim_config.pop("balance", 100_000.0))
        sim = await start_sim(SimConfig(**{**FAST_SIM, **sim_config}), clock=clock,
                              exchange=exchange)
        rest = KucoinFuturesRest(CREDENTIALS, config=RestConfig(
            base_url=sim.url, request_timeout_s=5.0, max_attempts=rest_attempts,
            retry_backoff_s=0.001, retry_backoff_max_s=0.002), rng=random.Random(3))
        try:
            await rest.sync_time()
            spec = decode_contract_spec(msgspec.json.encode(await rest.contract(SYMBOL)))
            harness = Harness(sim, market, rest, spec)
            try:
                await scenario(harness)
            finally:
                if harness.router is not None:
                    await harness.router.close()
        finally:
            await rest.close()
            await sim.stop()

    asyncio.run(asyncio.wait_for(main(), timeout=20))


async def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _fill(side: int, lots: float, price: float, *, variant: int = 0, ts: int = FILL_TS,
          entry: bool = True) -> np.void:
    row = np.zeros(1, dtype=FILL_DTYPE)[0]
    row["variant"], row["ts"], row["side"], row["price"] = variant, ts, side, price
    row["lots"], row["entry"] = lots, entry
    return row


def _trade(side: int, lots: float, *, variant: int = 0) -> np.void:
    row = np.zeros(1, dtype=TRADE_DTYPE)[0]
    row["variant"], row["side"], row["entry_ts"], row["exit_ts"] = variant, side, FILL_TS, \
        FILL_TS + 60_000_000_000
    row["lots"] = lots
    return row


# ----------------------------------------------------------------------------- entry


@pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
def test_entry_opens_one_position_of_the_same_side_and_lots_with_one_reduce_only_stop_and_take_profit(  # noqa: E501
        side: Side):
    lots = 7 if side is Side.LONG else 4

    async def scenario(h: Harness) -> None:
        router = h.build()
        assert await router.on_entry(_fill(int(side), float(lots), float(h.market.ask)))
        await router.settle()
        position = h.sim.exchange.position(SYMBOL)
        entry = Decimal(str(position.avg_entry_price))
        stops, orders, status = h.stops(), h.open_orders(), router.status()

        assert position.current_qty == int(side) * lots
        assert entry == (h.market.ask if side is Side.LONG else h.market.bid)
        entry_orders = h.orders_with(client_oid("entry", SYMBOL, FILL_TS))
        assert [(o.side, o.size, o.type) for o in entry_orders] == [
            ("buy" if side is Side.LONG else "sell", lots, "market")]
        # Exactly one stop: reduce-only, mark price, on the protective side, tick-rounded.
        expected_stop = protective_stop_price(h.spec, side, entry, 0.5, LEVERAGE)
        assert len(stops) == 1
        stop = stops[0]
        assert (stop.side, stop.stop, stop.size, stop.reduce_only, stop.stop_price_type) == (
            "sell" if side is Side.LONG else "buy", "down" if side is Side.LONG else "up",
            lots, True, "MP")
        assert Decimal(stop.stop_price) == expected_stop
        assert Decimal(stop.stop_price) % h.spec.tick_size == 0
        assert (Decimal(stop.stop_price) - entry) * int(side) < 0
        # Exactly one take-profit: a reduce-only limit at the target rounded away from entry.
        target = h.spec.round_target_price(
            side, take_profit_price(side, entry, 2.0, LEVERAGE))
        assert [(o.side, o.size, o.type, o.reduce_only, Decimal(o.price)) for o in orders] == [
            ("sell" if side is Side.LONG else "buy", lots, "limit", True, target)]
        assert (status.position_open, status.exchange_qty, status.stop_state) == (
            True, int(side) * lots, "PROTECTED")
        assert status.stop_price == stop.stop_price and status.errors == 0
        routed = [(e.operation, e.existing) for e in h.of(OrderRouted)]
        assert routed == [("entry", False), ("take_profit", False)]

    _run(scenario)


# With one attempt the router looks the entry up by its clientOid, and the take-profit and
# the first stop also lose their replies (3 failures); with three it re-sends the entry with
# the same clientOid after a back-off that heals the exchange (1 failure).
@pytest.mark.parametrize(("order_attempts", "failures"), [(1, 3), (3, 1)],
                         ids=["looked-up", "resent"])
def test_entry_whose_reply_is_lost_after_apply_still_gives_exactly_one_order(
        order_attempts: int, failures: int):
    async def scenario(h: Harness) -> None:
        router = h.build(order_attempts=order_attempts)
        # Every order reply is lost (the order is carried out); the exchange heals at the
        # first back-off (the router's resend, or the stop coordinator's retry).
        h.sim.set_faults(FaultConfig(order_failure_rate=1.0, order_failure_after_apply=True))
        h.on_sleep = lambda: h.sim.set_faults(FaultConfig())
        assert await router.on_entry(_fill(1, 3.0, float(h.market.ask)))
        await router.settle()

        assert h.sim.fault_counts().order_failures == failures
        assert len(h.orders_with(client_oid("entry", SYMBOL, FILL_TS))) == 1
        assert h.qty() == 3
        assert len(h.stops()) == 1 and h.stops()[0].size == 3
        assert len(h.open_orders()) == 1  # the take-profit, once
        entry_events = [e for e in h.of(OrderRouted) if e.operation == "entry"]
        assert len(entry_events) == 1 and entry_events[0].existing
        assert router.status().errors == 0

    _run(scenario, rest_attempts=1)


def test_entries_that_are_not_variant_0_entries_or_whole_lots_are_refused_and_never_sent():
    async def scenario(h: Harness) -> None:
        router = h.build()
        price = float(h.market.ask)
        refused = [
            await router.on_entry(_fill(1, 2.0, price, variant=3)),
            await router.on_entry(_fill(1, 2.0, price, entry=False)),
            await router.on_entry(_fill(1, 0.4, price)),
            await router.on_entry({"ts": FILL_TS}),  # a malformed record
        ]
        assert refused == [False] * 4
        assert h.qty() == 0 and h.open_orders() == [] and h.stops() == []
        reasons = [e.reason for e in h.of(EntryRefused)]
        assert len(reasons) == 4
        assert "variant 3" in reasons[0] and "not an entry" in reasons[1]
        assert "lot" in reasons[2] and "missing field 'variant'" in reasons[3]
        assert router.status().entries_refused == 4 and router.status().entries == 0

    _run(scenario)


def test_entry_the_exchange_refuses_is_reported_and_counted_without_raising():
    async def scenario(h: Harness) -> None:
        broken: list[Any] = []

        def sink(event: Any) -> None:
            broken.append(event)
            raise RuntimeError("a consumer that fails")

        router = h.build(sink)  # a failing consumer must not stop routing either
        # 500 lots at 60,000 x 0.001 / 5x needs 6,000 USDT of margin; the account has 50.
        assert not await router.on_entry(_fill(1, 500.0, float(h.market.ask)))
        status = router.status()

        assert h.qty() == 0 and h.open_orders() == [] and h.stops() == []
        failures = [e for e in broken if isinstance(e, RouteFailed)]
        assert [(f.operation, f.attempts) for f in failures] == [("entry", 1)]
        assert "InsufficientFundsError" in failures[0].error
        assert status.errors_by_operation == {"entry": 1} and not status.position_open
        assert status.sink_errors == len(broken)

    _run(scenario, balance=50.0)


# ----------------------------------------------------------------------------- trailing


def test_trailing_moves_the_stop_without_a_moment_unprotected():
    async def scenario(h: Harness) -> None:
        router = h.build()
        stops_at_cancel: list[int] = []
        cancel = h.sim.exchange.cancel_order

        def counting_cancel(order_id: str, now_ns: int) -> Any:
            stops_at_cancel.append(len(h.stops()))
            return cancel(order_id, now_ns)

        h.sim.exchange.cancel_order = counting_cancel  # type: ignore[method-assign]
        assert await router.on_entry(_fill(1, 5.0, float(h.market.ask)))
        await router.settle()
        first = h.stops()[0].stop_price
        trail = ["59950", "59962.5", "59980", "59995"]
        for price in trail:
            assert await router.on_trail(price)
            await router.settle()
            assert len(h.stops()) == 1
        stops = h.stops()

        assert Decimal(first) < Decimal(trail[0])
        # 59962.5 is not on the 0.1 tick: a long's stop rounds down, away from the market.
        placed = [e.stop_price for e in h.of(StopPlaced)]
        assert placed == [first, "59950", "59962.5", "59980", "59995"]
        assert [(s.stop_price, s.size, s.side, s.reduce_only) for s in stops] == [
            ("59995", 5, "sell", True)]
        # Every replaced stop was cancelled only once its successor was on the exchange.
        assert stops_at_cancel == [2] * len(trail)
        cancelled = h.of(StopCancelled)
        assert len(cancelled) == len(trail)
        order = [type(e).__name__ for e in h.events if isinstance(e, StopPlaced | StopCancelled)]
        assert order == ["StopPlaced"] + ["StopPlaced", "StopCancelled"] * len(trail)
        assert router.status().trails_forwarded == len(trail)

    _run(scenario)


def test_trail_without_a_position_is_ignored():
    async def scenario(h: Harness) -> None:
        router = h.build()
        assert not await router.on_trail("59000")
        assert router.status().trails_ignored == 1 and h.stops() == []

    _run(scenario)


# ----------------------------------------------------------------------------- exit


def test_exit_closes_the_position_reduce_only_and_cancels_its_stop_and_take_profit():
    async def scenario(h: Harness) -> None:
        router = h.build()
        assert await router.on_entry(_fill(-1, 6.0, float(h.market.bid)))
        await router.settle()
        assert h.qty() == -6
        assert await router.on_exit(_trade(-1, 6.0))

        assert h.qty() == 0 and h.stops() == [] and h.open_orders() == []
        close = h.orders_with(client_oid("exit", SYMBOL, FILL_TS))
        assert [(o.side, o.filled_size, o.reduce_only) for o in close] == [("buy", 6, True)]
        [done] = h.of(ExitCompleted)
        assert (done.closed_by_order, done.flat, done.exchange_qty) == (True, True, 0)
        assert done.orders_cancelled >= 1  # the stop (the simulator drops a flat TP itself)
        status = router.status()
        assert (status.position_open, status.exits, status.errors) == (False, 1, 0)

    _run(scenario)


def test_exit_whose_close_is_refused_keeps_the_position_protected_and_known():
    async def scenario(h: Harness) -> None:
        router = h.build()
        assert await router.on_entry(_fill(1, 2.0, float(h.market.ask)))
        await router.settle()
        stop_before = [s.id for s in h.stops()]
        h.sim.set_faults(FaultConfig(order_failure_rate=1.0))  # every order call fails
        assert not await router.on_exit(_trade(1, 2.0))
        report = await router.reconcile_once()
        status = router.status()

        assert h.qty() == 2 and [s.id for s in h.stops()] == stop_before
        assert status.errors_by_operation == {"exit": 1} and status.position_open
        assert status.stop_state == "PROTECTED"
        [failure] = h.of(RouteFailed)
        assert failure.operation == "exit" and failure.attempts == 3
        assert not report.halted and report.events == ()  # still the router's position
        h.sim.set_faults(FaultConfig())
        assert await router.flatten() == (2, True)  # the take-profit and the stop
        assert h.qty() == 0 and h.stops() == [] and h.open_orders() == []

    _run(scenario)


def test_exit_right_after_the_entry_stops_the_stop_worker_and_leaves_nothing_open():
    async def scenario(h: Harness) -> None:
        router = h.build()
        # No settle: the exit runs while the protective stop may still be on its way.
        assert await router.on_entry(_fill(1, 3.0, float(h.market.ask)))
        assert await router.on_exit(_trade(1, 3.0))
        await asyncio.sleep(0.05)  # a stop placement cut short would show up by now

        assert h.qty() == 0 and h.stops() == [] and h.open_orders() == []
        assert router.status().errors == 0

    _run(scenario)


def test_exit_after_the_exchange_stop_fired_sends_no_close_and_leaves_nothing_open():
    async def scenario(h: Harness) -> None:
        router = h.build()
        assert await router.on_entry(_fill(1, 2.0, float(h.market.ask)))
        await router.settle()
        h.market.move_to("59000.0")  # through the stop at 59940
        await _wait_for(lambda: h.qty() == 0, "the exchange stop to close the position")
        report = await router.reconcile_once()
        assert [type(e) for e in report.events] == [PositionDrift]
        assert not await router.on_trail("59990")  # nothing left to trail
        assert await router.on_exit(_trade(1, 2.0))

        assert h.orders_with(client_oid("exit", SYMBOL, FILL_TS)) == []
        assert h.stops() == [] and h.open_orders() == []
        [done] = h.of(ExitCompleted)
        assert (done.closed_by_order, done.flat) == (False, True)
        assert not router.status().halted

    _run(scenario)


# ----------------------------------------------------------------------------- flatten


def test_flatten_cancels_the_router_orders_closes_the_position_and_stops_entries():
    async def scenario(h: Harness) -> None:
        router = h.build()
        manual = client_oid("manual", SYMBOL, 1)
        await h.rest.place_order(OrderRequest.limit(manual, SYMBOL, "buy", 1, "50000",
                                                    LEVERAGE))
        assert await router.on_entry(_fill(1, 4.0, float(h.market.ask)))
        await router.settle()
        assert len(h.stops()) == 1 and len(h.open_orders()) == 2

        cancelled, closed = await router.flatten()
        after_flatten = await router.on_entry(_fill(1, 1.0, float(h.market.ask),
                                                    ts=FILL_TS + 1))

        assert (cancelled, closed) == (2, True)  # the take-profit and the stop
        assert h.qty() == 0 and h.stops() == []
        assert [o.client_oid for o in h.open_orders()] == [manual]  # not the router's
        [report] = h.of(RouterFlattened)
        assert (report.flat, report.errors) == (True, [])
        assert not after_flatten
        assert "emergency stop" in h.of(EntryRefused)[-1].reason
        status = router.status()
        assert status.stopped and not status.position_open and h.of(RouterHalted)

        router.resume()
        with pytest.raises(ValueError, match="leverage"):
            router.set_risk(leverage=500)
        router.set_risk(stop_loss_roi_pct=1.5)  # a promotion: applies from the next entry
        assert await router.on_entry(_fill(1, 1.0, float(h.market.ask), ts=FILL_TS + 2))
        await router.settle()
        assert h.qty() == 1
        entry = Decimal(str(h.sim.exchange.position(SYMBOL).avg_entry_price))
        assert [Decimal(s.stop_price) for s in h.stops()] == [
            protective_stop_price(h.spec, Side.LONG, entry, 1.5, LEVERAGE)]

    _run(scenario)


def test_flatten_when_flat_closes_nothing():
    async def scenario(h: Harness) -> None:
        router = h.build()
        assert await router.flatten() == (0, False)
        assert h.of(RouterFlattened)[0].flat

    _run(scenario)


# ----------------------------------------------------------------------------- reconciler


def test_unknown_position_halts_entries_until_resumed():
    async def scenario(h: Harness) -> None:
        router = h.build(reconcile_interval_s=5.0)
        await h.rest.place_order(OrderRequest.market(client_oid("manual", SYMBOL, 2), SYMBOL,
                                                     "sell", 9, LEVERAGE))
        await router.run_reconciler(passes=2)
        refused = await router.on_entry(_fill(1, 2.0, float(h.market.ask)))

        assert not refused and h.qty() == -9 and h.stops() == []
        assert h.orders_with(client_oid("entry", SYMBOL, FILL_TS)) == []
        assert h.sleeps == [5.0]  # one interval between the two passes
        status = router.status()
        assert status.halted and "unknown position" in status.halt_reason
        assert len(h.of(TradingHalted)) == 1  # reported once, the halt stands
        [halt] = h.of(RouterHalted)
        assert halt.source == "reconciler"
        alerts = [e.alert for e in h.of(AlertRaised)]
        assert [(a.kind, a.severity) for a in alerts] == [("unknown_position", "critical")]
        assert "halted" in h.of(EntryRefused)[0].reason

        router.resume()
        assert router.accepts_entries

    _run(scenario)


# ----------------------------------------------------------------------------- live safety


@pytest.mark.parametrize(("url", "mode", "confirmed", "allowed"), [
    (DEFAULT_BASE_URL, "sim", False, False),
    (DEFAULT_BASE_URL, "live", False, False),
    (DEFAULT_BASE_URL, "live", True, True),
    ("http://127.0.0.1:9", "sim", False, True),
    ("http://127.0.0.1:9", "sim", True, False),
    ("http://localhost:9", "live", False, False),
])
def test_router_for_a_real_exchange_needs_live_mode_and_the_explicit_confirmation(
        url: str, mode: str, confirmed: bool, allowed: bool):
    spec = ContractSpec(symbol=SYMBOL, tick_size=Decimal("0.1"), lot_size=1,
                        multiplier=Decimal("0.001"), maker_fee=Decimal("0.0002"),
                        taker_fee=Decimal("0.0006"), maint_margin=Decimal("0.004"),
                        max_leverage=125)

    def build() -> MainOrderRouter:
        rest = KucoinFuturesRest(CREDENTIALS, config=RestConfig(base_url=url))
        return MainOrderRouter(rest, symbol=SYMBOL, contract=spec, leverage=LEVERAGE,
                               clock_ns=StepClock(), rng=random.Random(1),
                               config=RouterConfig(mode=mode), live_confirmed=confirmed)

    if allowed:
        assert build().status().mode == mode
    else:
        with pytest.raises(LiveTradingNotConfirmedError):
            build()


def test_router_config_rejects_paper_mode_and_bad_fields_by_name():
    with pytest.raises(ValueError, match="mode"):
        RouterConfig(mode="paper")
    with pytest.raises(ValueError, match="take_profit_order"):
        RouterConfig(take_profit_order="trailing")
    with pytest.raises(ValueError, match="stop_loss_roi_pct"):
        RouterConfig(stop_loss_roi_pct=0)
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        msgspec.convert({"mode": "sim", "unknown": 1}, RouterConfig)


@settings(max_examples=60, deadline=None)
@given(host=st.from_regex(r"[a-z]{1,12}\.(com|io|net)", fullmatch=True),
       mode=st.sampled_from(["sim", "live"]), confirmed=st.booleans())
def test_any_non_loopback_host_is_refused_unless_live_and_confirmed(host: str, mode: str,
                                                                     confirmed: bool):
    url = f"https://{host}"
    if mode == "live" and confirmed:
        check_destination(url, mode, confirmed)
    else:
        with pytest.raises(LiveTradingNotConfirmedError):
            check_destination(url, mode, confirmed)


@settings(max_examples=100, deadline=None)
@given(entry_ticks=st.integers(10_000, 2_000_000), roi=st.floats(0.1, 50.0),
       leverage=st.integers(1, 50), side=st.sampled_from([Side.LONG, Side.SHORT]),
       kind=st.sampled_from(["limit", "stop_market"]))
def test_take_profit_is_reduce_only_on_the_profit_side_and_on_the_tick(
        entry_ticks: int, roi: float, leverage: int, side: Side, kind: str):
    spec = ContractSpec(symbol=SYMBOL, tick_size=Decimal("0.1"), lot_size=1,
                        multiplier=Decimal("0.001"), maker_fee=Decimal("0.0002"),
                        taker_fee=Decimal("0.0006"), maint_margin=Decimal("0.004"),
                        max_leverage=125)
    entry = entry_ticks * Decimal("0.1")
    request = take_profit_request(spec, side, float(entry), roi, leverage, 3, "tp-x", kind,
                                  "MP")
    price = Decimal(request.price if kind == "limit" else request.stop_price)
    assert request.reduce_only and request.size == 3
    assert request.side == ("sell" if side is Side.LONG else "buy")
    assert (price - entry) * int(side) > 0
    assert price % spec.tick_size == 0
    if kind == "stop_market":
        assert request.stop == ("up" if side is Side.LONG else "down")
