"""The one exception family of pushcamp.

Lower layers raise these; ``pushcamp.api.errors`` turns each category into its documented
HTTP body exactly once, and the CLI turns them into a message and an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One offending field of a request: where it is and what is wrong with it."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class PushcampError(Exception):
    """Base class of every error pushcamp raises on purpose."""


class InvalidRequest(PushcampError):
    """The request breaks a rule of the contract (HTTP 400)."""

    def __init__(self, errors: list[FieldError] | None = None, message: str | None = None):
        self.errors = list(errors or [])
        text = message or "; ".join(f"{e.field}: {e.reason}" for e in self.errors)
        super().__init__(text or "invalid request")

    @classmethod
    def of(cls, field: str, reason: str) -> InvalidRequest:
        return cls([FieldError(field, reason)])


class DuplicateTitle(InvalidRequest):
    """A live campaign of this partner already has this title (HTTP 400)."""

    def __init__(self) -> None:
        super().__init__([FieldError("title", "a campaign with this title already exists")])


class CampaignNotFound(InvalidRequest):
    """No campaign with this id belongs to the partner (HTTP 400, as the contract says)."""

    def __init__(self) -> None:
        super().__init__([FieldError("campaign_id", "unknown campaign")])


class Unauthorized(PushcampError):
    """Credentials missing, malformed, unknown, revoked or for another partner (HTTP 401)."""


class Forbidden(PushcampError):
    """A browser request from an origin the partner did not allow (HTTP 403, no CORS)."""


class RateLimited(PushcampError):
    """The partner used up this endpoint's budget (HTTP 429 with Retry-After)."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        super().__init__(f"rate limited, retry after {retry_after:.1f}s")


class DependencyUnavailable(PushcampError):
    """A dependency (database, broker, cache) failed or timed out; nothing was written
    (HTTP 424 ``SERVICE:-``); safe to retry."""


class NotFound(PushcampError):
    """An administrative lookup (CLI) named something that does not exist."""


class Conflict(PushcampError):
    """An administrative change collides with existing state (CLI), e.g. a duplicate id."""
