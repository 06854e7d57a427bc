"""Operator alerts: conditions evaluated at the telemetry cadence.

Each alert kind is either active or not. When a kind becomes active the monitor returns a
new :class:`~liveopt.service.views.Alert` (the controller publishes it as an
``AlertRaised`` event) and writes one log line; while it stays active nothing repeats;
when its condition clears it is deactivated (and may be raised again later).
"""

from __future__ import annotations

import logging
import math

import msgspec

from liveopt.service.views import Alert

log = logging.getLogger("liveopt.alerts")

ALERT_KINDS: tuple[str, ...] = (
    "variant_crash_rate", "memory", "rate_limit", "emergency_stop", "negative_roi",
    "order_router",
)


class AlertConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Alert thresholds.

    Parameters
    ----------
    crash_rate_pct : float
        Crashed variants, in percent of all variants, above which the crash-rate alert is
        raised (origin requirement: 10 %).
    memory_pct : float
        Resident memory of the daemon, in percent of the machine's RAM, above which the
        memory alert is raised.
    """

    crash_rate_pct: float = 10.0
    memory_pct: float = 80.0

    def __post_init__(self) -> None:
        for name in ("crash_rate_pct", "memory_pct"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value <= 100.0):
                raise ValueError(f"{name}: {value!r} must be in (0, 100]")


class AlertInputs(msgspec.Struct, frozen=True, kw_only=True):
    """What the conditions are evaluated on (one reading of the controller's state)."""

    variants: int
    crashed: int
    memory_pct: float
    rate_limited_total: int  # 429-class answers seen by the budget since the start
    emergency_stopped: bool
    all_roi_negative: bool  # every variant below its starting capital
    router_failures_total: int = 0  # main-strategy router calls that raised


class AlertMonitor:
    """Keeps which alerts are active and raises each once per activation."""

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig()
        self._active: dict[str, Alert] = {}
        # Alerts raised by other parts (the order router: an unknown position, a stop that
        # cannot be kept), active until that part clears them.
        self._external: dict[str, Alert] = {}
        self._rate_limited_seen = 0
        self._router_failures_seen = 0
        #: Alerts raised since the start (activations).
        self.raised = 0

    def active(self) -> list[Alert]:
        """The active alerts, in :data:`ALERT_KINDS` order, then those raised by other
        parts in the order they were raised."""
        return [self._active[k] for k in ALERT_KINDS if k in self._active] + list(
            self._external.values()
        )

    def raise_external(self, alert: Alert) -> bool:
        """Make an alert of another part active; False if one of its kind already is."""
        if alert.kind in self._external:
            return False
        self._external[alert.kind] = alert
        self.raised += 1
        log.warning("alert %s (%s): %s", alert.kind, alert.severity, alert.message)
        return True

    def clear_external(self, kind: str) -> bool:
        """End another part's alert of ``kind``; False if none was active."""
        return self._external.pop(kind, None) is not None

    def evaluate(self, inputs: AlertInputs, now_ns: int) -> list[Alert]:
        """Update the alert states; return the alerts that became active now."""
        raised = []
        for kind, condition in self._conditions(inputs):
            if condition is None:
                self._active.pop(kind, None)
            elif kind not in self._active:
                severity, message = condition
                alert = Alert(kind=kind, severity=severity, message=message, ts_ns=now_ns)
                self._active[kind] = alert
                self.raised += 1
                log.warning("alert %s (%s): %s", kind, severity, message)
                raised.append(alert)
        return raised

    def _conditions(self, x: AlertInputs) -> list[tuple[str, tuple[str, str] | None]]:
        cfg = self.config
        crash_pct = 100.0 * x.crashed / x.variants if x.variants else 0.0
        # A 429 alert stays active while new 429s keep arriving between evaluations.
        new_429 = x.rate_limited_total - self._rate_limited_seen
        self._rate_limited_seen = x.rate_limited_total
        new_failures = x.router_failures_total - self._router_failures_seen
        self._router_failures_seen = x.router_failures_total
        return [
            ("variant_crash_rate", (
                "critical",
                f"{x.crashed} of {x.variants} variants crashed ({crash_pct:.1f} % > "
                f"{cfg.crash_rate_pct:g} %)",
            ) if crash_pct > cfg.crash_rate_pct else None),
            ("memory", (
                "critical",
                f"memory use {x.memory_pct:.1f} % of RAM > {cfg.memory_pct:g} %",
            ) if x.memory_pct > cfg.memory_pct else None),
            ("rate_limit", (
                "warning",
                f"{new_429} rate-limited answers (HTTP 429) since the last check",
            ) if new_429 > 0 else None),
            ("emergency_stop", (
                "critical", "the emergency stop halted the optimizer",
            ) if x.emergency_stopped else None),
            ("negative_roi", (
                "warning", f"ROI is negative for all {x.variants} variants",
            ) if x.all_roi_negative else None),
            ("order_router", (
                "critical",
                f"{new_failures} main-strategy order routing calls failed since the last check",
            ) if new_failures > 0 else None),
        ]
