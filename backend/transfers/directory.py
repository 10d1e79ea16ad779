"""The school directory a parent searches to find the school to apply to (`to_school_id`):
by region (a province's, city's or county's code: every school under it) and/or a fragment of
the name. Schools are public institutions; the directory shows what is on their gate (name,
where, what kind of school, who runs it) and nothing of their students or staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import Administration
from backend.accounts.scope_rules import ancestors, region_prefix
from backend.accounts.tables import SCHOOL_KIND_LABEL, Region, School, SchoolKind
from backend.errors import BadRequest
from backend.pages import Page, window

MIN_FRAGMENT = 2  # one character matches half the schools of a province: not a search
KINDS = frozenset(k.value for k in SchoolKind)
LIKE_ESCAPE = str.maketrans({"%": r"\%", "_": r"\_", "\\": r"\\"})
ADMINISTRATION_LABEL = {
    Administration.county: "县（区）属",
    Administration.city: "市直属",
    Administration.province: "省直属",
}


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    school_id: int
    name: str
    region_code: str
    region_name: str  # 浙江省 杭州市 西湖区
    kind: SchoolKind
    kind_label: str
    administered_by: Administration
    administered_by_label: str


class SearchTooBroad(BadRequest):
    code = "search_too_broad"
    message = "请选择地区，或输入学校名称中至少两个字"


async def _region_names(codes: set[str]) -> dict[str, str]:
    wanted = sorted({a for code in codes for a in ancestors(code)})
    if not wanted:
        return {}
    rows = await Region.select(Region.code, Region.name).where(Region.code.is_in(wanted))
    names = {row["code"]: row["name"] for row in rows}
    return {
        code: " ".join(names[a] for a in ancestors(code) if a in names) or code for code in codes
    }


async def search(
    principal: Principal,
    *,
    region_code: str | None,
    name: str | None,
    page: int,
    page_size: int,
) -> Page[DirectoryEntry]:
    """Schools by region and/or name fragment, by region then name; at least one of them."""
    require(principal, Action.search_school_directory)
    fragment = (name or "").strip()
    if fragment and len(fragment) < MIN_FRAGMENT:
        raise BadRequest(
            f"学校名称请至少输入 {MIN_FRAGMENT} 个字",
            code="name_too_short",
            field_errors={"name": f"请至少输入 {MIN_FRAGMENT} 个字"},
        )
    if region_code is None and not fragment:
        raise SearchTooBroad()
    where: list[Any] = []
    if region_code is not None:
        prefix = region_prefix(region_code)
        where.append(School.region_code >= prefix.ljust(6, "0"))
        where.append(School.region_code <= prefix.ljust(6, "9"))
    if fragment:
        where.append(School.name.like(f"%{fragment.translate(LIKE_ESCAPE)}%"))
    query = School.select(
        School.id, School.name, School.region_code, School.kind, School.administered_by
    ).order_by(School.region_code, School.name, School.id)
    count = School.count()
    for clause in where:
        query = query.where(clause)
        count = count.where(clause)
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    names = await _region_names({row["region_code"] for row in rows})
    items = []
    for row in rows:
        kind = SchoolKind(row["kind"]) if row["kind"] in KINDS else SchoolKind.unknown
        administration = Administration(row["administered_by"])
        items.append(
            DirectoryEntry(
                school_id=row["id"],
                name=row["name"],
                region_code=row["region_code"],
                region_name=names.get(row["region_code"], row["region_code"]),
                kind=kind,
                kind_label=SCHOOL_KIND_LABEL[kind],
                administered_by=administration,
                administered_by_label=ADMINISTRATION_LABEL[administration],
            )
        )
    return w.page(items, total)
