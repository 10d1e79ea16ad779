"""The world of the transfer tests: the shared factories' schools (A, A2-less 西湖区; B 滨江区;
C 宁波 海曙区; D 江苏 玄武区) plus school G (西湖区, county-run, like A) with class G1, a
grade-2 class A3 in A, and at each school a registrar, at each county a reviewer (a second
one in 西湖区), by name in `world.staff`: `registrar_B`, `county_330108`, `county_330106_2` …
School A's own staff are the factories' accounts by role."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from backend.accounts import org
from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.service import load_fields
from backend.records.tables import GuardianLink, Student
from backend.transfers.documents import Document
from tests.factories import SYSTEM, World, bearer, build_world, login, make_account, make_students

COUNTIES = {"B": "330108", "C": "330203", "D": "320102", "G": "330106"}


async def transfer_world(settings: Settings) -> World:
    world = await build_world(settings)
    world.schools["G"] = await org.create_school(SYSTEM, "2133010609", "学校G", "330106")
    world.classes["G1"] = await org.create_class(SYSTEM, world.schools["G"], 1, "G1班")
    world.classes["A3"] = await org.create_class(SYSTEM, world.schools["A"], 2, "A3班")
    phone = 13600000000
    for key, county in COUNTIES.items():
        phone += 1
        account = await make_account(
            settings,
            Role.registrar,
            str(phone),
            name=f"registrar_{key}",
            region_code=county,
            school=world.schools[key],
        )
        world.staff[f"registrar_{key}"] = (account, str(phone))
    for county in ("330108", "330203", "320102", "330106_2"):
        phone += 1
        account = await make_account(
            settings,
            Role.county_reviewer,
            str(phone),
            name=f"county_{county}",
            region_code=county[:6],
        )
        world.staff[f"county_{county}"] = (account, str(phone))
    world.students = await make_students(world, "A1", 3)
    world.other_students = await make_students(world, "A3", 1, start=20)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    return world


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def as_staff(client: httpx.AsyncClient, world: World, name: str) -> dict[str, str]:
    return bearer(await login(client, world.staff[name][1]))


async def student(student_id: int) -> dict[str, Any]:
    row = await Student.select().where(Student.id == student_id).first()
    assert row is not None
    return dict(row)


async def special_education(student_id: int, disability: str = "4") -> None:
    """The record names a disability (残疾类型 4, 肢体残疾): a special-education student."""
    fields = load_fields((await student(student_id))["fields"])
    await Student.update({Student.fields: {**fields, "disability": disability}}).where(
        Student.id == student_id
    )


async def start_transfer(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    student_id: int,
    class_id: int,
    reason: str = "随父母工作调动迁居",
) -> httpx.Response:
    row = await student(student_id)
    return await client.post(
        "/status-changes/transfers",
        json={
            "registry_number": row["registry_number"],
            "student_name": row["name"],
            "to_class_id": class_id,
            "reason": reason,
            "documents_checked": [d.value for d in Document],
        },
        headers=headers,
    )


async def read(client: httpx.AsyncClient, headers: dict[str, str], change_id: int) -> Any:
    response = await client.get(f"/status-changes/{change_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def decide(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    step_id: int,
    decision: str = "approve",
    reason: str = "",
) -> httpx.Response:
    return await client.post(
        f"/review-steps/{step_id}/decision",
        json={"decision": decision, "reason": reason},
        headers=headers,
    )
