"""A local KuCoin-futures-compatible exchange (``liveopt sim``): the same REST and
WebSocket protocol as the real one, a replayed or generated market, order matching,
positions with margin and liquidation, rate-limit pools and fault injection. Tests, the
demo and load experiments run the real client code against it without the internet.
"""
