"""What the HTTP edge lets through to the database: bounded, storable identifiers.

The columns have sizes (a user id is at most 255 characters, an upload id 100) and PostgreSQL
refuses a NUL in any text. A value that breaks them must be refused here, with a 4xx saying so,
never reach a statement that fails: that failure is answered 503 ("retry"), and a client would
retry forever.
"""

from __future__ import annotations

import re

from video_upload.domain.errors import ERR_UNAUTHORIZED, ERR_UPLOAD_NOT_FOUND, ServiceError

MAX_USER_ID = 255
# Upload ids are made by the service (32 hex digits); anything else names no upload.
UPLOAD_ID_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
_UPLOAD_ID = re.compile(UPLOAD_ID_PATTERN)


def storable_text(value: str) -> bool:
    """Whether every database back end can store `value`: no NUL, no lone surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def usable_user_id(user_id: str) -> str:
    """The token's subject, if it can be a user id here (else 401: the token is unusable)."""
    if len(user_id) > MAX_USER_ID or not storable_text(user_id):
        raise ERR_UNAUTHORIZED.with_message(
            f"invalid token: its subject must be at most {MAX_USER_ID} characters, without NUL"
        )
    return user_id


def check_upload_id(upload_id: str) -> str:
    """An upload id from a URL; one the service could not have made is 404 at once."""
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise ServiceError(ERR_UPLOAD_NOT_FOUND)
    return upload_id
