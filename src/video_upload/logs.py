"""Logging: readable lines on a console, or one JSON object per line (`LOG_FORMAT=json`).

Every record carries what is known of the request it belongs to (its id, the user, the upload),
kept in one dictionary per request that the HTTP layer fills in as it learns them (`annotate`;
a dictionary, not one context variable each, so that what a dependency running on a worker
thread learns is seen by the request's own log lines too); a JSON line holds them as fields.
Nothing here ever sees a token or a secret: requests are logged by method, path, status and
timing, never by their headers.
"""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

# The current request's fields (request_id, user_id, upload_id), set by `begin_request`.
_request: ContextVar[dict[str, str] | None] = ContextVar("request_fields", default=None)


def begin_request(request_id: str) -> dict[str, str]:
    """Start the fields of the request being served in this context."""
    fields = {"request_id": request_id}
    _request.set(fields)
    return fields


def annotate(**fields: str) -> None:
    """Add what is now known of the current request (e.g. `user_id`, `upload_id`)."""
    current = _request.get()
    if current is not None:
        current.update(fields)


def request_fields() -> dict[str, str]:
    return dict(_request.get() or {})


# What a record's own attributes hold besides the message (anything else passed in `extra`
# becomes a field of the JSON line).
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

LogFormat = Literal["console", "json"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(request_fields())
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ContextFormatter(logging.Formatter):
    """The console format, with the request's id where there is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        current = request_fields().get("request_id")
        return f"{text} [request {current}]" if current else text


def logging_config(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """The `logging.config.dictConfig` that sends every logger's records (uvicorn's too) to
    standard error in `log_format` (what `serve` gives uvicorn, for each worker process)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if log_format == "json"
        else {"()": ContextFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"service": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "service",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(log_format: LogFormat) -> None:
    """Set up this process's logging as `logging_config` describes."""
    logging.config.dictConfig(logging_config(log_format))
