"""Upstream payloads, camelCase, as cutout.pro sends them.

Lenient on purpose: every field but the id may be missing or null, because a
read that fails on an extra or absent field would lose a paid job.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


class _Upstream(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class Envelope(_Upstream):
    """The `{code, data, msg, time, requestId}` wrapper around every answer."""

    code: int
    data: Any = None
    msg: str | None = None
    time: int | None = None
    request_id: str | None = Field(default=None, alias="requestId")


class UpstreamVideoJob(_Upstream):
    id: int
    user_id: int | None = Field(default=None, alias="userId")
    image_url: str | None = Field(default=None, alias="imageUrl")
    original_prompt: str | None = Field(default=None, alias="originalPrompt")
    result_url: str | None = Field(default=None, alias="resultUrl")
    cover: str | None = None
    width: int | None = None
    height: int | None = None
    status: int | None = None
    percentage: float | None = None
    wait_number: int | None = Field(default=None, alias="waitNumber")
    created_at: int | None = Field(default=None, alias="createdAt")

    @field_validator("result_url", "cover", "original_prompt", "image_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value


class UpstreamEditResult(_Upstream):
    id: int
    user_id: int | None = Field(default=None, alias="userId")
    image_url: str | None = Field(default=None, alias="imageUrl")
    prompt: str | None = None
    model: str | None = None
    aspect_ratios: str | None = Field(default=None, alias="aspectRatios")
    reference_image_url: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("referenceImageUrl", "reference_image_url")
    )
    status: int | None = None
    fail_reason: str | None = Field(default=None, alias="failReason")
    duration: float | None = None
    created_at: int | None = Field(default=None, alias="createdAt")
