"""Group-sequential boundaries for an alpha-spending function, by numerical integration.

A variant's standardised statistic at looks ``k = 1..K``, taken at information fractions
``0 < t_1 < ... < t_K = 1`` (trade counts over the horizon), behaves under the null like
``Z_k = W(t_k) / sqrt(t_k)`` for a standard Brownian motion ``W``: ``S_k = Z_k sqrt(t_k)``
has independent normal increments of variance ``t_k - t_{k-1}``. An alpha-spending
function ``f(t; a)`` (Lan and DeMets 1983) fixes how much of the level ``a`` may be spent
by each look, and the boundary ``c_k`` solves

    P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = f(t_k; a) - f(t_{k-1}; a),

so that ``P(Z_k >= c_k for some k) = f(1; a) = a`` exactly. The probabilities are computed
by the recursive integration of Armitage, McPherson and Rowe (1969) (Jennison and Turnbull
2000, chapter 19): the sub-density of ``S_k`` on the continuation region is carried from
look to look on a grid (composite Simpson rule), and each ``c_k`` is a root of the
crossing probability, solved on the log scale so levels down to 1e-18 are as accurate as
0.05.

:class:`BoundaryTable` tabulates the boundaries for a grid of levels and inverts them: the
*repeated p-value* of a path is the smallest level at which it has crossed a boundary at
one of its looks, ``min_k a_k(Z_k)`` with ``a_k`` the inverse of ``a -> c_k(a)``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import interpolate, optimize, special

#: Alpha-spending functions understood by :func:`spent`.
SPENDING: tuple[str, ...] = ("obrien_fleming", "pocock")

# Lower end of the integration range, in standard deviations of S_k (the mass below is
# < 1e-15 and cannot come back to cross an upper boundary).
_LOWER_SD = 8.5
# Upper end when a look spends nothing (its boundary is +inf).
_UPPER_SD = 20.0
# Grid points per standard deviation of the narrowest kernel (increment or first look).
_POINTS_PER_SD = 8.0


def spent(t: np.ndarray, level: float, spending: str) -> np.ndarray:
    """Cumulative type I error ``f(t; level)`` spent by information fraction ``t``.

    ``obrien_fleming`` (Lan-DeMets O'Brien-Fleming type): ``2 - 2 Phi(z_{1-a/2} / sqrt(t))``;
    spends almost nothing early, so the last boundary is close to the fixed-sample one and
    little power is lost. ``pocock`` (Lan-DeMets Pocock type): ``a log(1 + (e - 1) t)``;
    spends evenly, stops strong effects earlier, costs more power at the end.

    Parameters
    ----------
    t : ndarray
        Information fractions in (0, 1].
    level : float
        Total one-sided level ``a`` in (0, 1).
    spending : {"obrien_fleming", "pocock"}
        The spending function.

    Returns
    -------
    ndarray
        ``f(t)``, increasing in ``t`` and equal to ``level`` at ``t = 1``.
    """
    t = np.asarray(t, dtype=np.float64)
    if spending == "obrien_fleming":
        return 2.0 * special.ndtr(special.ndtri(level / 2.0) / np.sqrt(t))
    if spending == "pocock":
        return level * np.log1p((math.e - 1.0) * t)
    raise ValueError(f"spending: {spending!r} is not one of {', '.join(SPENDING)}")


def _simpson_weights(n: int, h: float) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return w * (h / 3.0)


def _grid(lo: float, top: float, h: float) -> np.ndarray:
    # Points top - i h (i = 0..2N) reaching down to lo: an odd count for Simpson's rule, and
    # the same spacing at every look, so moving a density from look to look is a
    # convolution with one kernel vector instead of a matrix product.
    intervals = 2 * max(1, math.ceil((top - lo) / (2.0 * h)))
    return top - h * np.arange(intervals, -1, -1, dtype=np.float64)


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def boundaries(times: np.ndarray, level: float, spending: str) -> np.ndarray:
    """Upper boundaries ``c_1..c_K`` on the Z scale for one level.

    Parameters
    ----------
    times : ndarray
        Increasing information fractions ``t_1 < ... < t_K = 1``.
    level : float
        One-sided level in (0, 1).
    spending : str
        See :func:`spent`.

    Returns
    -------
    ndarray
        ``c_k`` per look; ``+inf`` where a look spends nothing.
    """
    times = np.asarray(times, dtype=np.float64)
    targets = np.diff(spent(times, level, spending), prepend=0.0)
    increments = np.diff(times, prepend=0.0)
    h = min(math.sqrt(float(increments.min())), math.sqrt(float(times[0]))) / _POINTS_PER_SD
    out = np.empty(times.size)
    # Look 1: S_1 ~ N(0, t_1).
    sd = math.sqrt(times[0])
    out[0] = -special.ndtri(targets[0]) if targets[0] > 0.0 else np.inf
    u = _grid(-_LOWER_SD * sd, min(out[0], _UPPER_SD) * sd, h)
    mass = _simpson_weights(u.size, h) * _normal_pdf(u / sd) / sd
    for k in range(1, times.size):
        step = math.sqrt(increments[k])
        sd = math.sqrt(times[k])
        target = targets[k]
        if target <= 0.0:
            out[k] = np.inf
        else:
            log_target = math.log(target)

            def excess(b, mass=mass, u=u, step=step, log_target=log_target):
                # log P(no crossing before k, S_k >= b) - log target; decreasing in b.
                crossing = float(np.dot(mass, special.ndtr((u - b) / step)))
                return (math.log(crossing) if crossing > 0.0 else -1e300) - log_target

            b = optimize.brentq(excess, -_LOWER_SD * sd, (_UPPER_SD + 30.0) * sd,
                                xtol=1e-13, rtol=1e-13)
            out[k] = b / sd
        if k + 1 < times.size:
            s = _grid(-_LOWER_SD * sd, min(out[k], _UPPER_SD) * sd, h)
            # density(s_i) = sum_j mass_j phi((s_i - u_j) / step) / step, and
            # s_i - u_j = offset + (i - j + u.size - s.size) h depends on i - j only.
            offset = s[-1] - u[-1]
            lags = offset + h * (np.arange(s.size + u.size - 1) - (s.size - 1.0))
            kernel = _normal_pdf(lags / step) / step
            density = np.convolve(mass, kernel)[u.size - 1:u.size - 1 + s.size]
            mass = _simpson_weights(s.size, h) * density
            u = s
    return out


class BoundaryTable:
    """Boundaries of one look schedule for a grid of levels, and their inverse.

    Parameters
    ----------
    times : ndarray
        Increasing information fractions, the last equal to 1.
    spending : str
        See :func:`spent`.
    z_levels : ndarray, optional
        The grid of levels on the normal-quantile scale (level ``a = Phi(-x)``); the
        default spans ``a`` from 3e-14 to 0.977 in steps of 0.125 in ``x``.

    Notes
    -----
    ``repeated_p`` interpolates ``x`` as a monotone cubic (PCHIP) function of ``c_k``
    between the tabulated levels; the tests measure its error against direct solves.
    """

    def __init__(self, times: np.ndarray, spending: str,
                 z_levels: np.ndarray | None = None) -> None:
        self.times = np.asarray(times, dtype=np.float64)
        self.spending = spending
        if z_levels is None:
            z_levels = np.arange(-2.0, 7.5 + 1e-9, 0.125)
        self.z_levels = np.asarray(z_levels, dtype=np.float64)
        levels = special.ndtr(-self.z_levels)
        # table[g, k]: boundary of look k for level g.
        self.table = np.array([boundaries(self.times, a, spending) for a in levels])
        if not np.all(np.diff(self.table, axis=0) > 0.0):
            raise ArithmeticError("boundaries are not increasing as the level decreases")
        self._inverse = [
            interpolate.PchipInterpolator(self.table[:, k], self.z_levels, extrapolate=False)
            for k in range(self.times.size)
        ]

    def repeated_p(self, look: int, z: np.ndarray) -> np.ndarray:
        """Smallest level whose look-``look`` boundary ``z`` reaches: ``a_k(z)``.

        Clamped conservatively to the table: 1 below the boundary of the largest level
        (0.977), and the smallest tabulated level above the boundary of the smallest.
        """
        z = np.asarray(z, dtype=np.float64)
        col = self.table[:, look]
        x = self._inverse[look](np.clip(z, col[0], col[-1]))
        p = special.ndtr(-x)
        return np.where(z < col[0], 1.0, p)
