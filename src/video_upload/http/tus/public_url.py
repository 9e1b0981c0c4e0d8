"""The service's absolute address, for the upload URLs it hands out (`Location`, `upload_url`).

Clients with no page to resolve a relative URL against (React Native, Node, the CLI) need an
absolute one. It is `PUBLIC_BASE_URL` when that is set; otherwise the request's scheme and
`Host`, or, with `TRUST_PROXY_HEADERS`, what the proxy says in `Forwarded` (RFC 7239) or
`X-Forwarded-Proto`/`X-Forwarded-Host`. A host that is not a plain `host[:port]` is refused
(400) rather than echoed: a hostile `Host` must not put another site's address, a path or a
header break into the URLs a client will send its bytes and its token to.
"""

from __future__ import annotations

import ipaddress
import re

from video_upload.config import Settings
from video_upload.domain.errors import ERR_INVALID_HOST
from video_upload.http.tus.headers import RequestHeaders

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(
    rf"(?P<name>{_LABEL}(?:\.{_LABEL})*\.?|\[(?P<ip6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{{1,5}}))?"
)
_MAX_HOST = 255
_SCHEMES = {"http", "https"}


def valid_host(value: str) -> bool:
    """Whether `value` is `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 one."""
    if not value or len(value) > _MAX_HOST:
        return False
    match = _HOST.fullmatch(value)
    if match is None:
        return False
    port = match.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        return False
    ip6 = match.group("ip6")
    if ip6 is not None:
        try:
            ipaddress.IPv6Address(ip6)
        except ValueError:
            return False
    return True


def base_url(settings: Settings, headers: RequestHeaders, scheme: str) -> str:
    """`scheme://host[:port]` (or PUBLIC_BASE_URL) with no trailing slash; 400 for a bad host."""
    if settings.public_base_url:
        return settings.public_base_url
    host = headers.get("host")
    if settings.trust_proxy_headers:
        forwarded = _forwarded(headers.get("forwarded"))
        proto = forwarded.get("proto") or _first(headers.get("x-forwarded-proto"))
        if proto and proto.lower() in _SCHEMES:
            scheme = proto.lower()
        host = forwarded.get("host") or _first(headers.get("x-forwarded-host")) or host
    host = (host or "").strip()
    if not valid_host(host):
        raise ERR_INVALID_HOST.with_message(
            "the request's host is not a valid host[:port]; "
            "the service cannot build absolute upload URLs from it (set PUBLIC_BASE_URL)"
        )
    return f"{scheme if scheme in _SCHEMES else 'http'}://{host}"


def _first(value: str | None) -> str | None:
    """The first (client-most) entry of a comma-separated proxy header."""
    if value is None:
        return None
    return value.split(",", 1)[0].strip() or None


def _forwarded(value: str | None) -> dict[str, str]:
    """The parameters of the first element of an RFC 7239 `Forwarded` header (lower-case keys,
    quotes removed)."""
    params: dict[str, str] = {}
    first = _first(value)
    if first is None:
        return params
    for pair in first.split(";"):
        key, sep, raw = pair.partition("=")
        if sep:
            params.setdefault(key.strip().lower(), raw.strip().strip('"'))
    return params
