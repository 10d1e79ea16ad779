"""The organisation tree (regions, schools, classes): scoped reads and the writes that
import and the demo seed use."""

from __future__ import annotations

from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.roles import Administration, RegionLevel, ScopeKind, administering_region
from backend.accounts.schemas import ClassRead, RegionRead, SchoolRead
from backend.accounts.scope import Scope, get_scoped, scoped
from backend.accounts.tables import Account, Region, School, SchoolClass, SchoolKind
from backend.db import transaction
from backend.errors import BadRequest, Conflict
from backend.pages import MAX_PAGE_SIZE, Page, window


def region_level(code: str) -> RegionLevel:
    if code.endswith("0000"):
        return RegionLevel.province
    if code.endswith("00"):
        return RegionLevel.city
    return RegionLevel.county


def region_read(row: dict[str, Any]) -> RegionRead:
    return RegionRead(row["code"], row["name"], RegionLevel(row["level"]), row["parent_code"])


def school_read(row: dict[str, Any]) -> SchoolRead:
    return SchoolRead(
        row["id"],
        row["code"],
        row["name"],
        row["region_code"],
        Administration(row["administered_by"]),
        administering_region(row["region_code"], Administration(row["administered_by"])),
    )


async def get_region(actor: Actor, scope: Scope, code: str) -> RegionRead:
    row = await get_scoped(actor, scope, Region, Region.code == code, "region", code)
    return region_read(row)


async def list_regions(scope: Scope, parent_code: str | None) -> list[RegionRead]:
    query = scoped(Region.select(), scope, Region).order_by(Region.code)
    if parent_code is not None:
        query = query.where(Region.parent_code == parent_code)
    return [region_read(row) for row in await query.limit(MAX_PAGE_SIZE * 5)]


async def get_school(actor: Actor, scope: Scope, school_id: int) -> SchoolRead:
    row = await get_scoped(actor, scope, School, School.id == school_id, "school", school_id)
    return school_read(row)


async def list_schools(scope: Scope, page: int, page_size: int) -> Page[SchoolRead]:
    w = window(page, page_size)
    rows, total = await w.fetch(
        scoped(School.select(), scope, School).order_by(School.code),
        scoped(School.count(), scope, School),
    )
    return w.page([school_read(r) for r in rows], total)


async def _class_reads(rows: list[dict[str, Any]]) -> list[ClassRead]:
    ids = [row["id"] for row in rows]
    teachers: dict[int, list[str]] = {}
    if ids:
        for t in await Account.select(Account.name, Account.school_class).where(
            Account.school_class.is_in(ids) & (Account.scope_kind == ScopeKind.school_class)
        ):
            teachers.setdefault(t["school_class"], []).append(t["name"])
    return [
        ClassRead(row["id"], row["school"], row["grade"], row["name"], teachers.get(row["id"], []))
        for row in rows
    ]


async def get_class(actor: Actor, scope: Scope, class_id: int) -> ClassRead:
    row = await get_scoped(
        actor, scope, SchoolClass, SchoolClass.id == class_id, "school_class", class_id
    )
    return (await _class_reads([row]))[0]


async def list_classes(
    scope: Scope, school_id: int | None, page: int, page_size: int
) -> Page[ClassRead]:
    query = scoped(SchoolClass.select(), scope, SchoolClass).order_by(
        SchoolClass.school, SchoolClass.grade, SchoolClass.name
    )
    count = scoped(SchoolClass.count(), scope, SchoolClass)
    if school_id is not None:
        query = query.where(SchoolClass.school == school_id)
        count = count.where(SchoolClass.school == school_id)
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    return w.page(await _class_reads(rows), total)


async def create_region(actor: Actor, code: str, name: str) -> None:
    level = region_level(code)
    parent = None
    if level is RegionLevel.city:
        parent = code[:2] + "0000"
    elif level is RegionLevel.county:
        parent = code[:4] + "00"
    async with transaction():
        if await Region.exists().where(Region.code == code):
            raise Conflict("该行政区划代码已存在", code="region_exists")
        if parent and not await Region.exists().where(Region.code == parent):
            # Municipalities list counties directly under the province (e.g. 110105 under
            # 110000, with no 110100 row): climb to the province then.
            parent = code[:2] + "0000"
            if not await Region.exists().where(Region.code == parent):
                raise BadRequest("上级行政区划不存在", code="parent_region_missing")
        await Region.insert(Region(code=code, name=name, level=level, parent_code=parent))
        await audit.record(
            actor, "create", "region", code, after={"name": name, "level": level.value}
        )


async def create_school(
    actor: Actor,
    code: str,
    name: str,
    county_code: str,
    administered_by: Administration = Administration.county,
    kind: SchoolKind = SchoolKind.unknown,
) -> int:
    async with transaction():
        region = await Region.select(Region.level).where(Region.code == county_code).first()
        if region is None or region["level"] != RegionLevel.county:
            raise BadRequest("学校须属于一个县级行政区划", code="county_required")
        if await School.exists().where(School.code == code):
            raise Conflict("该学校标识码已存在", code="school_exists")
        rows = await School.insert(
            School(
                code=code,
                name=name,
                region_code=county_code,
                administered_by=administered_by.value,
                kind=kind.value,
            )
        )
        school_id: int = rows[0]["id"]
        await audit.record(
            actor,
            "create",
            "school",
            school_id,
            after={
                "code": code,
                "name": name,
                "region_code": county_code,
                "administered_by": administered_by.value,
                "kind": kind.value,
            },
        )
        return school_id


async def create_class(actor: Actor, school_id: int, grade: int, name: str) -> int:
    async with transaction():
        school = await School.select(School.region_code).where(School.id == school_id).first()
        if school is None:
            raise BadRequest("学校不存在", code="school_missing")
        rows = await SchoolClass.insert(
            SchoolClass(school=school_id, region_code=school["region_code"], grade=grade, name=name)
        )
        class_id: int = rows[0]["id"]
        await audit.record(
            actor,
            "create",
            "school_class",
            class_id,
            after={"school": school_id, "grade": grade, "name": name},
        )
        return class_id
