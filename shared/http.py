"""HTTP edge shared by every service: one error format, request metrics, health, auth.

Errors always answer JSON that names the field and the reason, whoever raised them (our code,
FastAPI's validation, Starlette's routing, shared.json_guard's input checks):
    {"error": "invalid_input", "message": "nip: ...", "errors": [{"field": "nip", "reason": "..."}]}
A database outage answers 503 (a change sent meanwhile may or may not have been saved: POSTs
that create take an Idempotency-Key, shared.idempotency) and the next request after it works,
because the PyMongo client reconnects by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import asyncapi, metrics, openapi_errors
from shared.api_docs import add_api_docs
from shared.errors import DomainError
from shared.json_guard import BodyRefused, InputGuard, path_params
from shared.kafka_auth import REFUSALS
from shared.mongo import UNAVAILABLE
from shared.settings import Settings

Role = Literal["viewer", "operator"]
_RANK = {"viewer": 1, "operator": 2}
VERSION = "0.1.0"


def create_api(
    settings: Settings,
    *,
    title: str,
    service: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    health: Callable[[FastAPI], Any] | None = None,
) -> FastAPI:
    app = FastAPI(title=title, version=VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)
    add_api_docs(app)
    openapi_errors.install(app)
    app.state.settings = settings
    metrics.BUILD_INFO.info({"version": VERSION, "service": service, "node": settings.node})
    _install_errors(app)
    # inside the metrics: refusals count
    app.add_middleware(InputGuard, refuse=_refused, templates=lambda: app.openapi()["paths"])
    _install_metrics(app, settings, service)

    @app.get("/health", tags=["operations"],
             summary="Liveness, database reachability, and whether Kafka refuses this service")
    async def get_health() -> JSONResponse:
        database = True
        if health is not None:
            try:
                await health(app)
            except Exception:  # noqa: BLE001 - any failure of the check is 503
                database = False
        refused = REFUSALS.current()  # within the last minute (shared.kafka_auth)
        body = {"status": "ok" if database and not refused else "degraded", "node": settings.node,
                "service": service, "database": "up" if database else "down",
                "kafka": f"refused: {refused}" if refused else "ok"}
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/asyncapi.json", tags=["operations"],
             summary="AsyncAPI 3 document of every event (generated from shared/events.py)")
    async def get_asyncapi() -> JSONResponse:
        return JSONResponse(asyncapi.document())

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def get_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _error(status: int, code: str, errors: list[dict[str, str]], message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "errors": errors}, status_code=status)


def _refused(exc: BodyRefused) -> JSONResponse:
    return _error(exc.status, _CODES.get(exc.status, "invalid_input"),
                  [{"field": exc.field, "reason": exc.reason}], str(exc))


def _allowed_methods(paths: dict[str, dict], path: str) -> list[str]:
    """Every method the OpenAPI document gives `path`, in a stable order."""
    return sorted({m.upper() for template, _ in path_params(paths, path) for m in paths[template]})


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_input(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path", "header"))
             or "body", "reason": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        return _error(422, "invalid_input", errors, f"{first['field']}: {first['reason']}")

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return _error(exc.status, exc.code, [{"field": exc.field, "reason": exc.reason}], str(exc))

    # Starlette's class, so that its own 404 (no route) and 405 answer in our shape too.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        field = _FIELDS.get(exc.status_code, "request")
        response = _error(exc.status_code, _CODES.get(exc.status_code, "error"),
                          [{"field": field, "reason": str(exc.detail)}], str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:  # Starlette names one route's methods; a path may have more
            allowed = _allowed_methods(app.openapi()["paths"], request.url.path)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    for error_type in UNAVAILABLE:
        @app.exception_handler(error_type)
        async def database_down(request: Request, exc: Exception) -> JSONResponse:
            # A write sent before the database stalled may still be applied when it resumes:
            # a change is never said to be unsaved, only a read is plainly retried.
            if request.method in ("GET", "HEAD"):
                message = "The database is not reachable right now. Try again in a moment."
            else:
                message = ("The database did not answer, so whether this change was saved is "
                           "not known. Send it again with the same Idempotency-Key header: it "
                           "is applied at most once.")
            response = _error(503, "database_unavailable",
                              [{"field": "database", "reason": "did not answer"}], message)
            response.headers["Retry-After"] = "5"
            return response

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        # A bug of ours, never the client's input: the traceback goes to the log (uvicorn
        # logs it), the client still gets the one error shape.
        return _error(500, "internal_error", [{"field": "server", "reason": "internal error"}],
                      "Something went wrong on our side; it has been logged.")


_CODES = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
          415: "unsupported_media_type", 422: "invalid_input", 503: "unavailable"}
_FIELDS = {401: "authorization", 403: "authorization", 404: "path", 405: "method"}


def _install_metrics(app: FastAPI, settings: Settings, service: str) -> None:
    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            # The route template, never the raw path: label values must stay bounded.
            path = getattr(route, "path", "unmatched")
            metrics.HTTP_REQUESTS.labels(service, settings.node, request.method, path, str(status)).inc()
            metrics.HTTP_LATENCY.labels(service, settings.node, request.method, path).observe(
                time.perf_counter() - started)


# --- access --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    city: str
    role: Role


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_table(settings: Settings) -> dict[str, Role]:
    """`hash:role` pairs from the deployment's configuration; tokens themselves are never stored."""
    table: dict[str, Role] = {}
    for item in filter(None, (p.strip() for p in settings.token_hashes.split(","))):
        digest, _, role = item.partition(":")
        if role in _RANK:
            table[digest.lower()] = role  # type: ignore[assignment]
    return table


_bearer = HTTPBearer(auto_error=False)


def require(role: Role) -> Any:
    """A dependency admitting a bearer token of this node with at least `role`."""

    async def check(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal:
        settings: Settings = request.app.state.settings
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise HTTPException(401, "Sign in: send 'Authorization: Bearer <token>'.", challenge)
        token = credentials.credentials
        parts = token.split(".")
        if len(parts) == 4 and parts[0] == "bkm" and parts[1] != settings.node:
            raise HTTPException(403, f"This token belongs to {parts[1]}; this node serves "
                                     f"{settings.node}.")
        digest = hash_token(token)
        granted = next((r for h, r in token_table(settings).items()
                        if hmac.compare_digest(h, digest)), None)
        if granted is None:
            raise HTTPException(401, "Unknown or revoked token.", challenge)
        if _RANK[granted] < _RANK[role]:
            raise HTTPException(403, f"A {granted} token can only look; this needs an {role}.")
        return Principal(settings.node, granted)

    return Depends(check)
