"""get_upload_url through the MCP client, against a real S3-compatible server: a client PUTs a file to
the URL it is given, and the `upload:` reference it gets names exactly the object it uploaded."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from cutout_mcp.config import Settings
from cutout_mcp.core.staging import open_staging, upload_key
from cutout_mcp.server import build_server

from .conftest import API_KEY, BASE_URL
from .s3server import S3Server

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)


def staging_settings(tmp_path: Path, server: S3Server, prefix: str) -> Settings:
    return Settings(
        api_key=API_KEY,
        base_url=BASE_URL,
        preflight=False,
        state_dir=tmp_path / "state",
        **server.settings_fields(prefix),
    )


def text_of(result: Any) -> str:
    return " ".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def test_an_upload_url_takes_a_put_and_its_reference_names_the_object(
    tmp_path: Path, s3_server: S3Server, s3_prefix: str
) -> None:
    settings = staging_settings(tmp_path, s3_server, s3_prefix)
    async with Client(build_server(settings)) as client:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        result = await client.call_tool(
            "get_upload_url", {"filename": "Holiday photo.png", "content_type": "image/png"}
        )
        assert not result.is_error, text_of(result)
        ticket = result.structured_content
        assert ticket is not None
        assert json.loads(text_of(result)) == ticket

    expires = datetime.fromisoformat(ticket["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(minutes=15) <= expires <= datetime.now(timezone.utc) + timedelta(minutes=15)
    assert ticket["image_url"].startswith("upload:uploads/")
    assert ticket["image_url"].endswith("/Holiday-photo.png")
    assert "X-Amz-" not in ticket["image_url"], "the reference is no credential: it can be echoed anywhere"
    assert ticket["upload_url"].startswith(s3_server.endpoint + "/")
    assert ticket["headers"] == {"Content-Type": "image/png"}
    assert ticket["max_bytes"] == 10 * 1024 * 1024

    key = upload_key(ticket["image_url"])
    assert key is not None
    async with httpx.AsyncClient() as http:
        put = await http.put(ticket["upload_url"], content=PNG, headers=ticket["headers"])
        assert put.status_code == 200
    assert s3_server.object_keys(s3_prefix) == [key], "exactly the store key the reference names"
    async with open_staging(settings) as store:
        assert store is not None
        assert await store.size(key) == len(PNG)
        assert await store.get(key, max_bytes=len(PNG)) == PNG


async def test_two_upload_urls_never_share_a_key(tmp_path: Path, s3_server: S3Server, s3_prefix: str) -> None:
    async with Client(build_server(staging_settings(tmp_path, s3_server, s3_prefix))) as client:
        args = {"filename": "cat.jpg", "content_type": "image/jpeg"}
        first = (await client.call_tool("get_upload_url", args)).structured_content
        second = (await client.call_tool("get_upload_url", args)).structured_content
    assert first is not None
    assert second is not None
    assert first["image_url"] != second["image_url"]
    assert first["image_url"].endswith("/cat.jpg")


async def test_without_a_bucket_the_tool_says_what_to_set(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_upload_url", {"filename": "cat.jpg", "content_type": "image/jpeg"})
    assert result.is_error
    message = text_of(result)
    assert "CUTOUT_STAGING_URL" in message
    assert "AWS_ACCESS_KEY_ID" in message
    assert "public https URL" in message


async def test_only_jpeg_and_png_uploads_are_offered(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool("get_upload_url", {"filename": "cat.gif", "content_type": "image/gif"})
    schema = tools["get_upload_url"].input_schema["properties"]
    assert schema["content_type"]["enum"] == ["image/jpeg", "image/png"]
    assert tools["get_upload_url"].annotations is not None
    assert tools["get_upload_url"].annotations.read_only_hint is True
    assert tools["get_upload_url"].output_schema is not None
    assert result.is_error
    assert "content_type" in text_of(result)
