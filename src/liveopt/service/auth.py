"""The bearer-token check for the control endpoints.

The API never sees the token itself: it holds an object with ``matches(candidate)`` (the
daemon's ``liveopt.service.token.ApiToken``), which compares in constant time. The
candidate comes from ``Authorization: Bearer <token>``; anything else is refused with 401
and ``WWW-Authenticate: Bearer``. Neither the token nor the candidate is ever logged or
echoed back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

#: The realm named in ``WWW-Authenticate`` on every 401.
WWW_AUTHENTICATE = 'Bearer realm="liveopt"'
_SCHEME = "bearer"


class ApiTokenLike(Protocol):
    """A secret that can only be compared, never read (constant-time ``matches``)."""

    def matches(self, candidate: str) -> bool: ...


class AuthFailure(Exception):
    """Why a request is not authorised; the message is safe to return (it names no secret)."""


def bearer_candidate(authorization: str | None) -> str:
    """The token presented in an ``Authorization`` header value.

    Raises ``AuthFailure`` when the header is missing, uses another scheme, or is empty.
    """
    if authorization is None or not authorization.strip():
        raise AuthFailure("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, candidate = authorization.strip().partition(" ")
    if scheme.lower() != _SCHEME:
        raise AuthFailure("unsupported authorization scheme (expected 'Bearer <token>')")
    candidate = candidate.strip()
    if not candidate:
        raise AuthFailure("empty bearer token")
    return candidate


def check_bearer(headers: Mapping[str, str], token: ApiTokenLike) -> None:
    """Raise ``AuthFailure`` unless ``headers`` carry ``Authorization: Bearer <token>``."""
    candidate = bearer_candidate(headers.get("Authorization"))
    try:
        matched = token.matches(candidate)
    except (UnicodeError, TypeError):
        # Undecodable header bytes are just a wrong token, not a server error.
        matched = False
    if not matched:
        raise AuthFailure("invalid bearer token")
