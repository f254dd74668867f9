"""Each view as one self-contained HTML document: the template with its styles and scripts inlined.

A host writes the document into a sandboxed iframe whose Content-Security-Policy allows inline script
and style but nothing from elsewhere, so everything a view needs is inside it. The media origins the
resource declares are written into the page too (`<meta name="cutout-view">`), so a view knows before
loading anything whether the host will let it, and never asks for what would be refused.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

VIDEO_VIEW = "ui://cutout-mcp/video.html"
EDIT_VIEW = "ui://cutout-mcp/edit.html"
JOBS_VIEW = "ui://cutout-mcp/jobs.html"


@dataclass(frozen=True)
class View:
    uri: str
    name: str
    title: str
    description: str
    scripts: tuple[str, ...]
    """The scripts of this view, in order; `core.js` (the protocol) comes first."""


VIEWS = (
    View(
        VIDEO_VIEW,
        "video_view",
        "Video player",
        "Plays a finished video job; watches an unfinished one (free get_video_result calls) until it plays.",
        ("core.js", "player.js", "video.js"),
    ),
    View(
        EDIT_VIEW,
        "edit_view",
        "Image edit, before and after",
        "The first reference image beside the edited one, with the model, the cost and the other references.",
        ("core.js", "edit.js"),
    ),
    View(
        JOBS_VIEW,
        "jobs_view",
        "Video job gallery",
        "The caller's video jobs with covers, status and date; choosing one plays it.",
        ("core.js", "player.js", "gallery.js"),
    ),
)


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def view_html(view: View, media_origins: tuple[str, ...], version: str) -> str:
    """The document for `view`, allowed to load media from `media_origins`."""
    script = "\n".join(_asset(name) for name in view.scripts)
    if "</script" in script.lower():
        raise ValueError(f"a script of {view.uri} would end its <script> element early")
    config = json.dumps({"mediaOrigins": list(media_origins), "version": version}, separators=(",", ":"))
    page = _asset("view.html")
    for marker, text in (
        ("{config}", html.escape(config, quote=True)),
        ("{title}", html.escape(view.title)),
        ("{style}", _asset("view.css")),
    ):
        page = page.replace(marker, text, 1)
    head, tail = page.split("{script}", 1)  # last: nothing is searched for inside the scripts
    return head + script + tail
