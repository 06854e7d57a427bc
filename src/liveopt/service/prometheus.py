"""``GET /metrics``: the daemon's state in the Prometheus text exposition format 0.0.4.

Written by hand (no client library): ``MetricsWriter`` emits one ``# HELP`` and one
``# TYPE`` line per metric family followed by its samples; ``render_metrics`` reads the
controller (status, health, latency histogram) and the API's own counters. Units follow the
Prometheus conventions: seconds and bytes, counters end in ``_total``, every name starts
with ``liveopt_``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from liveopt.service.protocol import ControllerApi
from liveopt.service.views import LatencyHistogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "liveopt_"
_BYTES_PER_MB = 1024.0 * 1024.0


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (``+Inf``, ``-Inf``, ``NaN``)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_label(str(value))}"' for key, value in labels.items())
    return "{" + inner + "}"


class MetricsWriter:
    """Accumulates metric families; each name may be declared only once."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._declared: set[str] = set()

    def _declare(self, name: str, kind: str, help_text: str) -> str:
        full = name if name.startswith(PREFIX) else PREFIX + name
        if full in self._declared:
            raise ValueError(f"metric {full} declared twice")
        self._declared.add(full)
        self._lines.append(f"# HELP {full} {_escape_help(help_text)}")
        self._lines.append(f"# TYPE {full} {kind}")
        return full

    def _sample(self, name: str, labels: Mapping[str, str], value: float) -> None:
        self._lines.append(f"{name}{_labels(labels)} {format_value(value)}")

    def gauge(self, name: str, help_text: str, value: float,
              labels: Mapping[str, str] | None = None) -> None:
        """One gauge with one sample."""
        self.family(name, "gauge", help_text, [(labels or {}, value)])

    def counter(self, name: str, help_text: str, value: float,
                labels: Mapping[str, str] | None = None) -> None:
        """One counter with one sample (``name`` should end in ``_total``)."""
        self.family(name, "counter", help_text, [(labels or {}, value)])

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
        """A gauge or counter family with one sample per label set."""
        full = self._declare(name, kind, help_text)
        for labels, value in samples:
            self._sample(full, labels, value)

    def histogram(self, name: str, help_text: str, bounds: list[float], cumulative: list[int],
                  total: float, count: int) -> None:
        """A histogram from cumulative bucket counts (``cumulative[i]`` <= ``bounds[i]``).

        A final ``+Inf`` bucket equal to ``count`` is added when ``bounds`` lacks one.
        """
        if len(bounds) != len(cumulative):
            raise ValueError(f"histogram {name}: {len(bounds)} bounds, {len(cumulative)} counts")
        full = self._declare(name, "histogram", help_text)
        for bound, observed in zip(bounds, cumulative, strict=True):
            self._sample(full + "_bucket", {"le": format_value(bound)}, observed)
        if not bounds or not math.isinf(bounds[-1]):
            self._sample(full + "_bucket", {"le": "+Inf"}, count)
        self._sample(full + "_sum", {}, total)
        self._sample(full + "_count", {}, count)

    def text(self) -> str:
        """The exposition text (ends with a newline)."""
        return "\n".join(self._lines) + "\n"


def _latency(writer: MetricsWriter, histogram: LatencyHistogram) -> None:
    # The controller counts in milliseconds; Prometheus wants seconds.
    writer.histogram(
        "tick_to_decision_latency_seconds",
        "Tick received -> the engine pass that consumed it done.",
        [bound / 1000.0 for bound in histogram.le_ms], list(histogram.counts),
        histogram.sum_ms / 1000.0, histogram.count)


def render_metrics(controller: ControllerApi, *, rejected_by_status: Mapping[int, int],
                   telemetry: Mapping[str, int] | None = None) -> str:
    """The whole ``/metrics`` page: controller state plus the API's and telemetry's counters.

    ``telemetry`` holds ``clients``, ``clients_dropped``, ``messages_sent`` and
    ``events_dropped`` (see ``TelemetryFeed.counters``).
    """
    status = controller.status()
    health = controller.health()
    w = MetricsWriter()
    w.gauge("up", "1 while the daemon answers.", 1)
    w.gauge("running", "1 while the optimizer runs.", status.running)
    w.gauge("halted", "1 while the engine's global halt (safety limits) stops every variant.",
            status.halted)
    w.gauge("uptime_seconds", "Seconds since the controller started.", status.uptime_s)
    w.gauge("ticks_per_second", "Ticks processed per second (recent rate).", status.ticks_per_s)
    w.counter("ticks_processed_total", "Ticks processed by the engine.", status.ticks_processed)
    _latency(w, controller.latency())
    w.gauge("variants", "Variants configured.", status.variants)
    w.gauge("variants_active", "Variants still trading.", status.variants_active)
    w.counter("trades_closed_total", "Closed trades (main strategy and variants).",
              status.trades_closed)
    w.counter("promotions_total", "Promotions and rollbacks applied.", status.promotions)
    pools = [({"pool": b.pool}, b) for b in health.budget]
    w.family("rate_limit_tokens", "gauge", "Tokens left in the rate-limit pool.",
             [(labels, b.tokens) for labels, b in pools])
    w.family("rate_limit_capacity", "gauge", "Capacity of the rate-limit pool.",
             [(labels, b.capacity) for labels, b in pools])
    w.family("rate_limit_target_utilisation", "gauge",
             "Target share of the pool's quota the budget may use.",
             [(labels, b.target_utilisation) for labels, b in pools])
    w.family("rate_limited_total", "counter", "429-class answers seen per pool.",
             [(labels, b.rate_limited) for labels, b in pools])
    feed = health.feed
    w.gauge("feed_connected", "1 while the market-data feed is connected.",
            feed.state == "connected", {"symbol": feed.symbol})
    w.counter("feed_reconnects_total", "Market-data feed reconnects.", feed.reconnects)
    w.counter("feed_gaps_total", "Sequence gaps seen on the feed.", feed.gaps)
    w.counter("feed_duplicates_total", "Duplicate feed messages dropped.", feed.duplicates)
    w.counter("feed_malformed_total", "Malformed feed messages rejected.", feed.malformed)
    if feed.last_event_age_s is not None:
        w.gauge("feed_last_event_age_seconds", "Seconds since the last feed event.",
                feed.last_event_age_s)
    w.counter("errors_total", "Errors counted by the daemon.", health.errors)
    w.counter("variant_crashes_total", "Variants stopped by an error.", health.variant_crashes)
    w.gauge("memory_rss_bytes", "Resident memory of the daemon.",
            health.memory_rss_mb * _BYTES_PER_MB)
    w.gauge("memory_percent", "Resident memory as a percentage of the machine's.",
            health.memory_pct)
    w.gauge("alerts_active", "Active alerts.", sum(1 for a in health.alerts if a.active))
    w.family("api_rejected_requests_total", "counter", "API requests refused, by HTTP status.",
             [({"status": str(code)}, n) for code, n in sorted(rejected_by_status.items())])
    counts = telemetry or {}
    w.gauge("telemetry_clients", "Connected telemetry WebSocket clients.",
            counts.get("clients", 0))
    w.counter("telemetry_clients_dropped_total",
              "Telemetry clients disconnected for being too slow.",
              counts.get("clients_dropped", 0))
    w.counter("telemetry_messages_sent_total", "Telemetry messages queued to clients.",
              counts.get("messages_sent", 0))
    w.counter("telemetry_events_dropped_total",
              "Controller events dropped before the telemetry feed read them.",
              counts.get("events_dropped", 0))
    return w.text()
