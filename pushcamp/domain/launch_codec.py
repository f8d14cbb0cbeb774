"""A validated launch request as stored on its launch row (JSON) and back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from pushcamp.domain.launches import LaunchRequest, Target


def request_to_dict(request: LaunchRequest) -> dict[str, Any]:
    data = asdict(request)
    if request.target is not None:
        data["target"] = {
            "attribute": request.target.attribute,
            "values": list(request.target.values),
        }
    return data


def request_from_dict(data: Mapping[str, Any]) -> LaunchRequest:
    fields = dict(data)
    target = fields.pop("target", None)
    return LaunchRequest(
        **fields,
        target=Target(target["attribute"], tuple(target["values"])) if target else None,
    )
