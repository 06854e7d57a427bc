"""``AlertMonitor``: each condition raises its alert once per activation, and clears."""

from __future__ import annotations

import logging

import pytest

from liveopt.service.alerts import ALERT_KINDS, AlertConfig, AlertInputs, AlertMonitor
from liveopt.service.views import Alert

CALM = AlertInputs(variants=100, crashed=0, memory_pct=10.0, rate_limited_total=0,
                   emergency_stopped=False, all_roi_negative=False)


def with_(**changes) -> AlertInputs:
    return AlertInputs(**{**{f: getattr(CALM, f) for f in CALM.__struct_fields__}, **changes})


@pytest.mark.parametrize(("kind", "inputs"), [
    ("variant_crash_rate", with_(crashed=11)),
    ("memory", with_(memory_pct=80.5)),
    ("emergency_stop", with_(emergency_stopped=True)),
    ("negative_roi", with_(all_roi_negative=True)),
])
def test_a_condition_raises_its_alert_once_and_again_after_clearing(kind, inputs, caplog):
    monitor = AlertMonitor()
    assert monitor.evaluate(CALM, 1) == []
    with caplog.at_level(logging.WARNING, logger="liveopt.alerts"):
        raised = monitor.evaluate(inputs, 2)
    assert [a.kind for a in raised] == [kind]
    assert raised[0].ts_ns == 2 and raised[0].active
    assert len([r for r in caplog.records if kind in r.getMessage()]) == 1
    assert monitor.evaluate(inputs, 3) == []  # still active: not raised again
    assert [a.kind for a in monitor.active()] == [kind]
    assert monitor.evaluate(CALM, 4) == [] and monitor.active() == []
    assert [a.kind for a in monitor.evaluate(inputs, 5)] == [kind]
    assert monitor.raised == 2


@pytest.mark.parametrize(("kind", "counter"), [
    ("rate_limit", "rate_limited_total"), ("order_router", "router_failures_total"),
])
def test_a_counter_alert_stays_active_while_the_counter_grows(kind, counter):
    monitor = AlertMonitor()
    assert [a.kind for a in monitor.evaluate(with_(**{counter: 3}), 1)] == [kind]
    assert monitor.evaluate(with_(**{counter: 6}), 2) == []
    assert [a.kind for a in monitor.active()] == [kind]
    assert monitor.evaluate(with_(**{counter: 6}), 3) == []  # no new ones: it clears
    assert monitor.active() == []
    raised = monitor.evaluate(with_(**{counter: 7}), 4)
    assert [a.kind for a in raised] == [kind] and raised[0].message.startswith("1 ")


def test_the_crash_rate_threshold_is_strictly_above_the_configured_share():
    monitor = AlertMonitor(AlertConfig(crash_rate_pct=10.0))
    assert monitor.evaluate(with_(crashed=10), 1) == []  # exactly 10 %
    assert [a.kind for a in monitor.evaluate(with_(crashed=11), 2)] == ["variant_crash_rate"]


def test_several_alerts_are_listed_in_a_fixed_order():
    monitor = AlertMonitor()
    monitor.evaluate(with_(all_roi_negative=True, memory_pct=99.0, crashed=50), 1)
    kinds = [a.kind for a in monitor.active()]
    assert kinds == sorted(kinds, key=ALERT_KINDS.index) and len(kinds) == 3


def test_thresholds_are_validated_with_the_field_named():
    with pytest.raises(ValueError, match="memory_pct"):
        AlertConfig(memory_pct=0.0)
    with pytest.raises(ValueError, match="crash_rate_pct"):
        AlertConfig(crash_rate_pct=150.0)


def test_an_alert_raised_by_another_part_is_active_once_until_cleared():
    monitor = AlertMonitor()
    alert = Alert(kind="unknown_position", severity="critical", message="position X", ts_ns=5)
    assert monitor.raise_external(alert)
    assert not monitor.raise_external(alert)  # already active: not raised twice
    assert alert in monitor.active()
    assert monitor.clear_external("unknown_position")
    assert alert not in monitor.active()
    assert not monitor.clear_external("unknown_position")
