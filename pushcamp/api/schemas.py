"""Request and response models of the HTTP API (kept apart from stored models).

Requests are validated in strict mode: a string is never turned into a bool or a number
into a string (``"is_all": "false"`` is a 400, as the contract says).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pushcamp.domain.launches import (
    DESCRIPTION_MAX_CHARS,
    DESCRIPTION_WITH_BANNER_MAX_CHARS,
    TTL_MAX_SECONDS,
)


class CreateCampaignRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    partner_id: str = Field(min_length=1, max_length=64, description="Your partner id.")
    title: str = Field(
        description="1-100 characters (Unicode code points after NFC); unique among your "
        "campaigns that are not deleted.",
    )
    language: str = Field(description="Locale code ll_CC (e.g. en_US) or all_ALL.")
    is_all: bool = Field(
        default=False,
        description="true: sends once to all targeted subscribers, listed in the panel; "
        "false: launched many times to segments.",
    )


class PartnerOnlyRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    partner_id: str = Field(min_length=1, max_length=64)


class CampaignCreated(BaseModel):
    success: bool = True
    campaign_id: int


class FieldErrorBody(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    message: str
    errors: list[FieldErrorBody] | None = None


class RateLimitedBody(BaseModel):
    message: str = "Too Many Requests"
    status: int = 429


class LaunchTarget(BaseModel):
    attribute: str = Field(
        min_length=1, description="d_wp_browser, d_wp_os, d_wp_device or a custom attribute."
    )
    values: list[str] = Field(min_length=1, description="Subscribers whose attribute is one.")


class LaunchAction(BaseModel):
    title: str = Field(min_length=1, max_length=40)
    link: str = Field(pattern=r"^https?://", description="http(s) URL.")


class LaunchBody(BaseModel):
    """The launch body (contract §2.2), described for the OpenAPI document; the route
    parses it itself (pushcamp/domain/launches.py) and names every offending field."""

    model_config = ConfigDict(extra="allow")

    partner_id: str = Field(min_length=1, max_length=64, description="Your partner id.")
    title: str = Field(min_length=1, max_length=100, description="The notification's title.")
    description: str = Field(
        min_length=1,
        max_length=DESCRIPTION_MAX_CHARS,
        description=f"The notification's body; at most {DESCRIPTION_WITH_BANNER_MAX_CHARS} "
        "characters when `banner` is given.",
    )
    link: str = Field(pattern=r"^https?://", description="Where a click takes the user.")
    ttl: int | str = Field(
        description=f"Seconds, 0 to {TTL_MAX_SECONDS}: an integer or a string of digits.",
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": TTL_MAX_SECONDS},
                {"type": "string", "pattern": "^[0-9]{1,6}$"},
            ]
        },
    )
    image: str | None = Field(default=None, pattern=r"^https://", description="Icon URL.")
    banner: str | None = Field(default=None, pattern=r"^https://", description="Large image.")
    badge: str | None = Field(default=None, pattern=r"^https://")
    include_unengaged: bool = False
    language: str | None = Field(default=None, description="ll_CC: narrows this launch.")
    target: LaunchTarget | None = Field(
        default=None, description="Required when the campaign's is_all is false."
    )
    actions: list[LaunchAction] | None = Field(default=None, max_length=2)
    require_interaction: bool = False
    renotify: bool = False
    silent: bool = False
