"""Settings: every CUTOUT_* variable in one validated object.

- `settings`: the `Settings` model, its defaults and rules;
- `environment`: which variable sets which setting, and reading them (`*_FILE` secrets too);
- `help`: the `--help` text, from the settings' own docstrings;
- `values`: small facts about values (loopback hosts, database URL secrets, the state folder).
"""

from cutout_mcp.config.environment import ENVIRONMENT, SETTING_OF
from cutout_mcp.config.help import environment_help
from cutout_mcp.config.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_PREVIEW_SECONDS,
    DEFAULT_WAIT_SECONDS,
    LogLevel,
    Settings,
    Transport,
)
from cutout_mcp.config.values import ConfigError, database_secrets, default_state_dir, is_loopback_host

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_HTTP_TIMEOUT",
    "DEFAULT_MAX_REQUEST_BODY",
    "DEFAULT_PREVIEW_SECONDS",
    "DEFAULT_WAIT_SECONDS",
    "ENVIRONMENT",
    "SETTING_OF",
    "ConfigError",
    "LogLevel",
    "Settings",
    "Transport",
    "database_secrets",
    "default_state_dir",
    "environment_help",
    "is_loopback_host",
]
