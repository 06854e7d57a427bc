"""The promotion gate re-evaluated as trades arrive, without inflating false promotions.

Testing the same variants again after every few trades and promoting at the first
significant look multiplies the chances of a false promotion: with 16 looks an
uncorrected test at 5 % promotes a skill-less variant about 3 times as often. The
:class:`SequentialGate` spends the level over a fixed schedule of looks with a
Lan-DeMets alpha-spending function and exact group-sequential boundaries
(:mod:`liveopt.scoring.boundaries`), turns each variant's path of statistics into a
*repeated p-value* (the smallest level whose boundary the path has crossed), and applies
the gate's multiple-testing correction and checks to those p-values. Repeated p-values
only decrease from look to look, so Holm's (and Benjamini-Hochberg's) rejections only grow:
the promoted set is one-way by construction, and with ``holm`` the chance that any
skill-less variant is *ever* promoted during the run stays at most ``1 - confidence``.
``docs/statistics.md`` states the assumptions and the measured rates.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from liveopt.scoring.boundaries import SPENDING, BoundaryTable, boundaries
from liveopt.scoring.gate import (
    GateDecision,
    Moments,
    PromotionGate,
    as_returns,
    moments_from_returns,
    to_decisions,
    validate_moments,
)


@functools.lru_cache(maxsize=16)
def boundary_table(times: tuple[float, ...], spending: str) -> BoundaryTable:
    """The :class:`BoundaryTable` of a schedule, computed once per process (a pure memo:
    the table depends only on its arguments, and takes a fraction of a second to build)."""
    return BoundaryTable(np.array(times), spending)


class SequentialGate:
    """A :class:`PromotionGate` for repeated looks over one run (one-way promotion).

    Parameters
    ----------
    gate : PromotionGate
        Checks, confidence and correction (``test`` must be ``"welch"``).
    horizon_trades : int
        Trade count of a variant's last look (>= ``gate.min_trades``): its whole level is
        spent by then, and later trades no longer change its statistical evidence.
    look_every : int
        Trades between a variant's looks (>= 1). The schedule is ``min_trades``, then
        every ``look_every`` trades, and ``horizon_trades``.
    spending : {"obrien_fleming", "pocock"}
        Alpha-spending function (:func:`liveopt.scoring.boundaries.spent`).

    Raises
    ------
    ValueError
        Naming the argument, on a value outside its meaning.

    Notes
    -----
    Call :meth:`look` (or :meth:`look_moments`) whenever new metrics are available, with
    all variants every time, in the same order. A variant's look ``k`` is taken at the
    first call where its trade count has reached the ``k``-th schedule point; looks a
    variant jumped over are skipped (which can only lower its chance of crossing). The
    boundaries assume the variant's statistic at its looks is a Brownian motion observed
    at information fractions ``n_k / horizon``: exact for normal returns taken at the
    schedule's trade counts with the baseline's trade count growing in proportion, close
    otherwise (the tests and ``docs/statistics.md`` measure it).
    """

    def __init__(self, gate: PromotionGate, *, horizon_trades: int, look_every: int = 10,
                 spending: str = "obrien_fleming") -> None:
        if not isinstance(gate, PromotionGate):
            raise ValueError(f"gate: must be a PromotionGate, got {type(gate).__name__}")
        if gate.test != "welch":
            raise ValueError(f"gate.test: {gate.test!r}; the sequential gate uses 'welch'")
        for name, value in (("horizon_trades", horizon_trades), ("look_every", look_every)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{name}: {value!r} must be an integer")
        if horizon_trades < gate.min_trades:
            raise ValueError(
                f"horizon_trades: {horizon_trades} must be >= gate.min_trades "
                f"({gate.min_trades})"
            )
        if look_every < 1:
            raise ValueError(f"look_every: {look_every} must be >= 1")
        if spending not in SPENDING:
            raise ValueError(f"spending: {spending!r} is not one of {', '.join(SPENDING)}")
        self.gate = gate
        self.horizon_trades = int(horizon_trades)
        self.look_every = int(look_every)
        self.spending = spending
        points = np.arange(gate.min_trades, horizon_trades, look_every, dtype=np.int64)
        #: Trade counts of the looks.
        self.schedule = np.append(points, np.int64(horizon_trades))
        self._table = boundary_table(
            tuple((self.schedule / self.horizon_trades).tolist()), spending
        )
        self._m: int | None = None

    # ----------------------------------------------------------------------------------
    # State

    def _start(self, m: int) -> None:
        self._m = m
        self._look = np.full(m, -1, dtype=np.int64)
        self._trades = np.zeros(m, dtype=np.int64)
        self._p = np.ones(m)
        self._promoted = np.zeros(m, dtype=np.bool_)
        self._promoted_at = np.full(m, -1, dtype=np.int64)

    @property
    def promoted(self) -> np.ndarray:
        """Which variants have been promoted so far (a copy; all False before a look)."""
        return np.zeros(0, dtype=np.bool_) if self._m is None else self._promoted.copy()

    @property
    def promoted_at(self) -> np.ndarray:
        """Trade count of each variant when it was promoted (-1 if not promoted)."""
        return np.zeros(0, dtype=np.int64) if self._m is None else self._promoted_at.copy()

    def boundaries(self, level: float) -> np.ndarray:
        """The Z-scale boundary of every look of the schedule for one level (for display and
        checking; the gate itself uses the tabulated inverse)."""
        return boundaries(self.schedule / self.horizon_trades, level, self.spending)

    # ----------------------------------------------------------------------------------
    # Looks

    def look(
        self,
        variant_returns: Sequence[ArrayLike],
        baseline_returns: ArrayLike,
        *,
        variant_net_pnl: ArrayLike | None = None,
        baseline_net_pnl: float | None = None,
        variant_ids: ArrayLike | None = None,
    ) -> list[GateDecision]:
        """One look from the returns so far (arguments of :meth:`PromotionGate.evaluate`).

        Returns
        -------
        list of GateDecision
            One per variant; ``promoted`` stays True once set, ``p_value`` is the repeated
            p-value and ``adjusted_p_value`` its corrected value.
        """
        returns = [as_returns(x, f"variant_returns[{i}]") for i, x in enumerate(variant_returns)]
        base = as_returns(baseline_returns, "baseline_returns")
        mom = moments_from_returns(returns, base, variant_net_pnl=variant_net_pnl,
                                   baseline_net_pnl=baseline_net_pnl, variant_ids=variant_ids)
        return to_decisions(self._look_at(mom))

    def look_moments(self, **moments: ArrayLike) -> list[GateDecision]:
        """One look from the online moments (arguments of
        :meth:`PromotionGate.evaluate_moments`); same decisions as :meth:`look`."""
        return to_decisions(self.look_table(**moments))

    def look_table(self, **moments: ArrayLike) -> np.ndarray:
        """:meth:`look_moments` as a ``DECISION_DTYPE`` array."""
        return self._look_at(validate_moments(**moments))

    def _look_at(self, mom: Moments) -> np.ndarray:
        m = mom.trades.size
        if self._m is None:
            self._start(m)
        elif m != self._m:
            raise ValueError(f"looks must cover the same {self._m} variants, got {m}")
        if np.any(mom.trades < self._trades):
            raise ValueError("trades: a variant's trade count went down since the last look "
                             "(variants must be given in the same order every time)")
        self._trades = mom.trades.copy()
        # Index of the latest schedule point each variant has reached (-1: none yet).
        reached = np.searchsorted(self.schedule, mom.trades, side="right") - 1
        new = reached > self._look
        if np.any(new):
            p_now = self.gate.welch_p(mom)
            z = -special.ndtri(p_now)
            for k in np.unique(reached[new]):
                rows = new & (reached == k)
                self._p[rows] = np.minimum(self._p[rows], self._table.repeated_p(int(k), z[rows]))
            self._look[new] = reached[new]
        table: np.ndarray = self.gate.checks(mom, self._p.copy())
        fresh = table["promoted"] & ~self._promoted
        self._promoted_at[fresh] = mom.trades[fresh]
        self._promoted |= table["promoted"]
        table["promoted"] = self._promoted
        table["reasons"][self._promoted] = 0
        return table
