"""``/metrics``: valid Prometheus text format 0.0.4 (checked by a small parser written
here), the required metric families with the controller's values, a cumulative latency
histogram whose ``+Inf`` bucket equals its count, and label escaping."""

from __future__ import annotations

import asyncio
import math
import re

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.service.api import create_app, serve
from liveopt.service.prometheus import (
    CONTENT_TYPE,
    MetricsWriter,
    format_value,
    render_metrics,
)
from liveopt.service.views import LatencyHistogram
from tests.unit.service.fake_controller import FakeController, StaticToken

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
_SUFFIXES = ("_bucket", "_sum", "_count")


class Family:
    def __init__(self, name: str) -> None:
        self.name = name
        self.help: str | None = None
        self.kind: str | None = None
        self.samples: list[tuple[str, dict[str, str], float]] = []


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse_exposition(text: str) -> dict[str, Family]:
    """Parse the text format strictly: HELP and TYPE once per family, before its samples;
    every sample belongs to a declared family; values are floats."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    for line in text[:-1].split("\n"):  # only "\n" ends a line in this format
        if line.startswith(("# HELP ", "# TYPE ")):
            _, keyword, name, rest = line.split(" ", 3)
            family = families.setdefault(name, Family(name))
            assert not family.samples, f"{keyword} after samples of {name}"
            if keyword == "HELP":
                assert family.help is None, f"second HELP for {name}"
                family.help = rest
            else:
                assert family.kind is None, f"second TYPE for {name}"
                assert rest in {"counter", "gauge", "histogram", "summary", "untyped"}
                family.kind = rest
            continue
        assert not line.startswith("#") and line.strip(), repr(line)
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, _, label_text, raw_value = match.groups()
        labels: dict[str, str] = {}
        if label_text:
            consumed = 0
            for label in _LABEL.finditer(label_text):
                assert label.start() == consumed, f"bad labels in {line!r}"
                labels[label.group(1)] = _unescape(label.group(2))
                consumed = label.end()
            assert consumed == len(label_text), f"bad labels in {line!r}"
        base = name
        if name not in families:
            base = next(name.removesuffix(s) for s in _SUFFIXES if name.endswith(s))
        family = families[base]
        assert family.kind is not None, f"sample before TYPE: {name}"
        family.samples.append((name, labels, float(raw_value)))
    return families


def check_histogram(family: Family) -> tuple[list[tuple[float, float]], float, float]:
    buckets = [(float(labels["le"]), value) for name, labels, value in family.samples
               if name.endswith("_bucket")]
    count = next(v for n, _, v in family.samples if n == family.name + "_count")
    total = next(v for n, _, v in family.samples if n == family.name + "_sum")
    bounds = [bound for bound, _ in buckets]
    assert bounds == sorted(bounds) and math.isinf(bounds[-1])
    values = [value for _, value in buckets]
    assert values == sorted(values), "buckets are not cumulative"
    assert values[-1] == count
    return buckets, total, count


def served_metrics(controller: FakeController) -> tuple[str, str]:
    async def main():
        app = create_app(controller, token=StaticToken("t"))
        api = await serve(app, port=0)
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(api.url + "/metrics") as response:
                assert response.status == 200
                return response.headers["Content-Type"], await response.text()
        finally:
            await api.stop()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def busy_controller() -> FakeController:
    controller = FakeController(8, running=True)
    controller.advance(120)
    controller.advance(45)
    controller.errors = 3
    controller.variant_crashes = 1
    return controller


def test_metrics_are_served_as_text_format_0_0_4(busy_controller):
    content_type, text = served_metrics(busy_controller)
    assert content_type == CONTENT_TYPE
    families = parse_exposition(text)
    assert all(name.startswith("liveopt_") for name in families)
    assert all(family.help and family.kind for family in families.values())


def test_the_required_families_are_present_with_the_controller_values(busy_controller):
    families = parse_exposition(served_metrics(busy_controller)[1])
    status, health = busy_controller.status(), busy_controller.health()

    def value(name, **labels):
        return next(v for n, lab, v in families[name].samples if n == name and lab == labels)

    assert families["liveopt_ticks_processed_total"].kind == "counter"
    assert value("liveopt_ticks_processed_total") == status.ticks_processed == 165
    assert value("liveopt_ticks_per_second") == status.ticks_per_s
    assert value("liveopt_trades_closed_total") == status.trades_closed
    assert value("liveopt_variants_active") == status.variants_active
    for budget in health.budget:
        assert value("liveopt_rate_limit_tokens", pool=budget.pool) == budget.tokens
        assert value("liveopt_rate_limit_capacity", pool=budget.pool) == budget.capacity
        assert value("liveopt_rate_limit_target_utilisation",
                     pool=budget.pool) == budget.target_utilisation
        assert value("liveopt_rate_limited_total", pool=budget.pool) == budget.rate_limited
    assert value("liveopt_feed_reconnects_total") == health.feed.reconnects
    assert value("liveopt_feed_gaps_total") == health.feed.gaps
    assert value("liveopt_feed_malformed_total") == health.feed.malformed
    assert value("liveopt_errors_total") == 3
    assert value("liveopt_variant_crashes_total") == 1
    assert value("liveopt_memory_rss_bytes") == health.memory_rss_mb * 1024 * 1024
    assert value("liveopt_memory_percent") == health.memory_pct


def test_the_latency_histogram_is_cumulative_in_seconds_and_inf_equals_count(busy_controller):
    families = parse_exposition(served_metrics(busy_controller)[1])
    family = families["liveopt_tick_to_decision_latency_seconds"]
    assert family.kind == "histogram"
    buckets, total, count = check_histogram(family)
    latency = busy_controller.latency()
    assert count == latency.count == 165
    assert total == pytest.approx(latency.sum_ms / 1000.0)
    assert [bound for bound, _ in buckets[:-1]] == pytest.approx(
        [bound / 1000.0 for bound in latency.le_ms[:-1]])


@settings(max_examples=50, deadline=None)
@given(observations=st.lists(st.floats(min_value=0.0, max_value=100.0), max_size=200),
       bounds=st.lists(st.floats(min_value=0.01, max_value=50.0), min_size=1, max_size=12,
                       unique=True))
def test_any_latency_histogram_renders_as_a_valid_cumulative_histogram(observations, bounds):
    le_ms = [*sorted(bounds), math.inf]
    counts = [sum(1 for x in observations if x <= bound) for bound in le_ms]
    histogram = LatencyHistogram(le_ms=le_ms, counts=counts, sum_ms=sum(observations),
                                 count=len(observations))
    controller = FakeController(2)
    controller.latency = lambda: histogram
    families = parse_exposition(render_metrics(controller, rejected_by_status={}))
    buckets, total, count = check_histogram(
        families["liveopt_tick_to_decision_latency_seconds"])
    assert count == len(observations) and len(buckets) == len(le_ms)
    assert total == pytest.approx(sum(observations) / 1000.0)


def test_a_histogram_without_an_inf_bound_gets_one_equal_to_its_count():
    writer = MetricsWriter()
    writer.histogram("demo_seconds", "demo", [0.1, 1.0], [2, 5], 3.5, 7)
    family = parse_exposition(writer.text())["liveopt_demo_seconds"]
    buckets, total, count = check_histogram(family)
    assert buckets == [(0.1, 2.0), (1.0, 5.0), (math.inf, 7.0)]
    assert (total, count) == (3.5, 7.0)


@settings(max_examples=50, deadline=None)
@given(value=st.text(max_size=30))
def test_label_values_are_escaped_and_parse_back_unchanged(value):
    writer = MetricsWriter()
    writer.gauge("demo", "a help text with \\ and\na newline", 1.5, {"symbol": value})
    family = parse_exposition(writer.text())["liveopt_demo"]
    assert family.samples == [("liveopt_demo", {"symbol": value}, 1.5)]


def test_a_family_declared_twice_is_refused():
    writer = MetricsWriter()
    writer.gauge("demo", "once", 1)
    with pytest.raises(ValueError, match="liveopt_demo"):
        writer.counter("demo", "twice", 2)


@pytest.mark.parametrize(("value", "text"), [
    (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"), (True, "1"), (7, "7"),
    (0.25, "0.25"),
])
def test_special_values_are_written_as_prometheus_expects(value, text):
    assert format_value(value) == text
