"""The MCP Apps views (`io.modelcontextprotocol/ui`): a player, a before/after and a gallery in the chat.

Four tools name a `ui://` view in `_meta.ui.resourceUri` (`TOOL_VIEWS`); a host that renders MCP Apps
reads the view once and shows it under the tool call, fed the call's own result. The views are plain
HTML, CSS and JavaScript kept beside this module (package data: `page.py` puts each view together), and
speak the MCP Apps postMessage protocol themselves; nothing is fetched from anywhere else.

Media reach a view by URL: the host builds the view's Content-Security-Policy from the resource's
`_meta.ui.csp` once, before any result exists, so the origins are declared here, at registration, from
`Settings.view_media_origins` (CUTOUT_MEDIA_ORIGINS, plus the sandbox's own origin). A result served from
elsewhere still shows what the result carries inline (the contact sheet, the preview) and a link.

Only clients that declare the extension get the views (`extension.ViewsForAppsClients`); results are
the same for every client.
"""

from cutout_mcp.server.views.extension import TOOL_VIEWS, ViewsForAppsClients, apps, tool_meta
from cutout_mcp.server.views.page import EDIT_VIEW, JOBS_VIEW, VIDEO_VIEW, VIEWS, View, view_html

__all__ = [
    "EDIT_VIEW",
    "JOBS_VIEW",
    "TOOL_VIEWS",
    "VIDEO_VIEW",
    "VIEWS",
    "View",
    "ViewsForAppsClients",
    "apps",
    "tool_meta",
    "view_html",
]
