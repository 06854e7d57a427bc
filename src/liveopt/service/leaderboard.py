"""Engine output turned into the read models the API shows (``views``).

Pure functions: the engine's metrics table, the scoring engine's ranking and the gate's
decisions in, frozen views out. NaN (an undefined figure) becomes ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from liveopt.engine import REASON_NAMES, STOP_REASON_NAMES
from liveopt.scoring import GateDecision, PromotionGate
from liveopt.service.views import GateSummary, GateVerdict, TradeRecord, VariantResult

MAIN_VARIANT = 0


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, None when it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def gate_verdict(decision: GateDecision) -> GateVerdict:
    """A gate decision as the API shows it."""
    return GateVerdict(
        promoted=bool(decision.promoted),
        p_value=finite_or_none(decision.p_value),
        adjusted_p_value=finite_or_none(decision.adjusted_p_value),
        deflated_sharpe=finite_or_none(decision.deflated_sharpe),
        reasons=list(decision.reasons),
    )


def stop_reason(metrics_row: np.void, crash_reasons: Mapping[int, str]) -> str:
    """Why a variant is not active ("" while it is); a crash overrides the engine's code."""
    variant = int(metrics_row["variant"])
    if variant in crash_reasons:
        return crash_reasons[variant]
    return STOP_REASON_NAMES.get(int(metrics_row["stop_reason"]), "stopped")


def build_results(metrics: np.ndarray, ranked: np.ndarray,
                  verdicts: Mapping[int, GateVerdict],
                  crash_reasons: Mapping[int, str]) -> list[VariantResult]:
    """Leaderboard rows in ``ranked`` order (``ScoringEngine.rank`` output)."""
    rows = []
    for entry in ranked:
        variant = int(entry["variant"])
        m = metrics[variant]
        rows.append(VariantResult(
            rank=int(entry["rank"]),
            variant_id=variant,
            config_hash=int(m["config_hash"]),
            is_main=variant == MAIN_VARIANT,
            score=finite_or_none(entry["score"]),
            trades=int(m["trades"]),
            win_rate=finite_or_none(m["win_rate"]),
            net_pnl=float(m["net_pnl"]),
            roi_pct=float(m["roi_pct"]),
            sharpe=finite_or_none(m["sharpe_per_trade"]),
            sortino=finite_or_none(m["sortino_per_trade"]),
            max_drawdown=float(m["max_drawdown"]),
            profit_factor=finite_or_none(m["profit_factor"]),
            equity=float(m["equity"]),
            side=int(m["side"]),
            active=bool(m["active"]) and variant not in crash_reasons,
            stop_reason=stop_reason(m, crash_reasons),
            gate=verdicts.get(variant),
        ))
    return rows


def gate_summary(gate: PromotionGate, results: Iterable[VariantResult],
                 evaluated_at_ns: int | None, auto_promote: bool) -> GateSummary:
    """The gate's state over the leaderboard (candidates best first)."""
    candidates: list[int] = []
    failed: dict[str, int] = {}
    for row in results:
        if row.gate is None:
            continue
        if row.gate.promoted:
            candidates.append(row.variant_id)
        for reason in row.gate.reasons:
            failed[reason] = failed.get(reason, 0) + 1
    return GateSummary(evaluated_at_ns=evaluated_at_ns, test=gate.test,
                       correction=gate.correction, alpha=float(gate.alpha),
                       candidates=candidates, failed_by_reason=failed,
                       auto_promote=auto_promote)


def trade_record(row: np.void, config_hash: int) -> TradeRecord:
    """One ``TRADE_DTYPE`` row as the journals record it.

    Raises
    ------
    ValueError
        On an unknown exit reason or side (a corrupt row).
    """
    side = int(row["side"])
    if side not in (1, -1):
        raise ValueError(f"side: {side} is neither long (1) nor short (-1)")
    return TradeRecord(
        variant_id=int(row["variant"]),
        config_hash=int(config_hash),
        side="long" if side == 1 else "short",
        entry_ts_ns=int(row["entry_ts"]),
        exit_ts_ns=int(row["exit_ts"]),
        entry_price=float(row["entry_price"]),
        exit_price=float(row["exit_price"]),
        size_lots=float(row["lots"]),
        fees=float(row["entry_fee"] + row["exit_fee"]),
        funding=float(row["funding"]),
        net_pnl=float(row["net_pnl"]),
        roi_pct=float(row["roi_pct"]),
        exit_reason=_reason(int(row["reason"])),
    )


def _reason(code: int) -> str:
    try:
        return REASON_NAMES[code]
    except KeyError:
        raise ValueError(f"exit_reason: unknown code {code}") from None
