"""The statistics behind the promotion gate, as plain functions over arrays.

Everything here is vectorised over variants and has no state: the gate
(:mod:`liveopt.scoring.gate`) and the sequential gate (:mod:`liveopt.scoring.sequential`)
compose these functions, and the tests check each one against an independent twin
(scipy's own tests, brute-force sums, simulation). ``docs/statistics.md`` explains the
choices; the docstrings below say what each function computes and on what scale.

Moments follow ``liveopt.metrics.TradeStats.summary``: variance is the sample variance
(``n - 1``); skewness ``sqrt(n) M3 / M2^1.5`` and kurtosis ``n M4 / M2^2`` are the
population (biased) moments, and kurtosis is *not* excess kurtosis (3 for a normal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

#: Multiple-testing corrections understood by :func:`adjust_p_values`.
CORRECTIONS: tuple[str, ...] = ("holm", "bh", "none")

# Euler-Mascheroni constant (Bailey and Lopez de Prado's expected-maximum approximation).
_EULER_GAMMA = 0.5772156649015329


def sample_moments(returns: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Count, mean, sample variance, skewness, kurtosis and sum of each array.

    Parameters
    ----------
    returns : sequence of 1-D float64 arrays
        One array of per-trade net returns per variant (already validated).

    Returns
    -------
    dict of str to ndarray
        ``trades`` (int64), ``mean_return``, ``var_return`` (``n - 1``, NaN below 2
        values), ``skewness``, ``kurtosis`` (population moments, NaN without spread, as
        ``TradeStats.summary``) and ``total`` (the sum of the returns), one entry per array.
    """
    m = len(returns)
    out = {
        "trades": np.zeros(m, dtype=np.int64),
        "mean_return": np.full(m, np.nan),
        "var_return": np.full(m, np.nan),
        "skewness": np.full(m, np.nan),
        "kurtosis": np.full(m, np.nan),
        "total": np.zeros(m),
    }
    for i, x in enumerate(returns):
        n = x.size
        out["trades"][i] = n
        if n == 0:
            continue
        mean = x.mean()
        d = x - mean
        m2 = float(np.dot(d, d))
        out["mean_return"][i] = mean
        out["total"][i] = x.sum()
        if n > 1:
            out["var_return"][i] = m2 / (n - 1)
        if m2 > 0.0:
            d2 = d * d
            out["skewness"][i] = np.sqrt(n) * float(np.dot(d2, d)) / m2**1.5
            out["kurtosis"][i] = n * float(np.dot(d2, d2)) / m2**2
    return out


def welch_t_test(
    n: np.ndarray, mean: np.ndarray, var: np.ndarray,
    n_base: float, mean_base: float, var_base: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-sided Welch t-test of ``mean > mean_base`` for every variant against one baseline.

    The statistic is ``(mean - mean_base) / sqrt(var / n + var_base / n_base)`` with the
    Welch-Satterthwaite degrees of freedom; the p-value is the upper tail of Student's t.
    Welch, not the pooled (Student) test, because variants and the baseline have
    different variances and trade counts, where the pooled test's level is wrong.

    Parameters
    ----------
    n, mean, var : ndarray
        Each variant's trade count, mean and sample variance (``n - 1``); ``n >= 2``.
    n_base, mean_base, var_base : float
        The same for the baseline (``n_base >= 2``).

    Returns
    -------
    t, df, p : ndarray
        The statistic, the degrees of freedom and the one-sided p-value. With no spread on
        either side the difference is exact: p is 0 when the variant's mean is higher and
        1 otherwise (t is then +-inf, or NaN for equal means, and df NaN).
    """
    n = np.asarray(n, dtype=np.float64)
    a = np.asarray(var, dtype=np.float64) / n
    b = float(var_base) / float(n_base)
    diff = np.asarray(mean, dtype=np.float64) - float(mean_base)
    se2 = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / np.sqrt(se2)
        df = se2 * se2 / (a * a / (n - 1.0) + b * b / (float(n_base) - 1.0))
        # stdtr(df, -t) is Student's upper tail sf(t), computed directly in the tail.
        p = special.stdtr(df, -t)
    # Zero standard error: the comparison is exact (see Returns).
    exact = se2 == 0.0
    p = np.where(exact, np.where(diff > 0.0, 0.0, 1.0), p)
    p = np.where(np.isnan(p), 1.0, p)
    return t, df, p


def bootstrap_t_test(
    variant_returns: Sequence[np.ndarray], baseline_returns: np.ndarray, *,
    resamples: int, rng: np.random.Generator, tested: np.ndarray,
) -> np.ndarray:
    """One-sided studentised bootstrap (bootstrap-t) test of ``mean > mean_base``.

    The null is imposed by centring each sample on its own mean; both resamples (of the
    variant's and of the baseline's size) are then drawn from the *pooled* centred
    returns, and the Welch statistic of each pair is compared with the observed one:
    ``p = (1 + #{t* >= t}) / (resamples + 1)``, never 0. Studentising keeps the statistic
    close to pivotal when the variances differ; the empirical distribution brings the
    shape of the returns (skew, heavy tails) into the null distribution instead of
    Student's t. Pooling matters for heavy tails: resampling each sample from itself
    (Efron and Tibshirani 1993, section 16.4) lets one outlier skew the bootstrap
    distribution: at 5 % it rejected 6.2-6.5 % of equal-mean Student-t(3) and lognormal
    pairs in three of four settings, against 4.9-5.2 % pooled (``docs/statistics.md``).

    Parameters
    ----------
    variant_returns : sequence of 1-D float64 arrays
        Per-trade net returns, one array per variant (2 or more where tested).
    baseline_returns : 1-D float64 array
        The baseline's (at least 2 values).
    resamples : int
        Bootstrap resamples ``B``; the smallest possible p-value is ``1 / (B + 1)``.
    rng : numpy.random.Generator
        Source of the resamples (seeded by the caller: results are reproducible).
    tested : ndarray of bool
        Which variants to test; the others get p = 1 without drawing.

    Returns
    -------
    ndarray
        One-sided p-value per variant.
    """
    y = baseline_returns
    n_b = y.size
    y0 = y - y.mean()
    p = np.ones(len(variant_returns))
    block_elems = 1 << 21
    for i, x in enumerate(variant_returns):
        if not tested[i]:
            continue
        n = x.size
        t_obs = _welch_statistic(x.mean() - y.mean(), x.var(ddof=1) / n + y.var(ddof=1) / n_b)
        pool = np.concatenate([x - x.mean(), y0])
        exceed = 0
        block = max(1, block_elems // (n + n_b))
        for start in range(0, resamples, block):
            size = min(resamples, start + block) - start
            xb = pool[rng.integers(0, pool.size, size=(size, n))]
            yb = pool[rng.integers(0, pool.size, size=(size, n_b))]
            t_star = _welch_statistic(
                xb.mean(axis=1) - yb.mean(axis=1),
                xb.var(axis=1, ddof=1) / n + yb.var(axis=1, ddof=1) / n_b,
            )
            # A resample with no spread has an undefined statistic: count it as extreme,
            # which can only make the test more conservative.
            exceed += int(np.count_nonzero(~(t_star < t_obs)))
        p[i] = (1.0 + exceed) / (resamples + 1.0)
    return p


def _welch_statistic(diff, se2):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se2 > 0.0, diff / np.sqrt(se2), np.where(diff > 0.0, np.inf, np.nan))


def adjust_p_values(p: np.ndarray, method: str) -> np.ndarray:
    """Multiplicity-adjusted p-values over all the variants of one run.

    ``holm``: Holm's step-down adjustment, ``max_{j <= i} min(1, (m - j + 1) p_(j))`` for
    the i-th smallest p-value; rejecting where it is ``<= alpha`` controls the family-wise
    error rate (the chance of promoting *any* variant that is no better than the baseline)
    at ``alpha`` under any dependence between the tests.
    ``bh``: Benjamini-Hochberg step-up, ``min_{j >= i} min(1, m p_(j) / j)``; controls the
    false discovery rate (the expected share of false promotions among promotions) when
    the tests are independent or positively dependent, as one-sided tests against a
    shared baseline are.
    ``none``: the raw p-values (only to show what happens without a correction).

    Parameters
    ----------
    p : ndarray
        Raw p-values in [0, 1], one per variant evaluated; ``m = p.size``.
    method : {"holm", "bh", "none"}
        The correction.

    Returns
    -------
    ndarray
        Adjusted p-values, in the input order: each is ``>= `` its raw p-value, ``<= 1``,
        and they are ordered as the raw ones are.

    Raises
    ------
    ValueError
        On an unknown method.
    """
    p = np.asarray(p, dtype=np.float64)
    if method not in CORRECTIONS:
        raise ValueError(f"correction: {method!r} is not one of {', '.join(CORRECTIONS)}")
    m = p.size
    if method == "none" or m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ps))
    else:
        # m / j first: it is exactly 1 for j = m, so no adjusted value rounds below its raw one.
        adj = np.minimum.accumulate(np.minimum(1.0, ps * (m / np.arange(1, m + 1)))[::-1])[::-1]
    out = np.empty(m)
    out[order] = adj
    return out


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Sharpe ratio that the best of ``n_trials`` skill-less variants is expected to reach.

    Bailey and Lopez de Prado (2014), eq. (1 of the DSR): with ``N`` independent trials
    whose estimated Sharpe ratios have cross-sectional variance ``V``,
    ``SR0 = sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``, ``g`` the
    Euler-Mascheroni constant. One trial has nothing to be lucky against: ``SR0 = 0``.

    Parameters
    ----------
    n_trials : int
        Number of variants evaluated in the run (``N >= 1``).
    sharpe_variance : float
        Cross-sectional variance of their per-trade Sharpe estimates (``>= 0``).

    Returns
    -------
    float
        ``SR0``, on the per-trade scale of the Sharpe estimates.
    """
    if n_trials <= 1 or not sharpe_variance > 0.0:
        return 0.0
    z1 = special.ndtri(1.0 - 1.0 / n_trials)
    z2 = special.ndtri(1.0 - 1.0 / (n_trials * np.e))
    return float(np.sqrt(sharpe_variance) * ((1.0 - _EULER_GAMMA) * z1 + _EULER_GAMMA * z2))


def probabilistic_sharpe(
    sharpe: np.ndarray, n: np.ndarray, skewness: np.ndarray, kurtosis: np.ndarray,
    benchmark: float,
) -> np.ndarray:
    """Probabilistic Sharpe Ratio: the probability that the true Sharpe exceeds ``benchmark``.

    Bailey and Lopez de Prado (2012):
    ``PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))`` with
    ``g3`` the skewness and ``g4`` the (non-excess) kurtosis of the returns, which widen
    the Sharpe estimate's error for skewed and fat-tailed returns.

    Parameters
    ----------
    sharpe, n, skewness, kurtosis : ndarray
        Per-trade Sharpe estimate (mean / sample sd), trade count and moments per variant.
    benchmark : float
        ``SR*`` (per trade).

    Returns
    -------
    ndarray
        PSR in [0, 1]; NaN where the Sharpe ratio or the moments are undefined (fewer than
        2 trades, no spread).
    """
    sharpe = np.asarray(sharpe, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    # 1 - g3 SR + (g4 - 1)/4 SR^2 >= (1 - g3 SR / 2)^2 >= 0 because g4 >= 1 + g3^2 holds
    # for any sample; it is 0 only for a two-point sample at that exact Sharpe: floor it.
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
        z = (sharpe - benchmark) * np.sqrt(n - 1.0) / np.sqrt(np.maximum(spread, 1e-300))
        psr = special.ndtr(z)
    return np.where(np.isfinite(sharpe) & (n >= 2), psr, np.nan)


def deflated_sharpe(
    sharpe: np.ndarray, n: np.ndarray, skewness: np.ndarray, kurtosis: np.ndarray,
    n_trials: int,
) -> np.ndarray:
    """Deflated Sharpe Ratio of every variant (Bailey and Lopez de Prado 2014).

    The PSR against :func:`expected_max_sharpe` of ``n_trials`` trials, with the trials'
    Sharpe variance estimated across the variants given (those with a defined Sharpe
    ratio, sample variance). It answers: is this Sharpe ratio higher than the best of that
    many lucky variants would show?

    Parameters
    ----------
    sharpe, n, skewness, kurtosis : ndarray
        Per-trade Sharpe estimate, trade count, skewness, non-excess kurtosis per variant.
    n_trials : int
        Number of variants evaluated in the run.

    Returns
    -------
    ndarray
        DSR in [0, 1], NaN where the Sharpe ratio is undefined.
    """
    sharpe = np.asarray(sharpe, dtype=np.float64)
    finite = sharpe[np.isfinite(sharpe)]
    variance = float(finite.var(ddof=1)) if finite.size > 1 else 0.0
    benchmark = expected_max_sharpe(n_trials, variance)
    return probabilistic_sharpe(sharpe, n, skewness, kurtosis, benchmark)
