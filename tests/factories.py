"""Test data: a small nation of regions, schools, classes and one account per role."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from backend.accounts import org
from backend.accounts.admin import insert_account
from backend.accounts.audit import Actor
from backend.accounts.passwords import hash_password
from backend.accounts.roles import Administration, Role
from backend.config import Settings

PASSWORD = "Ceshi2026mima"
SYSTEM = Actor.system("test")


async def make_account(
    settings: Settings,
    role: Role,
    phone: str,
    *,
    name: str = "测试用户",
    password: str = PASSWORD,
    **scope: Any,
) -> int:
    return await insert_account(
        role,
        phone,
        name,
        await hash_password(settings, password),
        must_change_password=False,
        **scope,
    )


@dataclass
class World:
    """浙江 (杭州: 西湖区 with schools A and A2-less; 滨江区 with B; 宁波 海曙区 with C) and
    江苏 (南京 玄武区 with D). School A has classes A1 and A2; the others one class each."""

    schools: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    accounts: dict[Role, int] = field(default_factory=dict)
    phones: dict[Role, str] = field(default_factory=dict)
    students: list[int] = field(default_factory=list)  # filled by tests that need them
    other_students: list[int] = field(default_factory=list)
    # More accounts by name (`add_direct_schools`): name → (account id, phone)
    staff: dict[str, tuple[int, str]] = field(default_factory=dict)


REGIONS = [
    ("330000", "浙江省"),
    ("330100", "杭州市"),
    ("330106", "西湖区"),
    ("330108", "滨江区"),
    ("330200", "宁波市"),
    ("330203", "海曙区"),
    ("320000", "江苏省"),
    ("320100", "南京市"),
    ("320102", "玄武区"),
]
SCHOOLS = {"A": "330106", "B": "330108", "C": "330203", "D": "320102"}
CLASSES = {"A1": "A", "A2": "A", "B1": "B", "C1": "C", "D1": "D"}


async def build_world(settings: Settings) -> World:
    world = World()
    for code, name in REGIONS:
        await org.create_region(SYSTEM, code, name)
    for i, (key, county) in enumerate(SCHOOLS.items()):
        world.schools[key] = await org.create_school(
            SYSTEM, f"21{county}{i:02d}", f"学校{key}", county
        )
    for key, school in CLASSES.items():
        world.classes[key] = await org.create_class(SYSTEM, world.schools[school], 1, f"{key}班")
    a, a1 = world.schools["A"], world.classes["A1"]
    people: dict[Role, dict[str, Any]] = {
        Role.parent: {},
        Role.teacher: {"region_code": "330106", "school": a, "school_class": a1},
        Role.registrar: {"region_code": "330106", "school": a},
        Role.school_leader: {"region_code": "330106", "school": a},
        Role.county_reviewer: {"region_code": "330106"},
        Role.city_admin: {"region_code": "330100"},
        Role.province_admin: {"region_code": "330000"},
        Role.sysadmin: {},
    }
    for i, (role, scope) in enumerate(people.items()):
        phone = f"1380000{i:04d}"
        world.accounts[role] = await make_account(settings, role, phone, name=role.value, **scope)
        world.phones[role] = phone
    return world


# Schools in 西湖区 that the county does not administer (appendix 2): one run directly by 杭州市
# (市直属, reviewed by the city), one by 浙江省 (省直属, reviewed by the province).
DIRECT_SCHOOLS = {"E": Administration.city, "F": Administration.province}


async def add_direct_schools(world: World, settings: Settings) -> None:
    """Schools E (city-run) and F (province-run) in 330106, each with one class (E1, F1), its
    teacher, registrar and leader (`world.staff["teacher_E1"]`, `["registrar_E"]`,
    `["leader_E"]`, …) and a second county reviewer of 330106 (`["county_reviewer_2"]`)."""
    for i, (key, administration) in enumerate(DIRECT_SCHOOLS.items(), start=len(world.schools)):
        school = await org.create_school(
            SYSTEM, f"21330106{i:02d}", f"学校{key}", "330106", administered_by=administration
        )
        world.schools[key] = school
        klass = await org.create_class(SYSTEM, school, 1, f"{key}1班")
        world.classes[f"{key}1"] = klass
        people: dict[str, tuple[Role, dict[str, Any]]] = {
            f"teacher_{key}1": (
                Role.teacher,
                {"region_code": "330106", "school": school, "school_class": klass},
            ),
            f"registrar_{key}": (Role.registrar, {"region_code": "330106", "school": school}),
            f"leader_{key}": (Role.school_leader, {"region_code": "330106", "school": school}),
        }
        for name, (role, scope) in people.items():
            await _add_staff(world, settings, name, role, **scope)
    await _add_staff(
        world, settings, "county_reviewer_2", Role.county_reviewer, region_code="330106"
    )


async def _add_staff(world: World, settings: Settings, name: str, role: Role, **scope: Any) -> None:
    phone = f"1370000{len(world.staff):04d}"
    world.staff[name] = (await make_account(settings, role, phone, name=name, **scope), phone)


async def login(client: httpx.AsyncClient, phone: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"phone": phone, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def run_jobs(app: Any, settings: Settings, max_jobs: int = -1) -> None:
    """Let a real arq worker drain the real Redis queue (burst mode), on its own pool; with
    `max_jobs`, stop after starting that many (a job a killed worker left locked would
    otherwise hold a burst worker until arq's own timeout frees it).

    It runs no cron jobs: arq enqueues a cron whose time comes while a burst worker polls,
    and with crons every 5 s a burst that lasts a few seconds (a slow machine, a job's short
    retry) kept finding new work and never stopped. A test of a cron calls its job."""
    import os

    from arq import create_pool
    from arq.connections import RedisSettings

    from backend.worker import inline_worker

    pool = await due_only(await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"])))
    resources = dataclasses.replace(app.state.resources, settings=settings)
    worker = inline_worker(
        resources, pool, burst=True, poll_delay=0, max_burst_jobs=max_jobs, cron_jobs=None
    )
    await worker.main()
    await worker.close()  # closes its own pool


DUE_HORIZON_MS = 120_000  # a retry deferred by seconds is waited for; a push to 07:30 is not


async def due_only(pool: Any) -> Any:
    """A burst worker stops when its queue is empty, counting jobs deferred to later too: a
    push waiting for the end of quiet hours (the suite run in a Chinese evening) would keep
    it polling until 07:30. On this pool it counts only the jobs due within two minutes (arq
    scores a queued job by when it may run, in ms): it still waits for a job's short retry,
    and stops with a push deferred to the morning left queued."""
    import time

    async def due(name: str) -> int:
        return int(await pool.zcount(name, 0, int(time.time() * 1000) + DUE_HORIZON_MS))

    pool.zcard = due
    return pool


def job_ctx(app: Any, settings: Settings | None = None, **changes: Any) -> dict[str, Any]:
    """arq's `ctx` as a job on the app's resources sees it (to call a job directly), with
    `settings` or other resources (`storage=...`) changed."""
    if settings is not None:
        changes["settings"] = settings
    resources = dataclasses.replace(app.state.resources, **changes)
    return {**resources.worker_context(), "redis": app.state.arq}


async def make_students(world: World, class_key: str, count: int, start: int = 1) -> list[int]:
    """`count` valid students with two guardians in a class of the world."""
    from datetime import date

    from backend.accounts.tables import SchoolClass
    from backend.db import transaction
    from backend.records.ids import make_resident_id, registry_number_for
    from backend.records.service import RecordIn, write_records

    klass = await SchoolClass.select().where(SchoolClass.id == world.classes[class_key]).first()
    assert klass is not None
    records = []
    for i in range(start, start + count):
        born = date(2018, 1 + i % 12, 1 + i % 28)
        sex = "1" if i % 2 else "2"
        id_number = make_resident_id("330106", born, i, sex)
        fields = {
            "name": f"学生{class_key}{i:02d}",
            "sex": sex,
            "birth_date": born.isoformat(),
            "ethnicity": "01",
            "nationality": "CN",
            "id_type": "1",
            "id_number": id_number,
            "household_address": "浙江省杭州市西湖区文三路1号",
            "current_address": "浙江省杭州市西湖区文三路1号2幢301室",
            "phone": f"1381111{i:04d}",
            "guardian1_name": f"父亲{i:02d}",
            "guardian1_relation": "1",
            "guardian1_phone": f"1392222{i:04d}",
            "guardian2_name": f"母亲{i:02d}",
            "guardian2_relation": "2",
            "guardian2_phone": f"1373333{i:04d}",
        }
        records.append(
            RecordIn(
                registry_number_for("1", id_number, "x", fields["name"], fields["birth_date"]),
                klass["school"],
                klass["id"],
                klass["region_code"],
                fields,
            )
        )
    async with transaction():
        summary = await write_records(SYSTEM, records)
    return summary.student_ids


async def open_campaign(
    region_code: str = "330000",
    *,
    forms_open: bool = True,
    corrections_open: bool = False,
    days: int = 30,
) -> int:
    from datetime import timedelta

    from backend.records.tables import Campaign

    now = datetime.now(UTC)
    rows = await Campaign.insert(
        Campaign(
            region_code=region_code,
            name="2026年秋季学期数据质量核查",
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=days),
            forms_open=forms_open,
            corrections_open=corrections_open,
            created_by=1,
            created_at=now,
        )
    )
    return int(rows[0]["id"])
