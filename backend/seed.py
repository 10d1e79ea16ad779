"""The demo data of the embedded default: one county, two schools, five classes, 120 students
with guardians (realistic names, valid ID numbers, a few problem records of each kind), one
login per role, and the province's check open for the next 90 days (forms may be printed,
corrections entered) so the whole journey can be tried at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.accounts import org
from backend.accounts.admin import insert_account
from backend.accounts.audit import Actor
from backend.accounts.passwords import hash_password
from backend.accounts.roles import ROLE_LABEL, Role
from backend.accounts.tables import Account
from backend.config import Settings
from backend.db import transaction
from backend.demo_students import demo_students
from backend.records.campaign_admin import insert_campaign
from backend.records.campaigns import CHINA_TIME
from backend.records.schemas import CampaignCreate
from backend.records.service import write_records

DEMO_PASSWORD = "Demo2026pass"

REGIONS = [
    ("330000", "浙江省"),
    ("330100", "杭州市"),
    ("330106", "西湖区"),
]
SCHOOLS = [
    (
        "2133010601",
        "杭州市西湖区文新小学",
        [(1, "一年级(1)班"), (1, "一年级(2)班"), (3, "三年级(1)班")],
    ),
    ("2133010602", "杭州市西湖区翠苑中学", [(7, "七年级(1)班"), (8, "八年级(2)班")]),
]


@dataclass(frozen=True)
class DemoLogin:
    role: Role
    name: str
    phone: str
    password: str


async def seed_demo(settings: Settings) -> list[DemoLogin]:
    actor = Actor.system("seed_demo")
    for code, name in REGIONS:
        await org.create_region(actor, code, name)
    school_ids: list[int] = []
    class_ids: list[int] = []
    for code, name, classes in SCHOOLS:
        school_id = await org.create_school(actor, code, name, "330106")
        school_ids.append(school_id)
        for grade, class_name in classes:
            class_ids.append(await org.create_class(actor, school_id, grade, class_name))
    password_hash = await hash_password(settings, DEMO_PASSWORD)
    people: list[tuple[Role, str, str, dict[str, Any]]] = [
        (Role.sysadmin, "系统管理员", "13900000000", {}),
        (Role.province_admin, "钱省管", "13900000001", {"region_code": "330000"}),
        (Role.city_admin, "孙市管", "13900000002", {"region_code": "330100"}),
        (Role.county_reviewer, "李县审", "13900000003", {"region_code": "330106"}),
        (
            Role.school_leader,
            "周校长",
            "13900000004",
            {"region_code": "330106", "school": school_ids[0]},
        ),
        (
            Role.registrar,
            "吴学籍",
            "13900000005",
            {"region_code": "330106", "school": school_ids[0]},
        ),
        (
            Role.teacher,
            "郑老师",
            "13900000006",
            {"region_code": "330106", "school": school_ids[0], "school_class": class_ids[0]},
        ),
        (Role.parent, "王家长", "13900000007", {}),
    ]
    async with transaction():
        ids = {
            role: await insert_account(
                role, phone, name, password_hash, must_change_password=False, **scope
            )
            for role, name, phone, scope in people
        }
        await write_records(actor, demo_students(school_ids, class_ids))
        await insert_campaign(actor, ids[Role.province_admin], demo_campaign(datetime.now(UTC)))
    return [DemoLogin(role, name, phone, DEMO_PASSWORD) for role, name, phone, _ in people]


def demo_campaign(now: datetime) -> CampaignCreate:
    """The province's check, from the start of today (China time) for 90 days."""
    today = now.astimezone(CHINA_TIME).replace(hour=0, minute=0, second=0, microsecond=0)
    return CampaignCreate(
        region_code=REGIONS[0][0],
        name=f"{today.year}年数据质量核查（演示）",
        starts_at=today,
        ends_at=today + timedelta(days=90),
        forms_open=True,
        corrections_open=True,
    )


async def seed_if_empty(settings: Settings) -> list[DemoLogin]:
    if await Account.exists():
        return []
    return await seed_demo(settings)


def format_logins(logins: list[DemoLogin]) -> str:
    lines = ["Demo logins (phone / password):"]
    for login in logins:
        lines.append(
            f"  {login.role.value:<16} {ROLE_LABEL[login.role]:<10} "
            f"{login.phone} / {login.password}"
        )
    return "\n".join(lines)
