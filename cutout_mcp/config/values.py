"""Small facts about setting values, shared by the settings model and the modules that use them."""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from cutout_mcp.errors import CutoutMcpError


class ConfigError(CutoutMcpError, ValueError):
    """A setting has a value the server cannot run with; the message says which and why."""


def default_state_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The per-user state folder of the platform's convention, without a dependency to find it."""
    env = os.environ if environ is None else environ
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Application Support" / "cutout-mcp"
    if platform == "win32":
        local = env.get("LOCALAPPDATA")
        return (Path(local) if local else home / "AppData" / "Local") / "cutout-mcp"
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "state"
    return base / "cutout-mcp"


def database_secrets(url: str) -> list[str]:
    """The parts of a database URL that must never be shown: the URL itself and its password
    (in the authority or as a `password=` query parameter)."""
    parts = urlsplit(url)
    found = [url]
    if parts.password:
        found.append(parts.password)
    found += [value for key, value in parse_qsl(parts.query) if key == "password" and value]
    return found


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url_port(url: str) -> None:
    """Raise `ValueError` (without echoing the URL, which may hold a password) when its port is not a number."""
    try:
        port = urlsplit(url).port
    except ValueError:
        raise ValueError("its port is not a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("its port is not a number from 1 to 65535")


_ORIGIN = re.compile(r"(https?)://(\*\.)?([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


def media_origin(value: str) -> str:
    """`scheme://host[:port]`, lower case, no path; a leading `*.` in the host stands for any subdomain."""
    origin = value.strip().lower().rstrip("/")
    if not _ORIGIN.fullmatch(origin):
        raise ValueError(
            "each entry must be an origin such as https://cdn.example.com or https://*.example.com "
            "(http or https, a host, an optional port, nothing after it)"
        )
    return origin


def listen_address(value: str) -> str | None:
    """`host:port` for a listener, checked; a bare port (or `:port`) means 127.0.0.1; blank means unset."""
    text = value.strip()
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port or a port, the port a number from 1 to 65535 (e.g. 127.0.0.1:9464)")
    host = host or "127.0.0.1"
    if not re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]", host):
        raise ValueError("its host must be a name or an address (IPv6 in brackets, e.g. [::1]:9464)")
    return f"{host}:{int(port)}"
