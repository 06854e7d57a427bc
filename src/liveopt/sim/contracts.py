"""Contract specifications of the simulated exchange and exact price/tick arithmetic.

Prices live as integer ticks inside the simulator; they become strings or floats only in
the wire structs. :class:`TickGrid` does the conversions with :mod:`decimal`, so a price
such as ``"0.3"`` on a 0.1 grid is recognised as exactly 3 ticks (no float error).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import msgspec

__all__ = [
    "DEFAULT_CONTRACTS",
    "ContractSpec",
    "TickGrid",
    "default_contracts",
]


class ContractSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Static specification of one linear USDT-margined perpetual contract.

    Parameters
    ----------
    symbol : str
        Contract symbol, e.g. ``"XBTUSDTM"``.
    base_currency : str
        Base coin as KuCoin names it (``"XBT"`` for bitcoin).
    tick_size : float
        Price increment.
    lot_size : int
        Size increment in lots (KuCoin uses 1).
    multiplier : float
        Base-coin amount of one lot.
    maker_fee_rate, taker_fee_rate : float
        Fee rates on each fill's notional.
    initial_margin, maintain_margin : float
        Initial and maintenance margin rates.
    max_leverage : int
        Highest leverage an order may carry.
    start_price : float
        A plausible price the built-in generator starts from.
    max_order_qty : int
        Largest order size in lots.
    max_price : float
        Highest accepted order price.
    index_price_tick_size : float
        Tick of the index price.
    funding_fee_rate : float
        The (constant) current funding rate reported in the contract data.
    first_open_date_ms : int
        When the contract was listed, epoch ms.
    quote_currency : str
        Quote and settle currency.
    """

    symbol: str
    base_currency: str
    tick_size: float
    lot_size: int
    multiplier: float
    maker_fee_rate: float
    taker_fee_rate: float
    initial_margin: float
    maintain_margin: float
    max_leverage: int
    start_price: float
    max_order_qty: int = 1_000_000
    max_price: float = 1_000_000.0
    index_price_tick_size: float = 0.01
    funding_fee_rate: float = 0.0001
    first_open_date_ms: int = 1_585_555_200_000
    quote_currency: str = "USDT"

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("symbol: must not be empty")
        for name in ("tick_size", "multiplier", "maintain_margin", "initial_margin"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name}: must be > 0, got {value!r} for {self.symbol}")
        if self.lot_size < 1:
            raise ValueError(f"lot_size: must be >= 1, got {self.lot_size!r}")
        if self.max_leverage < 1:
            raise ValueError(f"max_leverage: must be >= 1, got {self.max_leverage!r}")
        if not self.start_price > 0:
            raise ValueError(f"start_price: must be > 0, got {self.start_price!r}")

    @property
    def grid(self) -> TickGrid:
        """The contract's price grid."""
        return TickGrid(self.tick_size)


class TickGrid:
    """Exact conversions between prices and integer ticks for one tick size.

    Parameters
    ----------
    tick_size : float
        The price increment; its shortest decimal representation is taken as exact
        (``0.1`` means one tenth, not the nearest binary float).
    """

    __slots__ = ("_tick", "tick_size")

    def __init__(self, tick_size: float) -> None:
        if not tick_size > 0:
            raise ValueError(f"tick_size: must be > 0, got {tick_size!r}")
        self.tick_size = float(tick_size)
        self._tick = Decimal(repr(self.tick_size))

    def exact_ticks(self, price: str | float | int) -> int | None:
        """Return the price in ticks, or ``None`` if it is not a multiple of the tick."""
        try:
            value = Decimal(price if isinstance(price, str) else repr(price))
        except (InvalidOperation, ValueError):
            return None
        if not value.is_finite():
            return None
        ticks, remainder = divmod(value, self._tick)
        if remainder != 0:
            return None
        return int(ticks)

    def nearest_ticks(self, price: float) -> int:
        """Round a float price to the nearest tick (half away from zero)."""
        value = Decimal(repr(float(price))) / self._tick
        return int(value.to_integral_value(rounding="ROUND_HALF_UP"))

    def to_str(self, ticks: int) -> str:
        """Format ticks as KuCoin prints prices: no exponent, no trailing zeros."""
        text = format(Decimal(ticks) * self._tick, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text

    def to_float(self, ticks: int) -> float:
        """Return ticks as a float price (for numeric wire fields and PnL)."""
        return float(Decimal(ticks) * self._tick)


def default_contracts() -> dict[str, ContractSpec]:
    """Return the three built-in contracts keyed by symbol (fresh dict, shared specs)."""
    return dict(DEFAULT_CONTRACTS)


#: XBTUSDTM as in kucoin-protocol.md 3.7; ETHUSDTM and SOLUSDTM with plausible real specs.
DEFAULT_CONTRACTS: dict[str, ContractSpec] = {
    spec.symbol: spec
    for spec in (
        ContractSpec(
            symbol="XBTUSDTM", base_currency="XBT", tick_size=0.1, lot_size=1,
            multiplier=0.001, maker_fee_rate=0.0002, taker_fee_rate=0.0006,
            initial_margin=0.008, maintain_margin=0.004, max_leverage=125,
            start_price=60_000.0, index_price_tick_size=0.01,
        ),
        ContractSpec(
            symbol="ETHUSDTM", base_currency="ETH", tick_size=0.01, lot_size=1,
            multiplier=0.01, maker_fee_rate=0.0002, taker_fee_rate=0.0006,
            initial_margin=0.01, maintain_margin=0.005, max_leverage=100,
            start_price=3_000.0, index_price_tick_size=0.01,
        ),
        ContractSpec(
            symbol="SOLUSDTM", base_currency="SOL", tick_size=0.001, lot_size=1,
            multiplier=0.1, maker_fee_rate=0.0002, taker_fee_rate=0.0006,
            initial_margin=0.013333, maintain_margin=0.0065, max_leverage=75,
            start_price=150.0, index_price_tick_size=0.001, max_price=100_000.0,
        ),
    )
}
