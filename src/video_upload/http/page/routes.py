"""Routes of the upload page (`/` and its assets under `/ui/…`) and of the API documentation
(`/docs`, Swagger UI).

Only the files listed here are served (no directory is exposed). The page carries the chunk
size the service suggests (UPLOAD_CHUNK_SIZE, a whole S3 part on S3) in a `<meta>` tag, which
its script uploads with. tus-js-client's browser bundle and Swagger UI's assets come from the
npm packages installed in `web/node_modules` of the source tree (`make setup`), never from a
CDN, so both pages work offline; when a package is missing, its asset under `/ui/vendor/`
answers 404 with a message saying so, and the upload page shows that message too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from video_upload.config import DEFAULT_UPLOAD_CHUNK_SIZE

STATIC_DIR = Path(__file__).parent / "static"
# src/video_upload/http/page/routes.py → the repository root is four folders above this one.
REPOSITORY_ROOT = Path(__file__).resolve().parents[4]
TUS_BUNDLE = Path("node_modules") / "tus-js-client" / "dist" / "tus.min.js"
SWAGGER_DIST = Path("node_modules") / "swagger-ui-dist"
# /ui/vendor/<name>: the file in web/ and its media type.
VENDOR = {
    "tus.min.js": (TUS_BUNDLE, "text/javascript; charset=utf-8"),
    "swagger-ui-bundle.js": (
        SWAGGER_DIST / "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
    ),
    "swagger-ui.css": (SWAGGER_DIST / "swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-favicon.png": (SWAGGER_DIST / "favicon-32x32.png", "image/png"),
}
DOCS_PATH = "/docs"
# index.html names the suggested chunk size with this placeholder; the page route fills it in.
CHUNK_SIZE_PLACEHOLDER = "%UPLOAD_CHUNK_SIZE%"

ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The page and its assets change with the code: browsers revalidate rather than guess.
NO_CACHE = {"Cache-Control": "no-cache"}
MISSING_PACKAGE = (
    "{package} is not installed: run `make setup` (it runs `npm ci` in web/), "
    "then reload the page.\n"
)


def web_dirs() -> list[Path]:
    """Where `web/` (with its node_modules) may be: the source tree's, then the working dir's."""
    return [REPOSITORY_ROOT / "web", Path.cwd() / "web"]


def build_router(
    web_folders: Sequence[Path] | None = None, chunk_size: int = DEFAULT_UPLOAD_CHUNK_SIZE
) -> APIRouter:
    """The page's routes; `web_folders` replaces the places searched for tus-js-client, and
    `chunk_size` is the PATCH size the page uploads with."""
    router = APIRouter(include_in_schema=False, tags=["web page"])
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    index = index.replace(CHUNK_SIZE_PLACEHOLDER, str(chunk_size))

    @router.get("/")
    async def page() -> Response:
        return HTMLResponse(index, headers=NO_CACHE)

    @router.get("/ui/vendor/{name}")
    async def vendor(name: str) -> Response:
        if name not in VENDOR:
            return PlainTextResponse("not found\n", status_code=404)
        path, media_type = VENDOR[name]
        folders = web_dirs() if web_folders is None else web_folders
        for candidate in (folder / path for folder in folders):
            if candidate.is_file():
                return FileResponse(candidate, media_type=media_type, headers=NO_CACHE)
        package = path.parts[1]
        return PlainTextResponse(MISSING_PACKAGE.format(package=package), status_code=404)

    @router.get(DOCS_PATH)
    async def docs(request: Request) -> Response:
        """Swagger UI on the service's OpenAPI document, with assets served from `web/`."""
        return get_swagger_ui_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title} - API documentation",
            swagger_js_url="/ui/vendor/swagger-ui-bundle.js",
            swagger_css_url="/ui/vendor/swagger-ui.css",
            swagger_favicon_url="/ui/vendor/swagger-favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @router.get("/ui/{name}")
    async def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return PlainTextResponse("not found\n", status_code=404)
        return FileResponse(STATIC_DIR / name, media_type=media_type, headers=NO_CACHE)

    return router


__all__ = ["DOCS_PATH", "build_router"]
