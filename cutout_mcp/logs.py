"""Logging to stderr with the API key (and any presigned URL's signature) redacted.

On stdio, stdout carries the protocol, so nothing may be printed there. The
redaction filter sits on the handler, so a record from any library (httpx,
uvicorn, the SDK) is scrubbed before it is written. `CUTOUT_LOG_FORMAT=json`
writes each record as one JSON object, with the trace and the call it belongs
to (`call_fields`, set where a tool runs).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from types import MappingProxyType

from cutout_mcp.config import Settings, database_secrets

REDACTED = "[REDACTED]"
PRESIGNED = re.compile(r"(?i)\b((?:x-amz-|x-goog-)?(?:signature|credential|security-token)|sig)=[^&\s\"']+")
"""The signature (and credential) parameters of presigned URLs (S3, GCS, Azure, the sandbox's): a staged
image's URL may appear in a library's request line at DEBUG, and its signature is a credential."""


class RedactingFilter(logging.Filter):
    """Replaces every occurrence of the given secrets in a formatted record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message, self._secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self._secrets)
        return True


_NO_FIELDS: Mapping[str, str | int] = MappingProxyType({})
_CALL_FIELDS: ContextVar[Mapping[str, str | int]] = ContextVar("cutout_call_fields", default=_NO_FIELDS)


@contextmanager
def call_fields(**fields: str | int | None) -> Iterator[None]:
    """Name the call the records logged inside belong to (`tool`, `principal`, `job_id`), in JSON logs."""
    token = _CALL_FIELDS.set({**_CALL_FIELDS.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CALL_FIELDS.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, then what is known of the
    call: the trace and span ids of the current span, and the call's fields."""

    def format(self, record: logging.LogRecord) -> str:
        from opentelemetry.trace import get_current_span

        moment = datetime.fromtimestamp(record.created, timezone.utc)
        entry: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"], entry["span_id"] = f"{context.trace_id:032x}", f"{context.span_id:016x}"
        entry.update(_CALL_FIELDS.get())
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return PRESIGNED.sub(lambda found: f"{found.group(1)}={REDACTED}", text) if "=" in text else text


def configure_logging(settings: Settings) -> None:
    """Send every log record to stderr, scrubbed of the API key, the OAuth client secret, the staging
    bucket's secret key and session token, and the database URL's password."""
    handler = logging.StreamHandler(sys.stderr)
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else text)
    keys = (settings.api_key, settings.oauth_client_secret, settings.aws_secret_access_key, settings.aws_session_token)
    secrets = [s.get_secret_value() for s in keys if s]
    if settings.database_url is not None:
        secrets += database_secrets(settings.database_url.get_secret_value())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # httpx logs every request line at INFO; keep that for DEBUG runs only.
    logging.getLogger("httpx").setLevel(logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING)
