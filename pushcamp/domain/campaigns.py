"""Campaigns: their states and the rules a new campaign must follow (contract §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pushcamp.domain import locales, text
from pushcamp.errors import FieldError, InvalidRequest

TITLE_MAX_CHARS = 100


class CampaignStatus(StrEnum):
    DRAFT = "Draft"
    SENDING = "Sending"
    SENT = "Sent"
    FAILED = "Failed"
    DELETED = "Deleted"


@dataclass(frozen=True, slots=True)
class NewCampaign:
    """A validated request to create a campaign; owner and status are set by the server."""

    title: str
    language: str
    is_all: bool = False


def title_problem(title: str) -> str | None:
    """Why ``title`` (already NFC-normalised) is not a valid campaign title, or None.

    Length is counted in Unicode code points after NFC normalisation: 100 emoji are 100
    characters, whatever their UTF-8 or UTF-16 size.
    """
    if problem := text.storage_problem(title):
        return problem
    if not title.strip():
        return "must not be empty or blank"
    if len(title) > TITLE_MAX_CHARS:
        return f"must be at most {TITLE_MAX_CHARS} characters"
    return None


def language_problem(language: str) -> str | None:
    if not locales.is_locale(language):
        return "must be a locale code ll_CC (e.g. en_US) or all_ALL"
    return None


def new_campaign(title: str, language: str, is_all: bool = False) -> NewCampaign:
    """Validate the fields of a new campaign, naming every offending field at once."""
    title = text.normalise(title)
    errors = [
        FieldError(field, reason)
        for field, reason in (
            ("title", title_problem(title)),
            ("language", language_problem(language)),
        )
        if reason is not None
    ]
    if errors:
        raise InvalidRequest(errors)
    return NewCampaign(title=title, language=language, is_all=is_all)
