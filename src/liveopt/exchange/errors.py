"""Typed KuCoin futures REST errors (kucoin-protocol.md section 3.2).

KuCoin reports failure in the ``code`` field of the envelope, sometimes with HTTP 200, so the
client classifies every response by ``code`` first and by HTTP status second. Each class
tells the caller what to do: back off (``RateLimitedError``), fix the request
(``InvalidRequestError``), look the order up (``DuplicateClientOidError``), retry later
(``ServerError``, ``TransportError`` when ``retryable``).

Error text carries the exchange's code, message, HTTP status and the endpoint key; it never
carries request headers, so no key secret, passphrase or signature can reach a log line.
"""

from collections.abc import Mapping

SUCCESS_CODE = "200000"
# The exchange's own message text is kept short: it is for humans, and a long echo of a
# request would be the one way a caller's data could leak into an error.
_MAX_MESSAGE_CHARS = 200


class KucoinError(Exception):
    """A failed KuCoin REST call.

    Parameters
    ----------
    code : str
        The envelope's ``code`` (e.g. ``"300003"``), ``""`` when the reply had none.
    message : str
        The envelope's ``msg`` (or a description of what went wrong locally).
    http_status : int
        The HTTP status of the reply, 0 when there was no reply.
    endpoint : str
        The endpoint key, e.g. ``"POST /api/v1/orders"``.
    """

    retryable: bool = False

    def __init__(self, code: str, message: str, http_status: int, endpoint: str) -> None:
        self.code = code
        self.message = message[:_MAX_MESSAGE_CHARS]
        self.http_status = http_status
        self.endpoint = endpoint
        super().__init__(self._text())

    def _text(self) -> str:
        return (f"{self.endpoint}: code {self.code or '-'} (HTTP {self.http_status}): "
                f"{self.message}")

    def __reduce__(self):  # keep pickling (e.g. across processes) working with 4 arguments
        return (type(self), (self.code, self.message, self.http_status, self.endpoint))


class RateLimitedError(KucoinError):
    """HTTP 429 or codes 429000 / 200002 / 1015: back off until the pool resets.

    ``reset_ms`` is the ``gw-ratelimit-reset`` header (milliseconds until the quota resets)
    when the reply had it."""

    retryable = True

    def __init__(self, code: str, message: str, http_status: int, endpoint: str,
                 reset_ms: int | None = None) -> None:
        self.reset_ms = reset_ms
        super().__init__(code, message, http_status, endpoint)

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.http_status, self.endpoint,
                             self.reset_ms))


class AuthenticationError(KucoinError):
    """Codes 400001-400007: missing headers, bad timestamp, unknown key, wrong passphrase,
    bad signature, IP not whitelisted, no permission."""


class TimestampError(AuthenticationError):
    """Code 400002: ``KC-API-TIMESTAMP`` more than 5 s from server time. The client
    re-syncs its clock and retries once; the request was refused, so retrying is safe."""

    retryable = True


class InvalidRequestError(KucoinError):
    """The request itself is wrong (100001, 300000, 400100, price/size/leverage limits, ...);
    repeating it unchanged will fail again."""


class InsufficientFundsError(InvalidRequestError):
    """Code 300003: balance not enough."""


class DuplicateClientOidError(InvalidRequestError):
    """Code 300018: an order with this clientOid exists. ``place_order`` answers it by
    fetching that order; it reaches the caller only when the existing order is not the
    requested one (or cannot be found)."""


class NotCancelableError(KucoinError):
    """Code 100004: the order is done (filled or cancelled) and cannot be cancelled."""


class OrderNotFoundError(KucoinError):
    """The order does not exist (code 20001, or an order lookup that returned no data)."""


class ServerError(KucoinError):
    """Code 500000 or HTTP 5xx: the exchange failed; retrying later may succeed."""

    retryable = True


class MalformedResponseError(KucoinError):
    """The reply could not be decoded into the documented shape; ``message`` names the
    field (e.g. ``Expected `int`, got `str` - at `$.data.size```)."""


class TransportError(KucoinError):
    """No usable reply: timeout, refused or dropped connection. ``retryable`` says whether
    repeating the request can help (a timeout can; a malformed URL cannot). A timed-out
    order may or may not exist on the exchange, which is why orders carry a clientOid."""

    def __init__(self, message: str, endpoint: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__("", message, 0, endpoint)

    def __reduce__(self):
        return (_rebuild_transport_error, (self.message, self.endpoint, self.retryable))


def _rebuild_transport_error(message: str, endpoint: str, retryable: bool) -> TransportError:
    return TransportError(message, endpoint, retryable=retryable)


RATE_LIMIT_CODES = frozenset({"429000", "200002", "1015"})
AUTHENTICATION_CODES = frozenset({f"40000{digit}" for digit in range(1, 8)})
INVALID_REQUEST_CODES = frozenset({
    "100001",  # invalid params
    "300000",  # request parameter illegal
    "300001",  # active order limit exceeded
    "300004",  # stop order limit exceeded
    "300009",  # position size 0, cannot close
    "300011", "300012",  # price above / below the allowed limit
    "300016",  # leverage too high
    "330005",  # margin mode of the order differs from the symbol's
    "400100",  # parameter error
    "404000",  # URL not found
    "411100",  # user frozen
    "415000",  # wrong content type
})
_BY_CODE: dict[str, type[KucoinError]] = {
    "300003": InsufficientFundsError,
    "300018": DuplicateClientOidError,
    "100004": NotCancelableError,
    "20001": OrderNotFoundError,
    "500000": ServerError,
    "400002": TimestampError,
}


def error_from_response(code: str, message: str, http_status: int, endpoint: str,
                        headers: Mapping[str, str] | None = None) -> KucoinError:
    """The typed error for a failed reply: by ``code`` when it is known, else by HTTP status
    (429 rate limited, 401/403 authentication, other 4xx invalid request, 5xx server)."""
    if code in RATE_LIMIT_CODES or http_status == 429:
        return RateLimitedError(code, message, http_status, endpoint, _reset_ms(headers))
    if code in _BY_CODE:
        return _BY_CODE[code](code, message, http_status, endpoint)
    if code in AUTHENTICATION_CODES:
        return AuthenticationError(code, message, http_status, endpoint)
    if code in INVALID_REQUEST_CODES:
        return InvalidRequestError(code, message, http_status, endpoint)
    if http_status >= 500:
        return ServerError(code, message, http_status, endpoint)
    if http_status in (401, 403):
        return AuthenticationError(code, message, http_status, endpoint)
    if 400 <= http_status < 500:
        return InvalidRequestError(code, message, http_status, endpoint)
    return KucoinError(code, message, http_status, endpoint)


def _reset_ms(headers: Mapping[str, str] | None) -> int | None:
    if headers is None:
        return None
    value = headers.get("gw-ratelimit-reset")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
