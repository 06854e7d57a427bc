"""The API's wire types (request bodies, the error body) and its route table as documented.

``api.py`` pairs each entry of ``route_docs()`` with its handler; ``openapi.py`` turns the
same entries into ``/openapi.json``. Request bodies are frozen structs that forbid unknown
fields, so a typo in a field name is a 422 naming the field, never a silent default.
"""

from __future__ import annotations

import msgspec

from liveopt.service.openapi import Param, RouteDoc
from liveopt.service.views import (
    Alert,
    GateSummary,
    Health,
    OptimizerStatus,
    PromotionRecord,
    StopReport,
    TradePage,
    VariantDetail,
    VariantResult,
)


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """Every refusal: a short machine name and a human detail (names the field at fault)."""

    error: str  # "unauthorized", "not_found", "conflict", "invalid_request", ...
    detail: str


class EmptyRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Body of start, reset and rollback: none, or ``{}``."""


class StopRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/optimizer/stop``: ``flatten`` also cancels the main strategy's orders and
    closes its position reduce-only."""

    flatten: bool = False


class PromoteRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/optimizer/promote``."""

    variant_id: int = msgspec.field(name="variantId")


_OFFSET = Param(name="offset", where="query", kind="integer", minimum=0,
                description="Records to skip (newest first). Default 0.")
_LIMIT = Param(name="limit", where="query", kind="integer", minimum=1, maximum=1000,
               description="Records per page. Default 100.")
_TAG_READ, _TAG_CONTROL, _TAG_OPS = "optimizer", "control", "operations"


def route_docs() -> dict[str, RouteDoc]:
    """Every route by handler name."""
    return {
        "status": RouteDoc(method="GET", path="/api/optimizer/status", tag=_TAG_READ,
                           summary="Optimizer status", response=OptimizerStatus),
        "results": RouteDoc(
            method="GET", path="/api/optimizer/results", tag=_TAG_READ,
            summary="Ranked leaderboard with gate decisions", response=list[VariantResult],
            params=(Param(name="limit", where="query", kind="integer", minimum=1,
                          maximum=100_000, description="Top rows only. Default: all."),),
            errors=(422,)),
        "variant": RouteDoc(
            method="GET", path="/api/optimizer/variants/{variant_id}", tag=_TAG_READ,
            summary="One variant: result, parameters, metrics, equity curve",
            response=VariantDetail, errors=(404, 422),
            params=(Param(name="variant_id", where="path", kind="integer",
                          description="The variant id (0 is the main strategy)."),)),
        "trades_experimental": RouteDoc(
            method="GET", path="/api/trades/experimental", tag=_TAG_READ,
            summary="Closed variant trades, newest first", response=TradePage,
            errors=(422,),
            params=(Param(name="variant", where="query", kind="integer", minimum=0,
                          description="Only this variant's trades."), _OFFSET, _LIMIT)),
        "trades_main": RouteDoc(
            method="GET", path="/api/trades/main", tag=_TAG_READ,
            summary="Closed main-strategy trades, newest first", response=TradePage,
            errors=(422,), params=(_OFFSET, _LIMIT)),
        "gate": RouteDoc(method="GET", path="/api/optimizer/gate", tag=_TAG_READ,
                         summary="Promotion gate's last evaluation", response=GateSummary),
        "promotions": RouteDoc(method="GET", path="/api/optimizer/promotions", tag=_TAG_READ,
                               summary="Promotion and rollback audit log, oldest first",
                               response=list[PromotionRecord]),
        "health": RouteDoc(method="GET", path="/api/health", tag=_TAG_OPS,
                           summary="Health: feed, latency, budget, memory, alerts",
                           response=Health),
        "alerts": RouteDoc(method="GET", path="/api/alerts", tag=_TAG_OPS,
                           summary="Current alerts", response=list[Alert]),
        "metrics": RouteDoc(method="GET", path="/metrics", tag=_TAG_OPS,
                            summary="Prometheus metrics (text format 0.0.4)",
                            media_type="text/plain"),
        "openapi": RouteDoc(method="GET", path="/openapi.json", tag=_TAG_OPS,
                            summary="This document", media_type="application/json"),
        "telemetry": RouteDoc(
            method="GET", path="/ws/telemetry", tag=_TAG_OPS, success_status=101,
            websocket=True, summary="Telemetry WebSocket (read-only, no token)",
            description="Upgrade to a WebSocket. Messages are TelemetryMessage JSON texts: "
                        "one init, then an update per cadence and an event per service "
                        "event. See docs/telemetry.md."),
        "start": RouteDoc(method="POST", path="/api/optimizer/start", tag=_TAG_CONTROL,
                          summary="Start the optimizer", control=True,
                          request=EmptyRequest, response=OptimizerStatus, errors=(409, 422)),
        "stop": RouteDoc(method="POST", path="/api/optimizer/stop", tag=_TAG_CONTROL,
                         summary="Emergency stop (optionally flatten the main strategy)",
                         control=True, request=StopRequest, response=StopReport,
                         errors=(409, 422)),
        "reset": RouteDoc(method="POST", path="/api/optimizer/reset", tag=_TAG_CONTROL,
                          summary="New variants and fresh paper accounts (when stopped)",
                          control=True, request=EmptyRequest, response=OptimizerStatus,
                          errors=(409, 422)),
        "promote": RouteDoc(method="POST", path="/api/optimizer/promote", tag=_TAG_CONTROL,
                            summary="Make a variant's parameters the main strategy's",
                            control=True, request=PromoteRequest, request_required=True,
                            response=PromotionRecord, errors=(404, 409, 422)),
        "rollback": RouteDoc(method="POST", path="/api/optimizer/rollback", tag=_TAG_CONTROL,
                             summary="Undo the last promotion", control=True,
                             request=EmptyRequest, response=PromotionRecord,
                             errors=(409, 422)),
        "index": RouteDoc(method="GET", path="/", tag=_TAG_OPS, summary="The dashboard",
                          media_type="text/html", errors=(404,)),
        "dashboard": RouteDoc(
            method="GET", path="/dashboard/{name}", tag=_TAG_OPS,
            summary="A dashboard file (scripts, styles)", media_type="application/octet-stream",
            errors=(404,),
            params=(Param(name="name", where="path", kind="string",
                          description="A file name inside the dashboard folder."),)),
    }
