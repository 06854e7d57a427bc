"""Exact order arithmetic for KuCoin linear (USDT-margined) perpetual contracts.

This is the order-facing twin of the engine's float kernels in
:mod:`liveopt._core.paper_math`: the same formulas (and the same corrections of the origin's
defects, origin-system.md C.7), computed without rounding error so that the price and size
sent to the exchange are exactly what the formula says.

Number model (see ``docs/exchange/trade-math.md``):

- every input is converted once to a :class:`fractions.Fraction` by :func:`exact`; a float
  is taken at its shortest ``repr`` (``0.1`` means one tenth, not the binary value near it);
- derived quantities (PnL, ROI, liquidation, break-even, price at an ROI) are returned as
  exact ``Fraction`` values: ``1/leverage`` at 3x has no finite decimal form, so Decimal
  would already round there;
- prices become integer *ticks* (and back to ``Decimal`` tick multiples) only through the
  explicit rounding methods of :class:`ContractSpec`, each with a stated direction; sizes
  are whole lots rounded down.

Units: prices in quote currency (USDT), sizes in contracts (``lots``, integer multiples of
``lot_size``), one contract is ``multiplier`` units of the base asset, fee and maintenance
margin rates are fractions (0.0006 is 0.06 %), ``*_pct`` arguments (position size, ROI,
slippage, buffers) are percent. Sides are :class:`Side` (``+1`` long, ``-1`` short).
"""

import math
import numbers
from decimal import Decimal, InvalidOperation, localcontext
from enum import Enum, IntEnum
from fractions import Fraction

import msgspec

ExactInput = int | str | Decimal | Fraction | float
"""What the functions accept for a number; see :func:`exact`."""

# Enough digits for any tick multiple of any real contract (prices below 1e12 with ticks
# down to 1e-12); Decimal's default 28 would silently round beyond that.
_DECIMAL_DIGITS = 60


class TradeMathError(ValueError):
    """A number or spec that the order arithmetic cannot use; the message names the field."""


class OrderTooSmallError(TradeMathError):
    """The margin budget does not buy one lot at the given leverage and price."""


class Side(IntEnum):
    """Position side; the value is the sign of the PnL of a price rise."""

    LONG = 1
    SHORT = -1


class TickRounding(Enum):
    """How a price that is not a tick multiple becomes one.

    ``NEAREST`` rounds half a tick away from zero (prices are positive, so: up), the rule
    of the origin's decimal.js ``ROUND_HALF_UP``; a deterministic, documented tie rule
    matters more for an order price than half-even's lack of bias over many values.
    ``EXACT`` refuses a price that is not already a tick multiple.
    """

    NEAREST = "nearest"
    DOWN = "down"
    UP = "up"
    EXACT = "exact"


def exact(value: ExactInput, field: str) -> Fraction:
    """Convert ``value`` to an exact ``Fraction``; raise :class:`TradeMathError` naming ``field``.

    Accepts ``int``, ``Decimal``, ``Fraction``, decimal strings (``"88987.4"``) and finite
    floats, which are read through their shortest ``repr`` so that ``0.1`` is one tenth and
    ``0.1 + 0.2`` is ``0.30000000000000004`` exactly as printed (then rounding to a tick
    removes the noise). ``bool`` is refused: ``True`` is not a price.
    """
    if isinstance(value, bool):
        raise TradeMathError(f"{field} must be a number, got bool {value!r}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, numbers.Integral):
        return Fraction(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TradeMathError(f"{field} must be finite, got {value!r}")
        # float() first: numpy scalars subclass float but have a different repr.
        return Fraction(Decimal(repr(float(value))))
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise TradeMathError(f"{field} is not a decimal number: {value!r}") from None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TradeMathError(f"{field} must be finite, got {value!r}")
        return Fraction(value)
    raise TradeMathError(f"{field} must be a number, got {type(value).__name__} {value!r}")


def _positive(value: ExactInput, field: str) -> Fraction:
    number = exact(value, field)
    if number <= 0:
        raise TradeMathError(f"{field} must be positive, got {_show(number)}")
    return number


def _fee_rate(value: ExactInput, field: str) -> Fraction:
    # A negative maker fee (a rebate) is real on some contracts; a rate of 100 % or more is
    # a percent passed where a fraction was expected.
    rate = exact(value, field)
    if not -1 < rate < 1:
        raise TradeMathError(f"{field} is a fraction (0.0006 = 0.06 %), got {_show(rate)}")
    return rate


def _side(value: Side | int) -> Side:
    try:
        return Side(value)
    except ValueError:
        raise TradeMathError(f"side must be +1 (long) or -1 (short), got {value!r}") from None


def _show(number: Fraction) -> str:
    # Error text: a terminating value in decimal, anything else as a fraction.
    if number.denominator == 1:
        return str(number.numerator)
    try:
        return format_decimal(_fraction_to_decimal(number))
    except TradeMathError:
        return str(number)


def _fraction_to_decimal(number: Fraction) -> Decimal:
    # Exact only for terminating fractions (denominator 2^a 5^b), which is what tick
    # multiples are; anything else is refused rather than rounded.
    denominator = number.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        raise TradeMathError(f"{number} has no finite decimal form")
    places = max(twos, fives)
    scaled = number * 10**places
    with localcontext() as context:
        context.prec = _DECIMAL_DIGITS
        return Decimal(scaled.numerator).scaleb(-places)


def format_decimal(value: Decimal) -> str:
    """The wire form of an exact decimal: plain digits, no exponent, no trailing zeros.

    ``Decimal("88987.40")`` gives ``"88987.4"``, ``Decimal("1E+2")`` gives ``"100"``.
    """
    if not value.is_finite():
        raise TradeMathError(f"cannot format the non-finite value {value!r}")
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def _round_fraction(value: Fraction, mode: TickRounding, field: str) -> int:
    if mode is TickRounding.DOWN:
        return math.floor(value)
    if mode is TickRounding.UP:
        return math.ceil(value)
    if mode is TickRounding.NEAREST:
        magnitude = math.floor(abs(value) + Fraction(1, 2))
        return magnitude if value >= 0 else -magnitude
    if mode is TickRounding.EXACT:
        if value.denominator != 1:
            raise TradeMathError(f"{field} is not a whole number of ticks ({_show(value)})")
        return value.numerator
    raise TradeMathError(f"unknown rounding mode {mode!r}")


class ContractSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The trading rules of one linear perpetual contract (e.g. XBTUSDTM).

    Parameters
    ----------
    symbol
        Contract symbol, e.g. ``"XBTUSDTM"``.
    tick_size
        Price increment in quote currency (``Decimal("0.1")``).
    lot_size
        Order size increment in contracts (``1``).
    multiplier
        Base-asset units per contract (``Decimal("0.001")`` BTC); positive (linear only).
    maker_fee, taker_fee
        Fee rates as fractions of notional (``Decimal("0.0002")``, ``Decimal("0.0006")``).
    maint_margin
        Maintenance margin rate as a fraction of notional (``Decimal("0.004")``).
    max_leverage
        Highest leverage the exchange allows (``125``).
    """

    symbol: str
    tick_size: Decimal
    lot_size: int
    multiplier: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    maint_margin: Decimal
    max_leverage: int

    def __post_init__(self) -> None:
        # msgspec does not type-check constructor arguments, so a float tick (whose binary
        # value is not 0.1) or a percent passed as a rate is caught here, by name.
        if not self.symbol:
            raise TradeMathError("symbol must not be empty")
        for name in ("tick_size", "multiplier", "maker_fee", "taker_fee", "maint_margin"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise TradeMathError(f"{name} must be a finite Decimal, got {value!r}")
        for name in ("lot_size", "max_leverage"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TradeMathError(f"{name} must be an integer >= 1, got {value!r}")
        if self.tick_size <= 0:
            raise TradeMathError(f"tick_size must be positive, got {self.tick_size}")
        if self.multiplier <= 0:
            raise TradeMathError(
                f"multiplier must be positive (linear contracts only; inverse contracts "
                f"have a negative multiplier), got {self.multiplier}"
            )
        _fee_rate(self.maker_fee, "maker_fee")
        _fee_rate(self.taker_fee, "taker_fee")
        if not 0 <= self.maint_margin < 1:
            raise TradeMathError(
                f"maint_margin is a fraction (0.004 = 0.4 %), got {self.maint_margin}"
            )

    def price_to_ticks(self, price: ExactInput, mode: TickRounding = TickRounding.EXACT) -> int:
        """The price as a whole number of ticks, rounded by ``mode`` (default: must be exact)."""
        return _round_fraction(exact(price, "price") / Fraction(self.tick_size), mode, "price")

    def ticks_to_price(self, ticks: int) -> Decimal:
        """The exact decimal price of ``ticks`` ticks."""
        if isinstance(ticks, bool) or not isinstance(ticks, int):
            raise TradeMathError(f"ticks must be an int, got {ticks!r}")
        with localcontext() as context:
            context.prec = _DECIMAL_DIGITS
            return Decimal(ticks) * self.tick_size

    def round_price_to_tick(
        self, price: ExactInput, mode: TickRounding = TickRounding.NEAREST
    ) -> Decimal:
        """``price`` rounded to a tick multiple by ``mode`` (default nearest, ties up)."""
        return self.ticks_to_price(self.price_to_ticks(price, mode))

    def round_down_to_lot(self, contracts: ExactInput) -> int:
        """Whole contracts, rounded down to a multiple of ``lot_size`` (never more than asked)."""
        amount = exact(contracts, "contracts")
        if amount < 0:
            raise TradeMathError(f"contracts must not be negative, got {_show(amount)}")
        return math.floor(amount / self.lot_size) * self.lot_size

    def round_stop_price(self, side: Side | int, price: ExactInput) -> Decimal:
        """A protective stop's price on a tick, rounded *away from the market*.

        A long's stop sits below the price and is rounded down, a short's sits above and is
        rounded up. The rounded stop therefore never moves towards (or through) the current
        price, where it would trigger on noise sooner than the strategy asked or be refused
        as already triggered; the cost is at most one tick of extra loss, and
        :func:`protective_stop_price` checks that it still sits inside liquidation.
        """
        mode = TickRounding.DOWN if _side(side) is Side.LONG else TickRounding.UP
        return self.round_price_to_tick(price, mode)

    def round_target_price(self, side: Side | int, price: ExactInput) -> Decimal:
        """A profit target (take-profit, break-even exit) on a tick, rounded away from entry.

        A long's target is rounded up and a short's down, so that reaching the rounded
        price always earns at least the target (a rounded break-even never loses).
        """
        mode = TickRounding.UP if _side(side) is Side.LONG else TickRounding.DOWN
        return self.round_price_to_tick(price, mode)

    def price_to_wire(self, price: ExactInput) -> str:
        """The order-request string of a price that is a tick multiple (``"88987.4"``)."""
        return format_decimal(self.ticks_to_price(self.price_to_ticks(price)))

    def ticks_to_wire(self, ticks: int) -> str:
        """The order-request string of ``ticks`` ticks."""
        return format_decimal(self.ticks_to_price(ticks))

    def price_from_wire(self, text: str) -> int:
        """Ticks of a wire price string; refuses text that is not a decimal tick multiple."""
        if not isinstance(text, str):
            raise TradeMathError(f"wire price must be a string, got {text!r}")
        return self.price_to_ticks(text)


class PositionSize(msgspec.Struct, frozen=True, kw_only=True):
    """The size of a new position and the money it uses.

    An in-process result with exact ``Fraction`` values, not a wire message (msgspec does
    not encode ``Fraction``); convert with ``float()`` or round on a spec to send anything.

    Parameters
    ----------
    lots
        Contracts to order: a positive multiple of the contract's ``lot_size``.
    margin_budget
        ``balance * position_pct / 100``: the margin the strategy allots.
    notional_budget
        ``margin_budget * leverage``: the largest position value allowed.
    notional
        ``lots * multiplier * price``: the position value actually ordered.
    margin
        ``notional / leverage``: the margin actually used, never above ``margin_budget``.
    """

    lots: int
    margin_budget: Fraction
    notional_budget: Fraction
    notional: Fraction
    margin: Fraction


def _leverage(value: ExactInput) -> Fraction:
    leverage = exact(value, "leverage")
    if leverage < 1:
        raise TradeMathError(f"leverage must be at least 1, got {_show(leverage)}")
    return leverage


def position_size(
    spec: ContractSpec,
    balance: ExactInput,
    position_pct: ExactInput,
    leverage: ExactInput,
    price: ExactInput,
) -> PositionSize:
    """Size a position from a share of the balance used as margin.

    ``margin = balance * pct / 100``, ``notional = margin * leverage``, lots =
    ``floor(notional / (price * multiplier))`` rounded down to the lot size, so the order
    never uses more margin than allotted. Raises :class:`OrderTooSmallError` when that is
    less than one lot (the origin's server refused such orders; we refuse them here).
    """
    balance_value = _positive(balance, "balance")
    pct = _positive(position_pct, "position_pct")
    if pct > 100:
        raise TradeMathError(f"position_pct is a percent of the balance (<= 100), got {pct}")
    lev = _leverage(leverage)
    if lev > spec.max_leverage:
        raise TradeMathError(
            f"leverage {_show(lev)} exceeds {spec.symbol}'s max_leverage {spec.max_leverage}"
        )
    entry = _positive(price, "price")
    margin_budget = balance_value * pct / 100
    notional_budget = margin_budget * lev
    contract_value = entry * Fraction(spec.multiplier)
    lots = spec.round_down_to_lot(notional_budget / contract_value)
    if lots < spec.lot_size:
        raise OrderTooSmallError(
            f"margin {_show(margin_budget)} at leverage {_show(lev)} buys "
            f"{float(notional_budget / contract_value):.6g} contracts of {spec.symbol} at price "
            f"{_show(entry)}, less than one lot of {spec.lot_size}"
        )
    notional = lots * contract_value
    return PositionSize(
        lots=lots,
        margin_budget=margin_budget,
        notional_budget=notional_budget,
        notional=notional,
        margin=notional / lev,
    )


def position_margin(
    spec: ContractSpec, entry: ExactInput, lots: int, leverage: ExactInput
) -> Fraction:
    """Initial margin of ``lots`` contracts entered at ``entry``: ``notional / leverage``."""
    return _notional(spec, entry, lots) / _leverage(leverage)


def _notional(spec: ContractSpec, price: ExactInput, lots: int) -> Fraction:
    if isinstance(lots, bool) or not isinstance(lots, int) or lots < 0:
        raise TradeMathError(f"lots must be a non-negative int, got {lots!r}")
    return _positive(price, "price") * lots * Fraction(spec.multiplier)


def gross_pnl(
    spec: ContractSpec,
    side: Side | int,
    entry: ExactInput,
    exit_price: ExactInput,
    lots: int,
) -> Fraction:
    """PnL before fees in quote currency: ``side * (exit - entry) * lots * multiplier``."""
    move = _positive(exit_price, "exit_price") - _positive(entry, "entry")
    return _side(side) * move * _notional(spec, 1, lots)


def net_pnl(
    spec: ContractSpec,
    side: Side | int,
    entry: ExactInput,
    exit_price: ExactInput,
    lots: int,
    fee_in: ExactInput,
    fee_out: ExactInput,
) -> Fraction:
    """PnL after fees, each fee charged on its own side's notional (entry fee on the entry
    notional, exit fee on the exit notional; the origin charged both on the entry's)."""
    entry_fee = _notional(spec, entry, lots) * _fee_rate(fee_in, "fee_in")
    exit_fee = _notional(spec, exit_price, lots) * _fee_rate(fee_out, "fee_out")
    return gross_pnl(spec, side, entry, exit_price, lots) - entry_fee - exit_fee


def roi_pct(pnl: ExactInput, margin: ExactInput) -> Fraction:
    """Return on margin in percent: ``pnl / margin * 100`` (4 on 50 is 8 %)."""
    return exact(pnl, "pnl") / _positive(margin, "margin") * 100


def price_at_roi(
    side: Side | int, entry: ExactInput, roi: ExactInput, leverage: ExactInput
) -> Fraction:
    """Price at which the gross ROI on margin is ``roi`` percent (negative: a loss).

    ``entry * (1 + side * roi / leverage / 100)``: ROI is on margin, so the price move is
    the ROI divided by the leverage.
    """
    move = exact(roi, "roi") / _leverage(leverage) / 100
    price = _positive(entry, "entry") * (1 + _side(side) * move)
    if price <= 0:
        raise TradeMathError(f"roi {_show(exact(roi, 'roi'))} % gives a price at or below zero")
    return price


def stop_loss_price(
    side: Side | int, entry: ExactInput, stop_roi: ExactInput, leverage: ExactInput
) -> Fraction:
    """Stop-loss price for a loss of ``stop_roi`` percent of margin (``stop_roi > 0``):
    below entry for a long, above for a short (100, 0.5 %, 10x long: 99.95)."""
    return price_at_roi(side, entry, -_positive(stop_roi, "stop_roi"), leverage)


def take_profit_price(
    side: Side | int, entry: ExactInput, take_profit_roi: ExactInput, leverage: ExactInput
) -> Fraction:
    """Take-profit price for a gain of ``take_profit_roi`` percent of margin (> 0):
    above entry for a long, below for a short (100, 2 %, 10x long: 100.2)."""
    return price_at_roi(side, entry, _positive(take_profit_roi, "take_profit_roi"), leverage)


def break_even_price(
    side: Side | int, entry: ExactInput, fee_in: ExactInput, fee_out: ExactInput
) -> Fraction:
    """Exit price at which the PnL after both fees is exactly zero.

    Long: ``exit * (1 - fee_out) = entry * (1 + fee_in)``; short:
    ``exit * (1 + fee_out) = entry * (1 - fee_in)``. To first order that is a price move of
    ``entry * (fee_in + fee_out)`` (100 -> 100.12 with 0.06 % each way), the exact value
    adds the exit fee on that move. Leverage does not appear: fees are a price move; only
    the ROI view (:func:`break_even_roi_pct`) scales with leverage.
    """
    start = _positive(entry, "entry")
    paid_in = _fee_rate(fee_in, "fee_in")
    paid_out = _fee_rate(fee_out, "fee_out")
    if _side(side) is Side.LONG:
        return start * (1 + paid_in) / (1 - paid_out)
    return start * (1 - paid_in) / (1 + paid_out)


def break_even_roi_pct(
    side: Side | int,
    fee_in: ExactInput,
    fee_out: ExactInput,
    leverage: ExactInput,
    buffer_pct: ExactInput = 0,
) -> Fraction:
    """Gross ROI on margin (percent) at the break-even price, plus ``buffer_pct``.

    The break-even price move times the leverage: about ``(fee_in + fee_out) * leverage *
    100``, 1.2 % at 10x with 0.06 % each way (1.3 with the origin's 0.1 buffer). It does
    not depend on the entry price, and it grows with leverage while the price does not.
    """
    move = _side(side) * (break_even_price(side, 1, fee_in, fee_out) - 1)
    return move * _leverage(leverage) * 100 + exact(buffer_pct, "buffer_pct")


def _liquidation_move(leverage: ExactInput, maint_margin: ExactInput) -> Fraction:
    lev = _leverage(leverage)
    mmr = exact(maint_margin, "maint_margin")
    if not 0 <= mmr < 1:
        raise TradeMathError(f"maint_margin is a fraction (0.004 = 0.4 %), got {_show(mmr)}")
    move = 1 / lev - mmr
    if move <= 0:
        raise TradeMathError(
            f"leverage {_show(lev)} with maint_margin {_show(mmr)} is liquidated at entry: "
            f"the initial margin 1/leverage must exceed the maintenance margin"
        )
    return move


def liquidation_price(
    side: Side | int, entry: ExactInput, leverage: ExactInput, maint_margin: ExactInput
) -> Fraction:
    """Standard isolated-margin liquidation estimate.

    Long ``entry * (1 - 1/leverage + mmr)``, short ``entry * (1 + 1/leverage - mmr)``: the
    price at which the loss has eaten the initial margin (``1/leverage`` of notional) down
    to the maintenance margin (``mmr`` of notional). A long at 10,000, 10x, 0.5 %
    liquidates at 9,050. The origin's ``entry - entry/lev * (1 + mm/100)`` (8,995) put it
    beyond even the zero-margin price, an unsafe error this does not repeat. The estimate
    ignores fees, funding and risk-limit tiers, which only bring liquidation closer.
    """
    move = _liquidation_move(leverage, maint_margin)
    return _positive(entry, "entry") * (1 - _side(side) * move)


def liquidation_roi_pct(leverage: ExactInput, maint_margin: ExactInput) -> Fraction:
    """Gross ROI on margin (percent, negative) at the liquidation price:
    ``-(1 - mmr * leverage) * 100``, the same for both sides (-95 % at 10x, 0.5 %)."""
    return -_liquidation_move(leverage, maint_margin) * _leverage(leverage) * 100


def slippage_adjusted_stop(
    side: Side | int, stop: ExactInput, slippage_pct: ExactInput
) -> Fraction:
    """Expected fill of a triggered stop market order: the stop moved against the position
    by ``slippage_pct`` percent, ``stop * (1 - side * slippage / 100)`` (100 -> 99.98 at
    0.02 % for a long, whose stop sells)."""
    slip = exact(slippage_pct, "slippage_pct")
    if not 0 <= slip < 100:
        raise TradeMathError(f"slippage_pct must be in [0, 100), got {_show(slip)}")
    return _positive(stop, "stop") * (1 - _side(side) * slip / 100)


def protective_stop_price(
    spec: ContractSpec,
    side: Side | int,
    entry: ExactInput,
    stop_roi: ExactInput,
    leverage: ExactInput,
) -> Decimal:
    """The stop-loss order price: :func:`stop_loss_price` rounded away from the market by
    :meth:`ContractSpec.round_stop_price`, checked to trigger before liquidation.

    Raises :class:`TradeMathError` when the rounded stop is at or beyond the liquidation
    price (it would never fire: the exchange liquidates first).
    """
    stop = spec.round_stop_price(side, stop_loss_price(side, entry, stop_roi, leverage))
    liquidation = liquidation_price(side, entry, leverage, spec.maint_margin)
    if _side(side) * (Fraction(stop) - liquidation) <= 0:
        raise TradeMathError(
            f"stop_roi {_show(exact(stop_roi, 'stop_roi'))} % puts the stop at {stop}, at or "
            f"beyond the liquidation price {float(liquidation):.10g} of {spec.symbol}"
        )
    return stop


class ContractData(msgspec.Struct, frozen=True, rename="camel"):
    """The fields TradeMath reads from the ``data`` of GET /api/v1/contracts/{symbol}
    (kucoin-protocol.md 3.7); numbers arrive as JSON numbers, unknown fields are ignored."""

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    multiplier: Decimal
    maker_fee_rate: Decimal
    taker_fee_rate: Decimal
    maintain_margin: Decimal
    max_leverage: Decimal
    is_inverse: bool = False


_CONTRACT_DECODER = msgspec.json.Decoder(ContractData)
_CONTRACT_LIST_DECODER = msgspec.json.Decoder(list[ContractData])


def _whole(value: Decimal, field: str) -> int:
    if value != value.to_integral_value():
        raise TradeMathError(f"{field} must be a whole number, got {value}")
    return int(value)


def contract_spec_from_data(data: ContractData) -> ContractSpec:
    """Convert the decoded REST contract into a :class:`ContractSpec` (linear only)."""
    if data.is_inverse:
        raise TradeMathError(f"{data.symbol} is an inverse contract (isInverse); not supported")
    return ContractSpec(
        symbol=data.symbol,
        tick_size=data.tick_size,
        lot_size=_whole(data.lot_size, "lotSize"),
        multiplier=data.multiplier,
        maker_fee=data.maker_fee_rate,
        taker_fee=data.taker_fee_rate,
        maint_margin=data.maintain_margin,
        max_leverage=_whole(data.max_leverage, "maxLeverage"),
    )


def decode_contract_spec(raw: bytes | str) -> ContractSpec:
    """Decode the JSON of one contract (the ``data`` object of /api/v1/contracts/{symbol})."""
    try:
        data = _CONTRACT_DECODER.decode(raw)
    except msgspec.ValidationError as error:
        raise TradeMathError(f"contract spec: {error}") from None
    except msgspec.DecodeError as error:
        raise TradeMathError(f"contract spec is not valid JSON: {error}") from None
    return contract_spec_from_data(data)


class ContractSpecList(msgspec.Struct, frozen=True, kw_only=True):
    """The usable contracts of /api/v1/contracts/active and the ones refused, with why.

    Parameters
    ----------
    specs
        One :class:`ContractSpec` per linear contract, in the exchange's order.
    rejected
        ``"SYMBOL: reason"`` for each contract that could not be used (inverse contracts,
        impossible values); they are reported, never silently dropped.
    """

    specs: tuple[ContractSpec, ...]
    rejected: tuple[str, ...]


def decode_contract_specs(raw: bytes | str) -> ContractSpecList:
    """Decode the JSON array of /api/v1/contracts/active (the ``data`` list).

    A malformed array raises; a well-formed contract that is not usable (an inverse
    contract such as XBTUSDM) is listed in ``rejected`` instead of failing the others.
    """
    try:
        items = _CONTRACT_LIST_DECODER.decode(raw)
    except msgspec.ValidationError as error:
        raise TradeMathError(f"contract list: {error}") from None
    except msgspec.DecodeError as error:
        raise TradeMathError(f"contract list is not valid JSON: {error}") from None
    specs: list[ContractSpec] = []
    rejected: list[str] = []
    for item in items:
        try:
            specs.append(contract_spec_from_data(item))
        except TradeMathError as error:
            rejected.append(f"{item.symbol}: {error}")
    return ContractSpecList(specs=tuple(specs), rejected=tuple(rejected))
