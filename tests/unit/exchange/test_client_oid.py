import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from liveopt.exchange.client_oid import MAX_CLIENT_OID_LENGTH, client_oid, is_valid_client_oid
from liveopt.exchange.tokens import BulletToken


def test_client_oid_joins_parts_with_dashes():
    assert client_oid("stop", "XBTUSDTM", "234125150956625920", 3) == (
        "stop-XBTUSDTM-234125150956625920-3"
    )


@given(st.lists(st.text(max_size=30) | st.integers(), min_size=1, max_size=6))
def test_client_oid_is_always_valid_and_deterministic(parts):
    assume(parts != [""])
    first = client_oid(*parts)
    assert is_valid_client_oid(first)
    assert len(first) <= MAX_CLIENT_OID_LENGTH
    assert client_oid(*parts) == first


def test_client_oid_refuses_empty_parts():
    with pytest.raises(ValueError, match="empty"):
        client_oid("")


def test_long_client_oids_stay_distinct():
    a = client_oid("stop", "A" * 40, "position-1", 1)
    b = client_oid("stop", "A" * 40, "position-1", 2)
    assert a != b and is_valid_client_oid(a) and is_valid_client_oid(b)


def test_bullet_token_decodes_the_documented_shape_and_hides_the_token():
    raw = (b'{"token":"abc=","instanceServers":[{"endpoint":"ws://127.0.0.1:1/",'
           b'"encrypt":false,"protocol":"websocket","pingInterval":18000,"pingTimeout":10000}]}')
    import msgspec

    token = msgspec.json.decode(raw, type=BulletToken)
    assert token.instance_servers[0].ping_interval == 18000
    assert "abc=" not in repr(token)
