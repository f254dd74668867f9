"""Callers by the names people know them by: `local`, a token's name, an OAuth subject.

The server keys jobs and charges by a principal key (`server.principal`): `local` on stdio, and over
HTTP the SDK's (client_id, issuer, subject) triple as compact JSON, so two users of one client, or one
user of two issuers, stay apart. People know a caller by a name instead: the `CUTOUT_MCP_TOKEN` entry's
name (its client_id and subject both), or the OAuth token's subject (its client_id when the token names
no subject, as a client-credentials token does). Reports and policies speak of callers by that name.
"""

from __future__ import annotations

import json

LOCAL = "local"
"""The one caller on stdio and in process: whoever started the server."""


def principal_name(key: str) -> str:
    """The name people know the caller keyed `key` by; a key that is no triple is its own name."""
    if not key.startswith("["):
        return key
    try:
        parts = json.loads(key)
    except ValueError:
        return key
    if not isinstance(parts, list) or len(parts) != 3:
        return key
    client_id, _issuer, subject = parts
    for name in (subject, client_id):
        if isinstance(name, str) and name:
            return name
    return key
