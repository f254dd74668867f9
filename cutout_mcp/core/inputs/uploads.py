"""get_upload_url: a place in the staging bucket that a client can PUT an image to, for the paid tools.

A remote server cannot read the caller's disk, and a desktop client may prefer not to pass a path:
the client asks for an upload URL (a presigned PUT, valid `UPLOAD_SECONDS`), uploads the file there
itself (`curl -T cat.jpg URL`), then passes `image_url` (`upload:<key>`) to generate_video or
edit_image. Nothing is remembered here: the key says everything, so any replica, and a restarted
server, takes the reference. The image is checked (JPEG/PNG by its bytes, size and pixel rules) when it
is used, before anything is charged; this call itself is free and sends nothing to cutout.pro.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from cutout_mcp import catalog
from cutout_mcp.core.context import AppContext
from cutout_mcp.core.inputs.validation import InvalidArgumentError
from cutout_mcp.core.staging import SETUP_HINT, StagingError, new_upload_key, upload_reference

UPLOAD_SECONDS = 15 * 60
"""How long an upload URL accepts a PUT."""
MAX_FILENAME_CHARS = 255

UploadContentType = Literal["image/jpeg", "image/png"]
UPLOAD_CONTENT_TYPES: tuple[str, ...] = get_args(UploadContentType)


class UploadTicket(BaseModel):
    """Where to PUT an image, and what to pass to the paid tools once it is there."""

    model_config = ConfigDict(extra="forbid")

    upload_url: str = Field(description="PUT the file's bytes here (a presigned URL; keep it private).")
    image_url: str = Field(description="Pass this to generate_video's image_url or edit_image's image_urls.")
    expires_at: str = Field(description="When upload_url stops accepting the upload (ISO 8601, UTC).")
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Headers to send with the PUT.")
    max_bytes: int = Field(description="The largest image the tools accept.")
    how: str = Field(description="A command that uploads a file there.")
    credits_charged: int = Field(default=0, description="Credits this call cost (getting an upload URL is free).")


async def get_upload_url(app: AppContext, filename: str, content_type: str) -> UploadTicket:
    """A fresh upload URL in the staging bucket; a tool error saying what to set when there is none."""
    if content_type not in UPLOAD_CONTENT_TYPES:
        raise InvalidArgumentError(
            f"content_type must be {' or '.join(UPLOAD_CONTENT_TYPES)}: cutout.pro takes JPEG and PNG images."
        )
    if not filename.strip() or len(filename) > MAX_FILENAME_CHARS:
        raise InvalidArgumentError(f"filename must be the image's file name (1 to {MAX_FILENAME_CHARS} characters).")
    if app.staging is None:
        raise StagingError(
            "Uploads need a bucket to put the image in, and none is configured: "
            f"{SETUP_HINT}. A public https URL of the image works without one."
        )
    key = new_upload_key(filename, content_type)
    # the signature counts from the wall clock, whatever clock the server runs on
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=UPLOAD_SECONDS)
    url = await app.staging.signed_put_url(key, content_type, UPLOAD_SECONDS)
    return UploadTicket(
        upload_url=url,
        image_url=upload_reference(key),
        expires_at=expires.isoformat().replace("+00:00", "Z"),
        headers={"Content-Type": content_type},
        max_bytes=catalog.MAX_IMAGE_BYTES,
        how=f"curl -T <file> -H 'Content-Type: {content_type}' '<upload_url>'",
    )
