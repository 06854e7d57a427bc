"""The KuCoin futures side of liveopt (service layer): request signing, the REST and
WebSocket clients, the shared rate-limit budget (``PingBudgetManager``), stop replacement
(``StopReplaceCoordinator``) and exact order arithmetic (``trade_math``).

``../shared/reference/kucoin-protocol.md`` is the protocol reference; ``docs/exchange/``
documents what each module does with it (market data, REST, rate limits, stops, trade math).
"""
