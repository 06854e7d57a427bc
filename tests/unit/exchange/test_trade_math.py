"""TradeMath: exact order arithmetic for linear perpetuals (issue 5, origin-system.md B.3.5)."""

import math
import re
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from liveopt._core import paper_math
from liveopt.exchange.trade_math import (
    ContractSpec,
    OrderTooSmallError,
    Side,
    TickRounding,
    TradeMathError,
    break_even_price,
    break_even_roi_pct,
    decode_contract_spec,
    decode_contract_specs,
    exact,
    format_decimal,
    gross_pnl,
    liquidation_price,
    liquidation_roi_pct,
    net_pnl,
    position_margin,
    position_size,
    price_at_roi,
    protective_stop_price,
    roi_pct,
    slippage_adjusted_stop,
    stop_loss_price,
    take_profit_price,
)

XBT = ContractSpec(
    symbol="XBTUSDTM",
    tick_size=Decimal("0.1"),
    lot_size=1,
    multiplier=Decimal("0.001"),
    maker_fee=Decimal("0.0002"),
    taker_fee=Decimal("0.0006"),
    maint_margin=Decimal("0.004"),
    max_leverage=125,
)
CENT_TICK = ContractSpec(
    symbol="SOLUSDTM",
    tick_size=Decimal("0.01"),
    lot_size=1,
    multiplier=Decimal("0.01"),
    maker_fee=Decimal("0.0002"),
    taker_fee=Decimal("0.0006"),
    maint_margin=Decimal("0.01"),
    max_leverage=75,
)
COARSE = ContractSpec(
    symbol="TESTUSDTM",
    tick_size=Decimal("0.5"),
    lot_size=10,
    multiplier=Decimal("1"),
    maker_fee=Decimal("-0.0001"),
    taker_fee=Decimal("0.0006"),
    maint_margin=Decimal("0.005"),
    max_leverage=50,
)
UNIT = msgspec.structs.replace(
    XBT, symbol="UNITUSDTM", tick_size=Decimal("0.01"), multiplier=Decimal("1")
)
SPECS = st.sampled_from([XBT, CENT_TICK, COARSE])
SIDES = st.sampled_from([Side.LONG, Side.SHORT])
FEES = st.decimals(min_value=0, max_value=Decimal("0.002"), places=5)
LEVERAGES = st.integers(min_value=1, max_value=100)
ROIS = st.decimals(min_value=Decimal("0.01"), max_value=200, places=2)


def _price_on_tick(spec: ContractSpec):
    # At least 100 ticks: a price of one or two ticks has no room for a rounded target.
    return st.integers(min_value=100, max_value=2_000_000).map(spec.ticks_to_price)


@st.composite
def _spec_and_price(draw):
    spec = draw(SPECS)
    return spec, draw(_price_on_tick(spec))


# --- the origin's correct fixed values (B.3.5) -------------------------------------------


def test_sizing_takes_half_percent_of_10000_as_margin_50_and_notional_500_at_10x():
    size = position_size(UNIT, 10000, "0.5", 10, 100)
    assert size.margin_budget == 50
    assert size.notional_budget == 500
    assert size.lots == 5  # 500 of notional at 100 per contract of multiplier 1
    assert size.notional == 500 and size.margin == 50


def test_pnl_of_4_on_margin_50_is_an_roi_of_8_percent():
    pnl = gross_pnl(UNIT, Side.LONG, 100, 104, 1)
    assert pnl == 4
    assert roi_pct(pnl, 50) == 8


def test_stop_and_target_from_roi_at_10x_match_the_origin_values():
    assert stop_loss_price(Side.LONG, 100, "0.5", 10) == Fraction("99.95")
    assert take_profit_price(Side.LONG, 100, 2, 10) == Fraction("100.2")
    assert stop_loss_price(Side.SHORT, 100, "0.5", 10) == Fraction("100.05")
    assert take_profit_price(Side.SHORT, 100, 2, 10) == Fraction("99.8")


def test_slippage_moves_the_stop_fill_against_the_position():
    assert slippage_adjusted_stop(Side.LONG, 100, "0.02") == Fraction("99.98")
    assert slippage_adjusted_stop(Side.SHORT, 100, "0.02") == Fraction("100.02")


# --- the corrected values (origin defects C.7) -------------------------------------------


def test_liquidation_uses_the_standard_isolated_estimate_not_the_origins_8995():
    long_liquidation = liquidation_price(Side.LONG, 10000, 10, "0.005")
    assert long_liquidation == 9050
    assert long_liquidation != 8995  # the origin's formula put it beyond the real level
    assert liquidation_price(Side.SHORT, 10000, 10, "0.005") == 10950


def test_break_even_is_a_price_move_of_both_fees_not_multiplied_by_leverage():
    price = break_even_price(Side.LONG, 100, "0.0006", "0.0006")
    # First order: 100 * (1 + 0.0006 + 0.0006) = 100.12; the exact value adds the exit fee
    # charged on that move, 100 * 0.0006 * 0.0012 / 0.9994.
    second_order = Fraction(100) * Fraction("0.0006") * Fraction("0.0012") / Fraction("0.9994")
    assert price - Fraction("100.12") == second_order
    assert price < Fraction("100.2")  # the origin's leverage-scaled value was about 101.24
    roi = break_even_roi_pct(Side.LONG, "0.0006", "0.0006", 10)
    assert roi - Fraction("1.2") == second_order / 100 * 10 * 100
    with_buffer = break_even_roi_pct(Side.LONG, "0.0006", "0.0006", 10, buffer_pct="0.1")
    assert round(float(with_buffer), 2) == 1.3


def test_liquidation_roi_is_minus_95_percent_at_10x_with_half_percent_maintenance():
    assert liquidation_roi_pct(10, "0.005") == -95


# --- rounding, wire form -----------------------------------------------------------------


def test_nearest_tick_rounds_a_half_tick_away_from_zero():
    assert XBT.round_price_to_tick("100.05") == Decimal("100.1")
    assert XBT.round_price_to_tick("100.04999") == Decimal("100.0")
    assert CENT_TICK.round_price_to_tick("1.005") == Decimal("1.01")
    assert XBT.price_to_ticks("-0.05", TickRounding.NEAREST) == -1


def test_exact_tick_conversion_refuses_an_off_tick_price_by_name():
    with pytest.raises(TradeMathError, match=r"price is not a whole number of ticks"):
        XBT.price_to_ticks("100.05")
    assert XBT.price_to_ticks("88987.4") == 889874


def test_float_noise_never_reaches_the_wire():
    assert XBT.price_to_wire(XBT.round_price_to_tick(0.1 + 0.2)) == "0.3"
    assert CENT_TICK.price_to_wire(CENT_TICK.round_price_to_tick(1.1 * 3)) == "3.3"
    assert XBT.price_to_wire("88987.40") == "88987.4"
    assert format_decimal(Decimal("1E+2")) == "100"


def test_stops_round_away_from_the_market_and_targets_away_from_entry():
    assert XBT.round_stop_price(Side.LONG, "99.95") == Decimal("99.9")
    assert XBT.round_stop_price(Side.SHORT, "100.05") == Decimal("100.1")
    assert XBT.round_target_price(Side.LONG, "100.12") == Decimal("100.2")
    assert XBT.round_target_price(Side.SHORT, "99.88") == Decimal("99.8")


def test_lot_rounding_floors_to_a_multiple_of_the_lot_size():
    assert XBT.round_down_to_lot("7.999") == 7
    assert COARSE.round_down_to_lot(29) == 20


def test_protective_stop_is_refused_when_liquidation_comes_first():
    # Liquidation at 10x with 0.4 % maintenance margin is at -96 % ROI.
    assert protective_stop_price(XBT, Side.LONG, 100, 50, 10) == Decimal("95.0")
    with pytest.raises(TradeMathError, match="liquidation"):
        protective_stop_price(XBT, Side.LONG, 100, 97, 10)


# --- bad input ---------------------------------------------------------------------------


def test_a_margin_below_one_lot_is_refused_with_a_clear_error():
    with pytest.raises(OrderTooSmallError, match="less than one lot of 10"):
        position_size(COARSE, 100, 1, 5, 1000)  # 5 of notional buys 0.005 contracts


def test_leverage_above_the_contract_maximum_is_refused():
    with pytest.raises(TradeMathError, match="max_leverage 125"):
        position_size(XBT, 10000, 1, 150, 90000)


def test_leverage_so_high_that_entry_is_already_liquidated_is_refused():
    with pytest.raises(TradeMathError, match="liquidated at entry"):
        liquidation_price(Side.LONG, 100, 125, "0.01")


@pytest.mark.parametrize(
    ("value", "message"),
    [(True, "bool"), (float("nan"), "finite"), ("abc", "not a decimal"), ([1], "list")],
)
def test_bad_numbers_are_refused_naming_the_field(value, message):
    with pytest.raises(TradeMathError, match=f"entry.*{message}|{message}.*entry"):
        exact(value, "entry")


def test_bad_side_is_refused():
    with pytest.raises(TradeMathError, match="side must be"):
        stop_loss_price(0, 100, 1, 10)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tick_size", 0.1, "tick_size must be a finite Decimal"),
        ("tick_size", Decimal("0"), "tick_size must be positive"),
        ("multiplier", Decimal("-1"), "inverse"),
        ("lot_size", 0, "lot_size must be an integer"),
        ("maint_margin", Decimal("5"), "maint_margin is a fraction"),
        ("taker_fee", Decimal("6"), "taker_fee is a fraction"),
    ],
)
def test_contract_spec_refuses_impossible_values_naming_the_field(field, value, message):
    fields = msgspec.structs.asdict(XBT) | {field: value}
    with pytest.raises(TradeMathError, match=message):
        ContractSpec(**fields)


# --- contract spec from the REST shape (kucoin-protocol.md 3.7) ----------------------------

_CONTRACT_JSON = (
    b'{"symbol":"XBTUSDTM","rootSymbol":"USDT","type":"FFWCSX","baseCurrency":"XBT",'
    b'"quoteCurrency":"USDT","settleCurrency":"USDT","expireDate":null,"maxOrderQty":1000000,'
    b'"maxPrice":1000000.0,"lotSize":1,"tickSize":0.1,"indexPriceTickSize":0.01,'
    b'"multiplier":0.001,"initialMargin":0.008,"maintainMargin":0.004,"makerFeeRate":0.0002,'
    b'"takerFeeRate":0.0006,"isInverse":false,"status":"Open","maxLeverage":125,'
    b'"sourceExchanges":["binance"],"fundingFeeRate":0.000052}'
)


def test_contract_spec_decodes_the_documented_shape_exactly():
    assert decode_contract_spec(_CONTRACT_JSON) == XBT


def test_contract_spec_with_a_missing_field_names_it():
    broken = _CONTRACT_JSON.replace(b'"tickSize":0.1,', b"")
    with pytest.raises(TradeMathError, match="tickSize"):
        decode_contract_spec(broken)


def test_contract_list_reports_inverse_contracts_instead_of_dropping_them():
    inverse = _CONTRACT_JSON.replace(b"XBTUSDTM", b"XBTUSDM").replace(
        b'"isInverse":false', b'"isInverse":true'
    )
    listing = decode_contract_specs(b"[" + _CONTRACT_JSON + b"," + inverse + b"]")
    assert listing.specs == (XBT,)
    assert len(listing.rejected) == 1 and listing.rejected[0].startswith("XBTUSDM: ")


# --- properties --------------------------------------------------------------------------


@given(_spec_and_price(), SIDES, ROIS, LEVERAGES)
def test_stop_is_on_the_losing_side_and_target_on_the_winning_side(spec_price, side, roi, lev):
    _spec, entry = spec_price
    for price_for, sign in ((stop_loss_price, -1), (take_profit_price, +1)):
        if side * sign < 0 and roi >= lev * 100:  # the price would fall to zero or below
            with pytest.raises(TradeMathError, match="at or below zero"):
                price_for(side, entry, roi, lev)
            continue
        price = price_for(side, entry, roi, lev)
        assert side * sign * (price - Fraction(entry)) > 0


@given(_spec_and_price(), SIDES, ROIS, LEVERAGES)
def test_liquidation_is_beyond_the_stop_when_the_stop_loses_less_than_liquidation(
    spec_price, side, roi, lev
):
    spec, entry = spec_price
    assume(side is Side.SHORT or roi < lev * 100)  # a long cannot lose more than its price
    if lev * spec.maint_margin >= 1:
        with pytest.raises(TradeMathError, match="liquidated at entry"):
            liquidation_price(side, entry, lev, spec.maint_margin)
        return
    liquidation = liquidation_price(side, entry, lev, spec.maint_margin)
    stop = stop_loss_price(side, entry, roi, lev)
    stop_beyond_liquidation = side * (stop - liquidation) <= 0
    assert stop_beyond_liquidation == (roi >= -liquidation_roi_pct(lev, spec.maint_margin))


@given(SIDES, FEES, FEES, LEVERAGES, st.integers(min_value=1, max_value=50), _spec_and_price())
def test_break_even_roi_rises_with_leverage_but_its_price_does_not_move(
    side, fee_in, fee_out, lev, extra, spec_price
):
    _spec, entry = spec_price
    low = break_even_roi_pct(side, fee_in, fee_out, lev)
    high = break_even_roi_pct(side, fee_in, fee_out, lev + extra)
    if fee_in + fee_out > 0:
        assert high > low
    price = break_even_price(side, entry, fee_in, fee_out)
    assert price_at_roi(side, entry, low, lev) == price
    assert price_at_roi(side, entry, high, lev + extra) == price


@given(_spec_and_price(), SIDES, FEES, FEES, st.integers(min_value=1, max_value=10_000))
def test_closing_at_break_even_nets_zero_and_its_tick_nets_less_than_a_tick(
    spec_price, side, fee_in, fee_out, lots
):
    spec, entry = spec_price
    price = break_even_price(side, entry, fee_in, fee_out)
    assert net_pnl(spec, side, entry, price, lots, fee_in, fee_out) == 0
    on_tick = spec.round_target_price(side, price)
    net = net_pnl(spec, side, entry, on_tick, lots, fee_in, fee_out)
    # Net PnL moves by lots * multiplier * (1 -/+ fee_out) per unit of exit price.
    one_tick_of_pnl = lots * Fraction(spec.multiplier) * Fraction(spec.tick_size)
    assert 0 <= net < one_tick_of_pnl * (1 + Fraction(fee_out))


@given(SPECS, st.decimals(min_value=Decimal("0.0001"), max_value=10**7, places=6))
def test_tick_rounding_gives_exact_multiples_that_round_trip_through_the_wire(spec, price):
    tick = Fraction(spec.tick_size)
    for mode in (TickRounding.NEAREST, TickRounding.DOWN, TickRounding.UP):
        rounded = spec.round_price_to_tick(price, mode)
        assert (Fraction(rounded) / tick).denominator == 1
        error = Fraction(rounded) - Fraction(price)
        if mode is TickRounding.NEAREST:
            assert abs(error) <= tick / 2
        elif mode is TickRounding.DOWN:
            assert -tick < error <= 0
        else:
            assert 0 <= error < tick
        wire = spec.price_to_wire(rounded)
        assert re.fullmatch(r"-?\d+(\.\d*[1-9])?", wire)
        assert spec.price_from_wire(wire) == spec.price_to_ticks(rounded)
        assert Decimal(wire) == rounded


@given(
    _spec_and_price(),
    st.decimals(min_value=100, max_value=10**7, places=2),
    st.decimals(min_value=Decimal("0.01"), max_value=100, places=2),
    LEVERAGES,
)
def test_lot_rounding_never_exceeds_the_margin_budget_and_wastes_less_than_a_lot(
    spec_price, balance, pct, lev
):
    spec, price = spec_price
    lev = min(lev, spec.max_leverage)
    lot_value = spec.lot_size * Fraction(price) * Fraction(spec.multiplier)
    try:
        size = position_size(spec, balance, pct, lev, price)
    except OrderTooSmallError:
        assert Fraction(balance) * Fraction(pct) / 100 * lev < lot_value
        return
    assert size.lots % spec.lot_size == 0 and size.lots >= spec.lot_size
    assert size.margin <= size.margin_budget
    assert size.notional_budget - size.notional < lot_value
    assert size.margin == position_margin(spec, price, size.lots, lev)


@given(_spec_and_price(), SIDES, st.integers(min_value=-10**6, max_value=10**6),
       st.integers(min_value=1, max_value=10_000))
def test_pnl_sign_matches_side_times_price_move(spec_price, side, tick_move, lots):
    spec, entry = spec_price
    exit_ticks = spec.price_to_ticks(entry) + tick_move
    assume(exit_ticks >= 1)  # a price at or below zero is not a price
    pnl = gross_pnl(spec, side, entry, spec.ticks_to_price(exit_ticks), lots)
    assert (pnl > 0) - (pnl < 0) == side * ((tick_move > 0) - (tick_move < 0))


# --- agreement with the engine's float kernels (liveopt._core.paper_math) -----------------


@given(_spec_and_price(), SIDES, FEES, FEES, LEVERAGES,
       st.decimals(min_value=Decimal("-150"), max_value=150, places=2))
def test_exact_formulas_agree_with_the_engine_float_kernels(
    spec_price, side, fee_in, fee_out, lev, roi
):
    spec, entry = spec_price
    entry_f = float(entry)
    if lev * spec.maint_margin < 1:
        assert math.isclose(
            float(liquidation_price(side, entry, lev, spec.maint_margin)),
            paper_math.liquidation_price_nb(float(side), entry_f, lev, float(spec.maint_margin)),
            rel_tol=1e-12,
        )
    assert math.isclose(
        float(break_even_roi_pct(side, fee_in, fee_out, lev)),
        paper_math.break_even_roi_pct_nb(
            float(side), entry_f, float(fee_in), float(fee_out), float(lev)
        ),
        rel_tol=1e-9, abs_tol=1e-9,
    )
    if side * roi > -lev * 100:  # a positive price (a short's price falls as its ROI rises)
        assert math.isclose(
            float(price_at_roi(side, entry, roi, lev)),
            paper_math.price_at_roi_nb(float(side), entry_f, float(roi), float(lev)),
            rel_tol=1e-12, abs_tol=entry_f * 1e-12,  # 1 - 1 cancels in floats near -100 %
        )


@given(
    _spec_and_price(),
    st.decimals(min_value=100, max_value=10**7, places=2),
    st.decimals(min_value=Decimal("0.01"), max_value=100, places=2),
    LEVERAGES,
)
def test_exact_lots_agree_with_the_engine_float_kernel(spec_price, balance, pct, lev):
    spec, price = spec_price
    lev = min(lev, spec.max_leverage)
    engine_lots = paper_math.lots_for_margin_nb(
        float(balance), float(pct), float(lev), float(price), float(spec.multiplier),
        float(spec.lot_size),
    )
    try:
        lots = position_size(spec, balance, pct, lev, price).lots
    except OrderTooSmallError:
        lots = 0
    exact_contracts = (
        Fraction(balance) * Fraction(pct) / 100 * lev
        / (Fraction(price) * Fraction(spec.multiplier) * spec.lot_size)
    )
    # Floats can only disagree when the exact quotient is within float precision of a lot
    # boundary; then the two differ by exactly one lot.
    near_boundary = abs(exact_contracts - round(exact_contracts)) < exact_contracts * 1e-12
    assert engine_lots == lots or (near_boundary and abs(engine_lots - lots) == spec.lot_size)
