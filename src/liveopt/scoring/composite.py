"""A bounded composite score for ranking variants, and the multi-objective (Pareto) view.

The score is for *ranking and display*; it is not evidence. Promotion is the gate's job
(:mod:`liveopt.scoring.gate`). ``docs/statistics.md`` gives the formula, each term's
bound, and the origin's defects each term replaces.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

import msgspec
import numpy as np
from numpy.typing import ArrayLike

#: Rows of :meth:`ScoringEngine.score` and :meth:`ScoringEngine.rank`.
SCORE_DTYPE = np.dtype(
    [
        ("variant", np.int64),
        ("rank", np.int64),
        ("score", np.float64),
        ("roi_term", np.float64),
        ("sharpe_term", np.float64),
        ("win_rate_term", np.float64),
        ("consistency_term", np.float64),
        ("sample_term", np.float64),
        ("drawdown_factor", np.float64),
    ]
)

#: Rows of :func:`pareto_front`.
PARETO_DTYPE = np.dtype(
    [
        ("variant", np.int64),
        ("roi_pct", np.float64),
        ("sharpe_per_trade", np.float64),
        ("max_drawdown", np.float64),
    ]
)

#: Metrics fields the score reads (``Engine.metrics()`` / ``METRICS_DTYPE`` names).
SCORE_FIELDS: tuple[str, ...] = (
    "trades", "roi_pct", "sharpe_per_trade", "win_rate", "max_loss_streak", "max_drawdown",
)
#: Metrics fields the Pareto front reads.
PARETO_FIELDS: tuple[str, ...] = ("trades", "roi_pct", "sharpe_per_trade", "max_drawdown")

Metrics = np.ndarray | Mapping[str, ArrayLike]


class ScoringEngine(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Composite ranking score in [0, 1]: a weighted mean of five bounded terms, times a
    bounded drawdown factor.

    ``score = D * (w_roi R + w_sharpe S + w_win W + w_cons C + w_sample N) / sum(w)`` with

    - ``R = r / (r + roi_half_pct)``, ``r = max(roi_pct, 0)``: return on capital;
    - ``S = s / (s + sharpe_half)``, ``s = max(sharpe_per_trade, 0)``: risk-adjusted return;
    - ``W = win_rate``;
    - ``C = 1 - max_loss_streak / trades``: the longest losing run's share of the trades;
    - ``N = trades / (trades + sample_half)``: how much evidence there is;
    - ``D = 1 - drawdown_max_penalty * min(max_drawdown / drawdown_limit, 1)``.

    Every term lies in [0, 1] (the saturating ones approach 1 without reaching it, short of
    rounding; ``D`` lies in ``[1 - drawdown_max_penalty, 1]``); an undefined
    input (NaN: no trades, no spread) scores 0, and an undefined drawdown gets the full
    penalty. The saturating terms keep separating variants past their half points instead
    of capping at a threshold.

    Parameters
    ----------
    roi_weight, sharpe_weight, win_rate_weight, consistency_weight, sample_weight : float
        Non-negative weights with a positive sum (they are normalised by it).
    roi_half_pct : float
        ROI on capital, in percent, at which ``R = 0.5`` (> 0).
    sharpe_half : float
        Per-trade Sharpe ratio at which ``S = 0.5`` (> 0).
    sample_half : float
        Trade count at which ``N = 0.5`` (> 0; the gate's ``min_trades`` by default).
    drawdown_limit : float
        Max drawdown of equity, as a fraction, at which the penalty is full, in (0, 1].
    drawdown_max_penalty : float
        Largest share of the score the drawdown can remove, in [0, 1].

    Raises
    ------
    ValueError
        Naming the field, on a value outside its meaning.
    """

    roi_weight: float = 0.30
    sharpe_weight: float = 0.25
    win_rate_weight: float = 0.15
    consistency_weight: float = 0.10
    sample_weight: float = 0.20
    roi_half_pct: float = 10.0
    sharpe_half: float = 0.2
    sample_half: float = 50.0
    drawdown_limit: float = 0.20
    drawdown_max_penalty: float = 0.5

    def __post_init__(self) -> None:
        weights = ("roi_weight", "sharpe_weight", "win_rate_weight", "consistency_weight",
                   "sample_weight")
        for name in (*weights, "roi_half_pct", "sharpe_half", "sample_half", "drawdown_limit",
                     "drawdown_max_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ValueError(f"{name}: {value!r} must be a number")
            if not math.isfinite(value):
                raise ValueError(f"{name}: {value!r} must be finite")
        for name in weights:
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name}: {getattr(self, name)!r} must be >= 0")
        if sum(getattr(self, name) for name in weights) <= 0.0:
            raise ValueError(f"{', '.join(weights)}: at least one weight must be > 0")
        for name in ("roi_half_pct", "sharpe_half", "sample_half"):
            if getattr(self, name) <= 0.0:
                raise ValueError(f"{name}: {getattr(self, name)!r} must be > 0")
        if not 0.0 < self.drawdown_limit <= 1.0:
            raise ValueError(f"drawdown_limit: {self.drawdown_limit!r} must be in (0, 1]")
        if not 0.0 <= self.drawdown_max_penalty <= 1.0:
            raise ValueError(
                f"drawdown_max_penalty: {self.drawdown_max_penalty!r} must be in [0, 1]"
            )

    def score(self, metrics: Metrics) -> np.ndarray:
        """Score and breakdown of every variant, in input order (``rank`` is 0 here).

        Parameters
        ----------
        metrics : structured ndarray or mapping of str to array-like
            One row per variant with the :data:`SCORE_FIELDS` (``Engine.metrics()``'s
            names); a ``variant`` field, if present, gives the ids (else 0..n-1).

        Returns
        -------
        ndarray
            ``SCORE_DTYPE``, one row per variant.

        Raises
        ------
        ValueError
            Naming the first missing field, or on columns of different lengths.
        """
        cols = columns(metrics, SCORE_FIELDS)
        n = cols["trades"]
        out = np.zeros(n.size, dtype=SCORE_DTYPE)
        out["variant"] = variant_ids(metrics, n.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            roi = np.maximum(np.nan_to_num(cols["roi_pct"], nan=0.0), 0.0)
            sharpe = np.maximum(np.nan_to_num(cols["sharpe_per_trade"], nan=0.0), 0.0)
            out["roi_term"] = _saturate(roi, self.roi_half_pct)
            out["sharpe_term"] = _saturate(sharpe, self.sharpe_half)
            out["win_rate_term"] = np.clip(np.nan_to_num(cols["win_rate"], nan=0.0), 0.0, 1.0)
            streak = np.clip(cols["max_loss_streak"], 0.0, None)
            out["consistency_term"] = np.where(
                n > 0, np.clip(1.0 - streak / np.maximum(n, 1), 0.0, 1.0), 0.0
            )
            out["sample_term"] = _saturate(np.maximum(n, 0.0), self.sample_half)
            dd = np.nan_to_num(cols["max_drawdown"], nan=np.inf)
            share = np.minimum(np.maximum(dd, 0.0) / self.drawdown_limit, 1.0)
            out["drawdown_factor"] = 1.0 - self.drawdown_max_penalty * share
        weights = (
            (self.roi_weight, "roi_term"),
            (self.sharpe_weight, "sharpe_term"),
            (self.win_rate_weight, "win_rate_term"),
            (self.consistency_weight, "consistency_term"),
            (self.sample_weight, "sample_term"),
        )
        total = sum(w for w, _ in weights)
        mixed = sum(w * out[name] for w, name in weights) / total
        out["score"] = out["drawdown_factor"] * mixed
        return out

    def rank(self, metrics: Metrics) -> np.ndarray:
        """Variants best first with their score breakdown.

        Parameters
        ----------
        metrics : structured ndarray or mapping of str to array-like
            As for :meth:`score`.

        Returns
        -------
        ndarray
            ``SCORE_DTYPE`` sorted by score, highest first (ties by variant id), with
            ``rank`` 1, 2, ...

        Raises
        ------
        ValueError
            As :meth:`score`.
        """
        out = self.score(metrics)
        order = np.lexsort((out["variant"], -out["score"]))
        ranked = out[order]
        ranked["rank"] = np.arange(1, ranked.size + 1)
        return ranked


def _saturate(x: np.ndarray, half: float) -> np.ndarray:
    # x / (x + half) for x >= 0: 0 at 0, 0.5 at half, increasing, below 1 (rounds to 1
    # only for x beyond 1e16 half).
    return x / (x + half)


def columns(metrics: Metrics, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named columns of a structured array or a mapping of arrays, as 1-D float64.

    Raises
    ------
    ValueError
        Naming the first missing field, or if the columns differ in length.
    """
    out: dict[str, np.ndarray] = {}
    for name in names:
        if isinstance(metrics, np.ndarray):
            if metrics.dtype.names is None or name not in metrics.dtype.names:
                raise ValueError(f"metrics: no field {name!r}")
            col = metrics[name]
        elif name in metrics:
            col = metrics[name]
        else:
            raise ValueError(f"metrics: no field {name!r}")
        out[name] = np.asarray(col, dtype=np.float64).reshape(-1)
    sizes = {a.size for a in out.values()}
    if len(sizes) > 1:
        raise ValueError(f"metrics: columns differ in length ({sorted(sizes)})")
    return out


def variant_ids(metrics: Metrics, n: int) -> np.ndarray:
    """The ``variant`` column if there is one, else ``0..n-1``."""
    has = (metrics.dtype.names is not None and "variant" in metrics.dtype.names
           if isinstance(metrics, np.ndarray) else "variant" in metrics)
    if not has:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(metrics["variant"]).reshape(-1)
    if ids.size != n:
        raise ValueError(f"metrics: variant has {ids.size} values for {n} rows")
    return ids.astype(np.int64)


# --------------------------------------------------------------------------------------
# Pareto front


def non_dominated(points: ArrayLike) -> np.ndarray:
    """Which points are not dominated, every objective to be maximised.

    ``q`` dominates ``p`` when ``q >= p`` in every objective and ``q > p`` in one; equal
    points do not dominate each other. Sort the distinct points lexicographically,
    best first: a dominator always comes before the point it dominates, and with the
    first objective settled by the order, ``p`` is dominated exactly when an earlier point
    is at least as good in the other two. A sweep keeps the 2-D staircase of the earlier
    points' (second, third) objectives in sorted lists: one binary search per point
    answers "is some earlier point >= p in both?", and a point that is not dominated
    replaces the staircase steps it covers. O(n log n) comparisons (list inserts move
    memory, fast in practice): 100,000 points take a fraction of a second.

    Parameters
    ----------
    points : array-like, shape (n, k), k in 1..3
        Objective values, higher is better; ``-inf`` is allowed, NaN is not.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for the points on the front.

    Raises
    ------
    ValueError
        On a NaN, or a shape that is not (n, 1..3).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or not 1 <= pts.shape[1] <= 3:
        raise ValueError(f"points: must have shape (n, 1..3), got {pts.shape}")
    if np.isnan(pts).any():
        raise ValueError("points: NaN objective (map undefined values to -inf first)")
    if pts.shape[0] == 0:
        return np.zeros(0, dtype=np.bool_)
    if pts.shape[1] < 3:
        pts = np.hstack([pts, np.zeros((pts.shape[0], 3 - pts.shape[1]))])
    unique, inverse = np.unique(pts, axis=0, return_inverse=True)
    # np.unique sorts ascending lexicographically: walk it backwards (best first).
    keep = np.zeros(unique.shape[0], dtype=np.bool_)
    keys: list[float] = []  # second objective, strictly increasing
    vals: list[float] = []  # third objective, strictly decreasing along keys
    for i in range(unique.shape[0] - 1, -1, -1):
        b, c = float(unique[i, 1]), float(unique[i, 2])
        j = bisect.bisect_left(keys, b)
        # vals decreases with keys, so vals[j] is the best third objective among the
        # earlier points whose second objective is >= b.
        if j < len(keys) and vals[j] >= c:
            continue
        keep[i] = True
        # Remove the steps this point covers (second <= b and third <= c): they sit just
        # before position j, plus keys[j] itself when equal to b.
        hi = j + 1 if j < len(keys) and keys[j] == b else j
        lo = hi
        while lo > 0 and vals[lo - 1] <= c:
            lo -= 1
        del keys[lo:hi]
        del vals[lo:hi]
        keys.insert(lo, b)
        vals.insert(lo, c)
    return keep[np.asarray(inverse).reshape(-1)]


def pareto_front(metrics: Metrics, *, min_trades: int = 2) -> np.ndarray:
    """Variants on the Pareto front of (ROI: max, per-trade Sharpe: max, drawdown: min).

    A variant is on the front when no other variant is at least as good in all three and
    better in one: the trade-offs a single score hides (a higher return bought with a
    deeper drawdown) stay visible.

    Parameters
    ----------
    metrics : structured ndarray or mapping of str to array-like
        One row per variant with :data:`PARETO_FIELDS` (and optionally ``variant``).
    min_trades : int
        Variants with fewer closed trades are left out (their Sharpe ratio is undefined
        below 2). An undefined Sharpe ratio otherwise counts as the worst possible.

    Returns
    -------
    ndarray
        ``PARETO_DTYPE`` rows of the front, by ROI descending (ties by variant id).

    Raises
    ------
    ValueError
        On a missing field or ``min_trades < 0``.
    """
    if min_trades < 0:
        raise ValueError(f"min_trades: {min_trades} must be >= 0")
    cols = columns(metrics, PARETO_FIELDS)
    ids = variant_ids(metrics, cols["trades"].size)
    eligible = cols["trades"] >= min_trades
    # Undefined values are the worst possible: -inf on the maximised scale.
    objectives = np.column_stack([
        cols["roi_pct"][eligible], cols["sharpe_per_trade"][eligible],
        -cols["max_drawdown"][eligible],
    ])
    front = non_dominated(np.where(np.isnan(objectives), -np.inf, objectives))
    out = np.zeros(int(front.sum()), dtype=PARETO_DTYPE)
    out["variant"] = ids[eligible][front]
    out["roi_pct"] = cols["roi_pct"][eligible][front]
    out["sharpe_per_trade"] = cols["sharpe_per_trade"][eligible][front]
    out["max_drawdown"] = cols["max_drawdown"][eligible][front]
    return out[np.lexsort((out["variant"], -out["roi_pct"]))]
