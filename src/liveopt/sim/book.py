"""Order book of one simulated symbol, in integer ticks and lots.

The published size of a level is the other traders' liquidity (set by the market source's
ladder, reduced when the account's orders take it) plus the account's own resting limit
orders at that price. Every change of a published level size increments the level2
sequence by exactly one, so a client that applies the changes to a snapshot taken at
sequence ``s`` reproduces the book: that is the calibration of kucoin-protocol.md 2.3.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["LevelChange", "OrderBook", "Side"]

Side = Literal["buy", "sell"]


class LevelChange(msgspec.Struct, frozen=True, kw_only=True):
    """One change of a published level.

    Parameters
    ----------
    sequence : int
        The level2 sequence after this change (contiguous, +1 per change).
    side : str
        ``"buy"`` for a bid level, ``"sell"`` for an ask level.
    price_ticks : int
        Level price in ticks.
    size : int
        New absolute size in lots; 0 means the level is gone.
    """

    sequence: int
    side: Side
    price_ticks: int
    size: int


class OrderBook:
    """Published levels of one symbol: market liquidity plus the account's resting orders.

    Parameters
    ----------
    symbol : str
        The symbol (for error messages).
    start_sequence : int
        The level2 sequence before the first change.
    """

    def __init__(self, symbol: str, start_sequence: int = 0) -> None:
        self.symbol = symbol
        self.sequence = start_sequence
        self._market: dict[Side, dict[int, int]] = {"buy": {}, "sell": {}}
        self._user: dict[Side, dict[int, int]] = {"buy": {}, "sell": {}}

    # -- queries
    def size_at(self, side: Side, price_ticks: int) -> int:
        """Published size of a level (0 if absent)."""
        return self._market[side].get(price_ticks, 0) + self._user[side].get(price_ticks, 0)

    def levels(self, side: Side, depth: int | None = None) -> list[tuple[int, int]]:
        """Published ``(price_ticks, size)`` levels, best first, at most ``depth``."""
        prices = set(self._market[side]) | set(self._user[side])
        ordered = sorted(prices, reverse=(side == "buy"))
        if depth is not None:
            ordered = ordered[:depth]
        return [(p, self.size_at(side, p)) for p in ordered]

    def market_levels(self, side: Side) -> list[tuple[int, int]]:
        """The other traders' levels only, best first (what the account can trade with)."""
        book = self._market[side]
        return sorted(book.items(), reverse=(side == "buy"))

    def best(self, side: Side) -> tuple[int, int] | None:
        """Best published ``(price_ticks, size)`` of a side, or ``None`` if empty."""
        top = self.levels(side, 1)
        return top[0] if top else None

    def best_market_price(self, side: Side) -> int | None:
        """Best price of the other traders' liquidity on a side, or ``None``."""
        book = self._market[side]
        if not book:
            return None
        return max(book) if side == "buy" else min(book)

    # -- changes
    def replace_market(
        self,
        bids: tuple[tuple[int, int], ...] | list[tuple[int, int]],
        asks: tuple[tuple[int, int], ...] | list[tuple[int, int]],
    ) -> list[LevelChange]:
        """Replace the other traders' ladder; return the published level changes."""
        changes: list[LevelChange] = []
        for side, ladder in (("buy", bids), ("sell", asks)):
            new = {price: size for price, size in ladder if size > 0}
            old = self._market[side]
            touched = sorted(set(old) | set(new), reverse=(side == "buy"))
            before = {p: self.size_at(side, p) for p in touched}
            self._market[side] = new
            changes.extend(self._diff(side, before))
        return changes

    def take_market(self, side: Side, price_ticks: int, size: int) -> list[LevelChange]:
        """Remove ``size`` lots of other traders' liquidity from a level (they traded)."""
        book = self._market[side]
        available = book.get(price_ticks, 0)
        if size <= 0 or size > available:
            raise ValueError(
                f"{self.symbol}: cannot take {size} lots at {side} {price_ticks}, "
                f"{available} available")
        before = {price_ticks: self.size_at(side, price_ticks)}
        if size == available:
            del book[price_ticks]
        else:
            book[price_ticks] = available - size
        return self._diff(side, before)

    def add_user(self, side: Side, price_ticks: int, size: int) -> list[LevelChange]:
        """Add the account's resting size to a level."""
        if size <= 0:
            raise ValueError(f"size: must be > 0, got {size!r}")
        before = {price_ticks: self.size_at(side, price_ticks)}
        book = self._user[side]
        book[price_ticks] = book.get(price_ticks, 0) + size
        return self._diff(side, before)

    def remove_user(self, side: Side, price_ticks: int, size: int) -> list[LevelChange]:
        """Remove the account's resting size (filled or cancelled) from a level."""
        book = self._user[side]
        resting = book.get(price_ticks, 0)
        if size <= 0 or size > resting:
            raise ValueError(
                f"{self.symbol}: cannot remove {size} lots of own orders at {side} "
                f"{price_ticks}, {resting} resting")
        before = {price_ticks: self.size_at(side, price_ticks)}
        if size == resting:
            del book[price_ticks]
        else:
            book[price_ticks] = resting - size
        return self._diff(side, before)

    def _diff(self, side: Side, before: dict[int, int]) -> list[LevelChange]:
        changes: list[LevelChange] = []
        for price, old_size in before.items():
            new_size = self.size_at(side, price)
            if new_size != old_size:
                self.sequence += 1
                changes.append(LevelChange(
                    sequence=self.sequence, side=side, price_ticks=price, size=new_size))
        return changes
