"""What the engine streams out: fills and closed trades, as numpy record arrays (cheap in
bulk) with a typed msgspec view of single records."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import numpy as np

from liveopt._core import variant_pass as vp

#: Exit reasons by code (``TRADE_DTYPE["reason"]``).
REASON_NAMES: dict[int, str] = {
    vp.STOP_LOSS: "stop_loss",
    vp.TAKE_PROFIT: "take_profit",
    vp.TRAILING_STOP: "trailing_stop",
    vp.SIGNAL: "signal",
    vp.MAX_HOLD: "max_hold",
    vp.LIQUIDATION: "liquidation",
    vp.VARIANT_STOPPED: "variant_stopped",
}
REASON_CODES: dict[str, int] = {name: code for code, name in REASON_NAMES.items()}

#: One closed trade. Times are epoch ns; money is quote currency; ``side`` +1 long,
#: -1 short; ``net_return`` is net PnL over the margin; ``roi_pct`` gross ROI on margin.
TRADE_DTYPE = np.dtype(
    [
        ("variant", np.int64),
        ("side", np.int8),
        ("entry_ts", np.int64),
        ("exit_ts", np.int64),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("lots", np.float64),
        ("entry_fee", np.float64),
        ("exit_fee", np.float64),
        ("funding", np.float64),
        ("gross_pnl", np.float64),
        ("net_pnl", np.float64),
        ("net_return", np.float64),
        ("roi_pct", np.float64),
        ("reason", np.int8),
        ("maker", np.bool_),
    ]
)

#: One fill. ``side`` is the order's: +1 buy, -1 sell; ``entry`` opens a position, else
#: it closes one; ``maker`` for a limit take-profit.
FILL_DTYPE = np.dtype(
    [
        ("variant", np.int64),
        ("ts", np.int64),
        ("side", np.int8),
        ("price", np.float64),
        ("lots", np.float64),
        ("fee", np.float64),
        ("entry", np.bool_),
        ("maker", np.bool_),
    ]
)


class ClosedTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One closed trade of one variant (a row of :data:`TRADE_DTYPE`, reason by name)."""

    variant: int
    side: int
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    lots: float
    entry_fee: float
    exit_fee: float
    funding: float
    gross_pnl: float
    net_pnl: float
    net_return: float
    roi_pct: float
    reason: str
    maker: bool


class FillBatch(msgspec.Struct, frozen=True):
    """Records drained from the engine, ordered by time, then variant.

    Attributes
    ----------
    fills : ndarray of FILL_DTYPE
    trades : ndarray of TRADE_DTYPE
    """

    fills: np.ndarray
    trades: np.ndarray

    def closed_trades(self) -> Iterator[ClosedTrade]:
        """Each closed trade as a typed struct."""
        names = TRADE_DTYPE.names
        for row in self.trades.tolist():
            fields = dict(zip(names, row, strict=True))
            fields["reason"] = REASON_NAMES[fields["reason"]]
            yield ClosedTrade(**fields)


def trades_from_columns(ints: np.ndarray, floats: np.ndarray) -> np.ndarray:
    """Closed-trade records from the kernel's output columns (``variant_pass``)."""
    out = np.empty(ints.shape[1], dtype=TRADE_DTYPE)
    for k, name in enumerate(("variant", "side", "entry_ts", "exit_ts", "reason", "maker")):
        out[name] = ints[k]
    for k, name in enumerate(
        ("entry_price", "exit_price", "lots", "entry_fee", "exit_fee", "funding",
         "gross_pnl", "net_pnl", "net_return", "roi_pct")
    ):
        out[name] = floats[k]
    return out


def entry_fills_from_columns(ints: np.ndarray, floats: np.ndarray) -> np.ndarray:
    """Entry-fill records from the kernel's output columns."""
    out = np.zeros(ints.shape[1], dtype=FILL_DTYPE)
    out["variant"] = ints[0]
    out["ts"] = ints[1]
    out["side"] = ints[2]
    out["price"] = floats[0]
    out["lots"] = floats[1]
    out["fee"] = floats[2]
    out["entry"] = True
    return out


def exit_fills(trades: np.ndarray) -> np.ndarray:
    """The closing fill of each closed trade."""
    out = np.zeros(len(trades), dtype=FILL_DTYPE)
    out["variant"] = trades["variant"]
    out["ts"] = trades["exit_ts"]
    out["side"] = -trades["side"]
    out["price"] = trades["exit_price"]
    out["lots"] = trades["lots"]
    out["fee"] = trades["exit_fee"]
    out["maker"] = trades["maker"]
    return out
