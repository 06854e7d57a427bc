"""The controller as the API, the telemetry feed and the dashboard see it.

``liveopt.service.controller.LiveOptimizerController`` implements it; the HTTP layer is
written (and tested, with a fake) against this protocol only, so the two sides stay
independent. Reads are synchronous and cheap (they copy a consistent view); control
operations are coroutines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from liveopt.service.events import ServiceEvent
from liveopt.service.views import (
    Alert,
    EquityCurve,
    GateSummary,
    Health,
    LatencyHistogram,
    OptimizerStatus,
    PromotionRecord,
    StopReport,
    TradePage,
    VariantDetail,
    VariantResult,
)


class EventSubscription(Protocol):
    """A bounded queue of events for one consumer. When it is full the oldest events are
    dropped (and counted in ``dropped``); the controller never waits for a consumer."""

    dropped: int

    def __aiter__(self) -> AsyncIterator[ServiceEvent]: ...

    def close(self) -> None: ...


class ControllerApi(Protocol):
    # --- reads -----------------------------------------------------------------------
    def status(self) -> OptimizerStatus: ...

    def results(self, limit: int | None = None) -> list[VariantResult]:
        """Ranked leaderboard, best first, with gate verdicts."""
        ...

    def variant(self, variant_id: int) -> VariantDetail:
        """Raises NotFoundError."""
        ...

    def trades(self, *, main: bool = False, variant_id: int | None = None, offset: int = 0,
               limit: int = 100) -> TradePage:
        """Closed trades from the journal, newest first (main strategy or variants)."""
        ...

    def gate(self) -> GateSummary: ...

    def health(self) -> Health: ...

    def alerts(self) -> list[Alert]: ...

    def latency(self) -> LatencyHistogram: ...

    def equity_curves(self, variant_ids: list[int]) -> list[EquityCurve]: ...

    def promotions(self) -> list[PromotionRecord]: ...

    def subscribe(self, maxsize: int = 1000) -> EventSubscription: ...

    # --- control (the API requires the bearer token for these) -----------------------
    async def start(self) -> None:
        """Start the optimizer; ConflictError if it runs."""
        ...

    async def stop(self, *, flatten: bool = False) -> StopReport:
        """The emergency stop: halts every variant at once; with ``flatten`` also cancels
        the main strategy's orders and closes its position reduce-only. ConflictError if
        it is already stopped."""
        ...

    async def reset(self) -> None:
        """New variants and fresh paper accounts; ConflictError while running."""
        ...

    async def promote(self, variant_id: int) -> PromotionRecord:
        """Make ``variant_id``'s parameters the main strategy's (audited).
        NotFoundError, ConflictError (it is the main strategy already)."""
        ...

    async def rollback(self) -> PromotionRecord:
        """Undo the last promotion; ConflictError if there is none."""
        ...
