"""``GET /openapi.json``: an OpenAPI 3.1 document generated from the API's route table.

Each route is described once, by a ``RouteDoc`` (method, path, parameters, request and
response types, error statuses, whether it needs the bearer token); ``api.py`` registers
its handlers from the same table, so the document cannot drift from what is served.
Schemas come from the msgspec structs themselves (``msgspec.json.schema_components``),
which produce JSON Schema 2020-12, the dialect OpenAPI 3.1 uses.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "bearerAuth"
_REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

_STATUS_TEXT = {
    200: "OK",
    101: "Switching Protocols (WebSocket)",
    401: "Missing or wrong bearer token",
    404: "Not found",
    409: "Conflicts with the current state",
    422: "Invalid request (the detail names the field)",
}


class Param(msgspec.Struct, frozen=True, kw_only=True):
    """A path or query parameter."""

    name: str
    where: str  # "path" or "query"
    kind: str  # JSON Schema type: "integer", "string", "boolean"
    description: str
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None


class RouteDoc(msgspec.Struct, frozen=True, kw_only=True):
    """One route as documented (``response``/``request`` are msgspec-encodable types)."""

    method: str
    path: str
    summary: str
    tag: str
    description: str = ""
    response: Any = None  # JSON response type; None with ``media_type`` for other bodies
    media_type: str = "application/json"
    request: Any = None  # JSON request body type
    request_required: bool = False
    control: bool = False  # needs ``Authorization: Bearer <token>``
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    success_status: int = 200
    websocket: bool = False


def _param_schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.kind}
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    return {"name": param.name, "in": param.where, "required": param.required or
            param.where == "path", "description": param.description, "schema": schema}


def _operation(route: RouteDoc, schema_of: dict[Any, dict[str, Any]],
               error_schema: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": route.description or route.summary}
    if route.response is not None:
        success["content"] = {route.media_type: {"schema": schema_of[route.response]}}
    elif not route.websocket:
        success["content"] = {route.media_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(route.success_status): success}
    errors = set(route.errors)
    if route.control:
        errors.add(401)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": error_schema}},
        }
    operation: dict[str, Any] = {
        "operationId": _operation_id(route),
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
    }
    if route.description:
        operation["description"] = route.description
    if route.params:
        operation["parameters"] = [_param_schema(p) for p in route.params]
    if route.request is not None:
        operation["requestBody"] = {
            "required": route.request_required,
            "content": {"application/json": {"schema": schema_of[route.request]}},
        }
    if route.control:
        operation["security"] = [{SECURITY_SCHEME: []}]
    return operation


def _operation_id(route: RouteDoc) -> str:
    words = re.findall(r"[A-Za-z0-9]+", route.path) or ["root"]
    return route.method.lower() + "".join(word.capitalize() for word in words)


def build_openapi(routes: list[RouteDoc], *, error_type: type, title: str, version: str,
                  description: str = "", extra_types: tuple[Any, ...] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes``.

    ``error_type`` is the JSON body of every error answer; ``extra_types`` are added to the
    components (e.g. the telemetry messages, which no HTTP route returns).
    """
    types: list[Any] = [error_type, *extra_types]
    for route in routes:
        for kind in (route.response, route.request):
            if kind is not None and kind not in types:
                types.append(kind)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        declared = set(_PATH_PARAM.findall(route.path))
        documented = {p.name for p in route.params if p.where == "path"}
        if declared != documented:
            raise ValueError(f"{route.method} {route.path}: path parameters {sorted(declared)} "
                             f"documented as {sorted(documented)}")
        item = paths.setdefault(route.path, {})
        item[route.method.lower()] = _operation(route, schema_of, schema_of[error_type])
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {SECURITY_SCHEME: {
                "type": "http", "scheme": "bearer",
                "description": "The API token (LIVEOPT_API_TOKEN or <data-dir>/api-token).",
            }},
        },
    }
