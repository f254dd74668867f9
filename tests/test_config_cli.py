"""Settings from the environment, the CLI's refusals, and logging that never shows the key."""

from __future__ import annotations

import logging

import pytest

from cutout_mcp.cli import build_parser, main, transport_security
from cutout_mcp.config import ENVIRONMENT, ConfigError, Settings
from cutout_mcp.logs import REDACTED, RedactingFilter


def test_settings_come_from_the_environment() -> None:
    settings = Settings.load(
        {
            "CUTOUT_API_KEY": " secret-key ",
            "CUTOUT_BASE_URL": "http://127.0.0.1:9999/",
            "CUTOUT_WAIT_SECONDS": "12.5",
            "CUTOUT_HTTP_TIMEOUT": "7",
            "CUTOUT_LOG_LEVEL": "debug",
            "CUTOUT_ALLOWED_HOSTS": "mcp.example.com, other.example.com:*",
        }
    )
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "secret-key"
    assert settings.base_url == "http://127.0.0.1:9999"
    assert settings.wait_seconds == 12.5
    assert settings.http_timeout == 7
    assert settings.log_level == "DEBUG"
    assert settings.allowed_hosts == ("mcp.example.com", "other.example.com:*")


def test_defaults_need_nothing() -> None:
    settings = Settings.load({})
    assert settings.api_key is None
    assert settings.base_url == "https://www.cutout.pro"
    assert settings.transport == "stdio"
    assert settings.host == "127.0.0.1"


def test_flags_override_the_environment() -> None:
    settings = Settings.load({"CUTOUT_LOG_LEVEL": "ERROR"}, log_level="DEBUG", port=9000)
    assert settings.log_level == "DEBUG"
    assert settings.port == 9000


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CUTOUT_WAIT_SECONDS": "-1"}, "CUTOUT_WAIT_SECONDS"),
        ({"CUTOUT_WAIT_SECONDS": "soon"}, "CUTOUT_WAIT_SECONDS"),
        ({"CUTOUT_BASE_URL": "ftp://x"}, "CUTOUT_BASE_URL"),
        ({"CUTOUT_HTTP_TIMEOUT": "0"}, "CUTOUT_HTTP_TIMEOUT"),
        ({"CUTOUT_LOG_LEVEL": "LOUD"}, "CUTOUT_LOG_LEVEL"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        Settings.load(env)


def test_the_key_is_never_shown_by_the_settings() -> None:
    settings = Settings.load({"CUTOUT_API_KEY": "top-secret-123"})
    assert "top-secret-123" not in repr(settings)
    assert "top-secret-123" not in str(settings)
    assert "top-secret-123" not in settings.model_dump_json()


def test_loopback_http_binding_gets_host_and_origin_checks() -> None:
    security = transport_security(Settings(transport="streamable-http"))
    assert security.enable_dns_rebinding_protection is True
    assert "127.0.0.1:*" in security.allowed_hosts
    assert "http://localhost:*" in security.allowed_origins


def test_public_binding_without_allowed_hosts_is_refused() -> None:
    tokens = ("alice:" + "a" * 32,)
    with pytest.raises(ConfigError, match="--allowed-host") as caught:
        transport_security(Settings(transport="sse", host="0.0.0.0", mcp_tokens=tokens))
    assert "CUTOUT_MCP_TOKEN" not in str(caught.value), "only what is missing is listed"


def test_public_binding_with_allowed_hosts_checks_them() -> None:
    public = Settings(
        transport="sse", host="0.0.0.0", allowed_hosts=("mcp.example.com",), mcp_tokens=("alice:" + "a" * 32,)
    )
    security = transport_security(public)
    assert "mcp.example.com" in security.allowed_hosts


def test_cli_refuses_public_binding_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--transport", "streamable-http", "--host", "0.0.0.0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--allowed-host" in captured.err


def test_cli_reports_bad_environment_without_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUTOUT_WAIT_SECONDS", "forever")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "CUTOUT_WAIT_SECONDS" in err
    assert "Traceback" not in err


def test_parser_knows_the_transports() -> None:
    args = build_parser().parse_args(["--transport", "sse", "--port", "9001", "--allowed-host", "a.example"])
    assert (args.transport, args.port, args.allowed_hosts) == ("sse", 9001, ["a.example"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--transport", "carrier-pigeon"])


def test_log_records_are_scrubbed_of_the_key() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sending %s to %s", ("key-abc123", "host"), None)
    assert RedactingFilter(["key-abc123"]).filter(record) is True
    assert record.getMessage() == f"sending {REDACTED} to host"


@pytest.mark.parametrize(("level", "httpx_level"), [("DEBUG", logging.DEBUG), ("INFO", logging.WARNING)])
def test_httpx_request_lines_are_logged_only_when_debugging(level: str, httpx_level: int) -> None:
    from cutout_mcp.logs import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(Settings(log_level=level))  # type: ignore[arg-type]
        assert logging.getLogger("httpx").level == httpx_level
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("httpx").setLevel(logging.NOTSET)


def test_help_lists_every_variable_with_its_meaning(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    lines = {
        line.split()[0]: line
        for line in capsys.readouterr().out.splitlines()
        if line.strip().startswith(("CUTOUT_", "AWS_"))
    }
    assert set(ENVIRONMENT) <= set(lines), "every setting's variable is in --help"
    assert all(len(line.split()) > 2 for line in lines.values()), "each with a description"


def test_a_loopback_base_url_is_not_taken_for_a_sandbox() -> None:
    """A local forward proxy at the base URL must not open its origin to model-chosen image URLs."""
    proxy = Settings.load({"CUTOUT_BASE_URL": "http://127.0.0.1:3128"})
    assert proxy.sandbox is False
    assert proxy.trusted_image_origins == ()


@pytest.mark.parametrize("on", ["1", "on", "true"])
def test_sandbox_mode_is_declared_in_process_or_at_the_base_url(on: str) -> None:
    in_process = Settings.load({"CUTOUT_SANDBOX": on})
    assert in_process.sandbox_in_process is True
    assert in_process.trusted_image_origins == (), "the in-process sandbox's address is set once it runs"
    standalone = Settings.load({"CUTOUT_SANDBOX": on, "CUTOUT_BASE_URL": "http://127.0.0.1:8787/"})
    assert standalone.sandbox_in_process is False
    assert standalone.trusted_image_origins == ("http://127.0.0.1:8787",)


def test_a_declared_sandbox_must_be_local() -> None:
    with pytest.raises(ConfigError, match="CUTOUT_SANDBOX") as caught:
        Settings.load({"CUTOUT_SANDBOX": "1", "CUTOUT_BASE_URL": "https://www.cutout.pro"})
    assert "--settings" not in str(caught.value)


def test_a_public_bind_names_every_missing_requirement_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--transport", "streamable-http", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allowed-host" in err
    assert "CUTOUT_MCP_TOKEN" in err
    assert err.count("Refusing") == 1
