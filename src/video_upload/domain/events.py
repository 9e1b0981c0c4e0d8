"""Webhook events: what the service tells a receiver, and the record of each delivery.

An event has a stable id (the Standard Webhooks `webhook-id`, so a receiver can drop a
duplicate), a type, and a payload in the specification's `{type, timestamp, data}` shape. Each
receiver URL gets its own `Delivery` of it, tried until the receiver accepts it or the retry
window closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

UPLOAD_CREATED = "video.upload_created"
COMPLETED = "video.completed"
REJECTED = "video.rejected"
EXPIRED = "video.expired"
ABORTED = "video.aborted"

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Event:
    """One event, as written to the outbox (`payload` is the exact JSON body sent)."""

    id: str
    type: str
    upload_id: str
    payload: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one receiver."""

    seq: int
    event_id: str
    event_type: str
    upload_id: str
    url: str
    payload: str
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
