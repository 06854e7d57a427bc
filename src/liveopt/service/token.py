"""The API bearer token that guards the control endpoints.

Where it comes from, first match wins: ``LIVEOPT_API_TOKEN`` in the environment; the file
``<data_dir>/api-token`` (which must be readable by its owner only); else a new random
token, written to that file with mode 0600 (the caller prints it once, at first start).
The value never appears in ``repr`` and is compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

import msgspec

__all__ = ["MIN_TOKEN_LENGTH", "TOKEN_ENV", "TOKEN_FILE", "ApiToken", "TokenError",
           "load_or_create_token"]

TOKEN_ENV = "LIVEOPT_API_TOKEN"
TOKEN_FILE = "api-token"
#: Shortest token accepted from the environment or the file (a generated one has 43).
MIN_TOKEN_LENGTH = 16
_TOKEN_SOURCES = ("env", "file", "generated")


class TokenError(ValueError):
    """The token cannot be used (empty, too short, or its file is readable by others)."""


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    """The bearer token and where it came from.

    Parameters
    ----------
    value : str
        The secret itself; hidden from ``repr``.
    source : {"env", "file", "generated"}
        ``LIVEOPT_API_TOKEN``, an existing token file, or generated now.
    path : str or None
        The token file (None when the token came from the environment).
    """

    value: str
    source: str
    path: str | None = None

    def __post_init__(self) -> None:
        if self.source not in _TOKEN_SOURCES:
            raise ValueError(f"source: {self.source!r} is not one of {_TOKEN_SOURCES}")

    def __repr__(self) -> str:
        return f"ApiToken(value=<hidden>, source={self.source!r}, path={self.path!r})"

    __str__ = __repr__

    def matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the token, in time independent of where they differ."""
        return hmac.compare_digest(self.value.encode(), candidate.encode())


def load_or_create_token(data_dir: str | Path,
                         environ: Mapping[str, str]) -> ApiToken:
    """Return the API token: from the environment, the token file, or newly generated.

    Raises
    ------
    TokenError
        If ``LIVEOPT_API_TOKEN`` or the file holds an empty or too short token, or the
        file is readable or writable by group or others.
    OSError
        If the data directory or the file cannot be created or read.
    """
    from_env = environ.get(TOKEN_ENV)
    if from_env is not None:
        return ApiToken(value=_checked(from_env.strip(), TOKEN_ENV), source="env")
    path = Path(data_dir) / TOKEN_FILE
    if path.exists():
        return ApiToken(value=_read_token_file(path), source="file", path=str(path))
    value = secrets.token_urlsafe(32)
    _write_private(path, value)
    return ApiToken(value=value, source="generated", path=str(path))


def _checked(value: str, origin: str) -> str:
    if len(value) < MIN_TOKEN_LENGTH:
        raise TokenError(f"{origin}: the token must have at least {MIN_TOKEN_LENGTH} "
                         f"characters (it has {len(value)})")
    return value


def _read_token_file(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise TokenError(
            f"{path}: the token file has mode {mode:04o}, so others can read it; "
            f"run `chmod 600 {path}` (or delete it to generate a new token)"
        )
    return _checked(path.read_text(encoding="utf-8").strip(), str(path))


def _write_private(path: Path, value: str) -> None:
    # Created 0600 from the first byte (never chmod-ed after the fact) and renamed into
    # place, so no reader ever sees a partial or world-readable token.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask cannot widen it, but be explicit
        os.write(fd, (value + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
