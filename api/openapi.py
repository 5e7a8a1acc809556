"""The OpenAPI document, made to say what the API really answers.

FastAPI's own document is close but not true: it gives every route with parameters a
422 of its HTTPValidationError shape (ours is {"detail": str, ...}), knows nothing of
the 413/503 of the bulk routes or of the 401 of an API key, and has no schema for the
streamed bodies. This fills those in, once, from the routes' own declarations.
"""

from __future__ import annotations

import pyarrow as pa
from fastapi import FastAPI

from api.encode import MEDIA_TYPES
from contract.schemas import DOOR_READINGS, EVENTS, ROBOT_READINGS

ERROR = {
    "title": "Error",
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, naming the parameter"},
        "errors": {"type": "array", "items": {"type": "object"}, "description": "422: one entry per problem"},
    },
    "required": ["detail"],
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_TEXT = {
    401: "No X-API-Key header, or a wrong one (only when the server has API_KEY set)",
    404: "No reading: before the store opened, or not yet (after the data clock)",
    413: "The answer would exceed API_MAX_ROWS rows",
    422: "A parameter is invalid; the message names it",
    503: "API_MAX_STREAMS bulk answers are streaming already; retry after Retry-After seconds",
}
BULK = {"/v1/readings/doors": DOOR_READINGS, "/v1/readings/robots": ROBOT_READINGS, "/v1/events": EVENTS}
OPEN = ("/health",)  # answers without an API key
REPLAY = "/v1/stream/replay/{name}"
REPLAY_404 = "No replay of that name (GET /v1/replays lists them)"


def install(app: FastAPI, api_key: bool, names: dict[str, list[str]]) -> None:
    """Replace app.openapi with the corrected document, built once on first use.

    `names`: the values a name parameter takes (the fleet's stores and robots), listed as
    enums, since any other value is a 422."""
    build = app.openapi

    def document() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = corrected(build(), api_key, names)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def corrected(doc: dict, api_key: bool, names: dict[str, list[str]]) -> dict:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if api_key:
        doc["components"]["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    for path, item in doc["paths"].items():
        for op in item.values():
            _correct(path, op, api_key)
            _enums(op, names)
    return doc


def _enums(op: dict, names: dict[str, list[str]]) -> None:
    for param in op.get("parameters", []):
        if param["name"] not in names:
            continue
        schema = param["schema"]
        for option in schema.get("anyOf", [schema]):  # an optional parameter is anyOf [string, null]
            if option.get("type") == "string":
                option["enum"] = names[param["name"]]


def _correct(path: str, op: dict, api_key: bool) -> None:
    responses = op["responses"]
    codes = set()
    if op.get("parameters"):
        codes.add(422)
    if path in BULK:
        codes |= {413, 503}
        responses["200"]["content"] = _bulk_content(BULK[path], responses["200"].get("content", {}))
        responses["200"]["headers"] = {
            "X-Data-Until": {"description": "The answer is complete up to here: end, clipped to the data clock",
                             "schema": {"type": "string", "format": "date-time"}},
            "X-Row-Count": {"description": "Rows in the answer", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        }  # fmt: skip
        responses["503"] = {
            "description": ERROR_TEXT[503],
            "headers": {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
            "content": {"application/json": {"schema": ERROR_REF}},
        }
    if path == REPLAY:
        codes.add(404)
    if path == "/":
        codes.add(404)
        content = responses["200"].setdefault("content", {}).setdefault("application/json", {})
        content["schema"] = {"type": ["integer", "null"]}
    if api_key and path not in OPEN:
        codes.add(401)
        op["security"] = [{"ApiKey": []}]
    for code in sorted(codes):
        entry = responses.setdefault(str(code), {})
        entry["description"] = REPLAY_404 if (path, code) == (REPLAY, 404) else ERROR_TEXT[code]
        entry["content"] = {"application/json": {"schema": ERROR_REF}}
    for param in op.get("parameters", []):
        if param["name"] in ("start", "end", "since"):
            for option in param["schema"].get("anyOf", [param["schema"]]):  # optional: anyOf [string, null]
                if option.get("type") == "string":
                    option["format"] = "date-time"


def _bulk_content(schema: pa.Schema, declared: dict) -> dict:
    """Every wire format; a JSON schema for the two JSON ones, bytes for the rest."""
    record = {"type": "object", "properties": {f.name: _json_type(f) for f in schema}, "required": schema.names}
    example = declared.get("application/json", {}).get("example")
    content = {}
    for fmt, media in MEDIA_TYPES.items():
        if fmt == "json":
            content[media] = {"schema": {"type": "array", "items": record}}
            if example is not None:
                content[media]["example"] = example
        elif fmt in ("ndjson", "csv"):
            content[media] = {"schema": {"type": "string", "description": f"{fmt}: one record per line"}}
        else:
            content[media] = {"schema": {"type": "string", "format": "binary"}}
    return content


def _json_type(field: pa.Field) -> dict:
    t = field.type
    if pa.types.is_timestamp(t):
        out: dict = {"type": "string", "format": "date-time"}
    elif pa.types.is_integer(t):
        out = {"type": "integer"}
    elif pa.types.is_floating(t):
        out = {"type": "number"}
    elif pa.types.is_boolean(t):
        out = {"type": "boolean"}
    else:
        out = {"type": "string"}
    if field.nullable:
        out["type"] = [out["type"], "null"]
    return out
