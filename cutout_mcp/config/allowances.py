"""The allowance policy: who may spend how many credits per period, per session, and how fast.

The policy comes from `CUTOUT_ALLOWANCES_FILE` (TOML: a `[default]` table and `[principals.NAME]`
tables, each with the keys `credits`, `period`, `session_credits`, `paid_calls_per_minute`) or, for a
single user, from `CUTOUT_ALLOWANCE`, `CUTOUT_SESSION_CREDITS` and `CUTOUT_PAID_CALLS_PER_MINUTE`, which
set the `[default]` table. A principal's table replaces only the keys it names. A policy that cannot be
read stops the server at start with one line naming the file, the key or line, and what is wrong.

NAME is how people know a caller: a `CUTOUT_MCP_TOKEN` name, or an OAuth token's subject
(`principal_name`). Over stdio the caller is `local`, which has no table of its own: it gets `[default]`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutout_mcp.config.periods import Period, parse_allowance, parse_period
from cutout_mcp.config.values import ConfigError

if TYPE_CHECKING:
    from cutout_mcp.config.settings import Settings

FILE_VAR = "CUTOUT_ALLOWANCES_FILE"
SINGLE_USER_VARS = {
    "allowance": "CUTOUT_ALLOWANCE",
    "session_credits": "CUTOUT_SESSION_CREDITS",
    "paid_calls_per_minute": "CUTOUT_PAID_CALLS_PER_MINUTE",
}
KEYS = ("credits", "period", "session_credits", "paid_calls_per_minute")
DEFAULT_PERIOD = parse_period("month")


@dataclass(frozen=True)
class Limits:
    """The limits of one caller; None is no limit. `credits` renew every `period`."""

    credits: int | None = None
    period: Period = DEFAULT_PERIOD
    session_credits: int | None = None
    paid_calls_per_minute: int | None = None

    @property
    def any(self) -> bool:
        return (self.credits, self.session_credits, self.paid_calls_per_minute) != (None, None, None)


@dataclass(frozen=True)
class AllowancePolicy:
    """`[default]` and the principals' own tables, already merged with it."""

    default: Limits
    principals: Mapping[str, Limits] = field(default_factory=dict)
    source: str = FILE_VAR

    def for_principal(self, principal: str) -> tuple[str, Limits]:
        """The caller's name as people know it, and the limits that apply to it."""
        name = principal_name(principal)
        return name, self.principals.get(name, self.default)

    @property
    def any(self) -> bool:
        return self.default.any or any(limits.any for limits in self.principals.values())

    @property
    def has_session_cap(self) -> bool:
        return any(limits.session_credits is not None for limits in (self.default, *self.principals.values()))


def principal_name(principal: str) -> str:
    """A principal as people know it: `local`, a token's name, or an OAuth token's subject (its client id
    when the token names no subject). The server's principals are `local` or a JSON triple
    [client_id, issuer, subject] (`server.principal`)."""
    if not principal.startswith("["):
        return principal
    try:
        client_id, _issuer, subject = json.loads(principal)
    except (ValueError, TypeError):
        return principal
    return str(subject if subject is not None else client_id)


def has_limits(settings: Settings) -> bool:
    """Whether any allowance setting is given (the assistant is told limits exist)."""
    return settings.allowances_file is not None or any(getattr(settings, name) is not None for name in SINGLE_USER_VARS)


def load_policy(settings: Settings) -> AllowancePolicy | None:
    """The policy the settings name, or None when no limit is set; ConfigError when it cannot hold."""
    single = [var for name, var in SINGLE_USER_VARS.items() if getattr(settings, name) is not None]
    if settings.allowances_file is not None and single:
        raise ConfigError(
            f"Set {FILE_VAR} or {', '.join(single)}, not both: the file's [default] table is what "
            f"{single[0]} would set."
        )
    if settings.allowances_file is not None:
        policy = read_policy_file(settings.allowances_file)
    elif single:
        credits, period = (None, DEFAULT_PERIOD) if settings.allowance is None else parse_allowance(settings.allowance)
        default = Limits(credits, period, settings.session_credits, settings.paid_calls_per_minute)
        policy = AllowancePolicy(default, source=", ".join(single))
    else:
        return None
    if settings.stateless and settings.transport == "streamable-http" and policy.has_session_cap:
        raise ConfigError(
            "A session cap (session_credits) cannot hold with --stateless: without sessions every request "
            f"stands alone. Remove session_credits from {policy.source}, or serve with sessions."
        )
    return policy if policy.any else None


def read_policy_file(path: Path) -> AllowancePolicy:
    """Parse the TOML policy file; every problem is one ConfigError naming the file and the key or line."""
    where = f"{FILE_VAR} {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot be read ({type(exc).__name__}).") from None
    return parse_policy(text, where)


def parse_policy(text: str, where: str) -> AllowancePolicy:
    """A policy from its TOML text; `where` (the file, as messages name it) starts every ConfigError.

    Also how a reader of the ledger (the soak's checker) gets the limits exactly as the server does."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}.") from None
    unknown = sorted(set(document) - {"default", "principals"})
    if unknown:
        raise ConfigError(f"{where}: unknown table [{unknown[0]}]; use [default] and [principals.NAME].")
    default = _limits(Limits(), _table(document.get("default", {}), "[default]", where), "[default]", where)
    principals = _table(document.get("principals", {}), "[principals]", where)
    merged = {
        str(name): _limits(default, _table(entry, f"[principals.{name}]", where), f"[principals.{name}]", where)
        for name, entry in principals.items()
    }
    return AllowancePolicy(default, merged, source=where)


def _table(value: Any, label: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {label} must be a table of keys ({', '.join(KEYS)}).")
    return value


def _limits(base: Limits, entry: Mapping[str, Any], label: str, where: str) -> Limits:
    """`base` with the keys `entry` names replaced."""
    changes: dict[str, Any] = {}
    for key, value in entry.items():
        if key not in KEYS:
            raise ConfigError(f"{where}: {label} {key}: unknown key; the keys are {', '.join(KEYS)}.")
        if key == "period":
            if not isinstance(value, str):
                raise ConfigError(f'{where}: {label} period: must be a string such as "month" or "1d".')
            try:
                changes[key] = parse_period(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: {label} period: {exc}.") from None
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: {label} {key}: must be a whole number of 0 or more (got {value!r}).")
        else:
            changes[key] = value
    return replace(base, **changes)
