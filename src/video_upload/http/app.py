"""The application factory: settings in, a ready ASGI app out."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig

from video_upload import __version__, metrics
from video_upload.config import Settings
from video_upload.http.auth import Authenticator
from video_upload.http.drain import Drain, DrainMiddleware
from video_upload.http.limits import RequestLimits
from video_upload.http.middleware import MethodOverrideMiddleware
from video_upload.http.observe import Observe
from video_upload.http.page.routes import build_router as build_page_router
from video_upload.http.rest import direct, sessions, uploads, videos
from video_upload.http.rest.errors import install_error_handlers
from video_upload.http.rest.openapi import declare_bearer_authentication
from video_upload.http.services import Services, services_of
from video_upload.http.tus import constants as tus
from video_upload.http.tus import routes as tus_routes
from video_upload.http.tus.fast_path import TusFastPath
from video_upload.lifecycle.periodic import start_periodic_cleanup
from video_upload.lifecycle.service import Clock, UploadService, utcnow
from video_upload.lifecycle.webhooks import WebhookDispatcher
from video_upload.persistence.database import Database
from video_upload.storage.base import StagingArea, StorageError, UploadStore
from video_upload.storage.factory import open_store

log = logging.getLogger(__name__)

StoreOpener = Callable[[Settings, StagingArea], Awaitable[UploadStore]]


def create_app(
    settings: Settings | None = None,
    *,
    store_opener: StoreOpener = open_store,
    clock: Clock = utcnow,
    telemetry: TelemetryConfig | None = None,
) -> FastAPI:
    """The service's ASGI app. `telemetry` is FastAPI's OpenTelemetry configuration (by
    default it records requests when the process has OpenTelemetry providers configured)."""
    settings = settings or Settings()
    authenticator = Authenticator(settings)
    drain = Drain()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database.open(settings.resolved_database_url, settings.database_max_connections)
        store = await store_opener(settings, database.staging)
        upload_service = UploadService(settings, database, store, clock=clock)
        app.state.services = Services(
            settings=settings,
            database=database,
            store=store,
            authenticator=authenticator,
            uploads=upload_service,
        )
        log.info(
            "serving with database %s and %s storage",
            database.backend,
            settings.storage_backend,
            extra={"database": database.backend, "storage": settings.storage_backend},
        )
        drain.on_drain(upload_service.locks.stop_all)
        restore_signals = drain.chain_signal_handlers(asyncio.get_running_loop())
        # Optional expired-upload cleanup every CLEANUP_INTERVAL_MINUTES (None when off).
        cleanup = start_periodic_cleanup(upload_service)
        app.state.cleanup = cleanup
        # Webhook deliveries from the outbox, when WEBHOOK_URL names receivers.
        dispatcher = None
        if settings.webhook_urls:
            dispatcher = WebhookDispatcher(settings, database, clock)
            upload_service.events_committed = dispatcher.wake
            dispatcher.start()
        app.state.webhooks = dispatcher
        try:
            yield
        finally:
            restore_signals()
            if dispatcher is not None:
                await dispatcher.stop()
            if cleanup is not None:
                await cleanup.stop()
            await store.close()
            await database.close()

    app = FastAPI(
        title="video-upload",
        version=__version__,
        summary="Resumable video uploads (tus 1.0.0) for practice sessions",
        lifespan=lifespan,
        telemetry=telemetry,
        # /docs is served by the page's router from the service's own Swagger UI assets (no
        # CDN, so it works offline); ReDoc is not offered
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    declare_bearer_authentication(app)
    app.include_router(tus_routes.router)
    app.include_router(uploads.router)
    app.include_router(videos.router)
    app.include_router(sessions.router)
    app.include_router(direct.router)
    app.include_router(build_page_router(chunk_size=settings.upload_chunk_size))

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        if settings.metrics_port:  # served on a port of their own (`serve`), not here
            return JSONResponse(
                {"error": {"code": "not_found", "message": "the metrics are on METRICS_PORT"}},
                status_code=404,
            )
        token = settings.metrics_token.get_secret_value()
        given = request.headers.get("authorization", "")
        if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse(
                {"error": {"code": "unauthorized", "message": "METRICS_TOKEN required"}},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        services = services_of_app(app)
        problems: dict[str, str] = {}
        try:
            await services.database.ping()
        except Exception as error:  # any failure means "not ready", never a 500
            problems["database"] = type(error).__name__
        try:
            await services.store.check()
        except StorageError as error:
            problems["storage"] = str(error)
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    # the innermost: tus HEAD and PATCH that did not take the shortcut skip FastAPI's router
    app.add_middleware(TusFastPath)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=list(tus.ALLOWED_METHODS),
        allow_headers=list(tus.ALLOWED_HEADERS),
        expose_headers=list(tus.EXPOSED_HEADERS),
        max_age=86400,
    )
    app.add_middleware(MethodOverrideMiddleware)
    app.add_middleware(DrainMiddleware, drain=drain)
    # header count, stalled bodies (NETWORK_TIMEOUT_SECONDS), answers given before the body
    app.add_middleware(
        RequestLimits,
        network_timeout=settings.network_timeout_seconds,
        min_body_rate=settings.min_body_rate_bytes_per_second,
    )
    # outside everything: the request id, the access log line, the request metrics
    app.add_middleware(Observe)
    app.state.drain = drain
    return app


def services_of_app(app: FastAPI) -> Services:
    services = app.state.services
    assert isinstance(services, Services)
    return services


__all__ = ["create_app", "services_of"]
