"""Statistics (contract §2.4): campaign-metrics, overall-metrics and top-metrics, in the
shapes of Insider's published samples. The numbers come from services/statistics.py;
this module only reads the body and writes the published formats."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pushcamp.api.auth import authorize, require_partner
from pushcamp.api.body import parse_json
from pushcamp.api.context import call_service, context
from pushcamp.api.routes.campaigns import ERRORS, json_body
from pushcamp.domain import statistics as rules
from pushcamp.domain.statistics import DateRange
from pushcamp.errors import CampaignNotFound, InvalidRequest
from pushcamp.services import statistics as service
from pushcamp.services.tokens import Caller

router = APIRouter(tags=["statistics"])

MAX_PER_PAGE = 100
MAX_PAGE = 10**9
MAX_CAMPAIGN_ID = 10**18


class _Range(BaseModel):
    partner_id: str
    start_date: str = Field(description="YYYY-MM-DD, UTC", examples=["2023-06-01"])
    end_date: str = Field(description="YYYY-MM-DD, UTC, inclusive", examples=["2023-06-08"])


class CampaignMetricsRequest(_Range):
    campaign_id: int | str = Field(description="An integer or a numeric string")


class OverallMetricsRequest(_Range):
    page: int | str = Field(1, description="From 1; an integer or a numeric string")
    per_page: int | str = Field(10, description=f"1 to {MAX_PER_PAGE}")


async def _body(request: Request) -> tuple[Caller, dict[str, Any], DateRange]:
    """Credentials and rate limit, then the body (400), then the partner (401)."""
    caller = await authorize(request, "statistics")
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidRequest.of("body", "must be a JSON object")
    partner_id = data.get("partner_id")
    if not isinstance(partner_id, str):
        raise InvalidRequest.of("partner_id", "is required and must be a string")
    window = rules.parse_range(data.get("start_date"), data.get("end_date"))
    require_partner(caller, partner_id)
    return caller, data, window


# --- the published formats ----------------------------------------------------------------


def _overview(numbers: service.Numbers, currency: str) -> dict[str, Any]:
    return {
        "total": {
            "targeted": rules.count(numbers.targeted),
            "deliveryRate": rules.percent(numbers.delivery_rate),
            "ctr": rules.percent(numbers.ctr),
            "conversionRate": rules.percent(numbers.conversion_rate),
        },
        "targeted": {
            "sent": rules.count(numbers.sent),
            "dropped": rules.count(numbers.dropped),
        },
        "deliveryRate": {
            "delivered": rules.count(numbers.delivered),
            "undelivered": rules.count(numbers.undelivered),
        },
        "ctr": {"clicks": rules.count(numbers.clicks)},
        "conversionRate": {"conversions": rules.count(numbers.conversions)},
        "revenue": rules.money(numbers.revenue, currency),
    }


def _reasons(reasons: list[service.ReasonCount]) -> list[dict[str, str]]:
    return [
        {
            "label": r.label,
            "count": rules.count(r.count),
            "percentage": rules.percent_number(r.share),
        }
        for r in reasons
    ]


def _device(d: service.DeviceNumbers, currency: str) -> dict[str, str]:
    return {
        "device": d.device,
        "sent": rules.count(d.sent),
        "delivered": rules.count(d.delivered),
        "deliveryRate": rules.percent(d.delivery_rate),
        "clicks": rules.count(d.clicks),
        "ctr": rules.percent(d.ctr),
        "conversions": rules.count(d.conversions),
        "conversionRate": rules.percent(d.conversion_rate),
        "revenue": rules.money(d.revenue, currency),
    }


def _click_metrics(
    clicks: int, buttons: tuple[int, int], titles: tuple[str, ...]
) -> list[dict[str, str]]:
    """Clicks on the notification itself (``mainAction``) and on its action buttons 0
    (``primaryAction``) and 1 (``secondaryAction``, headed by the first launch's button
    labels), each with its share of all the clicks."""
    main = max(clicks - sum(buttons), 0)
    entries = [("mainAction", "Main Element", main)] + [
        (name, titles[index] if index < len(titles) else "", buttons[index])
        for index, name in enumerate(("primaryAction", "secondaryAction"))
    ]
    return [
        {
            "name": name,
            "header": header,
            "clicks": rules.count(count),
            "clickRatio": rules.percent(count / clicks if clicks else 0.0),
        }
        for name, header, count in entries
    ]


def _stamp(moment: datetime | None) -> str | None:
    """``2023-06-08 21:15:10``, UTC, as overall-metrics shows its dates."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else None


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _campaign_metrics(report: service.CampaignReport, window: DateRange) -> dict[str, Any]:
    return {
        "name": report.title,
        "startDate": f"{window.start.isoformat()}T00:00:00.000000Z",
        "endDate": f"{window.end.isoformat()}T23:59:59.999999Z",
        "isRecurring": not report.is_all,
        "alias": "bulk" if report.is_all else "segment",
        "preferredCurrency": report.currency,
        "isTTLEnded": report.ttl_ended,
        "overview": _overview(report.numbers, report.currency),
        "deviceMetrics": [_device(d, report.currency) for d in report.by_device],
        "clickMetrics": _click_metrics(
            report.numbers.clicks, report.button_clicks, report.button_titles
        ),
        "unsuccessfulMessages": {
            "dropped": _reasons(report.dropped),
            "undelivered": _reasons(report.undelivered),
        },
        "comparisonData": [],
    } | _variants(report.variants)


def _variants(variants: tuple[service.VariantNumbers, ...]) -> dict[str, Any]:
    """A pushcamp addition, only for a campaign with an A/B launch: each arm's numbers
    (formatted like ``overview``) and whether it is the winner (docs/delivery.md)."""
    if not variants:
        return {}
    return {
        "variants": [
            {
                "launchId": v.launch_id,
                "variant": v.label,
                "title": v.title,
                "description": v.description,
                "split": v.split,
                "targeted": rules.count(v.targeted),
                "sent": rules.count(v.sent),
                "delivered": rules.count(v.delivered),
                "clicks": rules.count(v.clicks),
                "ctr": rules.percent(v.ctr),
                "winner": v.winner,
            }
            for v in variants
        ]
    }


def _overall_row(row: service.CampaignSummary, today: date) -> dict[str, Any]:
    n = row.numbers
    return {
        "id": row.campaign_id,
        "tags": [],  # pushcamp's campaigns have no tags
        "type": rules.campaign_type(row.is_all),
        "campName": row.title,
        "status": row.status,
        "sendDate": _stamp(row.first_sent_at),
        "startDate": _stamp(row.first_launched_at),
        "endDate": _stamp(row.last_finished_at),
        "daysActive": rules.days_active(row.first_launched_at, row.last_finished_at, today),
        "messageLink": row.link,
        "firstButtonLink": (row.button_links[:1] or (rules.NO_BUTTON,))[0],
        "secondButtonLink": (row.button_links[1:2] or (rules.NO_BUTTON,))[0],
        "targeted": n.targeted,
        "sent": n.sent,
        "dropped": n.dropped,
        "deliveryRate": n.delivery_rate,
        "delivered": n.delivered,
        "undelivered": n.undelivered,
        "ctr": n.ctr,
        "clicks": n.clicks,
        "conversionRate": n.conversion_rate,
        "conversions": n.conversions,
        "revenue": _number(n.revenue),
    }


def _top_metrics(report: service.PartnerReport) -> dict[str, Any]:
    return {
        "overview": _overview(report.numbers, report.currency),
        "performance": [
            {
                "label": p.label,
                "campaignCount": p.campaign_count,
                "deliveryRate": rules.percent_number(p.numbers.delivery_rate),
                "ctr": rules.percent_number(p.numbers.ctr),
                "conversionRate": rules.percent_number(p.numbers.conversion_rate),
                "revenue": rules.plain_decimal(p.numbers.revenue),
            }
            for p in report.performance
        ],
        "dropped": _reasons(report.dropped),
        "undelivered": _reasons(report.undelivered),
    }


# --- routes -------------------------------------------------------------------------------


@router.post(
    "/v1/statistics/campaign-metrics",
    responses=ERRORS,
    openapi_extra=json_body(CampaignMetricsRequest),
    summary="One campaign's numbers over a date range (statistics rate limit)",
)
async def campaign_metrics(request: Request) -> JSONResponse:
    caller, data, window = await _body(request)
    campaign_id = rules.parse_number(
        "campaign_id", data.get("campaign_id"), maximum=MAX_CAMPAIGN_ID
    )
    report = await call_service(
        request,
        service.campaign_report,
        context(request).db,
        caller.partner_id,
        campaign_id,
        window.start,
        window.end,
    )
    if report is None:
        raise CampaignNotFound()
    return JSONResponse(_campaign_metrics(report, window))


@router.post(
    "/v1/statistics/overall-metrics",
    responses=ERRORS,
    openapi_extra=json_body(OverallMetricsRequest),
    summary="The partner's campaigns with their numbers, page by page",
)
async def overall_metrics(request: Request) -> JSONResponse:
    caller, data, window = await _body(request)
    page = rules.parse_number("page", data.get("page"), default=1, maximum=MAX_PAGE)
    per_page = rules.parse_number(
        "per_page", data.get("per_page"), default=10, maximum=MAX_PER_PAGE
    )
    result = await call_service(
        request, service.overall, context(request).db, caller.partner_id, window, page, per_page
    )
    today = datetime.now(UTC).date()
    return JSONResponse(
        {
            "page": result.page,
            "per_page": result.per_page,
            "total": result.total,
            "data": [_overall_row(row, today) for row in result.rows],
        }
    )


@router.post(
    "/v1/statistics/top-metrics",
    responses=ERRORS,
    openapi_extra=json_body(_Range),
    summary="The partner's totals over a date range, per campaign type",
)
async def top_metrics(request: Request) -> JSONResponse:
    caller, _, window = await _body(request)
    report = await call_service(
        request, service.partner_report, context(request).db, caller.partner_id, window
    )
    return JSONResponse(_top_metrics(report))
