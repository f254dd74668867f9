"""Settings: every CUTOUT_* variable in one validated object.

The API key is held as a `SecretStr` so that printing, logging or
serialising the settings shows `**********`, never the key itself. It comes
from the environment only; no tool argument can set it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cutout_mcp.catalog import MAX_WAIT_SECONDS
from cutout_mcp.config.environment import describe, environment_values
from cutout_mcp.config.periods import parse_allowance
from cutout_mcp.config.staging import (
    DEFAULT_STAGING_TTL,
    MAX_STAGING_TTL,
    StagingBucket,
    check_endpoint,
    check_region,
    check_staging_url,
    staging_bucket,
)
from cutout_mcp.config.values import (
    ConfigError,
    check_url_port,
    default_state_dir,
    is_loopback_host,
    listen_address,
    media_origin,
)

Transport = Literal["stdio", "sse", "streamable-http"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

DEFAULT_BASE_URL = "https://www.cutout.pro"
DEFAULT_WAIT_SECONDS = 45.0
"""Below the ~60 s after which many clients abandon a tool call."""
DEFAULT_HTTP_TIMEOUT = 30.0
DEFAULT_PREVIEW_SECONDS = 2.0
"""How long an edit's inline preview may take (fetch and shrink) before the result goes without it."""
DEFAULT_MAX_REQUEST_BODY = 1024 * 1024
DEFAULT_MEDIA_ORIGINS = ("https://cdn.cutout.pro",)
"""cutout.pro's documented result origin; the video origin is not documented, hence the setting."""


def _allowance(value: str | None) -> str | None:
    if value is not None:
        parse_allowance(value)
    return value


class Settings(BaseModel):
    """Every setting; each field's docstring is its help text (`environment_help`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None
    """Your cutout.pro API key (required for real calls; never from a tool argument)."""
    base_url: str = DEFAULT_BASE_URL
    """The API's base URL (a proxy, or a local sandbox)."""
    wait_seconds: float = Field(default=DEFAULT_WAIT_SECONDS, ge=0, le=MAX_WAIT_SECONDS)
    """Default bound for the video tools' waits, in seconds."""
    http_timeout: float = Field(default=DEFAULT_HTTP_TIMEOUT, gt=0, le=600)
    """Seconds to wait for one cutout.pro answer."""
    log_level: LogLevel = "INFO"
    """DEBUG, INFO, WARNING or ERROR; logs go to stderr."""
    log_format: Literal["text", "json"] = "text"
    """text, or json: one JSON object per line (time, level, logger, message, trace and call fields)."""
    metrics_addr: str | None = None
    """host:port (a bare port means 127.0.0.1) of a listener with Prometheus /metrics, /healthz and /readyz;
    unset: none (docs/operations.md)."""
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    output_dir: Path | None = None
    """Where finished videos, covers and edited images are saved (unset: only cutout.pro's expiring links)."""
    preview: bool = True
    """on/off: results carry a small inline JPEG so the assistant can see them: the edited image, a
    finished video's contact sheet."""
    preview_seconds: float = Field(default=DEFAULT_PREVIEW_SECONDS, gt=0, le=60)
    """Budget for making a preview; past it the result is returned without one."""
    media_origins: tuple[str, ...] = DEFAULT_MEDIA_ORIGINS
    """Origins (comma-separated, `https://*.example.com` allowed) the MCP Apps views may load videos and
    images from: declared to the host once, before any result exists (docs/viewer.md)."""
    sandbox: bool = False
    """on/off: calls go to a sandbox, declared, never inferred: the standalone one at CUTOUT_BASE_URL when
    that is set (its loopback origin is then trusted for images), else one started in-process."""
    allowed_hosts: tuple[str, ...] = ()
    """Host header values accepted by the HTTP transports besides loopback."""
    allowed_origins: tuple[str, ...] = ()
    """Browser Origin values accepted by the HTTP transports besides loopback."""
    state_dir: Path = Field(default_factory=lambda: default_state_dir())
    """Where the job ledger (an SQLite file) lives; shared by every server process of this user."""
    credit_budget: int | None = Field(default=None, ge=0)
    """Credits the ledger may record as spent in total; a paid call past it is refused before it is sent."""
    allowances_file: Path | None = None
    """A TOML file of renewing allowances per caller, session caps and rates (docs/allowances.md)."""
    allowance: Annotated[str | None, AfterValidator(_allowance)] = None
    """Credits per period for every caller, such as `200/month` or `50/1d` (no file needed)."""
    session_credits: int | None = Field(default=None, ge=0)
    """Credits one MCP session (one client connection) may spend."""
    paid_calls_per_minute: int | None = Field(default=None, ge=0)
    """Paid calls one caller may start in any 60 seconds."""
    database_url: SecretStr | None = None
    """A postgresql:// URL: shared state for several replicas (see core.storage); unset uses state_dir."""
    task_lease_seconds: float = Field(default=30.0, ge=1, le=600)
    """How long a task's process may be silent before another process adopts the task (renewed every third)."""
    shutdown_grace: float = Field(default=10.0, ge=0, le=600)
    """Seconds a stopping server (SIGTERM, SIGINT) lets calls in flight finish, so their callers get their job ids."""
    stateless: bool = False
    """streamable-http without sessions (--stateless), so 2025-11-25 clients need no sticky routing."""
    preflight: bool = True
    """on/off: fetch each image's head through the SSRF guard and refuse what cutout.pro would refuse."""
    confirm_spend: str = "off"
    """Ask the user (MCP elicitation) before a paid call: `off`, `always`, or `above:N` (calls costing more
    than N credits). `core.money.consent` applies it; see `confirm_spend_above`."""
    mcp_tokens: tuple[SecretStr, ...] = ()
    """Bearer tokens for the HTTP transports, each `token` or `name:token` (the name is the principal)."""
    max_request_body_size: int = Field(default=DEFAULT_MAX_REQUEST_BODY, ge=1024, le=64 * 1024 * 1024)
    """Largest HTTP request body accepted, in bytes; bigger ones get 413 before parsing."""
    input_dirs: tuple[Path, ...] | None = None
    """Folders local image paths may be read from, separated like PATH (unset: home on stdio, none over HTTP).
    `none` allows no folder; see docs/images.md for the rules every path must pass."""
    oauth_issuer: str | None = None
    """OAuth resource-server mode (see `server/oauth.py`): the authorization server's issuer URL."""
    oauth_introspection_url: str | None = None
    """Its RFC 7662 token introspection endpoint."""
    oauth_resource_url: str | None = None
    """This server's public URL (e.g. https://mcp.example.com/mcp); tokens must name it in `aud`."""
    oauth_client_id: str | None = None
    """The client id this server presents to the introspection endpoint."""
    oauth_client_secret: SecretStr | None = None
    """Credentials this server presents to the introspection endpoint (HTTP Basic)."""
    oauth_required_scopes: tuple[str, ...] = ()
    """Scopes every token must carry (comma- or space-separated)."""
    staging_url: str | None = None
    """s3://bucket/prefix: the bucket local, inline and uploaded images are staged in for cutout.pro.
    Needs cutout-mcp[staging]; its credentials come from the AWS_* variables."""
    staging_ttl: int = Field(default=DEFAULT_STAGING_TTL, ge=60, le=MAX_STAGING_TTL)
    """Seconds a staged image's presigned URL stays valid (at most 7 days): long enough for a queued job."""
    aws_access_key_id: str | None = None
    """The staging bucket's access key id."""
    aws_secret_access_key: SecretStr | None = None
    """The staging bucket's secret access key."""
    aws_session_token: SecretStr | None = None
    """A session token, for temporary staging credentials."""
    aws_region: str | None = None
    """The staging bucket's region (default us-east-1; `auto` for R2); AWS_DEFAULT_REGION is read too."""
    aws_endpoint_url: str | None = None
    """The S3 API's URL for a store other than AWS S3 (R2, GCS, MinIO); http:// is allowed for it."""

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("database_url", mode="before")
    @classmethod
    def _postgres_url(cls, value: object) -> object:
        """Blank means unset; anything else must be a PostgreSQL URL (the value is never echoed)."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        raw = raw.strip()
        if not raw:
            return None
        if not raw.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (leave it unset to use the SQLite file in CUTOUT_STATE_DIR)")
        check_url_port(raw)
        ports = [v for k, v in parse_qsl(urlsplit(raw).query) if k == "port"]
        if any(not _is_port(p) for p in ports):
            raise ValueError("its port= parameter is not a port number (1 to 65535)")
        return raw

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        if not urlsplit(value).hostname:
            raise ValueError("has no host name")
        check_url_port(value)
        return value.rstrip("/")

    @field_validator("oauth_issuer", "oauth_introspection_url", "oauth_resource_url", mode="before")
    @classmethod
    def _oauth_url(cls, value: object) -> object:
        """https, or http on a loopback host (a local authorization server); blank means unset."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            return None
        parts = urlsplit(value)
        if not parts.hostname or parts.scheme not in ("https", "http"):
            raise ValueError("must be an absolute https:// URL")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("must use https:// (http is accepted for loopback hosts only)")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value

    @field_validator(
        "oauth_client_id",
        "oauth_client_secret",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("oauth_required_scopes", mode="before")
    @classmethod
    def _scope_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(value.replace(",", " ").split())
        return value

    @field_validator("confirm_spend", mode="before")
    @classmethod
    def _spend_rule(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        rule = value.strip().lower().replace(" ", "")
        if not re.fullmatch(r"off|always|above:[0-9]{1,9}", rule):
            raise ValueError("must be off, always, or above:N where N is a whole number of credits (e.g. above:4)")
        return f"above:{int(rule[6:])}" if rule.startswith("above:") else rule

    @field_validator("input_dirs", mode="before")
    @classmethod
    def _path_list(cls, value: object) -> object:
        """`os.pathsep`-separated (`:` on POSIX, `;` on Windows, whose paths hold a colon); `none` is no folder."""
        if not isinstance(value, str):
            return value
        if value.strip().lower() == "none":
            return ()
        paths = [Path(item.strip()).expanduser() for item in value.split(os.pathsep) if item.strip()]
        if any(not path.is_absolute() for path in paths):
            raise ValueError("every folder must be an absolute path (or ~/...)")
        return tuple(paths)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", "metrics_addr", mode="before")
    @classmethod
    def _operating(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.strip().lower() if info.field_name == "log_format" else listen_address(value)

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("media_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        return tuple(media_origin(str(item)) for item in items if str(item).strip())

    @field_validator("mcp_tokens", mode="before")
    @classmethod
    def _token_list(cls, value: object) -> object:
        """Comma- or line-separated; `#` starts a comment line in a token file."""
        if isinstance(value, str):
            lines = (line.strip() for line in value.replace(",", "\n").splitlines())
            return tuple(line for line in lines if line and not line.startswith("#"))
        return value

    @field_validator("staging_url", "aws_endpoint_url", "aws_region", mode="before")
    @classmethod
    def _staging_values(cls, value: object, info: ValidationInfo) -> object:
        """Blank means unset; the value itself may be echoed (none of these is a secret)."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        check = {"staging_url": check_staging_url, "aws_endpoint_url": check_endpoint, "aws_region": check_region}
        return check[str(info.field_name)](value)

    @model_validator(mode="after")
    def _staging_credentials_pair(self) -> Settings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both, or neither")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise ValueError("AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY too")
        return self

    @model_validator(mode="after")
    def _standalone_sandbox_is_local(self) -> Settings:
        if self.sandbox and "base_url" in self.model_fields_set and not self._base_url_is_loopback_http:
            raise ValueError(
                "CUTOUT_SANDBOX with CUTOUT_BASE_URL expects a standalone sandbox on this machine "
                "(`cutout-mcp sandbox`, http://127.0.0.1:PORT); unset CUTOUT_BASE_URL to start one in-process"
            )
        return self

    @property
    def _base_url_is_loopback_http(self) -> bool:
        parts = urlsplit(self.base_url)
        return parts.scheme == "http" and is_loopback_host(parts.hostname or "")

    @property
    def sandbox_in_process(self) -> bool:
        """CUTOUT_SANDBOX without CUTOUT_BASE_URL: start a sandbox in this process, as --sandbox does."""
        return self.sandbox and "base_url" not in self.model_fields_set

    @property
    def staging_bucket(self) -> StagingBucket | None:
        """The bucket CUTOUT_STAGING_URL names, at AWS_ENDPOINT_URL (or AWS's endpoint in AWS_REGION)."""
        if self.staging_url is None:
            return None
        return staging_bucket(self.staging_url, self.aws_endpoint_url, self.aws_region)

    @property
    def trusted_image_origins(self) -> tuple[str, ...]:
        """Origins whose plain-http image URLs are accepted and that may be fetched on loopback: the
        declared sandbox's and the staging bucket's, exactly.

        Never inferred from the base URL: a loopback base URL may be a local forward proxy, and trusting
        its origin would let a model-chosen URL reach it. Without sandbox mode, every loopback and private
        address is refused, the base URL's own origin included.
        """
        sandbox = (self.base_url,) if self.sandbox and self._base_url_is_loopback_http else ()
        bucket = self.staging_bucket
        return sandbox + ((bucket.origin,) if bucket is not None else ())

    @property
    def view_media_origins(self) -> tuple[str, ...]:
        """`media_origins`, and the declared sandbox's own loopback origin, which serves its media."""
        own = (self.base_url,) if self.sandbox and self._base_url_is_loopback_http else ()
        return tuple(dict.fromkeys((*self.media_origins, *own)))

    @property
    def confirm_spend_above(self) -> int | None:
        """The spend confirmation rule as a number: ask for calls costing more than this many credits;
        None never asks (`always` is 0: every call that costs anything)."""
        if self.confirm_spend == "off":
            return None
        return 0 if self.confirm_spend == "always" else int(self.confirm_spend.removeprefix("above:"))

    @property
    def allowed_input_dirs(self) -> tuple[Path, ...]:
        """The folders local image paths may be read from: CUTOUT_INPUT_DIRS, else the user's home on stdio
        (the user's own machine) and nothing over HTTP (the caller's disk is not this machine's)."""
        if self.input_dirs is not None:
            return self.input_dirs
        return (Path.home(),) if self.transport == "stdio" else ()

    @property
    def binds_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the environment, with explicit values (CLI flags) winning."""
        env = os.environ if environ is None else environ
        values = environment_values(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None  # not chained: pydantic's report echoes values (the key)


def _is_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536
