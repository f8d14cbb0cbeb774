"""A validated launch request as stored on its launch row (JSON) and back.

Requests stored before a field existed lack it; reading one back gives the field's
default (for the richer-notification fields: no buttons, no badge, all flags false)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from pushcamp.domain.launches import (
    AbVariant,
    LaunchRequest,
    LocaleVariant,
    NotificationAction,
    Target,
)


def request_to_dict(request: LaunchRequest) -> dict[str, Any]:
    data = asdict(request)
    if request.target is not None:
        data["target"] = {
            "attribute": request.target.attribute,
            "values": list(request.target.values),
        }
    data["actions"] = [{"title": a.title, "link": a.link} for a in request.actions]
    # Kept on the launch row (not_before, max_per_minute), not in the stored request.
    data.pop("send_at", None)
    data.pop("max_per_minute", None)
    return data


def request_from_dict(data: Mapping[str, Any]) -> LaunchRequest:
    fields = dict(data)
    target = fields.pop("target", None)
    actions = fields.pop("actions", None) or ()
    variants = fields.pop("variants", None) or ()
    ab = fields.pop("ab", None) or ()
    return LaunchRequest(
        **fields,
        target=Target(target["attribute"], tuple(target["values"])) if target else None,
        actions=tuple(NotificationAction(a["title"], a["link"]) for a in actions),
        variants=tuple(LocaleVariant(v["locale"], v["title"], v["description"]) for v in variants),
        ab=tuple(AbVariant(v["title"], v["description"], v["split"]) for v in ab),
    )
