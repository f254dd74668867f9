"""A PostgreSQL URL in messages: its address without the password, and any text with its secrets taken out."""

from __future__ import annotations

from urllib.parse import urlsplit

from cutout_mcp.config import database_secrets


def describe(url: str) -> str:
    """The database's address for messages: host, port and name, never the user's password."""
    parts = urlsplit(url)
    host = parts.hostname or "(local socket)"
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{host}{port}{parts.path}"


def address(url: str) -> str:
    """`database D on host H, port P`, read the way libpq reads the URL (query parameters included)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    host = str(info.get("host") or "the local socket")
    name = info.get("dbname") or info.get("user") or "(default)"
    return f"database {name} on host {host}, port {info.get('port') or 5432}"


def redact(text: str, url: str) -> str:
    """`text` without the URL or its password, as a driver message may quote the conninfo."""
    for secret in sorted(database_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
