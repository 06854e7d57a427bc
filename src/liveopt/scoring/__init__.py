"""Scoring and promotion: rank variants, show their trade-offs, promote only real evidence.

- :class:`ScoringEngine`: a bounded composite score for ranking, with its breakdown;
  :func:`pareto_front`: the variants no other beats on return, Sharpe and drawdown at once.
- :class:`PromotionGate`: the statistical gate (one-sided Welch or bootstrap-t test
  against the baseline, Holm or Benjamini-Hochberg correction over the variants of a run,
  Sharpe, PnL and Deflated Sharpe checks), from per-trade returns or from the engine's
  online moments; :class:`SequentialGate`: the same gate re-evaluated as trades arrive,
  with alpha spending so repeated looks do not inflate false promotions.

``docs/statistics.md`` is the specification and holds the measured error rates and power.
The package takes plain arrays or a structured array with ``Engine.metrics()``'s field
names, so it does not depend on the engine.
"""

from liveopt.scoring.boundaries import SPENDING, BoundaryTable, boundaries, spent
from liveopt.scoring.composite import (
    PARETO_DTYPE,
    PARETO_FIELDS,
    SCORE_DTYPE,
    SCORE_FIELDS,
    ScoringEngine,
    non_dominated,
    pareto_front,
)
from liveopt.scoring.gate import (
    DECISION_DTYPE,
    REASONS,
    TESTS,
    GateDecision,
    PromotionGate,
    reason_names,
    to_decisions,
)
from liveopt.scoring.sequential import SequentialGate
from liveopt.scoring.stats import (
    CORRECTIONS,
    adjust_p_values,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    welch_t_test,
)

__all__ = [
    "CORRECTIONS",
    "DECISION_DTYPE",
    "PARETO_DTYPE",
    "PARETO_FIELDS",
    "REASONS",
    "SCORE_DTYPE",
    "SCORE_FIELDS",
    "SPENDING",
    "TESTS",
    "BoundaryTable",
    "GateDecision",
    "PromotionGate",
    "ScoringEngine",
    "SequentialGate",
    "adjust_p_values",
    "boundaries",
    "deflated_sharpe",
    "expected_max_sharpe",
    "non_dominated",
    "pareto_front",
    "probabilistic_sharpe",
    "reason_names",
    "spent",
    "to_decisions",
    "welch_t_test",
]
