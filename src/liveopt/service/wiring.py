"""Small pieces the daemon (:mod:`liveopt.service.daemon`) is wired from.

- :class:`SnapshottingController`: the controller as the API sees it, with a hook run right
  after every control action (start, stop, reset, promote, rollback). Only market events are
  in the tick log, so the daemon snapshots the engine there: a replay cannot repeat them.
- :func:`feed_status_provider`: the controller's ``feed_status`` built from
  ``MarketDataClient.stats()``.
- :func:`exchange_credentials`: which keys the REST client gets in each mode.
- :func:`main_risk`: the router's risk settings from the main strategy's parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from liveopt.exchange.feed import FeedStats
from liveopt.exchange.signing import Credentials
from liveopt.optimizer import VariantParams
from liveopt.service.config import ServiceConfig, credentials_from_env
from liveopt.service.controller import LiveOptimizerController
from liveopt.service.views import FeedStatus, PromotionRecord, StopReport
from liveopt.sim.config import DEFAULT_API_KEY, DEFAULT_API_PASSPHRASE, DEFAULT_API_SECRET
from liveopt.units import NS_PER_SECOND

__all__ = ["SnapshottingController", "exchange_credentials", "feed_status_provider",
           "main_risk"]


class SnapshottingController:
    """Delegates everything to ``controller``; after each successful control action it
    calls ``after_control(action)`` (before the API answers), so the engine state the
    action made is saved before the next market event is logged.

    A refused action (a ``ConflictError`` and the like) raises as before and runs no hook.
    """

    def __init__(self, controller: LiveOptimizerController,
                 after_control: Callable[[str], None]) -> None:
        self._controller = controller
        self._after = after_control

    def __getattr__(self, name: str) -> Any:
        # Reads (status, results, health, subscribe...) go straight to the controller.
        return getattr(self._controller, name)

    async def start(self) -> None:
        """Start the optimizer, then run the hook."""
        await self._controller.start()
        self._after("start")

    async def stop(self, *, flatten: bool = False) -> StopReport:
        """The emergency stop, then the hook."""
        report = await self._controller.stop(flatten=flatten)
        self._after("stop")
        return report

    async def reset(self) -> None:
        """Reset the variants, then the hook."""
        await self._controller.reset()
        self._after("reset")

    async def promote(self, variant_id: int) -> PromotionRecord:
        """Promote a variant, then the hook."""
        record = await self._controller.promote(variant_id)
        self._after("promote")
        return record

    async def rollback(self) -> PromotionRecord:
        """Undo the last promotion, then the hook."""
        record = await self._controller.rollback()
        self._after("rollback")
        return record


def feed_status_provider(stats: Callable[[], FeedStats], symbol: str, *,
                         stopped: Callable[[], bool],
                         clock_ns: Callable[[], int] = time.monotonic_ns
                         ) -> Callable[[], FeedStatus]:
    """``FeedStatus`` from the feed's counters: ``stopped`` once the daemon stops the feed
    (or its task ended), ``connected`` while every connection is subscribed,
    ``connecting`` before the first frame and ``disconnected`` after a loss. ``clock_ns``
    must be the feed's clock (``last_frame_ns`` is read with it)."""

    def status() -> FeedStatus:
        current = stats()
        if stopped():
            state = "stopped"
        elif current.connected:
            state = "connected"
        elif current.frames == 0:
            state = "connecting"
        else:
            state = "disconnected"
        age = (None if current.last_frame_ns is None
               else max(0, clock_ns() - current.last_frame_ns) / NS_PER_SECOND)
        return FeedStatus(
            state=state, symbol=symbol, reconnects=current.reconnects, gaps=current.gaps,
            duplicates=current.duplicates, malformed=sum(current.rejected.values()),
            last_event_age_s=age,
        )

    return status


def exchange_credentials(config: ServiceConfig,
                         environ: Mapping[str, str]) -> Credentials | None:
    """The keys of the REST client.

    ``paper``: none, ever (the feed needs only public endpoints, so nothing private can be
    sent). ``sim``: the environment's keys, else the local simulator's built-in ones (they
    guard nothing; the router refuses any host but loopback in this mode). ``live``: the
    environment's keys (``load_config`` already refused live mode without them).
    """
    mode = config.service.mode
    if mode == "paper":
        return None
    keys = credentials_from_env(environ)
    if keys is None and mode == "sim":
        return Credentials(DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_API_PASSPHRASE)
    return keys


def main_risk(params: VariantParams) -> dict[str, Any]:
    """``MainOrderRouter.set_risk`` arguments from the main strategy's parameters."""
    return {"leverage": int(params.leverage), "stop_loss_roi_pct": float(params.stop_loss_roi),
            "take_profit_roi_pct": float(params.take_profit_roi)}
