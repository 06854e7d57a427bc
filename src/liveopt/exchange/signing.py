"""KuCoin request signing (API key versions 2 and 3; see kucoin-protocol.md section 3.1).

``KC-API-SIGN`` is ``base64(HMAC-SHA256(secret, timestamp + METHOD + endpoint + body))``
where ``endpoint`` is the path with its query string and ``body`` the exact JSON text sent
(empty when there is none). For key versions 2 and 3 the passphrase header is itself
signed: ``base64(HMAC-SHA256(secret, passphrase))``. The client signs with these functions
and the simulator verifies with them, so both sides share one definition.
"""

import base64
import hashlib
import hmac
import os

import msgspec

SUPPORTED_KEY_VERSIONS = ("2", "3")


class Credentials(msgspec.Struct, frozen=True):
    """An API key. ``repr`` never shows the secret or the passphrase (they must never
    reach a log line)."""

    key: str
    secret: str
    passphrase: str
    key_version: str = "3"

    def __post_init__(self) -> None:
        for name in ("key", "secret", "passphrase"):
            if not getattr(self, name):
                raise ValueError(f"credentials: {name} must not be empty")
        if self.key_version not in SUPPORTED_KEY_VERSIONS:
            raise ValueError(
                f"credentials: key_version must be one of {SUPPORTED_KEY_VERSIONS}, "
                f"got {self.key_version!r}"
            )

    def __repr__(self) -> str:
        return f"Credentials(key={self.key!r}, secret=<hidden>, passphrase=<hidden>, " \
               f"key_version={self.key_version!r})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Credentials | None":
        """``KUCOIN_API_KEY``, ``KUCOIN_API_SECRET``, ``KUCOIN_API_PASSPHRASE`` (and
        optionally ``KUCOIN_API_KEY_VERSION``); None when none of the three is set, a
        ValueError naming the missing ones when only some are."""
        env = os.environ if environ is None else environ
        names = ("KUCOIN_API_KEY", "KUCOIN_API_SECRET", "KUCOIN_API_PASSPHRASE")
        values = [env.get(name, "") for name in names]
        if not any(values):
            return None
        missing = [name for name, value in zip(names, values, strict=True) if not value]
        if missing:
            raise ValueError(f"credentials: {', '.join(missing)} not set in the environment")
        return cls(*values, key_version=env.get("KUCOIN_API_KEY_VERSION", "3"))


def prehash(timestamp_ms: int | str, method: str, endpoint: str, body: str = "") -> str:
    """The signed text: timestamp, upper-case method, path with query, body."""
    return f"{timestamp_ms}{method.upper()}{endpoint}{body}"


def sign(secret: str, text: str) -> str:
    """``base64(HMAC-SHA256(secret, text))``."""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_passphrase(credentials: Credentials) -> str:
    """The ``KC-API-PASSPHRASE`` header value (signed for key versions 2 and 3)."""
    return sign(credentials.secret, credentials.passphrase)


def auth_headers(credentials: Credentials, timestamp_ms: int, method: str, endpoint: str,
                 body: str = "") -> dict[str, str]:
    """The five ``KC-API-*`` headers for one request."""
    return {
        "KC-API-KEY": credentials.key,
        "KC-API-SIGN": sign(credentials.secret, prehash(timestamp_ms, method, endpoint, body)),
        "KC-API-TIMESTAMP": str(timestamp_ms),
        "KC-API-PASSPHRASE": signed_passphrase(credentials),
        "KC-API-KEY-VERSION": credentials.key_version,
    }


def signature_matches(secret: str, text: str, signature: str) -> bool:
    """Constant-time check of a received signature (the simulator's verifier)."""
    return hmac.compare_digest(sign(secret, text), signature)
