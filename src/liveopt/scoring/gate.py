"""The promotion gate: promote a variant only when the evidence survives the number tried.

With thousands of variants the best of them always looks good by chance. The gate tests
each variant's mean per-trade net return against the baseline's (one-sided Welch t-test,
or a studentised bootstrap for heavy tails), corrects the p-values for the number of
variants evaluated in the run (Holm or Benjamini-Hochberg), and adds the practical checks:
enough trades, a positive Sharpe ratio, net PnL above the baseline's and, optionally, a
Deflated Sharpe Ratio at the confidence. ``docs/statistics.md`` is the specification and
holds the measured false-promotion rate and power.

Two entry points give the same decisions: :meth:`PromotionGate.evaluate` takes the
per-trade returns, :meth:`PromotionGate.evaluate_moments` the online moments the engine
keeps per variant (``Engine.metrics()``'s ``trades``, ``mean_return``, ``var_return``,
``skewness``, ``kurtosis`` and ``net_pnl``), so a live run never has to keep its trades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np
from numpy.typing import ArrayLike

from liveopt.scoring import stats

#: Statistical tests of the mean difference.
TESTS: tuple[str, ...] = ("welch", "bootstrap")

#: Names of the checks, in the order of the bits of ``DECISION_DTYPE["reasons"]``.
REASONS: tuple[str, ...] = (
    "min_trades",
    "baseline_too_few_trades",
    "not_significant",
    "sharpe_not_positive",
    "pnl_not_above_baseline",
    "dsr_below_confidence",
)
_BIT = {name: np.uint8(1 << i) for i, name in enumerate(REASONS)}

#: One row per variant: the decision in array form (``reasons`` is a bit mask over
#: :data:`REASONS`). :func:`to_decisions` turns it into :class:`GateDecision` objects.
DECISION_DTYPE = np.dtype(
    [
        ("variant", np.int64),
        ("promoted", np.bool_),
        ("trades", np.int64),
        ("mean_return", np.float64),
        ("p_value", np.float64),
        ("adjusted_p_value", np.float64),
        ("sharpe", np.float64),
        ("deflated_sharpe", np.float64),
        ("net_pnl", np.float64),
        ("reasons", np.uint8),
    ]
)


class GateDecision(msgspec.Struct, frozen=True, kw_only=True):
    """The gate's verdict on one variant, with the numbers behind it.

    Parameters
    ----------
    variant : int
        Variant id.
    promoted : bool
        True only if every check passed (``reasons`` is then empty).
    trades : int
        Closed trades evaluated.
    mean_return : float
        Mean per-trade net return (NaN without trades).
    p_value : float
        One-sided p-value of "mean return above the baseline's" (1 when not tested; in a
        :class:`~liveopt.scoring.sequential.SequentialGate`, the repeated p-value, valid
        over all looks).
    adjusted_p_value : float
        ``p_value`` after the gate's multiple-testing correction over the run's variants.
    sharpe : float
        Per-trade Sharpe ratio, mean / sample standard deviation (NaN if undefined).
    deflated_sharpe : float
        Deflated Sharpe Ratio in [0, 1] (NaN if the Sharpe ratio is undefined).
    net_pnl : float
        Net PnL compared with the baseline's.
    reasons : tuple of str
        Every failed check, by name (:data:`REASONS`).
    """

    variant: int
    promoted: bool
    trades: int
    mean_return: float
    p_value: float
    adjusted_p_value: float
    sharpe: float
    deflated_sharpe: float
    net_pnl: float
    reasons: tuple[str, ...]


class Moments(msgspec.Struct, frozen=True, kw_only=True):
    """Validated per-variant moments and the baseline's (internal currency of the gates)."""

    ids: np.ndarray
    trades: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    skew: np.ndarray
    kurt: np.ndarray
    pnl: np.ndarray
    base_trades: int
    base_mean: float
    base_var: float
    base_pnl: float


class PromotionGate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Checks a variant must pass to be promoted; ``docs/statistics.md`` explains each.

    Parameters
    ----------
    min_trades : int
        Closed trades a variant needs before it is tested (>= 2). Below it the variant
        gets p = 1 but still counts in the number of variants corrected for.
    confidence : float
        ``1 - alpha`` in (0, 1): the level of the corrected test and the DSR threshold.
    correction : {"holm", "bh", "none"}
        ``holm`` bounds the chance of promoting any variant that is not better than the
        baseline (family-wise error); ``bh`` bounds the expected share of such variants
        among those promoted (false discovery rate); ``none`` is uncorrected, only to show
        the difference.
    test : {"welch", "bootstrap"}
        One-sided Welch t-test, or a studentised bootstrap of the Welch statistic for
        heavy-tailed returns (needs the per-trade returns: :meth:`evaluate` only).
    require_dsr : bool
        Also require the Deflated Sharpe Ratio to reach ``confidence`` (it is reported
        either way).
    bootstrap_resamples : int
        Resamples of the bootstrap test (>= 99). Its smallest p-value is
        ``1 / (resamples + 1)``: with ``holm`` over ``m`` variants nothing can pass unless
        that is at most ``(1 - confidence) / m``.
    seed : int
        Seed of the bootstrap's random generator (>= 0): the same inputs give the same
        decisions.

    Raises
    ------
    ValueError
        Naming the field, on a value outside its meaning.
    """

    min_trades: int = 50
    confidence: float = 0.95
    correction: str = "holm"
    test: str = "welch"
    require_dsr: bool = False
    bootstrap_resamples: int = 1999
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("min_trades", 2), ("bootstrap_resamples", 99), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{name}: {value!r} must be an integer")
            if value < low:
                raise ValueError(f"{name}: {value} must be >= {low}")
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, float | int | np.floating):
            raise ValueError(f"confidence: {c!r} must be a number in (0, 1)")
        if not (math.isfinite(c) and 0.0 < c < 1.0):
            raise ValueError(f"confidence: {c!r} must be in (0, 1)")
        if self.correction not in stats.CORRECTIONS:
            raise ValueError(
                f"correction: {self.correction!r} is not one of {', '.join(stats.CORRECTIONS)}"
            )
        if self.test not in TESTS:
            raise ValueError(f"test: {self.test!r} is not one of {', '.join(TESTS)}")
        if not isinstance(self.require_dsr, bool | np.bool_):
            raise ValueError(f"require_dsr: {self.require_dsr!r} must be a bool")

    @property
    def alpha(self) -> float:
        """Significance level after correction, ``1 - confidence``."""
        return 1.0 - self.confidence

    # ----------------------------------------------------------------------------------
    # Entry points

    def evaluate(
        self,
        variant_returns: Sequence[ArrayLike],
        baseline_returns: ArrayLike,
        *,
        variant_net_pnl: ArrayLike | None = None,
        baseline_net_pnl: float | None = None,
        variant_ids: ArrayLike | None = None,
    ) -> list[GateDecision]:
        """Decide every variant of a run from its per-trade net returns.

        Parameters
        ----------
        variant_returns : sequence of 1-D array-like
            Per-trade net returns (net PnL over the margin used), one array per variant.
            Every variant given counts in the multiple-testing correction and in the DSR's
            number of trials.
        baseline_returns : 1-D array-like
            The baseline's per-trade net returns.
        variant_net_pnl, baseline_net_pnl : array-like and float, optional
            Net PnL in quote currency, given together or not at all. Without them the PnL
            check compares the sums of the per-trade net returns (PnL in units of the
            margin per trade, the same comparison when every trade uses the same margin).
        variant_ids : array-like of int, optional
            Ids reported in the decisions (default: positions 0..m-1).

        Returns
        -------
        list of GateDecision
            One per variant, in the input order.

        Raises
        ------
        ValueError
            Naming the argument, on a non-1-D or non-finite array or mismatched lengths.
        """
        return to_decisions(self.table(variant_returns, baseline_returns,
                                       variant_net_pnl=variant_net_pnl,
                                       baseline_net_pnl=baseline_net_pnl,
                                       variant_ids=variant_ids))

    def evaluate_moments(self, **moments: ArrayLike) -> list[GateDecision]:
        """Decide every variant from its online moments; same decisions as :meth:`evaluate`.

        Parameters
        ----------
        **moments : array-like
            ``trades``, ``mean_return``, ``var_return`` (sample variance), ``skewness``,
            ``kurtosis`` (non-excess) and ``net_pnl``, one value per variant (as in
            ``Engine.metrics()`` and ``TradeStats.summary()``, whose ``variance`` is
            ``var_return``); ``baseline_trades``, ``baseline_mean_return``,
            ``baseline_var_return``, ``baseline_net_pnl`` for the baseline; optionally
            ``variant_ids``.

        Returns
        -------
        list of GateDecision
            One per variant, in the input order.

        Raises
        ------
        ValueError
            Naming the argument, on a missing, misshapen or inconsistent value, or when
            ``test="bootstrap"`` (the bootstrap needs the returns themselves).
        """
        return to_decisions(self.moments_table(**moments))

    def evaluate_metrics(self, metrics: np.ndarray, *, baseline: int = 0) -> list[GateDecision]:
        """Decide every variant of an ``Engine.metrics()`` table against its baseline row.

        Parameters
        ----------
        metrics : structured ndarray
            One row per variant with the ``METRICS_DTYPE`` fields ``variant``, ``trades``,
            ``mean_return``, ``var_return``, ``skewness``, ``kurtosis`` and ``net_pnl``.
        baseline : int
            Variant id of the baseline (0 in the engine); its row is not evaluated.

        Returns
        -------
        list of GateDecision
            One per other row, in table order.

        Raises
        ------
        ValueError
            If the table lacks a field or the baseline id.
        """
        names = ("variant", "trades", "mean_return", "var_return", "skewness", "kurtosis",
                 "net_pnl")
        for name in names:
            if metrics.dtype.names is None or name not in metrics.dtype.names:
                raise ValueError(f"metrics: no field {name!r}")
        is_base = metrics["variant"] == baseline
        if np.count_nonzero(is_base) != 1:
            raise ValueError(f"baseline: variant {baseline} is not in the table exactly once")
        b = metrics[is_base][0]
        rows = metrics[~is_base]
        return self.evaluate_moments(
            variant_ids=rows["variant"], trades=rows["trades"],
            mean_return=rows["mean_return"], var_return=rows["var_return"],
            skewness=rows["skewness"], kurtosis=rows["kurtosis"], net_pnl=rows["net_pnl"],
            baseline_trades=b["trades"], baseline_mean_return=b["mean_return"],
            baseline_var_return=b["var_return"], baseline_net_pnl=b["net_pnl"],
        )

    # ----------------------------------------------------------------------------------
    # Array forms (no per-variant objects: what the simulations and the sequential gate use)

    def table(
        self,
        variant_returns: Sequence[ArrayLike],
        baseline_returns: ArrayLike,
        *,
        variant_net_pnl: ArrayLike | None = None,
        baseline_net_pnl: float | None = None,
        variant_ids: ArrayLike | None = None,
    ) -> np.ndarray:
        """:meth:`evaluate` as a ``DECISION_DTYPE`` array."""
        variant_returns = [
            as_returns(x, f"variant_returns[{i}]") for i, x in enumerate(variant_returns)
        ]
        baseline_returns = as_returns(baseline_returns, "baseline_returns")
        mom = moments_from_returns(variant_returns, baseline_returns,
                                   variant_net_pnl=variant_net_pnl,
                                   baseline_net_pnl=baseline_net_pnl, variant_ids=variant_ids)
        tested = self._tested(mom)
        if self.test == "bootstrap":
            p = np.ones(len(variant_returns))
            if mom.base_trades >= 2:
                rng = np.random.default_rng(self.seed)
                p = stats.bootstrap_t_test(variant_returns, baseline_returns,
                                           resamples=self.bootstrap_resamples, rng=rng,
                                           tested=tested)
        else:
            p = self.welch_p(mom)
        return self.checks(mom, p)

    def moments_table(self, **moments: ArrayLike) -> np.ndarray:
        """:meth:`evaluate_moments` as a ``DECISION_DTYPE`` array."""
        if self.test != "welch":
            raise ValueError(
                f"test: {self.test!r} needs the per-trade returns; use evaluate(), or "
                "test='welch' with the moments"
            )
        mom = validate_moments(**moments)
        return self.checks(mom, self.welch_p(mom))

    # ----------------------------------------------------------------------------------
    # Building blocks

    def _tested(self, mom: Moments) -> np.ndarray:
        return (mom.trades >= self.min_trades) & (mom.base_trades >= 2)

    def welch_p(self, mom: Moments) -> np.ndarray:
        """One-sided Welch p-value per variant; 1 for variants not tested (too few trades,
        or a baseline with fewer than 2)."""
        tested = self._tested(mom)
        p = np.ones(mom.trades.size)
        if np.any(tested):
            _, _, p_t = stats.welch_t_test(mom.trades[tested], mom.mean[tested],
                                           mom.var[tested], mom.base_trades, mom.base_mean,
                                           mom.base_var)
            p[tested] = p_t
        return p

    def checks(self, mom: Moments, p: np.ndarray) -> np.ndarray:
        """Apply the correction to ``p`` (over all variants) and every check.

        Parameters
        ----------
        mom : Moments
            Validated moments (:func:`validate_moments` or :func:`moments_from_returns`).
        p : ndarray
            One-sided p-value per variant (1 where not tested).

        Returns
        -------
        ndarray
            ``DECISION_DTYPE``, one row per variant.
        """
        m = mom.trades.size
        out = np.zeros(m, dtype=DECISION_DTYPE)
        out["variant"] = mom.ids
        out["trades"] = mom.trades
        out["mean_return"] = mom.mean
        out["net_pnl"] = mom.pnl
        out["p_value"] = p
        adjusted = stats.adjust_p_values(p, self.correction)
        out["adjusted_p_value"] = adjusted
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpe = np.where((mom.trades >= 2) & (mom.var > 0.0),
                              mom.mean / np.sqrt(mom.var), np.nan)
        out["sharpe"] = sharpe
        dsr = stats.deflated_sharpe(sharpe, mom.trades, mom.skew, mom.kurt, n_trials=m)
        out["deflated_sharpe"] = dsr
        reasons = np.zeros(m, dtype=np.uint8)
        reasons |= np.where(mom.trades < self.min_trades, _BIT["min_trades"], 0).astype(np.uint8)
        if mom.base_trades < 2:
            reasons |= _BIT["baseline_too_few_trades"]
        reasons |= np.where(adjusted <= self.alpha, 0, _BIT["not_significant"]).astype(np.uint8)
        reasons |= np.where(sharpe > 0.0, 0, _BIT["sharpe_not_positive"]).astype(np.uint8)
        reasons |= np.where(mom.pnl > mom.base_pnl, 0,
                            _BIT["pnl_not_above_baseline"]).astype(np.uint8)
        if self.require_dsr:
            reasons |= np.where(dsr >= self.confidence, 0,
                                _BIT["dsr_below_confidence"]).astype(np.uint8)
        out["reasons"] = reasons
        out["promoted"] = reasons == 0
        return out


# --------------------------------------------------------------------------------------
# Input validation and conversion


def as_returns(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a 1-D float64 array of finite returns.

    Raises
    ------
    ValueError
        Naming ``name``, if it is not 1-D or has a NaN or infinity.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: must be 1-D, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: has a NaN or infinite return")
    return a


def _vector(x: ArrayLike, name: str, m: int | None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: must be 1-D, got shape {a.shape}")
    if m is not None and a.size != m:
        raise ValueError(f"{name}: has {a.size} values for {m} variants")
    return a


def _ids(variant_ids: ArrayLike | None, m: int) -> np.ndarray:
    if variant_ids is None:
        return np.arange(m, dtype=np.int64)
    ids = _vector(variant_ids, "variant_ids", m)
    if not np.all(ids == np.round(ids)):
        raise ValueError("variant_ids: must be integers")
    return ids.astype(np.int64)


def _scalar(x: ArrayLike, name: str) -> float:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 0:
        raise ValueError(f"{name}: must be a number, got shape {a.shape}")
    return float(a)


def moments_from_returns(
    variant_returns: Sequence[np.ndarray], baseline_returns: np.ndarray, *,
    variant_net_pnl: ArrayLike | None = None, baseline_net_pnl: float | None = None,
    variant_ids: ArrayLike | None = None,
) -> Moments:
    """Moments of validated 1-D float64 return arrays (see :meth:`PromotionGate.evaluate`).

    Raises
    ------
    ValueError
        If only one of the two net PnL arguments is given, or on mismatched lengths.
    """
    m = len(variant_returns)
    if (variant_net_pnl is None) != (baseline_net_pnl is None):
        raise ValueError("variant_net_pnl and baseline_net_pnl: give both or neither")
    mom = stats.sample_moments(variant_returns)
    base = stats.sample_moments([baseline_returns])
    if variant_net_pnl is None:
        pnl, base_pnl = mom["total"], float(base["total"][0])
    else:
        pnl = _vector(variant_net_pnl, "variant_net_pnl", m)
        base_pnl = _scalar(baseline_net_pnl, "baseline_net_pnl")
        if not (np.all(np.isfinite(pnl)) and math.isfinite(base_pnl)):
            raise ValueError("variant_net_pnl and baseline_net_pnl: must be finite")
    return Moments(
        ids=_ids(variant_ids, m), trades=mom["trades"], mean=mom["mean_return"],
        var=mom["var_return"], skew=mom["skewness"], kurt=mom["kurtosis"], pnl=pnl,
        base_trades=int(base["trades"][0]), base_mean=float(base["mean_return"][0]),
        base_var=float(base["var_return"][0]), base_pnl=base_pnl,
    )


_MOMENT_NAMES = ("trades", "mean_return", "var_return", "skewness", "kurtosis", "net_pnl")
_BASELINE_NAMES = ("baseline_trades", "baseline_mean_return", "baseline_var_return",
                   "baseline_net_pnl")


def validate_moments(**moments: ArrayLike) -> Moments:
    """Check and convert the keyword moments of :meth:`PromotionGate.evaluate_moments`.

    Raises
    ------
    ValueError
        Naming the argument: missing or unknown, not 1-D, wrong length, a trade count that
        is negative or not whole, an undefined mean or variance where the count defines
        it, a negative variance, or a non-finite net PnL.
    """
    known = set(_MOMENT_NAMES) | set(_BASELINE_NAMES) | {"variant_ids"}
    for name in moments:
        if name not in known:
            raise ValueError(f"{name}: unknown argument (expected {', '.join(sorted(known))})")
    for name in (*_MOMENT_NAMES, *_BASELINE_NAMES):
        if name not in moments:
            raise ValueError(f"{name}: missing")
    trades = _vector(moments["trades"], "trades", None)
    m = trades.size
    cols = {name: _vector(moments[name], name, m) for name in _MOMENT_NAMES[1:]}
    if np.any(trades < 0) or not np.all(trades == np.round(trades)):
        raise ValueError("trades: counts must be whole numbers >= 0")
    n = trades.astype(np.int64)
    if np.any(~np.isfinite(cols["mean_return"]) & (n >= 1)):
        raise ValueError("mean_return: undefined for a variant with trades")
    var = cols["var_return"]
    if np.any(~np.isfinite(var) & (n >= 2)) or np.any(var < 0.0):
        raise ValueError("var_return: must be finite and >= 0 for variants with 2+ trades")
    if not np.all(np.isfinite(cols["net_pnl"])):
        raise ValueError("net_pnl: must be finite")
    base_n = _scalar(moments["baseline_trades"], "baseline_trades")
    if base_n < 0 or base_n != round(base_n):
        raise ValueError(f"baseline_trades: {base_n} must be a whole number >= 0")
    base_mean = _scalar(moments["baseline_mean_return"], "baseline_mean_return")
    base_var = _scalar(moments["baseline_var_return"], "baseline_var_return")
    if base_n >= 2 and not (math.isfinite(base_mean) and math.isfinite(base_var)
                            and base_var >= 0.0):
        raise ValueError("baseline_mean_return, baseline_var_return: must be finite (and "
                         "the variance >= 0) for a baseline with 2+ trades")
    base_pnl = _scalar(moments["baseline_net_pnl"], "baseline_net_pnl")
    if not math.isfinite(base_pnl):
        raise ValueError("baseline_net_pnl: must be finite")
    return Moments(
        ids=_ids(moments.get("variant_ids"), m), trades=n, mean=cols["mean_return"],
        var=var, skew=cols["skewness"], kurt=cols["kurtosis"], pnl=cols["net_pnl"],
        base_trades=int(base_n), base_mean=base_mean, base_var=base_var, base_pnl=base_pnl,
    )


def reason_names(mask: int) -> tuple[str, ...]:
    """The names of the checks set in a ``reasons`` bit mask, in :data:`REASONS` order."""
    return tuple(name for i, name in enumerate(REASONS) if mask & (1 << i))


def to_decisions(table: np.ndarray) -> list[GateDecision]:
    """One :class:`GateDecision` per row of a ``DECISION_DTYPE`` array."""
    names = {int(mask): reason_names(int(mask)) for mask in np.unique(table["reasons"])}
    cols = {name: table[name].tolist() for name in DECISION_DTYPE.names}
    return [
        GateDecision(
            variant=cols["variant"][i], promoted=cols["promoted"][i], trades=cols["trades"][i],
            mean_return=cols["mean_return"][i], p_value=cols["p_value"][i],
            adjusted_p_value=cols["adjusted_p_value"][i], sharpe=cols["sharpe"][i],
            deflated_sharpe=cols["deflated_sharpe"][i], net_pnl=cols["net_pnl"][i],
            reasons=names[cols["reasons"][i]],
        )
        for i in range(table.size)
    ]
