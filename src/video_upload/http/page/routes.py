"""Routes of the upload page: `/` and its assets under `/ui/…`.

Only the files listed here are served (no directory is exposed). tus-js-client's browser bundle
comes from the npm package installed in `web/node_modules` of the source tree (`make setup`);
when it is missing, `/ui/vendor/tus.min.js` answers 404 with a message saying so, and the page
shows that message too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse, Response

STATIC_DIR = Path(__file__).parent / "static"
# src/video_upload/webui/routes.py → the repository root is three folders above the package.
REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
TUS_BUNDLE = Path("node_modules") / "tus-js-client" / "dist" / "tus.min.js"

ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The page and its assets change with the code: browsers revalidate rather than guess.
NO_CACHE = {"Cache-Control": "no-cache"}
MISSING_BUNDLE = (
    "tus-js-client is not installed: run `make setup` (it runs `npm ci` in web/), "
    "then reload the page.\n"
)


def web_dirs() -> list[Path]:
    """Where `web/` (with its node_modules) may be: the source tree's, then the working dir's."""
    return [REPOSITORY_ROOT / "web", Path.cwd() / "web"]


def build_router(web_folders: Sequence[Path] | None = None) -> APIRouter:
    """The page's routes; `web_folders` replaces the places searched for tus-js-client."""
    router = APIRouter(include_in_schema=False, tags=["web page"])

    @router.get("/")
    async def page() -> Response:
        return FileResponse(
            STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=NO_CACHE
        )

    @router.get("/ui/vendor/tus.min.js")
    async def tus_bundle() -> Response:
        folders = web_dirs() if web_folders is None else web_folders
        for candidate in (folder / TUS_BUNDLE for folder in folders):
            if candidate.is_file():
                return FileResponse(candidate, media_type=ASSETS["app.js"], headers=NO_CACHE)
        return PlainTextResponse(MISSING_BUNDLE, status_code=404)

    @router.get("/ui/{name}")
    async def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return PlainTextResponse("not found\n", status_code=404)
        return FileResponse(STATIC_DIR / name, media_type=media_type, headers=NO_CACHE)

    return router


router = build_router()

__all__ = ["build_router", "router"]
