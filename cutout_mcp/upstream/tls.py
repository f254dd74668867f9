"""One verifying TLS context for every HTTP client of the server: the API's, the downloads', the pre-flight's.

Each context httpx builds loads the CA bundle: with the defaults (pre-flight and preview on), three of
them cost about 110 ms of CPU and 4.5 MB; one shared costs about 50 ms and 2.8 MB. The context is the
same for every client (httpx's verifying defaults, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`), and
an `SSLContext` may be shared. It is made on first use, never at start-up.
"""

from __future__ import annotations

import functools
import ssl


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()
