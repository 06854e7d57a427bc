"""The telemetry WebSocket's messages (``/ws/telemetry``), tagged by ``type``.

A client first receives one ``init``, then an ``update`` every cadence (default 1 s) and an
``event`` for each service event as it happens. ``seq`` counts the messages sent to that
client; a gap tells the client it was too slow and messages were dropped for it.
"""

from __future__ import annotations

import msgspec

from liveopt.service.events import ServiceEvent
from liveopt.service.views import (
    EquityCurve,
    GateSummary,
    Health,
    OptimizerStatus,
    VariantResult,
)

TELEMETRY_VERSION = 1


class TelemetryInit(msgspec.Struct, frozen=True, kw_only=True, tag="init"):
    seq: int
    version: int
    cadence_s: float
    main_variant_id: int
    status: OptimizerStatus
    gate: GateSummary
    leaderboard: list[VariantResult]
    equity: list[EquityCurve]  # the leaders' and the main strategy's
    health: Health


class TelemetryUpdate(msgspec.Struct, frozen=True, kw_only=True, tag="update"):
    seq: int
    ts_ns: int
    status: OptimizerStatus
    gate: GateSummary
    leaderboard: list[VariantResult]  # the top rows and always the main strategy's
    equity: list[EquityCurve]
    health: Health


class TelemetryEvent(msgspec.Struct, frozen=True, kw_only=True, tag="event"):
    seq: int
    event: ServiceEvent


TelemetryMessage = TelemetryInit | TelemetryUpdate | TelemetryEvent
