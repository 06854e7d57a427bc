"""The WebSocket connect token ("bullet"), kucoin-protocol.md section 1.1."""

import msgspec


class InstanceServer(msgspec.Struct, frozen=True, rename="camel"):
    """One WebSocket endpoint from a bullet response; intervals are milliseconds."""

    endpoint: str
    ping_interval: int
    ping_timeout: int
    encrypt: bool = True
    protocol: str = "websocket"


class BulletToken(msgspec.Struct, frozen=True, rename="camel"):
    """The ``data`` of ``POST /api/v1/bullet-public`` (or ``-private``)."""

    token: str
    instance_servers: list[InstanceServer]

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("bullet token: token is empty")
        if not self.instance_servers:
            raise ValueError("bullet token: instanceServers is empty")

    def __repr__(self) -> str:  # the token is a credential for the connection
        return f"BulletToken(token=<hidden>, instance_servers={self.instance_servers!r})"

    __str__ = __repr__
