"""The API token: environment first, then the 0600 file, else generated once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liveopt.service.token import (
    MIN_TOKEN_LENGTH,
    TOKEN_FILE,
    ApiToken,
    TokenError,
    load_or_create_token,
)

ENV_TOKEN = "env-token-0123456789abcdef"


def test_env_token_wins_over_an_existing_file(tmp_path: Path) -> None:
    first = load_or_create_token(tmp_path, {})

    token = load_or_create_token(tmp_path, {"LIVEOPT_API_TOKEN": ENV_TOKEN})

    assert token.source == "env"
    assert token.path is None
    assert token.matches(ENV_TOKEN)
    assert not token.matches(first.value)


def test_first_start_generates_a_token_file_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"

    token = load_or_create_token(data_dir, {})

    path = data_dir / TOKEN_FILE
    assert token.source == "generated"
    assert token.path == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == token.value
    assert len(token.value) >= MIN_TOKEN_LENGTH
    assert [p.name for p in data_dir.iterdir()] == [TOKEN_FILE]  # no temporary left


def test_generated_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        load_or_create_token(tmp_path, {})
    finally:
        os.umask(previous)

    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600


def test_restart_reads_the_same_token_from_the_file(tmp_path: Path) -> None:
    generated = load_or_create_token(tmp_path, {})

    again = load_or_create_token(tmp_path, {})

    assert again.source == "file"
    assert again.value == generated.value


def test_two_data_dirs_get_different_tokens(tmp_path: Path) -> None:
    a = load_or_create_token(tmp_path / "a", {})
    b = load_or_create_token(tmp_path / "b", {})

    assert a.value != b.value


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_token_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    load_or_create_token(tmp_path, {})
    os.chmod(tmp_path / TOKEN_FILE, mode)

    with pytest.raises(TokenError, match="chmod 600"):
        load_or_create_token(tmp_path, {})


def test_short_tokens_are_refused_from_env_and_file(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="LIVEOPT_API_TOKEN"):
        load_or_create_token(tmp_path, {"LIVEOPT_API_TOKEN": "short"})
    path = tmp_path / TOKEN_FILE
    path.write_text("short\n")
    os.chmod(path, 0o600)
    with pytest.raises(TokenError, match=TOKEN_FILE):
        load_or_create_token(tmp_path, {})


def test_repr_and_str_hide_the_value(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path, {})

    assert token.value not in repr(token)
    assert token.value not in str(token)
    assert token.value not in f"{token!r} {[token]}"


@given(st.text(min_size=MIN_TOKEN_LENGTH), st.text())
def test_matches_only_the_exact_token(value: str, candidate: str) -> None:
    token = ApiToken(value=value, source="env")

    assert token.matches(value)
    assert token.matches(candidate) == (candidate == value)
    assert not token.matches(value + "x")
    assert not token.matches(value[:-1])
