"""Request bodies: strict JSON in, validated models out, every failure a 400."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from pushcamp.errors import FieldError, InvalidRequest, PushcampError

M = TypeVar("M", bound=BaseModel)


class BodyTooLarge(PushcampError):
    """The request body is over the configured limit (HTTP 413); it was not read whole."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: a valid JSON number, but not a float
        raise ValueError("number out of range")
    return value


def parse_json(raw: bytes) -> Any:
    """Parse standard JSON only: no NaN/Infinity literals, no number beyond the float
    range, UTF-8, nothing after the value. (Integers of more than 4,300 digits are
    refused by Python itself; range checks on the rest belong to each field.)"""
    if not raw.strip():
        raise InvalidRequest.of("body", "empty; a JSON object is required")
    try:
        return json.loads(
            raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, ...
        raise InvalidRequest.of("body", "not valid JSON") from exc


def validate(model: type[M], data: Any) -> M:
    """Validate without coercion; name every offending field."""
    if not isinstance(data, dict):
        raise InvalidRequest.of("body", "must be a JSON object")
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise InvalidRequest(
            [
                FieldError(".".join(str(p) for p in err["loc"]) or "body", err["msg"])
                for err in exc.errors(include_url=False, include_input=False)
            ]
        ) from None


async def read_model(request: Request, model: type[M]) -> M:
    return validate(model, parse_json(await request.body()))


# Path ids: 1 to 18 digits (always within a signed 64-bit integer).
MAX_ID = 10**18 - 1


def parse_id(value: str, field: str = "campaign_id") -> int:
    """Path ids are positive integers; anything else (such as the literal ``campaign_id``
    in the published collection) is a 400, not a 404 or 422."""
    if not value.isascii() or not value.isdigit() or len(value) > 18 or int(value) < 1:
        raise InvalidRequest.of(field, "must be a positive integer")
    return int(value)
