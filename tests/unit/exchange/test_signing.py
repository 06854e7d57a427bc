import pytest

from liveopt.exchange.signing import (
    Credentials,
    auth_headers,
    prehash,
    sign,
    signature_matches,
    signed_passphrase,
)

# The documented test vector (kucoin-protocol.md section 3.1).
VECTOR_SECRET = "f03a5284-5c39-4aaa-9b20-dea10bdcf8e3"
VECTOR_PREHASH = '1547015186532POST/api/v1/deposit-addresses{"currency":"BTC"}'
VECTOR_SIGN = "7QP/oM0ykidMdrfNEUmng8eZjg/ZvPafjIqmxiVfYu4="


def test_sign_reproduces_the_published_test_vector():
    text = prehash(1547015186532, "post", "/api/v1/deposit-addresses", '{"currency":"BTC"}')
    assert text == VECTOR_PREHASH
    assert sign(VECTOR_SECRET, text) == VECTOR_SIGN


def test_signature_matches_accepts_only_the_exact_signature():
    assert signature_matches(VECTOR_SECRET, VECTOR_PREHASH, VECTOR_SIGN)
    assert not signature_matches(VECTOR_SECRET, VECTOR_PREHASH + " ", VECTOR_SIGN)
    assert not signature_matches("other", VECTOR_PREHASH, VECTOR_SIGN)


def test_auth_headers_sign_the_path_with_query_and_the_passphrase():
    credentials = Credentials("k", VECTOR_SECRET, "pass", key_version="2")
    headers = auth_headers(credentials, 1700000000000, "GET", "/api/v1/position?symbol=X")
    assert headers["KC-API-SIGN"] == sign(
        VECTOR_SECRET, "1700000000000GET/api/v1/position?symbol=X"
    )
    assert headers["KC-API-PASSPHRASE"] == signed_passphrase(credentials) != "pass"
    assert headers["KC-API-KEY-VERSION"] == "2"
    assert headers["KC-API-TIMESTAMP"] == "1700000000000"


def test_credentials_never_show_the_secret_or_passphrase():
    credentials = Credentials("key-1", "s3cret-value", "pass-phrase")
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert "s3cret-value" not in text and "pass-phrase" not in text
        assert "key-1" in text


@pytest.mark.parametrize("field", ["key", "secret", "passphrase"])
def test_credentials_reject_an_empty_field_by_name(field):
    values = {"key": "k", "secret": "s", "passphrase": "p", field: ""}
    with pytest.raises(ValueError, match=field):
        Credentials(**values)


def test_credentials_reject_an_unsupported_key_version():
    with pytest.raises(ValueError, match="key_version"):
        Credentials("k", "s", "p", key_version="1")


def test_credentials_from_env_none_all_or_a_clear_error():
    assert Credentials.from_env({}) is None
    full = {"KUCOIN_API_KEY": "k", "KUCOIN_API_SECRET": "s", "KUCOIN_API_PASSPHRASE": "p"}
    assert Credentials.from_env(full) == Credentials("k", "s", "p")
    with pytest.raises(ValueError, match="KUCOIN_API_PASSPHRASE"):
        Credentials.from_env({"KUCOIN_API_KEY": "k", "KUCOIN_API_SECRET": "s"})
