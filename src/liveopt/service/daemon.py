"""The daemon: every part of liveopt wired into one process (``liveopt run``, ``liveopt demo``).

Start order (:meth:`Daemon.start`): the API token; the local simulator when
``exchange.use_simulator`` is set; the shared rate-limit budget and the REST client; the
state store and the journals (the tick log is flushed before every journal write); the main
order router in modes ``sim`` and ``live`` only; the market feed; the controller, restored
from the last snapshot and its tick log when there is one; then the HTTP/WebSocket API. The
background tasks are the feed, the router's reconciler and a housekeeping loop (journal and
tick-log flushes about every second, a snapshot every ``journal.snapshot_interval_s``). An
automatic promotion re-applies the main strategy's risk to the router and is snapshotted
before the controller's call returns.

Every control action through the API is followed by a snapshot (only market events are in
the tick log). A background part that fails is logged, counted (:attr:`Daemon.part_failures`
and the controller's ``errors``, so ``/api/health`` shows it) and never ends the process.
:meth:`Daemon.stop` shuts down in order and ends with a final snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TextIO

import msgspec

from liveopt.exchange.budget import PingBudgetManager
from liveopt.exchange.budget_config import BudgetConfig
from liveopt.exchange.feed import MarketDataClient
from liveopt.exchange.rest import KucoinFuturesRest, RestConfig
from liveopt.exchange.trade_math import decode_contract_spec
from liveopt.service.api import RunningApi, create_app, serve
from liveopt.service.config import ServiceConfig
from liveopt.service.controller import MAIN, LiveOptimizerController
from liveopt.service.controller_config import controller_config_from, engine_factory
from liveopt.service.events import AlertRaised
from liveopt.service.journal import JournalCorruptError, TradeJournal, open_journals
from liveopt.service.recovery import RecordingInput, RecoveryError, RecoveryReport, StateStore
from liveopt.service.router import MainOrderRouter
from liveopt.service.router_orders import check_destination
from liveopt.service.router_types import LiveTradingNotConfirmedError, RouterConfig, RouterResumed
from liveopt.service.token import ApiToken, load_or_create_token
from liveopt.service.views import PromotionRecord
from liveopt.service.wiring import (
    SnapshottingController,
    exchange_credentials,
    feed_status_provider,
    main_risk,
)
from liveopt.sim.config import SimConfig
from liveopt.sim.server import RunningSim, start_sim

__all__ = ["Daemon", "DaemonStartError"]

log = logging.getLogger("liveopt.daemon")
HOUSEKEEPING_INTERVAL_S = 1.0


class DaemonStartError(RuntimeError):
    """The daemon cannot start; the message says why and what to do."""


class Daemon:
    """A running liveopt daemon. Build it with :meth:`start`.

    Attributes
    ----------
    controller : LiveOptimizerController
    api : RunningApi
        The HTTP/WebSocket server (``url``).
    feed : MarketDataClient
    rest : KucoinFuturesRest
    budget : PingBudgetManager
    router : MainOrderRouter or None
        Only in modes ``sim`` and ``live``.
    token : ApiToken
        The bearer token of the control endpoints (never printed but once, when generated).
    url : str
        The dashboard's URL.
    sim : RunningSim or None
        The in-process simulator when ``exchange.use_simulator`` started one.
    recovery : RecoveryReport or None
        What the start-up recovery did (None on a fresh data directory).
    part_failures : dict
        Failures of background parts by name (feed, reconciler, housekeeping, ...).
    snapshots : int
        Snapshots saved by this process (periodic, after control actions, final).
    router_alerts : int
        Alerts the main order router raised (logged at their severity).
    """

    controller: LiveOptimizerController
    api: RunningApi
    feed: MarketDataClient
    rest: KucoinFuturesRest
    budget: PingBudgetManager
    token: ApiToken
    url: str

    def __init__(self, config: ServiceConfig, *, out: TextIO, clock_ns: Callable[[], int],
                 sleep: Callable[[float], Awaitable[None]],
                 monotonic: Callable[[], float]) -> None:
        self.config = config
        self._out = out
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._monotonic = monotonic
        self.router: MainOrderRouter | None = None
        self.sim: RunningSim | None = None
        self.recovery: RecoveryReport | None = None
        self.part_failures: dict[str, int] = {}
        self.snapshots = 0
        #: Alerts raised by the main order router (unknown position, stop failures).
        self.router_alerts = 0
        self._store: StateStore | None = None
        self._journals: dict[str, TradeJournal] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_requested = asyncio.Event()
        self._stopped = False
        self._state_ready = False  # recovered or first snapshot taken: snapshots may follow
        self._feed_stopped = False
        self._last_snapshot = monotonic()
        self._rest: KucoinFuturesRest | None = None
        self._api: RunningApi | None = None

    # ------------------------------------------------------------------ start

    @classmethod
    async def start(cls, config: ServiceConfig, *, environ: Mapping[str, str],
                    out: TextIO | None = None, rest_url: str | None = None,
                    clock_ns: Callable[[], int] = time.time_ns,
                    sim_config: SimConfig | None = None,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                    monotonic: Callable[[], float] = time.monotonic) -> Daemon:
        """Start every part and return the running daemon.

        ``out`` receives the few lines meant for the operator (default: standard output).
        ``rest_url`` overrides ``exchange.rest_url`` (e.g. a simulator the caller runs);
        with ``exchange.use_simulator`` and no ``rest_url`` a simulator is started here,
        from ``sim_config`` (default: a free port, the configured symbol and seed).

        Raises
        ------
        DaemonStartError
            If the saved state cannot be recovered, the token cannot be used, or the
            exchange cannot be reached to set up the router.
        """
        # sys.stdout is read now, not at import (tests and embedders replace it).
        daemon = cls(config, out=out or sys.stdout, clock_ns=clock_ns, sleep=sleep,
                     monotonic=monotonic)
        try:
            await daemon._start(environ, rest_url, sim_config)
        except BaseException:
            await daemon.stop()
            raise
        return daemon

    async def _start(self, environ: Mapping[str, str], rest_url: str | None,
                     sim_config: SimConfig | None) -> None:
        config = self.config
        symbol = config.service.symbol
        try:
            self.token = load_or_create_token(config.data_dir, environ)
        except (ValueError, OSError) as error:
            raise DaemonStartError(f"API token: {error}") from None
        if self.token.source == "generated":
            # Printed once, at the first start; afterwards it is only in the 0600 file.
            self._print(f"API token (generated, saved to {self.token.path}): "
                        f"{self.token.value}")
        if rest_url is None and config.exchange.use_simulator:
            self.sim = await start_sim(sim_config or SimConfig(
                port=0, symbols=(symbol,), seed=config.optimizer.seed))
            rest_url = self.sim.url
            self._print(f"simulator: {self.sim.url}")
        base_url = rest_url or config.exchange.rest_url
        self.budget = PingBudgetManager(BudgetConfig(vip_level=config.exchange.vip_level))
        credentials = exchange_credentials(config, environ)
        self.rest = self._rest = KucoinFuturesRest(
            credentials, config=RestConfig(base_url=base_url), budget=self.budget,
            clock_ns=self._clock_ns)
        self._open_state()
        if config.service.mode in ("sim", "live"):
            self.router = await self._build_router(symbol, base_url)
        self.feed = MarketDataClient([symbol], token_provider=self.rest.bullet_public,
                                     sink=self._on_market_event)
        self.controller = self._build_controller()
        await self._recover_or_begin()
        self._apply_main_risk()
        app = create_app(SnapshottingController(self.controller, self._after_control),
                         token=self.token, cadence_s=config.telemetry.cadence_s,
                         client_queue=config.telemetry.client_queue,
                         leaderboard_rows=config.telemetry.leaderboard_rows,
                         clock_ns=self._clock_ns)
        self.api = self._api = await serve(app, host=config.api.host, port=config.api.port)
        self.url = self.api.url
        self._spawn("feed", self.feed.run)
        self._spawn("housekeeping", self._housekeeping)
        if self.router is not None:
            self._spawn("reconciler", self.router.run_reconciler)
        count = len(self.controller.engine)
        self._print(f"dashboard: {self.url}/  (mode {config.service.mode}, {count} "
                    f"variant{'' if count == 1 else 's'}, data in {config.data_dir})")

    def _open_state(self) -> None:
        settings = self.config.journal
        try:
            self._store = StateStore(self.config.data_dir,
                                     fsync_interval_s=settings.fsync_interval_s)
            self._journals = open_journals(
                self.config.data_dir, fsync_interval_s=settings.fsync_interval_s,
                fsync_every=settings.fsync_every, before_flush=self._store.flush_log)
        except (JournalCorruptError, OSError) as error:
            raise DaemonStartError(f"data directory {self.config.data_dir}: {error}") from None

    async def _build_router(self, symbol: str, base_url: str) -> MainOrderRouter:
        config = self.config
        mode = config.service.mode
        live_confirmed = mode == "live" and config.service.confirm_live
        try:  # before any request: a wrong destination is refused without touching it
            check_destination(base_url, mode, live_confirmed)
        except LiveTradingNotConfirmedError as error:
            raise DaemonStartError(str(error)) from None
        try:
            contract = decode_contract_spec(msgspec.json.encode(await self.rest.contract(symbol)))
        except Exception as error:
            raise DaemonStartError(f"router: cannot read the contract {symbol} from "
                                   f"{base_url}: {error}") from None
        space = config.optimizer.space
        return MainOrderRouter(
            self.rest, symbol=symbol, contract=contract,
            leverage=min(int(space.leverage.default), contract.max_leverage),
            budget=self.budget, clock_ns=self._clock_ns, rng=random.Random(),
            config=RouterConfig(
                mode=mode,
                take_profit_order=config.router.take_profit_order,
                order_attempts=config.router.order_attempts,
                reconcile_interval_s=config.router.reconcile_interval_s),
            live_confirmed=live_confirmed, sink=self._on_router_event)

    def _build_controller(self) -> LiveOptimizerController:
        config = self.config
        ccfg = controller_config_from(config)
        store = self._store
        assert store is not None
        return LiveOptimizerController(
            ccfg, engine_factory=engine_factory(ccfg, config.engine, config.optimizer.space),
            data_dir=config.data_dir, main_journal=self._journals["main"],
            experimental_journal=self._journals["experimental"], router=self.router,
            budget=self.budget,
            feed_status=feed_status_provider(self.feed.stats, config.service.symbol,
                                             stopped=lambda: self._feed_stopped),
            engine_input=lambda engine: RecordingInput(engine, store),
            after_promotion=self._after_promotion, clock_ns=self._clock_ns)

    async def _recover_or_begin(self) -> None:
        store = self._store
        assert store is not None
        running = True
        if store.has_snapshot:
            try:
                report = store.recover(self.controller.engine, self._journals)
            except RecoveryError as error:
                raise DaemonStartError(
                    f"cannot recover the state in {self.config.data_dir}: {error}. Start "
                    "with the configuration that state was saved with, or move the data "
                    "directory aside to start afresh.") from None
            self.recovery = report
            running = bool(report.extra.get("running", True))
            line = (f"recovered: snapshot {report.snapshot_generation}, "
                    f"{report.events_replayed} events replayed, {report.trades_replayed} "
                    f"trades replayed ({report.trades_in_journal} already journaled, "
                    f"{report.trades_rejournaled} re-journaled)")
            log.warning("%s; %s", line, msgspec.json.encode(report).decode())
            self._print(line)
        else:
            self._save_snapshot(running=True)
        self._state_ready = True
        await self.controller.start()
        if not running:
            # It was stopped when the state was saved: stop it again (the operator
            # starts it through the API, which resumes what the stop halted).
            await self.controller.stop(source="recovery")
            self._save_snapshot()

    # ------------------------------------------------------------------ running

    def _on_market_event(self, event: object) -> None:
        self.controller.on_market_event(event)

    def _on_router_event(self, event: object) -> None:
        if isinstance(event, AlertRaised):
            # An operator must see it: in the controller's alerts (API, telemetry,
            # dashboard), as an event, a log line at its severity, and a count.
            alert = event.alert
            self.router_alerts += 1
            level = logging.ERROR if alert.severity == "critical" else logging.WARNING
            log.log(level, "router alert %s: %s", alert.kind, alert.message)
            self.controller.raise_alert(alert)
        elif isinstance(event, RouterResumed):
            # The operator resumed the router: its halt alert is over.
            self.controller.clear_alert("unknown_position")
        else:
            log.debug("router: %s", type(event).__name__)

    def _spawn(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(
            self._supervised(name, work), name=f"liveopt-{name}"))

    async def _supervised(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        # The coroutine is made here, so a task cancelled before it ran leaves none behind.
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a failed part is reported, the daemon goes on
            self._part_failed(name, error)
        else:
            if name == "feed" and not self._stopped:
                self._part_failed(name, RuntimeError("the feed ended"))
        finally:
            if name == "feed":
                self._feed_stopped = True

    def _part_failed(self, name: str, error: BaseException) -> None:
        self.part_failures[name] = self.part_failures.get(name, 0) + 1
        self.controller.errors += 1
        log.error("%s failed: %s: %s", name, type(error).__name__, error)

    async def _housekeeping(self) -> None:
        interval = self.config.journal.snapshot_interval_s
        while True:
            await self._sleep(HOUSEKEEPING_INTERVAL_S)
            try:
                for journal in self._journals.values():
                    journal.maybe_flush()
                assert self._store is not None
                self._store.maybe_flush()
                if self._monotonic() - self._last_snapshot >= interval:
                    self._save_snapshot()
            except Exception as error:
                self._part_failed("housekeeping", error)

    def _after_promotion(self, record: PromotionRecord) -> None:
        # Called by the controller before a promotion or rollback returns, so the new
        # parameters are in a snapshot before anything else can happen (the tick log
        # replays market events only). API promotions are snapshotted again by the
        # after-control hook: harmless.
        if record.source != "api":
            self._after_control(f"auto-{record.action}")

    def _after_control(self, action: str) -> None:
        self._apply_main_risk()
        self._save_snapshot()
        log.info("%s: snapshot saved", action)

    def _apply_main_risk(self) -> None:
        if self.router is None:
            return
        try:
            self.router.set_risk(**main_risk(self.controller.engine.variants[MAIN]))
        except ValueError as error:
            self._part_failed("router", error)

    def _save_snapshot(self, running: bool | None = None) -> None:
        store = self._store
        controller = getattr(self, "controller", None)
        if store is None or controller is None:
            return
        controller.flush()  # publish and journal what is pending before the engine is saved
        if running is None:
            running = controller.status().running
        store.save_snapshot(controller.engine, self._journals, extra={"running": running})
        self._last_snapshot = self._monotonic()
        self.snapshots += 1

    # ------------------------------------------------------------------ stopping

    def request_stop(self) -> None:
        """Ask :meth:`wait` to return (from a signal handler or a test)."""
        self._stop_requested.set()

    async def wait(self, timeout_s: float | None = None) -> None:
        """Wait until :meth:`request_stop` (or ``timeout_s`` seconds)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), timeout_s)

    async def stop(self) -> None:
        """Stop everything in order, with a final snapshot (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_requested.set()
        feed = getattr(self, "feed", None)
        if feed is not None:
            feed.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._feed_stopped = True
        await self._close_step("api", self._api.stop() if self._api else None)
        controller = getattr(self, "controller", None)
        if controller is not None:
            await self._close_step("controller", controller.aclose())
        if self._state_ready:
            try:
                self._save_snapshot()
            except Exception as error:  # keep closing the rest
                log.error("final snapshot failed: %r", error)
        if self._store is not None:
            self._store.close()
        for journal in self._journals.values():
            journal.close()
        await self._close_step("rest", self._rest.close() if self._rest else None)
        await self._close_step("simulator", self.sim.stop() if self.sim else None)

    async def _close_step(self, name: str, work: Awaitable[Any] | None) -> None:
        if work is None:
            return
        try:
            await work
        except Exception as error:  # shutdown goes on whatever one part does
            log.error("stopping %s failed: %r", name, error)

    def _print(self, line: str) -> None:
        print(f"liveopt: {line}", file=self._out, flush=True)
