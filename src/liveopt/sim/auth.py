"""Verification of signed private requests, exactly as kucoin-protocol.md section 3.1.

The simulator holds one API key. Every private request must carry the five ``KC-API-*``
headers; the signature covers ``timestamp + METHOD + path-with-query + body`` as sent, and
for key versions 2 and 3 the passphrase header is itself signed. Failures raise
``AuthError`` with the exchange's code (400001 .. 400005); no message ever contains the
secret, the passphrase or a signature.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import unquote

from liveopt.exchange.signing import Credentials, prehash, sign, signature_matches

ACCEPTED_KEY_VERSIONS = ("1", "2", "3")
REQUIRED_HEADERS = ("KC-API-KEY", "KC-API-SIGN", "KC-API-TIMESTAMP", "KC-API-PASSPHRASE")


class AuthError(Exception):
    """A rejected private request: ``code`` is the exchange's error code, ``http_status``
    the HTTP status the simulator answers with."""

    def __init__(self, code: str, message: str, http_status: int = 401) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


class RequestVerifier:
    """Checks the auth headers of one request against the configured credentials.

    ``max_skew_ms`` is the largest accepted distance between ``KC-API-TIMESTAMP`` and the
    server clock (the caller passes the clock reading, so tests control it).
    """

    def __init__(self, credentials: Credentials, max_skew_ms: int = 5000) -> None:
        self._credentials = credentials
        self._max_skew_ms = max_skew_ms
        # The signed form of the passphrase is fixed for the key: compute it once.
        self._signed_passphrase = sign(credentials.secret, credentials.passphrase)

    def __repr__(self) -> str:
        return f"RequestVerifier(key={self._credentials.key!r}, max_skew_ms={self._max_skew_ms})"

    @property
    def key(self) -> str:
        """The accepted API key (not secret)."""
        return self._credentials.key

    def verify(self, headers: Mapping[str, str], method: str, path_with_query: str,
               body: str, now_ms: int) -> str:
        """Return the API key of a correctly signed request, or raise ``AuthError``.

        ``path_with_query`` is the request target exactly as received. Clients that sign
        the unescaped query but send it percent-encoded (the official SDK does) are also
        accepted: the unescaped form is tried second.
        """
        missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
        if missing:
            raise AuthError("400001", f"Please check the header of your request for "
                                      f"{', '.join(missing)}")
        version = headers.get("KC-API-KEY-VERSION", "1")
        if version not in ACCEPTED_KEY_VERSIONS:
            raise AuthError("400001", f"KC-API-KEY-VERSION must be one of "
                                      f"{', '.join(ACCEPTED_KEY_VERSIONS)}, got {version!r}")
        timestamp = headers["KC-API-TIMESTAMP"]
        if not timestamp.isdigit():
            raise AuthError("400002", "KC-API-TIMESTAMP must be Unix time in milliseconds")
        if abs(int(timestamp) - now_ms) > self._max_skew_ms:
            raise AuthError("400002", f"KC-API-TIMESTAMP Invalid -- Time differs from server "
                                      f"time by more than {self._max_skew_ms} ms")
        if not hmac.compare_digest(headers["KC-API-KEY"], self._credentials.key):
            raise AuthError("400003", "KC-API-KEY not exists")
        expected_passphrase = (self._credentials.passphrase if version == "1"
                               else self._signed_passphrase)
        if not hmac.compare_digest(headers["KC-API-PASSPHRASE"], expected_passphrase):
            raise AuthError("400004", "Invalid KC-API-PASSPHRASE")
        signature = headers["KC-API-SIGN"]
        candidates = [path_with_query]
        unescaped = unquote(path_with_query)
        if unescaped != path_with_query:
            candidates.append(unescaped)
        for target in candidates:
            if signature_matches(self._credentials.secret,
                                 prehash(timestamp, method, target, body), signature):
                return self._credentials.key
        raise AuthError("400005", "Signature verification failed")
