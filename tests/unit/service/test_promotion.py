"""The promotion audit log, the parameter mapping it records, and ``Promoter``."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.engine import Engine
from liveopt.optimizer import generate_variants
from liveopt.service.errors import ConflictError, ServiceError
from liveopt.service.promotion import (
    PROMOTIONS_FILE,
    Promoter,
    PromotionHistory,
    PromotionLog,
    params_from_dict,
    params_to_dict,
)
from liveopt.service.views import GateVerdict, PromotionRecord
from tests.unit.service.controller_kit import NO_LIMITS, SPACE, SteppingClock

VARIANTS = generate_variants(64, "random", 3, SPACE)


def record(action: str, variant: int, ts: int = 1) -> PromotionRecord:
    params = params_to_dict(VARIANTS[variant])
    return PromotionRecord(ts_ns=ts, action=action, variant_id=variant,
                           previous_config_hash=1, new_config_hash=2, previous_params=params,
                           new_params=params, source="api", evidence=None)


@settings(max_examples=40, deadline=None)
@given(row=st.integers(0, len(VARIANTS) - 1))
def test_params_survive_the_dict_form_and_json(row):
    params = VARIANTS[row]
    as_dict = params_to_dict(params)
    decoded = msgspec.json.decode(msgspec.json.encode(as_dict))
    back = params_from_dict(decoded)
    assert back == params
    assert back.config_hash() == int(VARIANTS.config_hash[row])


def test_params_from_dict_names_the_bad_field():
    values = params_to_dict(VARIANTS[0])
    with pytest.raises(ValueError, match=r"missing .*leverage"):
        params_from_dict({k: v for k, v in values.items() if k != "leverage"})
    with pytest.raises(ValueError, match=r"unknown .*colour"):
        params_from_dict({**values, "colour": 1})
    with pytest.raises(ValueError, match="leverage"):
        params_from_dict({**values, "leverage": 2.5})
    with pytest.raises(ValueError, match="timeframe"):
        params_from_dict({**values, "timeframe": "2 minutes"})


def test_the_log_appends_reads_back_and_counts_unreadable_lines(tmp_path):
    log = PromotionLog(tmp_path)
    assert log.load() == []
    first, second = record("promote", 3, ts=1), record("rollback", 3, ts=2)
    log.append(first)
    log.append(second)
    with open(tmp_path / PROMOTIONS_FILE, "ab") as handle:
        handle.write(b'{"ts_ns": 3, "action": "prom')  # torn by a crash
    reread = PromotionLog(tmp_path)
    assert reread.load() == [first, second]
    assert reread.rejected == 1


def test_history_undoes_promotions_last_first():
    history = PromotionHistory()
    assert history.last() is None
    a, b = record("promote", 1), record("promote", 2)
    history.applied(a)
    history.applied(b)
    assert history.last() == b
    history.applied(record("rollback", 2))
    assert history.last() == a
    history.applied(record("rollback", 1))
    assert history.last() is None and len(history) == 0


def test_promoter_audits_every_change_and_refuses_no_ops(tmp_path):
    engine = Engine(NO_LIMITS, VARIANTS.take(range(8)))
    promoter = Promoter(tmp_path, SteppingClock())
    evidence = GateVerdict(promoted=True, p_value=0.001, adjusted_p_value=0.01,
                           deflated_sharpe=0.97, reasons=[])
    with pytest.raises(ConflictError):
        promoter.promote(engine, 0, "api", None)
    with pytest.raises(ConflictError):
        promoter.rollback(engine)
    applied = promoter.promote(engine, 5, "auto", evidence)
    assert applied.evidence == evidence and applied.source == "auto"
    with pytest.raises(ConflictError, match="already"):
        promoter.promote(engine, 5, "api", None)
    undone = promoter.rollback(engine)
    assert params_from_dict(undone.new_params) == VARIANTS[0]
    assert engine.variants[0] == VARIANTS[0]
    assert PromotionLog(tmp_path).load() == [applied, undone]


def test_a_failed_audit_write_leaves_the_engine_unchanged_when_the_path_is_a_directory(
        tmp_path):
    engine = Engine(NO_LIMITS, VARIANTS.take(range(4)))
    promoter = Promoter(tmp_path, SteppingClock())
    (tmp_path / PROMOTIONS_FILE).mkdir()  # appending to it fails whoever runs the test
    with pytest.raises(ServiceError, match="audit record"):
        promoter.promote(engine, 2, "api", None)
    assert engine.variants[0] == VARIANTS[0]
    assert promoter.records == [] and promoter.history.last() is None


def test_reapply_gives_a_new_engine_the_logged_main_parameters(tmp_path):
    engine = Engine(NO_LIMITS, VARIANTS.take(range(6)))
    Promoter(tmp_path, SteppingClock()).promote(engine, 4, "api", None)
    fresh = Engine(NO_LIMITS, VARIANTS.take(range(6)))
    restarted = Promoter(tmp_path, SteppingClock())
    assert restarted.reapply(fresh)
    assert fresh.variants[0] == VARIANTS[4]
    assert not restarted.reapply(fresh)  # already there
    assert restarted.history.last() is not None
