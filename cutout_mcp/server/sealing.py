"""The key that seals a 2026-07-28 spend question's state, shared by every process through the storage.

The question goes to the client with a sealed `requestState`, and the answer comes back with it. Sealed
under a key only this process knew, an answer that reaches another replica (behind a load balancer), or
this server after a restart, would be refused as invalid and the user asked to start over. So the key is
made once, kept in the storage every process of the server shares (`Storage.shared_secret`), and read
when the server starts. Whoever can read that storage can already rewrite the ledger and the budget, so
it adds no one who could forge an answer.
"""

from __future__ import annotations

import os

from mcp.server.request_state import AESGCMRequestStateCodec, InvalidRequestState

from cutout_mcp.core.storage import Storage

KEY_NAME = "request-state-key"
"""The row of the secrets table that holds the key (the name, not the key)."""
KEY_BYTES = 32


class SharedKeyCodec:
    """The SDK's AES-256-GCM sealing under the storage's shared key, loaded at start-up (`load`)."""

    def __init__(self) -> None:
        self._codec: AESGCMRequestStateCodec | None = None

    async def load(self, storage: Storage) -> None:
        key = await storage.shared_secret(KEY_NAME, os.urandom(KEY_BYTES))
        self._codec = AESGCMRequestStateCodec([key])

    def seal(self, payload: bytes) -> str:
        return self._loaded().seal(payload)

    def unseal(self, token: str) -> bytes:
        return self._loaded().unseal(token)

    def _loaded(self) -> AESGCMRequestStateCodec:
        if self._codec is None:  # no request is served before the lifespan has loaded it
            raise InvalidRequestState("the sealing key is not loaded")
        return self._codec
