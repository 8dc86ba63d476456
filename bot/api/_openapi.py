"""The OpenAPI 3.1 document, generated from the route table and its pydantic models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.api._http import MAX_BODY
from bot.api._idempotency import HEADER, REPLAYED
from bot.api._models import Problem
from bot.api._problems import PROBLEM_TYPE
from bot.api._routes import OPERATIONS, PREFIX, Operation

__all__ = ["OPENAPI_PATH", "document"]

OPENAPI_PATH = f"{PREFIX}/openapi.json"
_REF = "#/components/schemas/{model}"
_ID_SCHEMA = {"type": "string", "pattern": r"^[A-Za-z0-9_.:\-]{1,128}$"}
_ERRORS = {
    400: "Invalid request: malformed JSON, unknown or invalid fields (see `errors`)",
    401: "Missing, unknown or revoked API key",
    403: "The key lacks a scope, or the decision gate refused (see `code` and `rule`)",
    404: "No such resource",
    409: "Conflict: idempotency key reused with another request, already resolved, stale version",
    413: f"Body over {MAX_BODY} bytes",
    415: "Body is not application/json",
    422: "A reviewer asks for more detail before the answer counts",
    503: "Not ready yet; send the same request again",
}


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Problem, "serialization"): None}
    for op in OPERATIONS:
        if op.body is not None:
            found[(op.body, "validation")] = None
        for _, model, _ in op.responses:
            if model is not None:
                found[(model, "serialization")] = None
    return list(found)


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(op: Operation, refs: Mapping[tuple[Any, JsonSchemaMode], Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    if "{id}" in op.path:
        params.append({"name": "id", "in": "path", "required": True, "schema": _ID_SCHEMA})
    if op.query is not None:
        params += _query_parameters(op.query)
    if op.idempotent:
        params.append(
            {
                "name": HEADER,
                "in": "header",
                "required": False,
                "description": "Unique per request (or the body's `key`): the same key, the same resource.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    responses: dict[str, Any] = {}
    for status, model, description in op.responses:
        response: dict[str, Any] = {"description": description}
        if model is not None:
            response["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        if op.idempotent and status == 200:
            response["headers"] = {REPLAYED: {"schema": {"type": "string", "enum": ["true"]}}}
        responses[str(status)] = response
    problem = {PROBLEM_TYPE: {"schema": refs[(Problem, "serialization")]}}
    for status, description in _ERRORS.items():
        responses.setdefault(str(status), {"description": description, "content": problem})
    out: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
    }
    if op.scope:
        out["description"] = f"Needs the scope `{op.scope}`."
    if op.body is not None:
        out["requestBody"] = {
            "required": bool(op.body.model_json_schema().get("required")),
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    return out


def document() -> dict[str, Any]:
    """The whole document (``GET /api/v1/openapi.json``)."""
    refs, defs = models_json_schema(_models(), ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.url, {})[op.method.lower()] = _operation(op, refs)
    paths[OPENAPI_PATH] = {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "tags": ["meta"],
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Signoff API",
            "version": "1.0.0",
            "description": "Ask people, wait for typed, verified decisions, run workflows (docs/api.md).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "so_<id>.<secret>"}
            },
        },
    }
