"""Signed playback URLs: a short-lived address a `<video>` element plays a finished video from,
with no Authorization header (a media element cannot send one).

`GET /api/v1/videos/{id}/playback` (the owner's token) answers `{url, expires_at}`:

- a store that can sign URLs itself (`PlaybackSigningStore`, i.e. S3) gives a presigned
  GetObject of the video's object, so the bytes go from S3 to the browser, Range and all;
- otherwise (the local store) the URL is the service's own content endpoint,
  `/api/v1/videos/{id}/content?expires=<unix time>&signature=<hex>`, where the signature is
  HMAC-SHA256 over the video id and the expiry with a key only the service holds. The content
  endpoint takes such a URL instead of a token, with Range and HEAD as usual.

A signed URL names no user: whoever holds it reads that one video until it expires, like a
presigned S3 URL, so it lives `PLAYBACK_URL_SECONDS` (an hour by default; a playing video asks
for ranges all along). Query strings are never logged (`http.observe` logs the path).

The key is `PLAYBACK_SIGNING_KEY`; unset, it is derived from the HS* JWT secret (an HMAC of a
fixed label, so a playback signature never doubles as a token signature), or with RS256/ES256,
where the service holds no shared secret, generated once into `DATA_DIR/playback_signing_key`
(0600) like the JWT secret. Nodes that share no DATA_DIR need the setting. Expiry is judged by
the service's clock.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import HTTPConnection

from video_upload.config import Settings
from video_upload.domain.errors import (
    ERR_BAD_SIGNATURE,
    ERR_SIGNATURE_EXPIRED,
    ERR_VIDEO_NOT_FOUND,
    ERR_VIDEO_NOT_READY,
    ServiceError,
)
from video_upload.domain.records import Video
from video_upload.http.auth import HMAC_ALGORITHMS, Keys
from video_upload.http.services import Services, services_of
from video_upload.http.tus.headers import RequestHeaders
from video_upload.http.tus.public_url import base_url
from video_upload.lifecycle.records import stored
from video_upload.storage.base import PlaybackSigningStore

log = logging.getLogger(__name__)

EXPIRES = "expires"
SIGNATURE = "signature"
KEY_FILE_NAME = "playback_signing_key"
CONTENT_PATH = "/api/v1/videos/{video_id}/content"
# What a JWT secret is turned into a playback key with; a new version invalidates old URLs.
_KEY_LABEL = b"video-upload playback URL key v1"
_EXPIRES = re.compile(r"[1-9][0-9]{0,11}")  # unix seconds, before the year 33658
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PlaybackSigner:
    """Signs and checks the local store's playback URLs."""

    key: bytes

    def signature(self, video_id: uuid.UUID, expires: int) -> str:
        message = f"playback\n{video_id}\n{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def query(self, video_id: uuid.UUID, expires: int) -> str:
        return urlencode({EXPIRES: expires, SIGNATURE: self.signature(video_id, expires)})

    def check(
        self, video_id: uuid.UUID, expires: str | None, signature: str | None, now: datetime
    ) -> None:
        """Accept a signed URL's parameters, or raise 403: a signature that does not match
        (or malformed parameters) first, then an expiry that has passed."""
        if (
            expires is None
            or signature is None
            or not _EXPIRES.fullmatch(expires)
            or not _SIGNATURE.fullmatch(signature)
            or not hmac.compare_digest(signature, self.signature(video_id, int(expires)))
        ):
            raise ServiceError(ERR_BAD_SIGNATURE)
        if now.timestamp() >= int(expires):
            raise ServiceError(ERR_SIGNATURE_EXPIRED)


def playback_key(settings: Settings, keys: Keys) -> bytes:
    """The HMAC key of the local store's playback URLs (see the module's docstring)."""
    configured = settings.playback_signing_key.get_secret_value()
    if configured:
        return configured.encode()
    if keys.algorithm in HMAC_ALGORITHMS:
        return hmac.new(keys.verify_key.encode(), _KEY_LABEL, hashlib.sha256).digest()
    return _embedded_key(settings.data_dir / KEY_FILE_NAME)


def _embedded_key(path: Path) -> bytes:
    try:
        return path.read_text().strip().encode()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()  # another process won the race
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    log.warning(
        "PLAYBACK_SIGNING_KEY is not set and JWT_ALGORITHM has no shared secret: generated "
        "a key and stored it in %s (mode 0600)",
        path,
    )
    return key.encode()


def signer_of(connection: HTTPConnection) -> PlaybackSigner:
    """The app's signer, made on first use (the key may have to be read from DATA_DIR)."""
    state = connection.app.state
    signer = getattr(state, "playback_signer", None)
    if not isinstance(signer, PlaybackSigner):
        services = services_of(connection)
        signer = PlaybackSigner(playback_key(services.settings, services.authenticator.keys))
        state.playback_signer = signer
    return signer


def check_signed(
    connection: HTTPConnection, video_id: uuid.UUID, expires: str | None, signature: str | None
) -> None:
    """Raise 403 unless a signed URL's `expires` and `signature` sign `video_id` and have not
    expired by the service's clock."""
    now = services_of(connection).uploads.clock()
    signer_of(connection).check(video_id, expires, signature, now)


async def owner_of(services: Services, video_id: uuid.UUID) -> str:
    """The user a video belongs to (for a signed request, which carries no token); 404 when
    there is no such video."""
    async with services.uploads.database() as db:
        video = await db.videos.by_id(video_id)
    if video is None or video.concat == "partial":
        raise ServiceError(ERR_VIDEO_NOT_FOUND)
    return video.user_id


@dataclass(frozen=True)
class Playback:
    url: str
    expires_at: datetime


async def playback(connection: HTTPConnection, video: Video) -> Playback:
    """A playback URL for the caller's `video` (already checked to be theirs): 409 unless it is
    completed, 404 when it was rejected (its bytes are gone)."""
    if video.status == "rejected":
        raise ERR_VIDEO_NOT_FOUND.with_message("video was rejected; its bytes are gone")
    if video.status != "completed" or not video.upload_completed:
        raise ERR_VIDEO_NOT_READY.with_message(
            f"the video is {video.status}; only a completed video can be played",
            status=video.status,
        )
    services = services_of(connection)
    seconds = services.settings.playback_url_seconds
    now = services.uploads.clock()
    store = services.store
    if isinstance(store, PlaybackSigningStore):
        url = await services.uploads.storage_call(
            store.playback_url(stored(video), video.content_type, seconds)
        )
        return Playback(url, now + timedelta(seconds=seconds))
    headers = RequestHeaders(connection.scope["headers"])
    base = base_url(services.settings, headers, connection.url.scheme)
    expires = int(now.timestamp()) + seconds
    query = signer_of(connection).query(video.id, expires)
    path = CONTENT_PATH.format(video_id=video.id)
    return Playback(f"{base}{path}?{query}", datetime.fromtimestamp(expires, UTC))
