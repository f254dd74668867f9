"""Image arguments in every form, and the rules that decide which local bytes may ever leave the machine."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from cutout_mcp import catalog
from cutout_mcp.config import Settings
from cutout_mcp.core.inputs.image_rules import ImageRefusedError, check_edit_facts, check_video_facts
from cutout_mcp.core.inputs.image_sources import (
    CheckedImage,
    RemoteImage,
    StagingUnavailableError,
    load_image,
)
from cutout_mcp.core.inputs.validation import InvalidArgumentError

from .memstore import MemoryStore, jpeg, png

pytestmark = pytest.mark.anyio

UPLOADS_A = "uploads/" + "A" * 32
UPLOADS_U = "uploads/" + "U" * 32
UPLOADS_X = "uploads/" + "X" * 32
"""Upload folders of the shape get_upload_url makes (32 random characters)."""

SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "home" / "Pictures"
    folder.mkdir(parents=True)
    (folder / "cat.jpg").write_bytes(jpeg())
    (folder / "My Dog.png").write_bytes(png())
    return folder


@pytest.fixture
def home(pictures: Path) -> Path:
    return pictures.parent


def settings_for(home: Path, **changes: object) -> Settings:
    return Settings(api_key="k", input_dirs=(home,), **changes)  # type: ignore[arg-type]


async def load(value: str, home: Path, store: MemoryStore | None = None, **changes: object) -> object:
    return await load_image(
        value,
        "image_url",
        settings=settings_for(home, **changes),
        store=store if store is not None else MemoryStore(),
        check=check_video_facts,
        https_only=False,
    )


# --- the forms -------------------------------------------------------------------------------


async def test_a_public_url_is_passed_on_as_it_is(home: Path) -> None:
    found = await load(" https://img.example.com/cat.jpg ", home)
    assert found == RemoteImage("https://img.example.com/cat.jpg")


@pytest.mark.parametrize("form", ["path", "spaces", "file-uri", "tilde"])
async def test_a_local_file_is_read_and_checked(form: str, pictures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(pictures.parent))
    value = {
        "path": str(pictures / "cat.jpg"),
        "spaces": str(pictures / "My Dog.png"),
        "file-uri": (pictures / "My Dog.png").as_uri(),
        "tilde": "~/Pictures/cat.jpg",
    }[form]
    found = await load(value, pictures.parent)
    assert isinstance(found, CheckedImage)
    assert (found.facts.width, found.facts.height) == (640, 480)
    assert found.label == (str(pictures / "My Dog.png") if form == "file-uri" else value)
    assert found.content_type in ("image/jpeg", "image/png")


async def test_a_data_uri_is_decoded_and_labelled_by_its_size_and_format(home: Path) -> None:
    data = png()
    found = await load("data:image/png;base64," + base64.b64encode(data).decode(), home)
    assert isinstance(found, CheckedImage)
    assert found.data == data
    assert found.label == f"data: ({round(len(data) / 1024)} KB PNG)"


async def test_an_upload_is_read_back_from_the_store_and_checked(home: Path) -> None:
    store = MemoryStore()
    await store.put(f"{UPLOADS_A}/cat.jpg", jpeg(), "image/jpeg")
    found = await load(f"upload:{UPLOADS_A}/cat.jpg", home, store)
    assert isinstance(found, CheckedImage)
    assert found.label == f"upload:{UPLOADS_A}/cat.jpg"
    assert found.upload_key == f"{UPLOADS_A}/cat.jpg"


@pytest.mark.parametrize(
    "value", ["upload:../x", "upload:staged/abc.jpg", "upload:", "upload:uploads/a//b.jpg", "upload:uploads/x/cat.jpg"]
)
async def test_an_upload_reference_must_be_one_get_upload_url_could_make(value: str, home: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="not an upload: reference"):
        await load(value, home)


async def test_a_missing_upload_says_to_upload_first(home: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"nothing was uploaded to upload:uploads/X{32}/x\.jpg"):
        await load(f"upload:{UPLOADS_X}/x.jpg", home)


@pytest.mark.parametrize("value", ["cat.jpg", "ftp://example.com/cat.jpg", "javascript:alert(1)"])
async def test_other_forms_are_refused_naming_what_is_accepted(value: str, home: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="absolute local path"):
        await load(value, home)


# --- the safety of paths -------------------------------------------------------------------------


async def test_a_symlink_out_of_the_allowed_folder_is_refused(pictures: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "photo.jpg"
    outside.parent.mkdir()
    outside.write_bytes(jpeg())
    (pictures / "link.jpg").symlink_to(outside)
    with pytest.raises(ImageRefusedError, match=r"outside the folders .* once its symlinks are followed"):
        await load(str(pictures / "link.jpg"), pictures.parent)


async def test_a_symlink_into_a_hidden_folder_is_refused(home: Path, pictures: Path) -> None:
    ssh = home / ".ssh"
    ssh.mkdir()
    (ssh / "id_rsa").write_bytes(SECRET)
    (pictures / "innocent.jpg").symlink_to(ssh / "id_rsa")
    with pytest.raises(ImageRefusedError, match=r"hidden file or folder \(\.ssh\)") as caught:
        await load(str(pictures / "innocent.jpg"), home)
    assert "PRIVATE KEY" not in str(caught.value)


@pytest.mark.parametrize("name", [".ssh/id_rsa", ".aws/credentials", "Pictures/.secret.jpg"])
async def test_hidden_files_and_folders_are_never_read(name: str, home: Path) -> None:
    target = home / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(jpeg())  # even a real image
    with pytest.raises(ImageRefusedError, match="hidden files and folders"):
        await load(str(target), home)


async def test_a_non_image_inside_the_allowed_folder_is_refused_without_quoting_it(home: Path) -> None:
    secret = home / "Documents" / "id_rsa"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    with pytest.raises(ImageRefusedError, match="not a JPEG or PNG image") as caught:
        await load(str(secret), home)
    assert "OPENSSH" not in str(caught.value)
    assert "b3Bl" not in str(caught.value)


async def test_a_file_starting_like_a_jpeg_but_not_one_is_refused(home: Path) -> None:
    fake = home / "Pictures" / "fake.jpg"
    fake.write_bytes(b"\xff\xd8\xff" + SECRET)
    with pytest.raises(ImageRefusedError, match="header cannot be read"):
        await load(str(fake), home)


async def test_an_oversized_file_is_refused_by_its_size_before_it_is_read(
    pictures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = pictures / "big.jpg"
    with big.open("wb") as file:  # sparse: 11 MB on paper, nothing on disk
        file.truncate(catalog.MAX_IMAGE_BYTES + 1024 * 1024)

    def no_reading(*args: object, **kwargs: object) -> object:
        raise AssertionError("the file was opened for reading")

    monkeypatch.setattr(os, "fdopen", no_reading)
    with pytest.raises(ImageRefusedError, match=f"larger than {catalog.MAX_IMAGE_MB} MB"):
        await load(str(big), pictures.parent)


async def test_a_path_outside_every_allowed_folder_is_refused(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.jpg"
    other.write_bytes(jpeg())
    with pytest.raises(ImageRefusedError, match="outside the folders"):
        await load(str(other), home)


async def test_dot_dot_cannot_climb_out_of_the_allowed_folder(home: Path, tmp_path: Path) -> None:
    (tmp_path / "other.jpg").write_bytes(jpeg())
    with pytest.raises(ImageRefusedError, match="outside the folders"):
        await load(str(home / "Pictures" / ".." / ".." / "other.jpg"), home)


async def test_a_missing_file_and_a_folder_are_named_as_such(pictures: Path) -> None:
    with pytest.raises(ImageRefusedError, match="no such file"):
        await load(str(pictures / "nope.jpg"), pictures.parent)
    with pytest.raises(ImageRefusedError, match="not a regular file"):
        await load(str(pictures), pictures.parent)


async def test_a_windows_path_on_another_system_is_named_as_one(home: Path) -> None:
    if os.name == "nt":
        pytest.skip("a Windows path is a path here")
    with pytest.raises(ImageRefusedError, match="Windows path"):
        await load("C:\\Users\\me\\cat.jpg", home)


async def test_a_file_uri_of_another_machine_is_refused(home: Path) -> None:
    with pytest.raises(ImageRefusedError, match="another machine"):
        await load("file://fileserver/share/cat.jpg", home)


async def test_no_allowed_folder_means_no_local_file(pictures: Path) -> None:
    with pytest.raises(ImageRefusedError, match="CUTOUT_INPUT_DIRS allows no folder"):
        await load_image(
            str(pictures / "cat.jpg"),
            "image_url",
            settings=Settings(api_key="k", input_dirs=()),
            store=MemoryStore(),
            check=check_video_facts,
            https_only=False,
        )


# --- the image rules, for bytes from anywhere ----------------------------------------------------------


async def test_the_video_size_rules_apply_to_local_images(home: Path) -> None:
    small = home / "Pictures" / "small.jpg"
    small.write_bytes(jpeg(200, 200))
    with pytest.raises(ImageRefusedError, match="200×200 px; the video API needs each side between 300 and 6000"):
        await load(str(small), home)


async def test_seedream_rules_apply_to_local_images(pictures: Path) -> None:
    seedream = catalog.edit_model("seedream-4.0")
    with pytest.raises(ImageRefusedError, match=r"seedream-4\.0 needs"):
        await load_image(
            str(pictures / "cat.jpg"),  # 640×480 has fewer pixels than seedream takes
            "image_urls[0]",
            settings=settings_for(pictures.parent),
            store=MemoryStore(),
            check=lambda argument, facts: check_edit_facts(argument, facts, seedream),
            https_only=True,
        )


async def test_a_data_uri_too_big_is_refused_before_decoding(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded")

    monkeypatch.setattr(base64, "b64decode", no_decoding)
    payload = "A" * (4 * (catalog.MAX_IMAGE_BYTES // 3 + 2))
    with pytest.raises(ImageRefusedError, match=f"at most {catalog.MAX_IMAGE_MB} MB once decoded"):
        await load("data:image/jpeg;base64," + payload, home)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("data:image/png;base64,not*base64!", "not valid base64"),
        ("data:image/png;base64,iVBORw0KGgo", "not valid base64"),
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", "only data:image/jpeg"),
        ("data:image/png," + "x" * 10, "only data:image/jpeg"),
        ("data:image/jpeg;base64," + base64.b64encode(b"GIF89a" + b"\0" * 40).decode(), "GIF image"),
    ],
)
async def test_a_bad_data_uri_names_what_is_wrong(value: str, rule: str, home: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=rule):
        await load(value, home)


async def test_a_non_image_upload_is_refused(home: Path) -> None:
    store = MemoryStore()
    await store.put(f"{UPLOADS_X}/creds.jpg", SECRET, "image/jpeg")
    with pytest.raises(ImageRefusedError, match="not a JPEG or PNG"):
        await load(f"upload:{UPLOADS_X}/creds.jpg", home, store)


async def test_an_oversized_upload_is_refused_by_its_size(home: Path) -> None:
    store = MemoryStore()
    await store.put(
        f"{UPLOADS_X}/big.jpg",
        b"\xff\xd8\xff" + b"\0" * catalog.MAX_IMAGE_BYTES,
        "image/jpeg",
    )
    with pytest.raises(ImageRefusedError, match=f"larger than {catalog.MAX_IMAGE_MB} MB"):
        await load(f"upload:{UPLOADS_X}/big.jpg", home, store)


# --- where a local image cannot go ---------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
async def test_a_remote_server_refuses_local_paths_pointing_at_get_upload_url(transport: str, pictures: Path) -> None:
    with pytest.raises(StagingUnavailableError, match="get_upload_url") as caught:
        await load_image(
            str(pictures / "cat.jpg"),
            "image_url",
            settings=Settings(api_key="k", transport=transport),  # type: ignore[arg-type]
            store=MemoryStore(),
            check=check_video_facts,
            https_only=False,
        )
    assert transport in str(caught.value)


def test_the_default_input_folders_depend_on_the_transport() -> None:
    assert Settings().allowed_input_dirs == (Path.home(),)
    assert Settings(transport="streamable-http").allowed_input_dirs == ()
    assert Settings(transport="sse").allowed_input_dirs == ()
    chosen = Settings.load({"CUTOUT_INPUT_DIRS": os.pathsep.join(["/srv/a", "~/b"])}, transport="sse")
    assert chosen.allowed_input_dirs == (Path("/srv/a"), Path.home() / "b")
    assert Settings.load({"CUTOUT_INPUT_DIRS": "none"}).allowed_input_dirs == ()


@pytest.mark.parametrize(
    "value",
    [
        "/tmp/cat.jpg",
        "data:image/png;base64," + base64.b64encode(png()).decode(),
        f"upload:{UPLOADS_A}/a.jpg",
    ],
)
async def test_without_a_store_a_local_image_says_what_to_set(value: str, home: Path) -> None:
    with pytest.raises(StagingUnavailableError) as caught:
        await load_image(
            value, "image_url", settings=settings_for(home), store=None, check=check_video_facts, https_only=False
        )
    message = str(caught.value)
    assert "CUTOUT_STAGING_URL" in message
    assert "AWS_ACCESS_KEY_ID" in message
    assert "public https URL" in message
    assert "Nothing was sent or charged" in message


@pytest.mark.parametrize(("real_size", "refused"), [(5000, False), (catalog.MAX_IMAGE_BYTES + 1, True)])
def test_a_file_that_grew_after_its_size_was_read_is_read_to_the_limit_and_no_further(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_size: int, refused: bool
) -> None:
    """The read is sized by the file's size when checked; a file growing meanwhile is still capped."""
    from cutout_mcp.core.inputs import input_paths

    path = tmp_path / "growing.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"\0" * (real_size - 3))
    real_fstat = os.fstat

    def smaller(fd: int) -> os.stat_result:  # the size as it was before the file grew
        found = real_fstat(fd)
        return os.stat_result((found.st_mode, *found[1:6], 1000, *found[7:]))

    monkeypatch.setattr(input_paths.os, "fstat", smaller)
    if refused:
        with pytest.raises(ImageRefusedError, match=f"larger than {catalog.MAX_IMAGE_MB} MB"):
            input_paths.read_limited(path, "image_url")
    else:
        assert input_paths.read_limited(path, "image_url") == path.read_bytes()
