"""Request and response models of the HTTP API (kept apart from stored models).

Requests are validated in strict mode: a string is never turned into a bool or a number
into a string (``"is_all": "false"`` is a 400, as the contract says).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
