"""The views as an MCP Apps extension: the `ui://` resources, which tool shows which, and who gets them.

The media origins are declared in each resource's `_meta.ui.csp` here, at registration, from
`Settings.view_media_origins`: a host reads them once, before any result exists. Only clients that
declare the extension get the views: for the others `ViewsForAppsClients` takes the `_meta.ui` off the
tools and the `ui://` resources out of the list, and refuses to read them, so their tools look exactly
as before. Results are the same for every client.
"""

from __future__ import annotations

from typing import Any

from mcp.server.apps import Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from cutout_mcp import __version__
from cutout_mcp.config import Settings
from cutout_mcp.server.views.page import EDIT_VIEW, JOBS_VIEW, VIDEO_VIEW, VIEWS, view_html

TOOL_VIEWS = {
    "generate_video": VIDEO_VIEW,
    "get_video_result": VIDEO_VIEW,
    "edit_image": EDIT_VIEW,
    "list_video_jobs": JOBS_VIEW,
}
"""Which tool's result is shown by which view."""

UI_SCHEME = "ui://"


def tool_meta(tool: str) -> dict[str, Any]:
    """The `_meta` that binds `tool` to its view."""
    return {"ui": {"resourceUri": TOOL_VIEWS[tool]}}


def apps(settings: Settings) -> Apps:
    """The MCP Apps extension with the three views, their media origins declared to the host."""
    extension = Apps()
    origins = settings.view_media_origins
    csp = ResourceCsp(resource_domains=list(origins)) if origins else None
    for view in VIEWS:
        extension.add_html_resource(
            view.uri,
            view_html(view, origins, __version__),
            name=view.name,
            title=view.title,
            description=view.description,
            csp=csp,
            prefers_border=True,
        )
    return extension


class ViewsForAppsClients(ServerMiddleware[Any]):
    """Views only for clients that declare MCP Apps; everyone else sees the tools as they were."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "resources/read" and _reads_a_view(ctx.params) and not client_supports_apps(ctx):
            raise MCPError(
                code=INVALID_PARAMS,
                message="ui:// views are served to clients that declare the io.modelcontextprotocol/ui "
                "extension with the text/html;profile=mcp-app MIME type",
            )
        result = await call_next(ctx)
        if ctx.method not in ("tools/list", "resources/list") or client_supports_apps(ctx):
            return result
        # the runner hands middleware the result as its wire dict
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            return {**result, "tools": [_without_ui(tool) for tool in result["tools"]]}
        if isinstance(result, dict) and isinstance(result.get("resources"), list):
            kept = [r for r in result["resources"] if not str(r.get("uri", "")).startswith(UI_SCHEME)]
            return {**result, "resources": kept}
        return result


def _reads_a_view(params: Any) -> bool:
    return isinstance(params, dict) and str(params.get("uri", "")).startswith(UI_SCHEME)


def _without_ui(tool: Any) -> Any:
    meta = tool.get("_meta") if isinstance(tool, dict) else None
    if not isinstance(meta, dict) or "ui" not in meta:
        return tool
    rest = {key: value for key, value in meta.items() if key != "ui"}
    stripped = {key: value for key, value in tool.items() if key != "_meta"}
    return {**stripped, "_meta": rest} if rest else stripped
