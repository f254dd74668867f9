"""Which environment variable sets which setting, and reading them (`*_FILE` secrets included).

A new setting is one field in `settings.Settings` (with its docstring, which is its `--help` line)
and one entry in `ENV_VARS`; validation at start-up then covers it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from cutout_mcp.config.values import ConfigError

ENV_VARS = {
    "api_key": "CUTOUT_API_KEY",
    "base_url": "CUTOUT_BASE_URL",
    "wait_seconds": "CUTOUT_WAIT_SECONDS",
    "http_timeout": "CUTOUT_HTTP_TIMEOUT",
    "log_level": "CUTOUT_LOG_LEVEL",
    "log_format": "CUTOUT_LOG_FORMAT",
    "metrics_addr": "CUTOUT_METRICS_ADDR",
    "output_dir": "CUTOUT_OUTPUT_DIR",
    "preview": "CUTOUT_PREVIEW",
    "preview_seconds": "CUTOUT_PREVIEW_SECONDS",
    "media_origins": "CUTOUT_MEDIA_ORIGINS",
    "sandbox": "CUTOUT_SANDBOX",
    "allowed_hosts": "CUTOUT_ALLOWED_HOSTS",
    "allowed_origins": "CUTOUT_ALLOWED_ORIGINS",
    "state_dir": "CUTOUT_STATE_DIR",
    "credit_budget": "CUTOUT_CREDIT_BUDGET",
    "allowances_file": "CUTOUT_ALLOWANCES_FILE",
    "allowance": "CUTOUT_ALLOWANCE",
    "session_credits": "CUTOUT_SESSION_CREDITS",
    "paid_calls_per_minute": "CUTOUT_PAID_CALLS_PER_MINUTE",
    "database_url": "CUTOUT_DATABASE_URL",
    "task_lease_seconds": "CUTOUT_TASK_LEASE_SECONDS",
    "shutdown_grace": "CUTOUT_SHUTDOWN_GRACE",
    "preflight": "CUTOUT_PREFLIGHT",
    "confirm_spend": "CUTOUT_CONFIRM_SPEND",
    "mcp_tokens": "CUTOUT_MCP_TOKEN",
    "max_request_body_size": "CUTOUT_MAX_REQUEST_BODY",
    "input_dirs": "CUTOUT_INPUT_DIRS",
    "oauth_issuer": "CUTOUT_OAUTH_ISSUER",
    "oauth_introspection_url": "CUTOUT_OAUTH_INTROSPECTION_URL",
    "oauth_resource_url": "CUTOUT_OAUTH_RESOURCE_URL",
    "oauth_client_id": "CUTOUT_OAUTH_CLIENT_ID",
    "oauth_client_secret": "CUTOUT_OAUTH_CLIENT_SECRET",
    "oauth_required_scopes": "CUTOUT_OAUTH_REQUIRED_SCOPES",
    "staging_url": "CUTOUT_STAGING_URL",
    "staging_ttl": "CUTOUT_STAGING_TTL",
    # the staging bucket's: the standard names its users already set for AWS S3, R2, GCS and MinIO
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "aws_region": "AWS_REGION",
    "aws_endpoint_url": "AWS_ENDPOINT_URL",
}
FILE_VARS = {
    "api_key": "CUTOUT_API_KEY_FILE",
    "database_url": "CUTOUT_DATABASE_URL_FILE",
    "mcp_tokens": "CUTOUT_MCP_TOKEN_FILE",
    "oauth_client_secret": "CUTOUT_OAUTH_CLIENT_SECRET_FILE",
}
"""Secrets may come from a file instead (Docker/Kubernetes secrets), never from a flag."""
FALLBACK_VARS = {"aws_region": "AWS_DEFAULT_REGION"}
"""Read when the setting's own variable is unset: the AWS CLI's other name for the region."""


_HTTP_ONLY = {"allowed_hosts", "allowed_origins", "mcp_tokens", "max_request_body_size"} | {
    field for field in ENV_VARS if field.startswith("oauth_")
}

ENVIRONMENT: dict[str, str] = {var: "http" if field in _HTTP_ONLY else "all" for field, var in ENV_VARS.items()}
"""Every variable the server reads (CUTOUT_* and the staging bucket's AWS_*), and whether it matters on
every transport or only over HTTP."""
SETTING_OF: dict[str, str] = {var: field for field, var in ENV_VARS.items()}
"""Every variable -> the Settings field it sets (docs/configuration.md's tables, and the README's short one, are
checked against it: tests/test_readme.py)."""


def environment_values(env: Mapping[str, str]) -> dict[str, object]:
    """The settings the environment sets, by field name (values unvalidated)."""
    values: dict[str, object] = {field: env[var] for field, var in ENV_VARS.items() if _is_set(env.get(var))}
    values.update({f: env[var] for f, var in FALLBACK_VARS.items() if f not in values and _is_set(env.get(var))})
    values.update(_read_secret_files(env, values))
    return values


_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


def _is_set(value: str | None) -> bool:
    """Empty means unset, and so does a bare `${...}`: an MCPB host (Claude Desktop) passes an
    optional `${user_config.x}` through unsubstituted when the user left it blank."""
    return bool(value) and _PLACEHOLDER.fullmatch(value or "") is None


def _read_secret_files(env: Mapping[str, str], values: Mapping[str, object]) -> dict[str, object]:
    """Values of the `*_FILE` variables; naming both a value and its file is refused as ambiguous."""
    found: dict[str, object] = {}
    for field, var in FILE_VARS.items():
        path = env.get(var)
        if not path:
            continue
        if field in values:
            raise ConfigError(f"Set {ENV_VARS[field]} or {var}, not both.")
        try:
            found[field] = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{var}: cannot read {path} ({type(exc).__name__}).") from None
    return found


def describe(exc: ValidationError) -> str:
    """Name each bad setting by its environment variable, without echoing values (one may be the key)."""
    parts = []
    for err in exc.errors():
        if not err["loc"]:  # a rule about several settings names them itself
            parts.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        field = str(err["loc"][0])
        name = ENV_VARS.get(field, f"--{field.replace('_', '-')}")
        parts.append(f"{name}: {str(err['msg']).removeprefix('Value error, ')}")
    return "Invalid configuration: " + "; ".join(parts)


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """CUTOUT_* variables that set nothing (a typo, or a name that was never released), to warn about."""
    known = set(ENV_VARS.values()) | set(FILE_VARS.values())
    return sorted(name for name in env if name.startswith("CUTOUT_") and name not in known)
