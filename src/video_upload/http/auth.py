"""JWT bearer authentication: verifying tokens, minting them for `video-upload token`.

The key comes from `JWT_SECRET` (HMAC) or `JWT_PUBLIC_KEY`/`JWT_PRIVATE_KEY` (RS256/ES256).
Where no HMAC secret is configured, one is generated on first use and kept in the data directory
with 0600 permissions, so the server and the `token` command agree without a hard-coded secret.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt

from video_upload import logs
from video_upload.config import Settings
from video_upload.domain.errors import ERR_UNAUTHORIZED, ServiceError

log = logging.getLogger(__name__)

SECRET_FILE_NAME = "jwt_secret"
HMAC_ALGORITHMS = {"HS256", "HS384", "HS512"}
# The latest `exp` accepted (the year 9999): larger numbers are not times, and some overflow floats.
MAX_EXPIRY = 253402300799


@dataclass(frozen=True)
class Keys:
    algorithm: str
    verify_key: str
    sign_key: str


def load_keys(settings: Settings) -> Keys:
    algorithm = settings.jwt_algorithm
    if algorithm in HMAC_ALGORITHMS:
        secret = settings.jwt_secret.get_secret_value() or _embedded_secret(settings.data_dir)
        return Keys(algorithm, secret, secret)
    if not settings.jwt_public_key:
        raise ValueError(f"JWT_ALGORITHM={algorithm} needs JWT_PUBLIC_KEY")
    private_key = settings.jwt_private_key.get_secret_value()
    return Keys(algorithm, _pem(settings.jwt_public_key), _pem(private_key) if private_key else "")


def _pem(value: str) -> str:
    """Accept a PEM string (with literal \\n in env files) or a path to a PEM file."""
    if value.lstrip().startswith("-----"):
        return value.replace("\\n", "\n")
    return Path(value).read_text()


def _embedded_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE_NAME
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()  # another process won the race
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    log.warning("JWT_SECRET is not set: generated one and stored it in %s (mode 0600)", path)
    return secret


class VerifiedTokens:
    """Tokens whose signature and claims were checked, kept until they expire.

    A client sends the same token with every chunk of an upload, and PyJWT re-derives the key and
    checks it for every token (about a tenth of a millisecond, a tenth of what a whole PATCH costs
    the service). A token seen before is accepted again only while its `exp` lies ahead; the
    cache holds the most recently used `size` tokens.
    """

    def __init__(self, clock: Callable[[], float], size: int = 4096) -> None:
        self.clock = clock
        self.size = size
        self._subjects: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def subject(self, token: str) -> str | None:
        """The token's subject if it was verified before; raises 401 once it has expired."""
        entry = self._subjects.get(token)
        if entry is None:
            return None
        subject, expires_at = entry
        if self.clock() >= expires_at:
            del self._subjects[token]
            raise ERR_UNAUTHORIZED.with_message("token expired")
        self._subjects.move_to_end(token)
        return subject

    def remember(self, token: str, subject: str, expires_at: float) -> None:
        self._subjects[token] = (subject, expires_at)
        if len(self._subjects) > self.size:
            self._subjects.popitem(last=False)


class Authenticator:
    """Turns an `Authorization` header into a user id, or raises a 401 ServiceError."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.keys = load_keys(settings)
        self.audience = settings.jwt_audience or None
        self.issuer = settings.jwt_issuer or None
        self.verified = VerifiedTokens(clock)

    def user_from_header(self, authorization: str | None) -> str:
        if not authorization:
            raise ERR_UNAUTHORIZED.with_message("missing Authorization header")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ERR_UNAUTHORIZED.with_message("Authorization must be 'Bearer <token>'")
        known = self.verified.subject(token)
        if known is not None:
            logs.annotate(user_id=known)
            return known
        try:
            claims = jwt.decode(
                token,
                self.keys.verify_key,
                algorithms=[self.keys.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                # a token carrying an `aud` claim is refused unless JWT_AUDIENCE names it
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise ERR_UNAUTHORIZED.with_message("token expired") from error
        except jwt.PyJWTError as error:
            raise ERR_UNAUTHORIZED.with_message(f"invalid token: {error}") from error
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise ERR_UNAUTHORIZED.with_message("token has no subject")
        expires_at = claims["exp"]
        if not isinstance(expires_at, int | float) or not 0 < expires_at < MAX_EXPIRY:
            raise ERR_UNAUTHORIZED.with_message("invalid token: exp is out of range")
        if "nbf" not in claims:  # (a token not yet valid is re-checked every time)
            self.verified.remember(token, subject, float(expires_at))
        logs.annotate(user_id=subject)
        return subject

    def mint(self, user_id: str, ttl_seconds: int = 3600) -> str:
        if not self.keys.sign_key:
            raise ValueError("no signing key: set JWT_PRIVATE_KEY to mint tokens")
        now = int(time.time())
        claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
        if self.audience:
            claims["aud"] = self.audience
        if self.issuer:
            claims["iss"] = self.issuer
        return jwt.encode(claims, self.keys.sign_key, algorithm=self.keys.algorithm)


__all__ = ["Authenticator", "ServiceError"]
