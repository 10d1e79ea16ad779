"""Campaigns: when and where the data-quality check is open, and which of its two functions.

Notice 001 (appendix 2, the province's items 3–4) gives the province the time window and the
two switches, set per sub-region. So a campaign belongs to a province and covers it (or one
region of it); its own window and switches hold everywhere inside unless a level below
narrows them with a `CampaignSetting`: the province for any city or county, a city for its
counties, inside what the province allows. Nothing below widens anything: what applies to a
county is the campaign's window and switches narrowed by every setting on its chain
(`effective`). Outside the effective window, or with the switch off, the matching endpoints
refuse with `outside_window`. The staff side (open, change, close, delete, settings) is in
`records.campaign_admin`; docs/campaigns.md tells the whole model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from backend.accounts.scope_rules import ancestors
from backend.errors import OutsideWindow
from backend.records.tables import Campaign, CampaignSetting

CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")


class Switch(StrEnum):
    forms = "forms_open"
    corrections = "corrections_open"


SWITCH_LABEL = {Switch.forms: "打印确认表", Switch.corrections: "录入更正信息"}
SWITCH_CLOSED = {switch: f"当前核查工作未开放{label}" for switch, label in SWITCH_LABEL.items()}


def china_date(moment: datetime) -> str:
    """2026年9月1日, with the time of day when it is not midnight (China time)."""
    local = moment.astimezone(CHINA_TIME)
    text = f"{local.year}年{local.month}月{local.day}日"
    return text if (local.hour, local.minute) == (0, 0) else f"{text} {local:%H:%M}"


def _narrows(value: Any) -> bool:
    """A stored switch value that turns the switch off (None leaves the level above's)."""
    return value is not None and not value


@dataclass(frozen=True, slots=True)
class Window:
    """A time window [starts_at, ends_at) and the two switches."""

    starts_at: datetime
    ends_at: datetime
    forms_open: bool
    corrections_open: bool

    @classmethod
    def of(cls, campaign: Mapping[str, Any]) -> Window:
        return cls(
            campaign["starts_at"],
            campaign["ends_at"],
            bool(campaign["forms_open"]),
            bool(campaign["corrections_open"]),
        )

    def narrowed(self, setting: Mapping[str, Any]) -> Window:
        starts, ends = setting["starts_at"], setting["ends_at"]
        return Window(
            max(self.starts_at, starts) if starts is not None else self.starts_at,
            min(self.ends_at, ends) if ends is not None else self.ends_at,
            self.forms_open and not _narrows(setting["forms_open"]),
            self.corrections_open and not _narrows(setting["corrections_open"]),
        )

    def open_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def switch(self, switch: Switch) -> bool:
        return bool(getattr(self, switch.value))


def effective(
    campaign: Mapping[str, Any], settings: Iterable[Mapping[str, Any]], region_code: str
) -> Window:
    """What applies to `region_code`: the campaign's window and switches narrowed by every
    setting of the region and of the regions above it, whoever wrote it."""
    window = Window.of(campaign)
    chain = set(ancestors(region_code))
    for setting in settings:
        if setting["region_code"] in chain:
            window = window.narrowed(setting)
    return window


# A city's word on a county counts below the province's on the same county.
_LEVEL_RANK = {"city": 1, "province": 2}


def allowance(
    campaign: Mapping[str, Any],
    settings: Iterable[Mapping[str, Any]],
    region_code: str,
    level: str,
) -> Window:
    """The most that `level` (province or city) may set for `region_code`: what the regions
    above allow, narrowed by what a higher level already set for this region itself."""
    above = [
        s
        for s in settings
        if s["region_code"] != region_code or _LEVEL_RANK[s["set_by"]] > _LEVEL_RANK[level]
    ]
    return effective(campaign, above, region_code)


async def active_campaign(region_code: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The campaign open now for the region, as its row with the window and switches that
    apply to the region (`effective`) in place of the campaign's own; None when there is none.
    Were two to cover the region (made before overlaps were refused), the most specific wins."""
    now = now or datetime.now(UTC)
    chain = ancestors(region_code)
    campaigns = (
        await Campaign.select()
        .where(
            Campaign.region_code.is_in(chain)
            & (Campaign.starts_at <= now)
            & (Campaign.ends_at > now)
        )
        .order_by(Campaign.region_code, ascending=False)
        .order_by(Campaign.id, ascending=False)
    )
    if not campaigns:
        return None
    settings = await CampaignSetting.select(
        CampaignSetting.campaign,
        CampaignSetting.region_code,
        CampaignSetting.starts_at,
        CampaignSetting.ends_at,
        CampaignSetting.forms_open,
        CampaignSetting.corrections_open,
    ).where(
        CampaignSetting.campaign.is_in([c["id"] for c in campaigns])
        & CampaignSetting.region_code.is_in(chain)
    )
    for campaign in campaigns:
        mine = [s for s in settings if s["campaign"] == campaign["id"]]
        window = effective(campaign, mine, region_code)
        if window.open_at(now):
            return {
                **campaign,
                "starts_at": window.starts_at,
                "ends_at": window.ends_at,
                "forms_open": window.forms_open,
                "corrections_open": window.corrections_open,
            }
    return None


async def require_open(region_code: str, switch: Switch) -> dict[str, Any]:
    campaign = await active_campaign(region_code)
    if campaign is None:
        raise OutsideWindow("当前不在数据质量核查工作时间内")
    if not campaign[switch.value]:
        raise OutsideWindow(SWITCH_CLOSED[switch])
    return campaign
