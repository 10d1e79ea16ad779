"""The campaign's closing reminders in the daily run (`backend/notify/schedule.py`), from
`DUE_SOON_DAYS` working days before the window that applies to a county closes (its last
day counted, `records.campaigns.effective`):

- to the confirmed guardians of each enrolled child there whose form is not verified yet (no
  photo of this campaign checked `matches` or `corrections_written`): one notice per guardian
  and campaign, however many children (`campaign_closing`, subject: the campaign);
- to each class teacher there with families who have not uploaded at all: 「本班还有 N 户家庭
  未上传确认表」 (`upload_nudge`, subject: the class, whose page lists them).

A child in the middle of a status change (`records.holds`: no form printed, checked once it
is done) is nobody's reminder. Each once per campaign and person (a window narrowed later
tells no one twice). Per campaign: one statement for the counties, one for the guardians,
one for the classes, one for the teachers, one `notify` for all the guardians and one per
class.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope_rules import region_contains
from backend.accounts.tables import AccountStatus
from backend.db import fetch_rows, transaction
from backend.notify import schedule
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.notify.schedule import Due, Run, due_state
from backend.parents.tables import ServerVerdict
from backend.records.campaigns import effective
from backend.records.reminders import SeatOf, seat_holders, send_each
from backend.records.tables import Campaign, CampaignSetting, LinkStatus, StudentStatus
from backend.workdays import CHINA

# A family whose photo was checked so has done its part (corrections go on with the school).
VERIFIED = (ServerVerdict.matches.value, ServerVerdict.corrections_written.value)


def last_day(ends_at: datetime) -> Any:
    """The last China day inside a window that ends (exclusive) at `ends_at`."""
    return (ends_at - timedelta(microseconds=1)).astimezone(CHINA).date()


async def closing_counties(run: Run) -> dict[int, list[str]]:
    """For each campaign open now: its counties whose window closes soon."""
    campaigns = await Campaign.select().where(
        (Campaign.starts_at <= run.now) & (Campaign.ends_at > run.now)
    )
    if not campaigns:
        return {}
    settings = await CampaignSetting.select().where(
        CampaignSetting.campaign.is_in([c["id"] for c in campaigns])
    )
    counties = [
        row["region_code"] for row in await fetch_rows("SELECT DISTINCT region_code FROM school")
    ]
    closing: dict[int, list[str]] = {}
    for campaign in campaigns:
        mine = [s for s in settings if s["campaign"] == campaign["id"]]
        for county in counties:
            if not region_contains(campaign["region_code"], county):
                continue
            window = effective(campaign, mine, county)
            if (
                window.open_at(run.now)
                and due_state(last_day(window.ends_at), run.today) is Due.due_soon
            ):
                closing.setdefault(campaign["id"], []).append(county)
    return closing


def _in(column: str, values: list[Any]) -> tuple[str, list[Any]]:
    return f"{column} IN ({', '.join('{}' for _ in values)})", list(values)


async def campaign_closing(run: Run) -> int:
    """The guardians of children whose form is not verified, once per campaign."""
    written = 0
    for campaign_id, counties in sorted((await closing_counties(run)).items()):
        where, args = _in("s.region_code", counties)
        rows = await fetch_rows(
            f"""
            SELECT DISTINCT g.account FROM guardian_link g
            JOIN student s ON s.id = g.student
            JOIN account a ON a.id = g.account
            WHERE g.status = {{}} AND a.status = {{}} AND s.status = {{}}
              AND s.open_change IS NULL AND {where}
              AND NOT EXISTS (SELECT 1 FROM upload u WHERE u.student = s.id
                              AND u.campaign = {{}} AND u.status IN ({{}}, {{}}))
            """,
            LinkStatus.confirmed.value,
            AccountStatus.active.value,
            StudentStatus.enrolled.value,
            *args,
            campaign_id,
            *VERIFIED,
        )
        note = Note(
            Category.campaign_closing,
            "学籍信息核查即将截止",
            "孩子的确认表还未核对通过，请尽快签字拍照上传",
            subject=("campaign", campaign_id),
            once=f"campaign_closing:campaign:{campaign_id}",
        )
        async with transaction():
            written += len(
                await notify(run.outbox, [row["account"] for row in rows], note, now=run.now)
            )
    return written


async def upload_nudge(run: Run) -> int:
    """Each class teacher with families who have not uploaded, once per campaign."""
    written = 0
    for campaign_id, counties in sorted((await closing_counties(run)).items()):
        where, args = _in("s.region_code", counties)
        rows = await fetch_rows(
            f"""
            SELECT s.school_class, COUNT(*) AS families FROM student s
            WHERE s.status = {{}} AND s.open_change IS NULL AND {where}
              AND NOT EXISTS (SELECT 1 FROM upload u WHERE u.student = s.id
                              AND u.campaign = {{}})
            GROUP BY s.school_class
            ORDER BY s.school_class
            """,
            StudentStatus.enrolled.value,
            *args,
            campaign_id,
        )
        seats = {
            row["school_class"]: SeatOf(
                Role.teacher.value, ScopeKind.school_class, row["school_class"]
            )
            for row in rows
        }
        teachers = await seat_holders(seats.values())
        notes = [
            (
                teachers[seats[row["school_class"]]],
                Note(
                    Category.upload_nudge,
                    f"本班还有 {row['families']} 户家庭未上传确认表",
                    "核查即将截止，请提醒家长签字拍照上传",
                    subject=("class", row["school_class"]),
                    once=f"upload_nudge:campaign:{campaign_id}:class:{row['school_class']}",
                ),
            )
            for row in rows
            if seats[row["school_class"]] in teachers
        ]
        written += await send_each(run, notes)
    return written


schedule.daily("campaign_closing", campaign_closing)
schedule.daily("upload_nudge", upload_nudge)
