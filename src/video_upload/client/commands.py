"""The client subcommands of `video-upload` (`upload`, `videos`, `sessions create|list`).

`register(subparsers)` adds them to the `video-upload` parser, each as a `client_handler`
taking only the parsed arguments: the client needs none of the server's settings. The server
and the token come from `--url`/`--token`, else `VIDEO_UPLOAD_URL` (default
http://127.0.0.1:8000) and `VIDEO_UPLOAD_TOKEN` (make one with `video-upload token --user ID`).
Nothing of the server is imported here: the client speaks to it over HTTP only.

`upload` and `sessions create` print only an id on standard output (so `ID=$(video-upload …)`
works); the progress bar and notes go to standard error. Exit status: 0 done, 1 failed, 130
interrupted (run the same upload again to resume).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rich.console import Console

    from video_upload.client.api import Api

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "VIDEO_UPLOAD_URL"
TOKEN_VARIABLE = "VIDEO_UPLOAD_TOKEN"
_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def register(subparsers: Any) -> None:
    """Add `upload`, `videos` and `sessions` to the `video-upload` subparsers."""
    upload = subparsers.add_parser(
        "upload",
        help="upload a video file (resumable: run it again to continue)",
        description="Upload a video to a practice session over tus. Interrupted? Run the same "
        "command again: it continues from the last byte the server holds.",
    )
    upload.add_argument("file", type=Path, help="the video file")
    upload.add_argument("--session", required=True, help="practice session id")
    _connection_arguments(upload)
    upload.add_argument(
        "--duration",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="the video's length in seconds, declared to the server (default: read from the "
        "file with FFmpeg; when it cannot be read, e.g. the file is not a video, nothing is "
        "sent and the command fails, asking for --duration)",
    )
    upload.add_argument(
        "--chunk-size",
        type=parse_size,
        default=None,
        help="bytes per PATCH, e.g. 262144, 256KiB, 5MiB (default: what the server suggests)",
    )
    upload.add_argument(
        "--content-type", default=None, help="e.g. video/mp4 (default: guessed from the name)"
    )
    upload.add_argument(
        "--retries", type=int, default=8, help="attempts in a row before giving up (default: 8)"
    )
    upload.set_defaults(client_handler=upload_command)

    videos = subparsers.add_parser("videos", help="list a practice session's videos")
    videos.add_argument("--session", required=True, help="practice session id")
    _connection_arguments(videos)
    videos.add_argument("--json", action="store_true", help="print the list as JSON")
    videos.set_defaults(client_handler=videos_command)

    sessions = subparsers.add_parser(
        "sessions",
        help="create or list practice sessions",
        description="Practice sessions hold the videos: make one, then `video-upload upload "
        "FILE --session ID`.",
    )
    actions = sessions.add_subparsers(dest="sessions_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create a practice session, print its id",
        description="Create a practice session and print its id on standard output, so "
        "`SESSION=$(video-upload sessions create Scales)` works.",
    )
    create.add_argument("name", help="the session's name, e.g. 'Scales, 3 March'")
    _connection_arguments(create)
    create.set_defaults(client_handler=sessions_create_command)
    listing = actions.add_parser(
        "list",
        help="list your practice sessions",
        description="List your practice sessions: id, name, when created (UTC). Needs a server "
        "that answers GET /api/v1/sessions.",
    )
    _connection_arguments(listing)
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(client_handler=sessions_list_command)


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=None, help=f"server (default: ${URL_VARIABLE} or {DEFAULT_URL})"
    )
    parser.add_argument("--token", default=None, help=f"bearer JWT (default: ${TOKEN_VARIABLE})")


def parse_size(text: str) -> int:
    """`262144`, `256k`, `256KiB`, `5MiB`, `1g` → bytes (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    value = int(match.group(1)) * _UNITS[(match.group(2) or "")[:1].lower()]
    if value <= 0:
        raise argparse.ArgumentTypeError("the size must be above 0")
    return value


def positive_seconds(text: str) -> float:
    """`--duration`: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("the duration must be a number of seconds above 0")
    return value


def server_url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get(URL_VARIABLE) or DEFAULT_URL).rstrip("/")


def bearer_token(args: argparse.Namespace) -> str | None:
    token = (args.token or os.environ.get(TOKEN_VARIABLE) or "").strip()
    return token or None


def _stderr() -> Console:
    from rich.console import Console

    quiet_http_logs()
    return Console(stderr=True, highlight=False, soft_wrap=True)  # the terminal wraps notes


def quiet_http_logs() -> None:
    """`video-upload` logs at INFO for the server; a client's every request is noise."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


# -- upload ------------------------------------------------------------------------------


def upload_command(args: argparse.Namespace) -> int:
    from video_upload.client.api import Api, ClientError
    from video_upload.client.media import DurationUnknown
    from video_upload.client.progress import ProgressReporter
    from video_upload.client.state import UploadRecords
    from video_upload.client.uploader import LocalFile, RetryPolicy, Uploader, UploadFailed

    console = _stderr()
    token = _token_or_complain(console, args)
    if token is None:
        return 1
    try:
        file = LocalFile.of(args.file, args.content_type)
    except OSError as error:
        console.print(f"[red]cannot read {args.file}:[/] {error.strerror or error}")
        return 1
    if not file.path.is_file():
        console.print(f"[red]{args.file} is not a file[/]")
        return 1
    url = server_url(args)
    try:
        with Api(url, token) as api, ProgressReporter(console, file.filename) as reporter:
            uploader = Uploader(
                api,
                UploadRecords(),
                server=url,
                chunk_size=args.chunk_size,
                retry=RetryPolicy(attempts=max(0, args.retries)),
                reporter=reporter,
            )
            outcome = uploader.upload(file, args.session, args.duration)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: run the same command again to resume")
        return 130
    except DurationUnknown as error:
        console.print(
            f"[red]cannot tell how long {file.filename} is:[/] {error}. Is it a video? "
            "Nothing was sent. To upload it anyway, declare its length: --duration SECONDS"
        )
        return 1
    except (ClientError, UploadFailed) as error:
        console.print(f"[red]upload failed:[/] {error}")
        return 1
    if outcome.already_done:
        console.print(f"already uploaded as video {outcome.video_id}")
    elif outcome.resumed_from is not None:
        console.print(f"resumed at byte {outcome.resumed_from}: done, video {outcome.video_id}")
    else:
        console.print(f"done: video {outcome.video_id}")
    print(outcome.video_id)
    return 0


# -- listings and sessions -----------------------------------------------------------------


def videos_command(args: argparse.Namespace) -> int:
    from video_upload.client.progress import videos_table

    videos = _ask_server(args, "list the videos", lambda api: api.session_videos(args.session))
    if videos is None:
        return 1
    if args.json:
        _print_json(videos)
    else:
        _stdout().print(videos_table(videos, args.session))
    return 0


def sessions_create_command(args: argparse.Namespace) -> int:
    session = _ask_server(args, "create the session", lambda api: api.create_session(args.name))
    if session is None:
        return 1
    session_id = str(session.get("id", ""))
    _stderr().print(
        f"created session {session_id} ({session.get('name') or 'no name'}); upload to it with "
        f"`video-upload upload FILE --session {session_id}`"
    )
    print(session_id)
    return 0


def sessions_list_command(args: argparse.Namespace) -> int:
    from video_upload.client.progress import sessions_table

    sessions = _ask_server(args, "list the sessions", lambda api: api.sessions())
    if sessions is None:
        return 1
    if args.json:
        _print_json(sessions)
    else:
        _stdout().print(sessions_table(sessions))
    return 0


def _ask_server(args: argparse.Namespace, failure: str, call: Callable[[Api], T]) -> T | None:
    """`call` with a client of the server and the user's token; None once the user has been
    told why not (no token, or the server refused: "cannot `failure`: ...")."""
    from video_upload.client.api import Api, ClientError

    console = _stderr()
    token = _token_or_complain(console, args)
    if token is None:
        return None
    try:
        with Api(server_url(args), token) as api:
            return call(api)
    except ClientError as error:
        console.print(f"[red]cannot {failure}:[/] {error}")
        return None


def _token_or_complain(console: Console, args: argparse.Namespace) -> str | None:
    token = bearer_token(args)
    if token is None:
        console.print(
            f"[red]no token:[/] pass --token or set {TOKEN_VARIABLE} "
            "(make one with `video-upload token --user ID`)"
        )
    return token


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _stdout() -> Console:
    from rich.console import Console

    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = max(out.width, 140)  # piped: keep rows whole rather than wrapped at 80
    return out
