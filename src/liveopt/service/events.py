"""Typed service events (frozen, tagged): what happened, for the telemetry feed, the logs
and anyone subscribed to the controller. JSON form: ``{"type": "<Name>", ...}``."""

from __future__ import annotations

import msgspec

from liveopt.service.views import Alert, GateVerdict, PromotionRecord, TradeRecord


class VariantStarted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    ts_ns: int
    variant_id: int
    config_hash: int


class VariantStopped(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    ts_ns: int
    variant_id: int
    reason: str  # the engine's stop reason, or "crashed: <error>"


class TradeExecuted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    ts_ns: int
    main: bool  # the main strategy's trade (journaled in trades.jsonl)
    trade: TradeRecord


class MetricsUpdated(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    ts_ns: int
    ticks_processed: int
    trades_closed: int
    variants_active: int


class PromotionCandidate(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    ts_ns: int
    variant_id: int
    verdict: GateVerdict


class PromotionApplied(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    ts_ns: int
    record: PromotionRecord


class EmergencyStop(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    ts_ns: int
    flatten: bool
    source: str  # "api", "alert", "reconciler", "signal"


class AlertRaised(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    alert: Alert


ServiceEvent = (
    VariantStarted | VariantStopped | TradeExecuted | MetricsUpdated | PromotionCandidate
    | PromotionApplied | EmergencyStop | AlertRaised
)
