"""The error statuses each route can answer, written into its OpenAPI with the one error schema.

FastAPI documents only the success status and its own 422, with a shape we never send. Here,
from what a route declares (FastAPI's dependency tree), every operation gets:
- 401 and 403 when a bearer token is checked anywhere in its dependencies;
- 404 when it takes a parameter naming something (no such session, enrollment, city...);
- 422 and 400 when it takes any parameter or body (the schema's checks, then the domain's:
  both name the field), 409, 413 and 415 for a POST (a conflicting change, the body guard);
- 503 always (the database, or the national figures still loading);
all with the `Error` schema the edge actually sends (shared.http).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

ERROR = {
    "type": "object", "required": ["error", "message", "errors"],
    "properties": {
        "error": {"type": "string", "description": "a code: invalid_input, not_found, ..."},
        "message": {"type": "string"},
        "errors": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["field", "reason"],
            "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}},
    },
}
_WHY = {400: "bad input a rule of the domain refuses (names the field)",
        401: "no token, or an unknown one", 403: "a token of another city, or a viewer's",
        404: "no such resource", 409: "a conflicting change", 413: "the body is too large",
        415: "the body's media type is not accepted",
        422: "input that does not match the schema (names the field)",
        503: "the database did not answer, or the figures are still loading"}


def _checks_token(dependant) -> bool:
    return any(isinstance(sub.call, HTTPBearer) or _checks_token(sub) for sub in dependant.dependencies)


def _params(dependant) -> bool:
    return bool(dependant.query_params or dependant.path_params or dependant.header_params
                or dependant.body_params) or any(_params(sub) for sub in dependant.dependencies)


def _api_routes(app: FastAPI):
    """Every API route with its effective path, included routers flattened (FastAPI >= 0.165
    keeps an included router as one entry; older versions copy its routes into app.routes)."""
    contexts = getattr(routing, "iter_route_contexts", None)
    for entry in (contexts(app.routes) if contexts else app.routes):
        if isinstance(getattr(entry, "original_route", entry), APIRoute):
            yield entry


def statuses(route: APIRoute, method: str) -> set[int]:
    found = {503}
    if _checks_token(route.dependant):
        found |= {401, 403}
    if _params(route.dependant):
        # the schema's checks, then the domain's (a NIP's digits); a named thing (a session in
        # the path, a city in the query) may not exist
        found |= {400, 404, 422}
    if method == "POST":
        found |= {409, 413, 415}
    return found


def install(app: FastAPI) -> None:
    """Make `app.openapi()` document every error status of every route."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)  # FastAPI's shape, which this API never sends
        for route in _api_routes(app):
            if not route.include_in_schema:
                continue
            for method in route.methods:
                operation = schema["paths"][route.path_format][method.lower()]
                responses = operation.setdefault("responses", {})
                for status in sorted(statuses(route, method)):
                    responses[str(status)] = {"description": _WHY[status], "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
