"""Web pages of every service: static assets, page shells and the small JSON edge they need.

No build step and no CDN: the HTML, CSS, JS and the two dictionaries under `static/` are served
as they are by the service that owns the data a page shows. A city's two services run on two
ports of one host, so a page may read the other service's `/ui/api/*` endpoints: those answer
cross-origin requests from the same host name only (cookies, and so the sign-in, are shared by
all ports of a host anyway). Everything else stays same-origin.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.http import Principal, Role, require

STATIC = Path(__file__).parent / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".json": "application/json; charset=utf-8", ".svg": "image/svg+xml",
          ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
_bearer = HTTPBearer(auto_error=False)
# What `/ui/static/` may serve: the files shipped in the package, listed once. A lookup in this
# table, never a path built from the request, so `%00`, `..` or a path of 3,000 segments is a
# plain 404 (it used to reach the filesystem and fail as a 500).
SHIPPED = {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()}


def cors_headers(request: Request) -> dict[str, str]:
    """Let a page of the same host (the peer service's port) read this answer; nobody else."""
    origin = request.headers.get("origin")
    if not origin or urlparse(origin).hostname != request.url.hostname:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Headers": "Authorization",
            "Access-Control-Allow-Methods": "GET, OPTIONS", "Access-Control-Max-Age": "600"}


def reader(role: Role = "viewer"):
    """shared.http.require, but its 401/403 also carry the CORS headers, so a page on the
    peer port sees "sign in again" instead of an opaque network error."""
    check = require(role).dependency

    async def principal(request: Request, response: Response,
                        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        allow = cors_headers(request)
        try:
            found = await check(request, credentials)
        except HTTPException as exc:
            raise HTTPException(exc.status_code, exc.detail, {**(exc.headers or {}), **allow}) from None
        response.headers.update(allow)
        return found

    return Depends(principal)


def page(name: str) -> FileResponse:
    # no-cache: a page is tiny and must follow the API it talks to after an upgrade
    return FileResponse(STATIC / "pages" / f"{name}.html", media_type=_TYPES[".html"],
                        headers={"Cache-Control": "no-cache"})


def add_pages(router: APIRouter, *names: str) -> None:
    """`GET /ui/<name>` serves `static/pages/<name>.html` for each name."""
    for name in names:
        router.add_api_route(f"/ui/{name}", _serve(name), methods=["GET"], include_in_schema=False)


def _serve(name: str):
    # a closure, not a default argument: FastAPI would turn that into a query parameter
    async def serve() -> FileResponse:
        return page(name)
    return serve


def common_router(home: str | None, *, sign_in: bool = True) -> APIRouter:
    """Routes every service shares: assets, `/` leading to `home`, and (for a city's services,
    whose pages need a token) the sign-in page, who-am-I and the CORS preflight."""
    router = APIRouter(include_in_schema=False)

    if home is not None:
        @router.get("/")
        async def root() -> RedirectResponse:
            return RedirectResponse(home, status_code=307)

    @router.get("/ui/static/{path:path}")
    async def asset(path: str) -> FileResponse:
        file = SHIPPED.get(path)
        if file is None:
            raise HTTPException(404, "No such file.")
        return FileResponse(file, media_type=_TYPES.get(file.suffix, "application/octet-stream"),
                            headers={"Cache-Control": "no-cache"})

    if not sign_in:
        return router

    @router.get("/ui/login")
    async def login() -> FileResponse:
        return page("login")

    @router.get("/ui/api/whoami")
    async def whoami(request: Request, who: Principal = reader("viewer")) -> dict[str, str]:
        return {"city": who.city, "role": who.role,
                "service": request.app.state.settings.service}

    @router.options("/ui/api/{path:path}")
    async def preflight(request: Request, path: str) -> Response:
        return Response(status_code=204, headers=cors_headers(request))

    return router
