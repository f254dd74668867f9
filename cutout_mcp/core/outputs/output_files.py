"""Files in `CUTOUT_OUTPUT_DIR`: their names, their types, and writing one so it is always whole.

- A download is streamed to a hidden temporary file in the output folder and renamed over the final
  name only when complete, so a file with the final name is always whole, and a second read of the
  same job reuses it.
- The file name is built from the numeric job or edit id and an extension from a short allowlist;
  neither the URL nor any server answer can name a file, and the final path is checked to sit
  directly inside the output folder.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cutout_mcp.core.outputs.result_fetch import DownloadError
from cutout_mcp.core.results import FileLink

Kind = Literal["video", "image"]

EXT_BY_TYPE = {
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "image/gif": ".gif",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
}
TYPE_BY_EXT = {ext: mime for mime, ext in EXT_BY_TYPE.items()} | {".jpeg": "image/jpeg"}
_DEFAULT_EXT: dict[Kind, str] = {"video": ".mp4", "image": ".jpg"}
_PART_PREFIX = ".part-"


@dataclass(frozen=True)
class Saved:
    path: Path
    mime_type: str
    size: int

    def link(self, name: str, description: str) -> FileLink:
        return FileLink(self.path.as_uri(), name, description, self.mime_type, self.size)


def url_suffix(url: str) -> str:
    """The extension of the URL's path (`.jpg`), lower-cased. String splits, several times cheaper than
    `urlsplit` and `Path` on every result: the path ends at the first `?` or `#`, after the authority."""
    rest = url.partition("://")[2] or url
    path = rest.partition("?")[0].partition("#")[0].partition("/")[2]
    return posixpath.splitext(path)[1].lower()


def remote_link(url: str, name: str, description: str) -> FileLink:
    return FileLink(url, name, description, TYPE_BY_EXT.get(url_suffix(url)))


def extension(mime: str, url: str, kind: Kind) -> str:
    if mime in EXT_BY_TYPE:
        return EXT_BY_TYPE[mime]
    ext = url_suffix(url)
    return ext if ext in TYPE_BY_EXT else _DEFAULT_EXT[kind]


def prepare(root: Path, stem: str) -> tuple[Saved | None, Path | None]:
    """The copy already made, or a new empty temporary file to download into."""
    existing = _existing(root, stem)
    if existing is not None:
        return existing, None
    root.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=root, prefix=_PART_PREFIX, suffix=".tmp")
    os.close(fd)
    return None, Path(name)


def commit(part: Path, root: Path, name: str) -> Path:
    final = _inside(root, name)
    os.replace(part, final)  # atomic: the final name only ever holds a whole file
    return final


def discard(part: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        part.unlink()


def _inside(root: Path, name: str) -> Path:
    """`root/name`, refusing anything that would not sit directly in `root`."""
    path = (root / name).resolve()
    if path.parent != root or name.startswith("."):
        raise DownloadError("unsafe file name")
    return path


def _existing(root: Path, stem: str) -> Saved | None:
    for ext, mime in TYPE_BY_EXT.items():
        path = root / f"{stem}{ext}"
        if path.is_file() and not path.is_symlink() and path.stat().st_size > 0:
            return Saved(path, mime, path.stat().st_size)
    return None
