"""Command line: arguments -> Settings -> a running transport.

`cutout-mcp` serves MCP over stdio (what desktop assistants start). With
`--transport sse|streamable-http` it serves HTTP on 127.0.0.1 with Host and
Origin checks; binding any other address requires naming the hosts clients
will use (`--allowed-host`), so a server is never exposed to DNS rebinding
by accident. Logs go to stderr only, with the API key redacted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.transport_security import TransportSecuritySettings

from cutout_mcp import __version__
from cutout_mcp.config import ConfigError, Settings, environment_help
from cutout_mcp.config.allowances import load_policy
from cutout_mcp.config.environment import unknown_variables
from cutout_mcp.core.staging import check_staging
from cutout_mcp.core.storage import Storage, StorageError, check_driver
from cutout_mcp.logs import configure_logging
from cutout_mcp.sandbox_mode import add_sandbox_arguments, sandbox_config
from cutout_mcp.server.auth import missing_authentication
from cutout_mcp.server.ops.tracing import start_tracing

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from cutout_mcp.clock import Clock
    from cutout_mcp.core.staging import ObjectStore
    from cutout_mcp.sandbox import Sandbox, SandboxConfig

logger = logging.getLogger("cutout_mcp")


class _Parser(argparse.ArgumentParser):
    """Adds the environment variables to --help, built only when help is shown (it reads source)."""

    def format_help(self) -> str:
        return f"{super().format_help()}\n{environment_help()}\n"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cutout-mcp",
        description="MCP server for the cutout.pro Image-to-Video and Image Edit APIs.",
    )
    parser.add_argument("--version", action="version", version=f"cutout-mcp {__version__}")
    parser.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default=None)
    parser.add_argument("--host", default=None, help="address for the HTTP transports (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port for the HTTP transports (default 8000)")
    parser.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        metavar="HOST[:PORT]",
        help="Host header value clients use to reach this server; required to bind a non-loopback "
        "address (repeatable; 'example.com:*' allows any port)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        dest="allowed_origins",
        metavar="ORIGIN",
        help="browser Origin allowed to call the HTTP transports (repeatable)",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument(
        "--stateless",
        action="store_true",
        default=None,
        help="streamable-http without sessions, so 2025-11-25 clients need no sticky load balancing "
        "(no server-to-client stream outside a request; see docs/replicas.md)",
    )
    sandbox = parser.add_argument_group("sandbox", "run against a local cutout.pro stand-in; no key or credits")
    sandbox.add_argument(
        "--sandbox", action="store_true", help="serve MCP wired to an in-process sandbox instead of cutout.pro"
    )
    add_sandbox_arguments(sandbox)

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_sandbox = commands.add_parser(
        "sandbox",
        help="run only the local cutout.pro sandbox (point CUTOUT_BASE_URL at it)",
        description="Serve the cutout.pro sandbox on loopback until interrupted.",
    )
    run_sandbox.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 picks a free one)")
    add_sandbox_arguments(run_sandbox)
    demo = commands.add_parser(
        "demo",
        help="show the server at work against the sandbox: edit an image, make a video, save both",
        description="Start cutout-mcp in sandbox mode over stdio and use it as an assistant would.",
    )
    demo.add_argument("--output", default="cutout-demo", help="folder for the results (default ./cutout-demo)")
    _add_usage_command(commands)
    return parser


def _add_usage_command(commands: Any) -> None:
    usage = commands.add_parser(
        "usage",
        help="report who spent what: paid calls and credits from the ledger, per principal, tool, model or day",
        description="Read the ledger the servers write (CUTOUT_STATE_DIR or CUTOUT_DATABASE_URL), read-only, and "
        "sum its paid calls. Credits count every call the ledger counts as spent; 'unknown' is the part whose "
        "outcome is unknown (timeouts, 5xx, calls in flight), which cutout.pro may not have charged.",
    )
    usage.add_argument("--since", metavar="YYYY-MM-DD", help="first UTC day counted, from 00:00 (default: the first)")
    usage.add_argument(
        "--until", metavar="YYYY-MM-DD", help="last UTC day counted, through the end of that day (default: today)"
    )
    usage.add_argument(
        "--by",
        action="append",
        metavar="principal|tool|model|day",
        help="group rows by these, repeatable or comma-separated: --by principal,day (default: principal)",
    )
    usage.add_argument("--format", choices=["table", "csv", "json"], default="table", help="default: table")


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Host/Origin protection for the HTTP transports; refuses an unguarded public bind.

    Every missing requirement is named in one message, so a user fixes them all in one go.
    """
    missing = []
    if not settings.binds_loopback and not settings.allowed_hosts:
        missing.append(
            "an allow-list of host names, so the Host header is checked: pass --allowed-host NAME[:PORT] "
            "(or set CUTOUT_ALLOWED_HOSTS=name1,name2) with the names clients use"
        )
    auth = missing_authentication(settings)
    if auth is not None:
        missing.append(auth)
    if missing:
        raise ConfigError(
            f"Refusing to serve on {settings.host}: a server other machines can reach needs "
            + ("both of these:" if len(missing) > 1 else "this, which is missing:")
            + "".join(f"\n  - {item}" for item in missing)
            + "\nOr bind 127.0.0.1 (the default)."
        )
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *settings.allowed_hosts]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *settings.allowed_origins]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


async def serve(settings: Settings, sandbox: SandboxConfig | None = None) -> None:
    """Run the MCP server on the configured transport until it is stopped.

    `sandbox` starts an in-process sandbox and serves against it; a declared standalone sandbox
    (CUTOUT_SANDBOX with CUTOUT_BASE_URL) gets the same instructions and resource, pointing at it.
    """
    if sandbox is not None:
        from cutout_mcp.sandbox import run_sandbox
        from cutout_mcp.sandbox_mode import sandbox_announcement, sandbox_settings, set_aside_in_process

        async with run_sandbox(sandbox) as running:
            pointed = sandbox_settings(settings, running)
            logger.info(sandbox_announcement(pointed, set_aside_in_process(settings)))
            await _serve_with_ledger(pointed, settings, sandboxed=True, sandbox_clock=running.state.clock)
        return
    if settings.sandbox:
        from cutout_mcp.sandbox_mode import sandbox_announcement, sandbox_ledger

        settings = sandbox_ledger(settings)
        logger.info(sandbox_announcement(settings))
    await _serve_with_ledger(settings, settings, sandboxed=settings.sandbox)


async def _serve_with_ledger(
    app_settings: Settings, settings: Settings, *, sandboxed: bool, sandbox_clock: Clock | None = None
) -> None:
    """Open the ledger before listening: one that cannot be used stops the server before a client connects.
    In sandbox mode, images are staged in the bucket when one is set, else on the sandbox (`sandbox_clock`:
    the in-process sandbox's clock)."""
    from cutout_mcp.core.storage import open_storage
    from cutout_mcp.server import build_server

    async with open_storage(app_settings) as ledger:
        if not sandboxed:
            await _run_transport(build_server(app_settings, storage=ledger), settings)
            return
        if app_settings.staging_url is not None:
            await _run_transport(_sandbox_server(app_settings, ledger, None), settings)
            return
        from cutout_mcp.sandbox_mode import sandbox_store

        async with sandbox_store(app_settings, sandbox_clock) as store:
            await _run_transport(_sandbox_server(app_settings, ledger, store), settings)


def _sandbox_server(settings: Settings, ledger: Storage, store: ObjectStore | None) -> MCPServer[Any]:
    """The server in sandbox mode; `store` None stages in the bucket CUTOUT_STAGING_URL names."""
    from cutout_mcp.sandbox_mode import attach_sandbox, sandbox_instructions
    from cutout_mcp.server import build_server

    instructions = sandbox_instructions(settings.base_url, bucket=store is None)
    server = build_server(settings, extra_instructions=instructions, storage=ledger, staging=store)
    attach_sandbox(server, settings.base_url)  # type: ignore[arg-type]
    return server


async def _run_transport(server: MCPServer[Any], settings: Settings) -> None:
    from cutout_mcp.server.running import run_transport

    await run_transport(server, settings, None if settings.transport == "stdio" else transport_security(settings))


def _announce_sandbox(sandbox: Sandbox) -> None:
    print(
        f"cutout.pro sandbox listening on {sandbox.base_url} (APIKEY: {sandbox.api_key}). Serve MCP against it "
        f"with: CUTOUT_SANDBOX=1 CUTOUT_BASE_URL={sandbox.base_url} CUTOUT_API_KEY={sandbox.api_key} cutout-mcp",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        from cutout_mcp.sandbox import serve as serve_sandbox

        serve_sandbox(sandbox_config(args, port=args.port), on_ready=_announce_sandbox)
        return 0
    if args.command == "demo":
        from cutout_mcp.demo import run_demo

        return run_demo(args.output)
    if args.command == "usage":
        return _usage(args)
    try:
        settings = Settings.load(
            transport=args.transport,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            allowed_hosts=tuple(args.allowed_hosts) if args.allowed_hosts else None,
            allowed_origins=tuple(args.allowed_origins) if args.allowed_origins else None,
            stateless=args.stateless,
        )
        configure_logging(settings)
        for name in unknown_variables(os.environ):
            logger.warning("%s is not a cutout-mcp setting and is ignored (see cutout-mcp --help)", name)
        check_driver(settings)
        check_staging(settings)
        load_policy(settings)  # a policy that cannot be read stops the start here, in one line
        if settings.transport != "stdio":
            transport_security(settings)
    except ConfigError as exc:
        return _refuse(exc, 2)
    stop_tracing = start_tracing()  # only when the OTEL_* variables ask; spans are flushed on the way out
    try:
        with contextlib.suppress(KeyboardInterrupt):
            in_process = args.sandbox or settings.sandbox_in_process
            anyio.run(serve, settings, sandbox_config(args) if in_process else None)
    except StorageError as exc:
        return _refuse(exc, 1)
    finally:
        if stop_tracing is not None:
            stop_tracing()
    return 0


def _usage(args: argparse.Namespace) -> int:
    """`cutout-mcp usage`: the report on stdout; a bad argument exits 2, a ledger that cannot be read 1."""
    from cutout_mcp.core.usage_report import UsageReportError, parse_dimensions, parse_window, usage_report

    try:
        window, by = parse_window(args.since, args.until), parse_dimensions(args.by)
        settings = Settings.load()
        check_driver(settings)
    except (ConfigError, UsageReportError) as exc:
        return _refuse(exc, 2)
    try:
        sys.stdout.write(usage_report(settings, window, by, args.format))
    except StorageError as exc:
        return _refuse(exc, 1)
    return 0


def _refuse(exc: Exception, code: int) -> int:
    """One message and an exit code; the traceback only when CUTOUT_LOG_LEVEL=DEBUG asks for it."""
    if os.environ.get("CUTOUT_LOG_LEVEL", "").strip().upper() == "DEBUG":
        traceback.print_exception(exc)
    print(f"cutout-mcp: {exc}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
