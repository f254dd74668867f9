"""Where an image argument comes from, and its bytes once they are known to be a JPEG or PNG within limits.

An image argument (`generate_video.image_url`, each of `edit_image.image_urls`) is one of:

- a public `https://` URL (and `http://` for video): passed to cutout.pro as it is (`RemoteImage`);
- a local path (`/…`, `~/…`, `C:\\…`) or a `file://` URI: read under the rules of `core.inputs.input_paths`;
- a `data:image/jpeg|png;base64,…` URI: decoded (its size is known from its length, before decoding);
- `upload:<key>`: an object uploaded through `get_upload_url`, read back from the staging store.

The last three become a `CheckedImage`: bytes whose header says JPEG or PNG, with dimensions, checked
against the tool's rules (`core.inputs.image_rules`) in a worker thread before anything is staged or charged.
Each carries a `label` saying where it came from (the path, `upload:…`, `data: (312 KB PNG)`): that is
what results, the ledger, logs and the spend question show; a presigned URL is never shown.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import anyio.to_thread

from cutout_mcp import catalog
from cutout_mcp.config import Settings
from cutout_mcp.core.inputs import input_paths
from cutout_mcp.core.inputs.image_rules import CONTENT_TYPES, ImageFacts, ImageRefusedError, read_facts, refused
from cutout_mcp.core.inputs.validation import InvalidArgumentError, check_image_url
from cutout_mcp.core.staging import SETUP_HINT, UPLOAD_SCHEME, ObjectStore, upload_key

DATA_PREFIX = re.compile(r"^data:image/(jpeg|jpg|png);base64,", re.IGNORECASE)
MAX_DATA_URI_CHARS = len("data:image/jpeg;base64,") + 4 * -(-catalog.MAX_IMAGE_BYTES // 3)
"""The longest data: URI whose image can be within the 10 MB limit."""
MAX_IMAGE_ARGUMENT_CHARS = MAX_DATA_URI_CHARS + 1024
"""The schema's `maxLength` for an image argument: a bit above the longest data: URI within 10 MB (room
for whitespace around it), so that the server's own check, which names the decoded 10 MB rule, decides
near the limit; a longer value is refused by the schema, with the same sentence (`server.arguments`)."""
STAGED_PREFIX = "staged/"
"""Where content-addressed copies live in the store (`core.inputs.staged`); never an upload's key."""
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_WINDOWS_PATH = re.compile(r"^([A-Za-z]:[\\/]|\\\\)")

FacetsCheck = Callable[[str, ImageFacts], None]
"""A tool's rules for one image: `(argument, facts)`, raising `ImageRefusedError`."""
Digest = Callable[[bytes], str]
"""The content digest of checked bytes, computed in the worker thread while they are at hand."""
DigestSource = Callable[[], Awaitable[Digest]]
"""Where the digest comes from (`StagedImages.digester`), asked only for an image that is read here."""

REMOTE_TRANSPORT = (
    "{argument} is a local path, but this server runs over {transport} and cannot read the caller's disk. "
    "Call get_upload_url, upload the file to its upload_url (for example `curl -T photo.jpg '<upload_url>'`), "
    "and pass the image_url it returns; a public https URL works as it is. Nothing was sent or charged."
)
NO_STORE = (
    "{argument} is {what}, which cutout.pro cannot fetch by itself: this server hands such images over "
    "through your own object storage, and none is configured. To use one, "
    + SETUP_HINT
    + ". Or pass a public https URL of the image, which works as it is. Nothing was sent or charged."
)


class StagingUnavailableError(InvalidArgumentError):
    """A local, inline or uploaded image was given, and there is no store to hand it to cutout.pro."""


@dataclass(frozen=True)
class RemoteImage:
    """A URL cutout.pro fetches itself."""

    url: str

    @property
    def label(self) -> str:
        return self.url


@dataclass(frozen=True)
class CheckedImage:
    """Bytes that passed the local check, to be staged; `label` says where they came from."""

    data: bytes
    facts: ImageFacts
    label: str
    upload_key: str | None = None
    """The `get_upload_url` object they were read from, deleted once they are staged under their content."""
    digest: str | None = None
    """Their content digest (`core.inputs.staged`), made in the same worker thread as the check when asked for."""

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.facts.format]


ImageInput = RemoteImage | CheckedImage


def kind_of(value: str) -> str:
    """`url`, `path`, `data`, `upload` or `unknown`, from the argument's form alone."""
    lowered = value[:16].lower()
    if lowered.startswith(("http://", "https://")):
        return "url"
    if lowered.startswith("data:"):
        return "data"
    if lowered.startswith(UPLOAD_SCHEME):
        return "upload"
    if lowered.startswith("file:") or value.startswith(("/", "~")) or _WINDOWS_PATH.match(value):
        return "path"
    return "unknown"


def data_uri_too_large(argument: str, chars: int) -> ImageRefusedError:
    """The refusal of a data: URI whose image is over 10 MB, from its length alone (nothing decoded)."""
    decoded = chars * 3 // 4
    return refused(
        argument,
        f"a data: URI's image may be at most {catalog.MAX_IMAGE_MB} MB once decoded, and this one is about "
        f"{decoded:,} bytes ({decoded / (1024 * 1024):.1f} MB); send a smaller JPEG or PNG, or the image's "
        "public https URL",
    )


def size_label(size: int, fmt: str) -> str:
    """`data: (312 KB PNG)`."""
    shown = f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} KB"
    return f"data: ({shown} {fmt})"


async def load_image(
    value: str,
    argument: str,
    *,
    settings: Settings,
    store: ObjectStore | None,
    check: FacetsCheck,
    https_only: bool,
    digest: DigestSource | None = None,
) -> ImageInput:
    """The argument as a URL to pass on, or as checked bytes to stage; raises naming the rule it breaks."""
    value = value.strip()
    kind = kind_of(value)
    if kind == "url":
        return RemoteImage(
            check_image_url(value, argument, https_only=https_only, trusted_origins=settings.trusted_image_origins)
        )
    if kind == "unknown":
        schemes = "an https URL" if https_only else "an http(s) URL"
        found = _SCHEME.match(value)
        given = f"a {found.group(1)}: URI" if found and len(found.group(1)) > 1 else "something else"
        raise InvalidArgumentError(
            f"{argument} must be {schemes}, an absolute local path (/…, ~/…, C:\\…), a file:// URI, a "
            f"data:image/jpeg|png;base64 URI or an upload: reference from get_upload_url; {given} was given."
        )
    if kind == "path" and not settings.allowed_input_dirs and settings.transport != "stdio":
        raise StagingUnavailableError(REMOTE_TRANSPORT.format(argument=argument, transport=settings.transport))
    if store is None:
        what = {"path": "a local file", "data": "a data: URI", "upload": "an upload: reference"}[kind]
        raise StagingUnavailableError(NO_STORE.format(argument=argument, what=what))
    checks = _Checks(check, None if digest is None else await digest())
    if kind == "path":
        return await _from_path(value, argument, settings, checks)
    if kind == "data":
        return await _from_data_uri(value, argument, checks)
    return await _from_upload(value, argument, store, checks)


@dataclass(frozen=True)
class _Checks:
    """What the worker thread does with bytes once read: the header's facts, the tool's rules, the digest."""

    rules: FacetsCheck
    digest: Digest | None

    def __call__(self, data: bytes, argument: str) -> tuple[ImageFacts, str | None]:
        facts = read_facts(data, argument)
        self.rules(argument, facts)
        return facts, None if self.digest is None else self.digest(data)


async def _from_path(value: str, argument: str, settings: Settings, check: _Checks) -> CheckedImage:
    raw = _path_of_file_uri(value, argument) if value[:5].lower() == "file:" else value
    allowed = settings.allowed_input_dirs
    if not allowed:
        raise input_paths.PathRefusedError(
            f"{argument} was refused before anything was read (no credits spent): CUTOUT_INPUT_DIRS allows no "
            "folder, so no local file is read; pass a public https URL instead."
        )

    def read() -> tuple[bytes, ImageFacts, str | None]:
        path = input_paths.resolve(raw, argument, allowed)
        data = input_paths.read_limited(path, argument)
        return data, *check(data, argument)

    data, facts, digest = await anyio.to_thread.run_sync(read)
    return CheckedImage(data, facts, raw, digest=digest)


def _path_of_file_uri(value: str, argument: str) -> str:
    parts = urlsplit(value)
    if parts.netloc not in ("", "localhost"):
        raise input_paths.PathRefusedError(
            f"{argument} names a file on another machine ({parts.netloc}); only this machine's files can be read."
        )
    if parts.query or parts.fragment:
        raise InvalidArgumentError(f"{argument} is a file:// URI with a query or fragment; give the plain file URI.")
    path = url2pathname(parts.path) if parts.path else ""
    return unquote(path) if "%" in path else path


async def _from_data_uri(value: str, argument: str, check: _Checks) -> CheckedImage:
    header = DATA_PREFIX.match(value)
    if header is None:
        raise InvalidArgumentError(
            f"{argument} is a data: URI, but only data:image/jpeg;base64,… and data:image/png;base64,… are accepted."
        )
    payload_chars = len(value) - header.end()
    padding = len(value) - len(value.rstrip("="))
    if payload_chars * 3 // 4 - min(padding, 2) > catalog.MAX_IMAGE_BYTES:  # known before decoding anything
        raise data_uri_too_large(argument, payload_chars)

    def decode() -> tuple[bytes, ImageFacts, str | None]:
        try:
            data = base64.b64decode(value[header.end() :], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgumentError(f"{argument} is a data: URI whose base64 payload is not valid base64.") from None
        return data, *check(data, argument)

    data, facts, digest = await anyio.to_thread.run_sync(decode)
    return CheckedImage(data, facts, size_label(len(data), facts.format), digest=digest)


async def _from_upload(value: str, argument: str, store: ObjectStore, check: _Checks) -> CheckedImage:
    key = upload_key(value)
    if key is None:
        raise InvalidArgumentError(f"{argument} is not an upload: reference made by get_upload_url.")
    label = UPLOAD_SCHEME + key
    size = await store.size(key)
    if size is None:
        raise InvalidArgumentError(
            f"{argument}: nothing was uploaded to {label}, or it was used by an edit or by a video job that has "
            "finished since (an upload is kept only while a video job made from it is unfinished; list_video_jobs "
            "shows that job). Upload the file to the upload_url that get_upload_url returned (it expires after "
            "15 minutes), or call get_upload_url again, then call again. Nothing was sent or charged."
        )
    if size > catalog.MAX_IMAGE_BYTES:
        raise refused(argument, f"the upload is larger than {catalog.MAX_IMAGE_MB} MB")
    data = await store.get(key, catalog.MAX_IMAGE_BYTES)
    if len(data) > catalog.MAX_IMAGE_BYTES:
        raise refused(argument, f"the upload is larger than {catalog.MAX_IMAGE_MB} MB")

    facts, digest = await anyio.to_thread.run_sync(check, data, argument)
    return CheckedImage(data, facts, label, upload_key=key, digest=digest)
