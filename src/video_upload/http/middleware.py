"""Small ASGI middleware: X-HTTP-Method-Override for clients behind restrictive proxies."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

OVERRIDABLE = {"PATCH", "DELETE", "HEAD", "PUT"}


class MethodOverrideMiddleware:
    """Treat `POST` with `X-HTTP-Method-Override: PATCH` (or DELETE, HEAD) as that method."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for name, value in scope["headers"]:
                if name == b"x-http-method-override":
                    method = value.decode("latin-1").strip().upper()
                    if method in OVERRIDABLE:
                        scope = {**scope, "method": method}
                    break
        await self.app(scope, receive, send)
