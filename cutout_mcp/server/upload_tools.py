"""get_upload_url: a presigned PUT in the staging bucket, for images the server cannot read itself; the
work is in `core.inputs.uploads`.

No `from __future__ import annotations`: the SDK reads the annotations at registration.
"""

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from cutout_mcp.core.context import AppContext
from cutout_mcp.core.inputs import uploads
from cutout_mcp.core.inputs.uploads import UploadContentType, UploadTicket
from cutout_mcp.server import texts
from cutout_mcp.server.calls import app_of

Filename = Annotated[
    str,
    Field(
        min_length=1,
        max_length=uploads.MAX_FILENAME_CHARS,
        description="The image's file name, e.g. cat.jpg; it only labels the upload.",
    ),
]
ContentType = Annotated[UploadContentType, Field(description="The image's type: image/jpeg or image/png.")]


def register(server: MCPServer[AppContext]) -> None:
    @server.tool(
        title="Get a URL to upload an image to",
        description=texts.GET_UPLOAD_URL,
        # free and sends nothing to cutout.pro; each call makes a new URL, so not idempotent
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def get_upload_url(
        filename: Filename, content_type: ContentType, ctx: Context[AppContext, Any]
    ) -> UploadTicket:
        return await uploads.get_upload_url(app_of(ctx), filename, content_type)
