"""`/docs` (Swagger UI) and `/redoc` from assets installed with the `fastapi-offline` package.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank without internet,
while the services promise to work offline. The assets here are the package's files, served
from a fixed table (never a path built from the request), and the pages ask for nothing outside
this origin: no Google fonts, no online validator badge.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/docs-assets"
_FILES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
          "swagger-ui.css": "text/css; charset=utf-8",
          "redoc.standalone.js": "text/javascript; charset=utf-8",
          "favicon.png": "image/png"}


def add_api_docs(app: FastAPI) -> None:
    """Serve the API pages of `app` (created with docs_url=None, redoc_url=None)."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title}: API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title}: API",
                              redoc_js_url=f"{PREFIX}/redoc.standalone.js",
                              redoc_favicon_url=f"{PREFIX}/favicon.png", with_google_fonts=False)

    @app.get(PREFIX + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in _FILES:
            raise HTTPException(404, "No such file.")
        return FileResponse(ASSETS / name, media_type=_FILES[name],
                            headers={"Cache-Control": "max-age=86400"})
