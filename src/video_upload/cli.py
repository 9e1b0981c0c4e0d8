"""The `video-upload` command: serve, migrate, token, cleanup, upload, videos."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from video_upload.config import Settings
from video_upload.logs import configure_logging, logging_config


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import subprocess

    import uvicorn

    from video_upload.http.server import server_options

    # Migrate in a process of its own: Alembic and what a migration loads would otherwise stay
    # in the server's memory for good (about 14 MiB of every node's idle RSS).
    migrated = subprocess.run([sys.executable, "-m", "video_upload.cli", "migrate"], check=False)
    if migrated.returncode != 0:
        print("serve: the database could not be migrated (see above)", file=sys.stderr)
        return 1
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # every worker writes its metrics here, and /metrics adds them up (see `metrics`);
        # set before any worker imports prometheus-client
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="video-upload-metrics-")
    if settings.metrics_port:
        from video_upload import metrics

        try:
            metrics.serve_on_port(settings.metrics_host, settings.metrics_port)
        except OSError as error:
            where = f"{settings.metrics_host}:{settings.metrics_port}"
            print(f"serve: cannot serve the metrics on {where}: {error}", file=sys.stderr)
            return 1
    uvicorn.run(
        "video_upload.http.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        log_config=logging_config(settings.log_format),  # in every worker process too
        access_log=False,  # one line per request comes from the app (`http.observe`)
        # a worker importing PyAV and the app on a busy machine may take seconds to answer
        # the supervisor's first check; uvicorn's default would kill it again and again
        timeout_worker_healthcheck=30,
        # httptools behind a guard on request heads and stalled writes; keep-alive and
        # graceful-shutdown timeouts (see `http.server`)
        **server_options(settings),
    )
    return 0


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from video_upload.persistence.engine import migrate

    migrate(settings.resolved_database_url)
    print("database schema is up to date")
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from video_upload.http.auth import Authenticator

    print(Authenticator(settings).mint(args.user, ttl_seconds=args.ttl))
    return 0


def _cleanup(_args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from video_upload.domain.errors import ServiceError
    from video_upload.lifecycle.cleanup import cleanup_once
    from video_upload.storage.base import StorageError

    try:
        report = asyncio.run(cleanup_once(settings))
    except (ServiceError, StorageError) as error:
        print(f"cleanup failed: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def _webhooks_list(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from video_upload.lifecycle.webhook_admin import list_deliveries

    deliveries = asyncio.run(list_deliveries(settings, args.status, args.limit))
    for delivery in deliveries:
        print(
            f"{delivery.seq}\t{delivery.status}\t{delivery.event_type}\t{delivery.event_id}\t"
            f"{delivery.upload_id}\t{delivery.url}\tattempts={delivery.attempts}\t"
            f"{delivery.last_error or ''}"
        )
    if not deliveries:
        print("no webhook deliveries")
    return 0


def _webhooks_retry(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from video_upload.lifecycle.webhook_admin import retry_failed

    count = asyncio.run(retry_failed(settings, args.seq or None))
    print(f"{count} failed deliveries will be sent again")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="video-upload", description="Resumable video uploads over tus 1.0.0."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(handler=_migrate)

    token = commands.add_parser("token", help="print a JWT for trying the API by hand")
    token.add_argument("--user", required=True, help="the user id (the token's sub)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(handler=_token)

    cleanup = commands.add_parser(
        "cleanup", help="remove expired uploads and orphaned storage once, print the count"
    )
    cleanup.set_defaults(handler=_cleanup)

    webhooks = commands.add_parser("webhooks", help="list webhook deliveries, retry failed ones")
    actions = webhooks.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the latest deliveries, newest first")
    listing.add_argument("--status", choices=["pending", "delivered", "failed"])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=_webhooks_list)
    retry = actions.add_parser("retry", help="send failed deliveries again")
    retry.add_argument("seq", type=int, nargs="*", help="delivery numbers (default: all failed)")
    retry.set_defaults(handler=_webhooks_retry)

    from video_upload.client.commands import register

    register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client_handler = getattr(args, "client_handler", None)
    if client_handler is not None:  # the uploader runs anywhere, with no server settings
        client_result: int = client_handler(args)
        return client_result
    settings = Settings()
    configure_logging(settings.log_format)
    handler = args.handler
    result: int = handler(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
