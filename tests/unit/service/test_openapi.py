"""``/openapi.json``: a structurally valid OpenAPI 3.1 document that covers every served
route, resolves every ``$ref``, describes the view structs field by field and marks the
control routes with the bearer scheme (no validator package: checked by hand)."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import msgspec
import pytest

from liveopt.service.api import create_app, serve
from liveopt.service.api_routes import ErrorBody, route_docs
from liveopt.service.openapi import Param, RouteDoc, build_openapi
from liveopt.service.views import OptimizerStatus, TradePage
from tests.unit.service.fake_controller import FakeController, StaticToken

HTTP_METHODS = {"get", "post", "put", "delete", "patch", "options", "head"}


def served_document_and_routes() -> tuple[dict, set[tuple[str, str]]]:
    async def main():
        app = create_app(FakeController(3), token=StaticToken("t"))
        registered = {(route.method, route.resource.canonical) for route in app.router.routes()
                      if route.method != "HEAD"}
        api = await serve(app, port=0)
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(api.url + "/openapi.json") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("application/json")
                return msgspec.json.decode(await response.read()), registered
        finally:
            await api.stop()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def served():
    return served_document_and_routes()


def walk(node, path="#"):
    """Every (json-pointer, dict) in ``node``."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def resolve(document: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_document_has_the_openapi_3_1_top_level_shape(served):
    document, _ = served
    assert document["openapi"].startswith("3.1.")
    assert {"title", "version"} <= set(document["info"])
    assert isinstance(document["paths"], dict) and document["paths"]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}


def test_every_served_route_is_documented_and_nothing_else(served):
    document, registered = served
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method in HTTP_METHODS}
    assert documented == registered


def test_every_ref_resolves(served):
    document, _ = served
    refs = [node["$ref"] for _, node in walk(document) if "$ref" in node]
    refs += [target for _, node in walk(document)
             if isinstance(node.get("discriminator"), dict)
             for target in node["discriminator"].get("mapping", {}).values()]
    assert refs, "the document uses no references at all"
    for ref in refs:
        assert isinstance(resolve(document, ref), dict), ref


def test_every_operation_has_an_id_summary_and_responses(served):
    document, _ = served
    ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert operation["summary"], (method, path)
            assert operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status), (method, path, status)
                assert response["description"]
            templated = set(re.findall(r"\{(\w+)\}", path))
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert templated == declared, (method, path)
    assert len(ids) == len(set(ids))


def test_control_routes_require_the_bearer_scheme_and_document_401(served):
    document, _ = served
    docs = route_docs().values()
    control = {(doc.method.lower(), doc.path) for doc in docs if doc.control}
    assert len(control) == 5
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (method, path) in control:
                assert operation["security"] == [{"bearerAuth": []}]
                error = operation["responses"]["401"]["content"]["application/json"]["schema"]
                assert resolve(document, error["$ref"])["required"] == ["error", "detail"]
            else:
                assert "security" not in operation, (method, path)


def test_response_schemas_describe_the_view_structs_field_by_field(served):
    document, _ = served
    status = document["paths"]["/api/optimizer/status"]["get"]["responses"]["200"]
    schema = resolve(document, status["content"]["application/json"]["schema"]["$ref"])
    assert set(schema["properties"]) == set(OptimizerStatus.__struct_fields__)
    results = document["paths"]["/api/optimizer/results"]["get"]["responses"]["200"]
    array = results["content"]["application/json"]["schema"]
    assert array["type"] == "array" and array["items"]["$ref"].endswith("/VariantResult")
    promote = document["paths"]["/api/optimizer/promote"]["post"]["requestBody"]
    body = resolve(document, promote["content"]["application/json"]["schema"]["$ref"])
    assert promote["required"] is True
    assert body["required"] == ["variantId"] and body["additionalProperties"] is False
    assert "TelemetryInit" in document["components"]["schemas"]


def test_query_parameters_carry_their_bounds(served):
    document, _ = served
    params = {p["name"]: p for p in
              document["paths"]["/api/trades/experimental"]["get"]["parameters"]}
    assert set(params) == {"variant", "offset", "limit"}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())


def test_a_route_whose_path_parameters_are_not_documented_is_refused():
    route = RouteDoc(method="GET", path="/things/{thing_id}", summary="x", tag="t",
                     response=TradePage)
    with pytest.raises(ValueError, match="thing_id"):
        build_openapi([route], error_type=ErrorBody, title="t", version="1")
    documented = RouteDoc(method="GET", path="/things/{thing_id}", summary="x", tag="t",
                          response=TradePage, params=(Param(
                              name="thing_id", where="path", kind="integer",
                              description="id"),))
    document = build_openapi([documented], error_type=ErrorBody, title="t", version="1")
    assert document["paths"]["/things/{thing_id}"]["get"]["parameters"][0]["required"]
