"""Order book of the simulator: level changes, sequences and snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.sim.book import LevelChange, OrderBook


def _apply(levels: dict[tuple[str, int], int], changes: list[LevelChange]) -> None:
    for change in changes:
        key = (change.side, change.price_ticks)
        if change.size == 0:
            levels.pop(key, None)
        else:
            levels[key] = change.size


def _published(book: OrderBook) -> dict[tuple[str, int], int]:
    return {(side, price): size for side in ("buy", "sell") for price, size in book.levels(side)}


def test_replacing_the_ladder_reports_only_levels_whose_size_changed() -> None:
    book = OrderBook("XBTUSDTM", start_sequence=10)
    book.replace_market([(100, 5), (99, 7)], [(101, 3)])
    changes = book.replace_market([(100, 5), (99, 8)], [(102, 4)])
    assert {(c.side, c.price_ticks, c.size) for c in changes} == {
        ("buy", 99, 8), ("sell", 101, 0), ("sell", 102, 4)}
    assert [c.sequence for c in changes] == [14, 15, 16]
    assert book.sequence == 16


def test_own_resting_size_adds_to_the_published_level() -> None:
    book = OrderBook("XBTUSDTM")
    book.replace_market([(100, 5)], [(105, 2)])
    changes = book.add_user("buy", 100, 3)
    assert [(c.side, c.price_ticks, c.size) for c in changes] == [("buy", 100, 8)]
    assert book.best("buy") == (100, 8)
    assert book.market_levels("buy") == [(100, 5)]


def test_taking_more_than_the_level_holds_is_refused_and_names_the_level() -> None:
    book = OrderBook("XBTUSDTM")
    book.replace_market([(100, 5)], [(105, 2)])
    with pytest.raises(ValueError, match="cannot take 3 lots at sell 105"):
        book.take_market("sell", 105, 3)


def test_removing_own_size_that_is_not_resting_is_refused() -> None:
    book = OrderBook("XBTUSDTM")
    with pytest.raises(ValueError, match="0 resting"):
        book.remove_user("buy", 100, 1)


_ladder = st.lists(st.tuples(st.integers(1, 40), st.integers(0, 50)), max_size=12)
_operation = st.one_of(
    st.tuples(st.just("replace"), _ladder, _ladder),
    st.tuples(st.just("add"), st.sampled_from(["buy", "sell"]), st.integers(1, 80),
              st.integers(1, 20)),
    st.tuples(st.just("take"), st.sampled_from(["buy", "sell"]), st.integers(0, 10**6)),
    st.tuples(st.just("remove"), st.sampled_from(["buy", "sell"]), st.integers(0, 10**6)),
)


@settings(max_examples=80, deadline=None)
@given(operations=st.lists(_operation, max_size=25))
def test_snapshot_plus_changes_always_reproduces_the_book(operations: list[tuple]) -> None:
    book = OrderBook("XBTUSDTM", start_sequence=1000)
    snapshot_sequence = book.sequence
    mirror = _published(book)
    last_sequence = snapshot_sequence
    for operation in operations:
        kind = operation[0]
        if kind == "replace":
            bids = dict(operation[1])
            asks = {p + 50: s for p, s in operation[2]}
            changes = book.replace_market(sorted(bids.items(), reverse=True),
                                          sorted(asks.items()))
        elif kind == "add":
            changes = book.add_user(operation[1], operation[2], operation[3])
        else:
            side = operation[1]
            levels = (book.market_levels(side) if kind == "take"
                      else [(p, s - dict(book.market_levels(side)).get(p, 0))
                            for p, s in book.levels(side)])
            levels = [(p, s) for p, s in levels if s > 0]
            if not levels:
                continue
            price, size = levels[operation[2] % len(levels)]
            amount = 1 + operation[2] % size
            changes = (book.take_market(side, price, amount) if kind == "take"
                       else book.remove_user(side, price, amount))
        for change in changes:
            last_sequence += 1
            assert change.sequence == last_sequence
        _apply(mirror, changes)
        assert mirror == _published(book)
    assert book.sequence == last_sequence
