"""The HTTP API on a real server (127.0.0.1, port 0) over the in-memory fake controller:
status codes and JSON shapes (decoded strictly into the view structs), pagination, bearer
auth on every control route, 401/404/405/409/422/500 bodies, rejected-request counting, the
dashboard files, loopback binding, and that the token never leaks."""

from __future__ import annotations

import asyncio
import logging
import os

import aiohttp
import msgspec
import pytest
from yarl import URL

from liveopt.service.api import create_app, serve
from liveopt.service.api_routes import ErrorBody, route_docs
from liveopt.service.errors import InvalidRequestError
from liveopt.service.token import ApiToken
from liveopt.service.views import (
    Alert,
    GateSummary,
    Health,
    OptimizerStatus,
    PromotionRecord,
    StopReport,
    TradePage,
    VariantDetail,
    VariantResult,
)
from tests.unit.service.fake_controller import MAIN_VARIANT_ID, FakeController, StaticToken

TOKEN = "test-token-3f9a1c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTROL_ROUTES = sorted(doc.path for doc in route_docs().values() if doc.control)


def run_api(scenario, controller: FakeController | None = None, **options):
    """Serve ``controller`` (a running fake with 12 variants by default), run
    ``scenario(session, api, controller)``, stop the server."""
    controller = controller or FakeController(12, running=True)

    async def main():
        app = create_app(controller, token=StaticToken(TOKEN), **options)
        api = await serve(app, port=0)
        try:
            async with aiohttp.ClientSession() as session:
                return await scenario(session, api, controller)
        finally:
            await api.stop()

    return asyncio.run(main())


async def fetch(session, method, url, **kwargs) -> tuple[int, bytes, dict[str, str]]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.read(), dict(response.headers)


def decode(body: bytes, kind):
    return msgspec.json.decode(body, type=kind, strict=True)


@pytest.mark.parametrize(("path", "kind"), [
    ("/api/optimizer/status", OptimizerStatus),
    ("/api/optimizer/results", list[VariantResult]),
    ("/api/optimizer/variants/3", VariantDetail),
    ("/api/trades/experimental", TradePage),
    ("/api/trades/main", TradePage),
    ("/api/optimizer/gate", GateSummary),
    ("/api/optimizer/promotions", list[PromotionRecord]),
    ("/api/health", Health),
    ("/api/alerts", list[Alert]),
])
def test_read_routes_answer_200_with_their_view_type(path, kind):
    async def scenario(session, api, controller):
        controller.advance(50)
        status, body, headers = await fetch(session, "GET", api.url + path)
        assert status == 200, body
        assert headers["Content-Type"].startswith("application/json")
        return decode(body, kind)

    view = run_api(scenario)
    assert view is not None


def test_status_reports_the_controller_state():
    async def scenario(session, api, controller):
        controller.advance(40)
        _, body, _ = await fetch(session, "GET", api.url + "/api/optimizer/status")
        return decode(body, OptimizerStatus), controller.status()

    served, expected = run_api(scenario)
    assert served.running and served.ticks_processed == expected.ticks_processed == 40
    assert served.feed == expected.feed


def test_results_are_ranked_best_first_and_limit_keeps_the_top_rows():
    async def scenario(session, api, controller):
        _, full, _ = await fetch(session, "GET", api.url + "/api/optimizer/results")
        _, top, _ = await fetch(session, "GET", api.url + "/api/optimizer/results?limit=3")
        return decode(full, list[VariantResult]), decode(top, list[VariantResult])

    full, top = run_api(scenario)
    assert [row.rank for row in full] == list(range(1, len(full) + 1))
    assert [row.net_pnl for row in full] == sorted((row.net_pnl for row in full), reverse=True)
    assert top == full[:3]
    assert all(row.gate is not None for row in full)
    assert sum(row.is_main for row in full) == 1


def test_variant_detail_unknown_id_is_404_and_non_integer_is_422():
    async def scenario(session, api, controller):
        ok = await fetch(session, "GET", api.url + "/api/optimizer/variants/5")
        missing = await fetch(session, "GET", api.url + "/api/optimizer/variants/999")
        bad = await fetch(session, "GET", api.url + "/api/optimizer/variants/five")
        return ok, missing, bad

    ok, missing, bad = run_api(scenario)
    assert ok[0] == 200 and decode(ok[1], VariantDetail).result.variant_id == 5
    assert missing[0] == 404 and decode(missing[1], ErrorBody).error == "not_found"
    assert bad[0] == 422
    error = decode(bad[1], ErrorBody)
    assert error.error == "invalid_request" and "variant_id" in error.detail


def test_experimental_trades_paginate_newest_first_without_overlap_or_loss():
    async def scenario(session, api, controller):
        pages = []
        offset = 0
        while True:
            _, body, _ = await fetch(session, "GET", api.url + "/api/trades/experimental",
                                     params={"offset": offset, "limit": 4})
            page = decode(body, TradePage)
            pages.append(page)
            offset += len(page.items)
            if not page.items:
                return pages, controller.trades(limit=1000)

    pages, everything = run_api(scenario)
    collected = [trade for page in pages for trade in page.items]
    assert collected == everything.items
    assert all(page.total == everything.total for page in pages)
    assert all(len(page.items) <= 4 and page.limit == 4 for page in pages)
    exits = [trade.exit_ts_ns for trade in collected]
    assert exits == sorted(exits, reverse=True)


def test_experimental_trades_filter_by_variant_and_main_trades_are_separate():
    async def scenario(session, api, controller):
        _, one, _ = await fetch(session, "GET", api.url + "/api/trades/experimental?variant=4")
        _, main, _ = await fetch(session, "GET", api.url + "/api/trades/main")
        return decode(one, TradePage), decode(main, TradePage)

    one, main = run_api(scenario)
    assert one.total > 0 and {t.variant_id for t in one.items} == {4}
    assert main.total > 0 and {t.variant_id for t in main.items} == {MAIN_VARIANT_ID}


@pytest.mark.parametrize(("query", "named"), [
    ("/api/trades/experimental?limit=0", "limit"),
    ("/api/trades/experimental?limit=1001", "limit"),
    ("/api/trades/experimental?offset=-1", "offset"),
    ("/api/trades/experimental?variant=x", "variant"),
    ("/api/trades/main?limit=ten", "limit"),
    ("/api/optimizer/results?limit=-2", "limit"),
    ("/api/optimizer/status?verbose=1", "verbose"),
])
def test_bad_query_parameters_are_422_naming_the_parameter(query, named):
    async def scenario(session, api, controller):
        return await fetch(session, "GET", api.url + query)

    status, body, _ = run_api(scenario)
    assert status == 422
    assert named in decode(body, ErrorBody).detail


@pytest.mark.parametrize("path", CONTROL_ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}",
                                           "Bearer ", TOKEN])
def test_control_routes_refuse_a_missing_or_wrong_token_with_401(path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    async def scenario(session, api, controller):
        result = await fetch(session, "POST", api.url + path, json={}, headers=headers)
        return result, list(controller.calls)

    (status, body, response_headers), calls = run_api(scenario)
    assert status == 401
    assert response_headers["WWW-Authenticate"].startswith("Bearer")
    assert decode(body, ErrorBody).error == "unauthorized"
    assert TOKEN.encode() not in body
    assert calls == []


def test_control_routes_act_with_the_right_token():
    async def scenario(session, api, controller):
        url = api.url + "/api/optimizer/"
        stop = await fetch(session, "POST", url + "stop", json={"flatten": True}, headers=AUTH)
        reset = await fetch(session, "POST", url + "reset", headers=AUTH)
        start = await fetch(session, "POST", url + "start", headers=AUTH)
        promote = await fetch(session, "POST", url + "promote", json={"variantId": 3},
                              headers=AUTH)
        rollback = await fetch(session, "POST", url + "rollback", data=b"{}", headers=AUTH)
        return [stop, reset, start, promote, rollback], list(controller.calls), controller

    results, calls, controller = run_api(scenario)
    assert [status for status, _, _ in results] == [200] * 5
    report = decode(results[0][1], StopReport)
    assert report.flatten and report.position_closed
    assert decode(results[1][1], OptimizerStatus).running is False
    assert decode(results[2][1], OptimizerStatus).running is True
    promoted = decode(results[3][1], PromotionRecord)
    assert promoted.action == "promote" and promoted.variant_id == 3
    rolled = decode(results[4][1], PromotionRecord)
    assert rolled.action == "rollback" and rolled.new_config_hash == promoted.previous_config_hash
    assert calls == [("stop", {"flatten": True}), ("reset", {}), ("start", {}),
                     ("promote", {"variant_id": 3}), ("rollback", {})]
    assert controller.variant(MAIN_VARIANT_ID).result.config_hash == rolled.new_config_hash


def test_stop_without_a_body_does_not_flatten():
    async def scenario(session, api, controller):
        status, body, _ = await fetch(session, "POST", api.url + "/api/optimizer/stop",
                                      headers=AUTH)
        return status, decode(body, StopReport), controller.calls

    status, report, calls = run_api(scenario)
    assert status == 200 and report.flatten is False
    assert calls == [("stop", {"flatten": False})]


@pytest.mark.parametrize(("path", "body"), [
    ("start", None),  # already running
    ("reset", None),  # running
    ("rollback", None),  # nothing promoted
    ("promote", {"variantId": MAIN_VARIANT_ID}),  # the main strategy already
])
def test_conflicting_control_requests_are_409(path, body):
    async def scenario(session, api, controller):
        return await fetch(session, "POST", api.url + "/api/optimizer/" + path, json=body,
                           headers=AUTH)

    status, raw, _ = run_api(scenario)
    assert status == 409
    assert decode(raw, ErrorBody).error == "conflict"


def test_stop_when_stopped_is_409_and_promote_unknown_is_404():
    async def scenario(session, api, controller):
        stopped = await fetch(session, "POST", api.url + "/api/optimizer/stop", headers=AUTH)
        unknown = await fetch(session, "POST", api.url + "/api/optimizer/promote",
                              json={"variantId": 4242}, headers=AUTH)
        return stopped, unknown

    stopped, unknown = run_api(scenario, FakeController(4, running=False))
    assert stopped[0] == 409
    assert unknown[0] == 404 and "4242" in decode(unknown[1], ErrorBody).detail


@pytest.mark.parametrize(("body", "named"), [
    (b"{", "malformed"),
    (b"", "body"),
    (b"{}", "variantId"),
    (b'{"variantId": "3"}', "variantId"),
    (b'{"variantId": true}', "variantId"),
    (b'{"variantId": 3.5}', "variantId"),
    (b'{"variantID": 3}', "variantID"),
    (b'{"variantId": 3, "force": true}', "force"),
    (b"[3]", "array"),
])
def test_malformed_promote_bodies_are_422_naming_the_problem(body, named):
    async def scenario(session, api, controller):
        result = await fetch(session, "POST", api.url + "/api/optimizer/promote", data=body,
                             headers={**AUTH, "Content-Type": "application/json"})
        return result, controller.calls

    (status, raw, _), calls = run_api(scenario)
    assert status == 422
    error = decode(raw, ErrorBody)
    assert error.error == "invalid_request"
    assert named.lower() in error.detail.lower()
    assert calls == []


@pytest.mark.parametrize(("path", "body", "named"), [
    ("stop", b'{"flatten": "yes"}', "flatten"),
    ("stop", b'{"flaten": true}', "flaten"),
    ("start", b'{"variants": 5}', "variants"),
    ("reset", b'{"hard": true}', "hard"),
    ("rollback", b"nonsense", "malformed"),
])
def test_other_control_bodies_reject_unknown_fields_and_wrong_types(path, body, named):
    async def scenario(session, api, controller):
        result = await fetch(session, "POST", api.url + "/api/optimizer/" + path, data=body,
                             headers=AUTH)
        return result, controller.calls

    (status, raw, _), calls = run_api(scenario)
    assert status == 422
    assert named in decode(raw, ErrorBody).detail.lower()
    assert calls == []


def test_controller_invalid_request_maps_to_422_with_its_message():
    async def scenario(session, api, controller):
        controller.fail_next("promote", InvalidRequestError("variantId: variant 3 has crashed"))
        return await fetch(session, "POST", api.url + "/api/optimizer/promote",
                           json={"variantId": 3}, headers=AUTH)

    status, body, _ = run_api(scenario)
    assert status == 422
    assert decode(body, ErrorBody).detail == "variantId: variant 3 has crashed"


def test_an_unexpected_controller_error_is_a_json_500_and_the_server_keeps_serving():
    async def scenario(session, api, controller):
        controller.fail_next("stop", RuntimeError("internal detail"))
        failed = await fetch(session, "POST", api.url + "/api/optimizer/stop", headers=AUTH)
        after = await fetch(session, "GET", api.url + "/api/optimizer/status")
        return failed, after

    (status, body, _), after = run_api(scenario)
    assert status == 500
    error = decode(body, ErrorBody)
    assert error.error == "internal_error" and "internal detail" not in error.detail
    assert after[0] == 200


def test_unknown_routes_and_wrong_methods_answer_json_errors():
    async def scenario(session, api, controller):
        missing = await fetch(session, "GET", api.url + "/api/nothing-here")
        wrong = await fetch(session, "GET", api.url + "/api/optimizer/stop")
        return missing, wrong

    missing, wrong = run_api(scenario)
    assert missing[0] == 404 and decode(missing[1], ErrorBody).error == "not_found"
    assert wrong[0] == 405 and "POST" in wrong[2]["Allow"]
    assert decode(wrong[1], ErrorBody).error == "method_not_allowed"


def test_oversized_bodies_are_refused_with_413():
    async def scenario(session, api, controller):
        return await fetch(session, "POST", api.url + "/api/optimizer/promote",
                           data=b'{"variantId": 3, "pad": "' + b"x" * 200_000 + b'"}',
                           headers=AUTH)

    status, body, _ = run_api(scenario)
    assert status == 413 and decode(body, ErrorBody).error == "payload_too_large"


def test_rejected_requests_are_counted_by_status_in_metrics():
    async def scenario(session, api, controller):
        await fetch(session, "POST", api.url + "/api/optimizer/stop")
        await fetch(session, "GET", api.url + "/api/optimizer/variants/999")
        await fetch(session, "GET", api.url + "/api/optimizer/variants/998")
        await fetch(session, "GET", api.url + "/api/trades/main?limit=0")
        _, body, _ = await fetch(session, "GET", api.url + "/metrics")
        return body.decode()

    text = run_api(scenario)
    lines = set(text.splitlines())
    assert 'liveopt_api_rejected_requests_total{status="401"} 1' in lines
    assert 'liveopt_api_rejected_requests_total{status="404"} 2' in lines
    assert 'liveopt_api_rejected_requests_total{status="422"} 1' in lines


def test_no_cors_headers_are_sent_by_default():
    async def scenario(session, api, controller):
        get = await fetch(session, "GET", api.url + "/api/optimizer/status",
                          headers={"Origin": "https://evil.example"})
        preflight = await fetch(session, "OPTIONS", api.url + "/api/optimizer/stop",
                                headers={"Origin": "https://evil.example",
                                         "Access-Control-Request-Method": "POST"})
        return get, preflight

    get, preflight = run_api(scenario)
    for _, _, headers in (get, preflight):
        assert not any(name.lower().startswith("access-control-") for name in headers)
    assert preflight[0] == 405


def test_the_server_binds_loopback_by_default():
    async def main():
        app = create_app(FakeController(2), token=StaticToken(TOKEN))
        api = await serve(app, port=0)
        try:
            return api.host, api.url, api.runner.addresses
        finally:
            await api.stop()

    host, url, addresses = asyncio.run(main())
    assert host == "127.0.0.1"
    assert url.startswith("http://127.0.0.1:")
    assert [address[0] for address in addresses] == ["127.0.0.1"]


def test_the_token_never_appears_in_responses_or_logs(caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario(session, api, controller):
        bodies = []
        for headers in (AUTH, {"Authorization": "Bearer " + TOKEN + "x"}, {}):
            for path in CONTROL_ROUTES:
                _, body, response_headers = await fetch(session, "POST", api.url + path,
                                                        headers=headers)
                bodies.append(body + repr(response_headers).encode())
        for path in ("/api/health", "/metrics", "/openapi.json", "/api/optimizer/status"):
            _, body, _ = await fetch(session, "GET", api.url + path)
            bodies.append(body)
        return bodies

    bodies = run_api(scenario)
    assert all(TOKEN.encode() not in body for body in bodies)
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(StaticToken(TOKEN))


def test_the_daemons_api_token_guards_the_control_routes():
    async def scenario(session, api, controller):
        url = api.url + "/api/optimizer/stop"
        wrong = await fetch(session, "POST", url, headers={"Authorization": "Bearer nope"})
        right = await fetch(session, "POST", url, headers=AUTH)
        return wrong[0], right[0]

    async def main():
        controller = FakeController(3, running=True)
        app = create_app(controller, token=ApiToken(value=TOKEN, source="env"))
        api = await serve(app, port=0)
        try:
            async with aiohttp.ClientSession() as session:
                return await scenario(session, api, controller)
        finally:
            await api.stop()

    assert asyncio.run(main()) == (401, 200)


def test_undecodable_authorization_bytes_are_a_401_not_a_server_error():
    async def scenario(session, api, controller):
        host, port = api.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /api/optimizer/stop HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer \xff\xfe\xc3\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")
        await writer.drain()
        reply = await reader.read()
        writer.close()
        return reply, controller.calls

    reply, calls = run_api(scenario)
    assert reply.startswith(b"HTTP/1.1 401")
    assert calls == []


@pytest.fixture
def dashboard(tmp_path):
    folder = tmp_path / "dashboard"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>liveopt</title>")
    (folder / "app.js").write_text("console.log('hi');")
    (folder / "style.css").write_text("body{}")
    (folder / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (folder / ".hidden").write_text("hidden")
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", folder / "link.txt")
    return folder


def test_dashboard_files_are_served_with_their_content_types(dashboard):
    async def scenario(session, api, controller):
        results = {}
        for path in ("/", "/dashboard/app.js", "/dashboard/style.css", "/dashboard/logo.svg",
                     "/dashboard/index.html"):
            results[path] = await fetch(session, "GET", api.url + path)
        return results

    results = run_api(scenario, dashboard_dir=dashboard)
    expected = {"/": "text/html", "/dashboard/app.js": "text/javascript",
                "/dashboard/style.css": "text/css", "/dashboard/logo.svg": "image/svg+xml",
                "/dashboard/index.html": "text/html"}
    for path, (status, _body, headers) in results.items():
        assert status == 200, path
        assert headers["Content-Type"].split(";")[0] == expected[path]
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert results["/"][1] == (dashboard / "index.html").read_bytes()
    assert results["/dashboard/app.js"][1] == (dashboard / "app.js").read_bytes()


@pytest.mark.parametrize("raw_path", [
    "/dashboard/..%2Fsecret.txt",
    "/dashboard/%2E%2E%2Fsecret.txt",
    "/dashboard/..",
    "/dashboard/.hidden",
    "/dashboard/link.txt",  # a symlink leading out of the folder
    "/dashboard/missing.js",
    "/dashboard/%2Fetc%2Fpasswd",
])
def test_dashboard_refuses_traversal_hidden_and_missing_files(dashboard, raw_path):
    async def scenario(session, api, controller):
        return await fetch(session, "GET", URL(api.url + raw_path, encoded=True))

    status, body, _ = run_api(scenario, dashboard_dir=dashboard)
    assert status == 404
    assert b"outside" not in body and b"hidden" not in body


def test_index_is_404_when_the_dashboard_is_missing(tmp_path):
    async def scenario(session, api, controller):
        return await fetch(session, "GET", api.url + "/")

    status, body, _ = run_api(scenario, dashboard_dir=tmp_path / "absent")
    assert status == 404 and decode(body, ErrorBody).error == "not_found"
