"""Who may repeat a grade (留级 / 降级).

In compulsory education (grades 1–9: primary and junior) a repeat is for special-education
students only (第十四条: 适度放开特殊教育学生学籍变动权限，情况特殊的可以允许其降级就读): a
student whose record names a disability (`残疾类型` other than 无残疾), or any student of a
special-education school (`SchoolKind.special`). An ordinary student is refused
(`repeat_not_allowed`). In senior high (grades 10–12) the province's rule applies
(`RepeatRule`); a province that set none allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require_over
from backend.accounts.principal import Principal
from backend.accounts.tables import Region, SchoolKind
from backend.db import transaction
from backend.errors import BadRequest, NotFound
from backend.records.controls import NotAProvince, check_readable
from backend.records.service import load_fields
from backend.records.tables import Student
from backend.transfers.documents import province_of
from backend.transfers.tables import RepeatRule

LAST_COMPULSORY_GRADE = 9  # 初中三年级
NO_DISABILITY = frozenset({"", "0"})  # 残疾类型 unset, or 无残疾


class SeniorRule(StrEnum):
    allowed = "allowed"  # any student of senior high may repeat
    special_only = "special_only"  # as in compulsory education: special education only


SENIOR_RULE_LABEL = {
    SeniorRule.allowed: "高中阶段学生可以留级",
    SeniorRule.special_only: "高中阶段仅特殊教育学生可以降级就读",
}
DEFAULT_SENIOR_RULE = SeniorRule.allowed


class RepeatNotAllowed(BadRequest):
    code = "repeat_not_allowed"
    message = "义务教育阶段不实行留级；仅特殊教育学生（残疾学生或特殊教育学校学生）可申请降级就读"


@dataclass(frozen=True, slots=True)
class ProvinceRepeatRule:
    province_code: str
    senior_high: SeniorRule
    set_by_province: bool


async def senior_rule(province_code: str) -> ProvinceRepeatRule:
    row = (
        await RepeatRule.select(RepeatRule.senior_high)
        .where(RepeatRule.province_code == province_code)
        .first()
    )
    if row is None:
        return ProvinceRepeatRule(province_code, DEFAULT_SENIOR_RULE, False)
    return ProvinceRepeatRule(province_code, SeniorRule(row["senior_high"]), True)


def is_special_education(fields: Any, school_kind: str) -> bool:
    disability = str(load_fields(fields).get("disability") or "")
    return school_kind == SchoolKind.special.value or disability not in NO_DISABILITY


async def check_repeat(student_id: int) -> None:
    """Refuse a repeat the rules above do not allow (400 `repeat_not_allowed`)."""
    row = (
        await Student.select(
            Student.fields,
            Student.region_code,
            Student.school_class.grade.as_alias("grade"),
            Student.school.kind.as_alias("school_kind"),
        )
        .where(Student.id == student_id)
        .first()
    )
    if row is None:
        raise NotFound()
    if is_special_education(row["fields"], row["school_kind"]):
        return
    if row["grade"] <= LAST_COMPULSORY_GRADE:
        raise RepeatNotAllowed(field_errors={"kind": RepeatNotAllowed.message})
    rule = await senior_rule(province_of(row["region_code"]))
    if rule.senior_high is SeniorRule.special_only:
        raise RepeatNotAllowed(
            "本省高中阶段仅特殊教育学生可申请降级就读",
            field_errors={"kind": "本省高中阶段仅特殊教育学生可申请降级就读"},
        )


async def read(principal: Principal, province_code: str) -> ProvinceRepeatRule:
    if not province_code.endswith("0000"):
        raise NotAProvince()
    check_readable(principal, province_code)
    return await senior_rule(province_code)


async def set_rule(
    principal: Principal, actor: Actor, province_code: str, senior_high: SeniorRule
) -> ProvinceRepeatRule:
    """Set the province's senior-high rule; the default removes its row. Audited."""
    if not province_code.endswith("0000"):
        raise NotAProvince()
    require_over(principal, Action.set_change_rules, province_code)
    if not await Region.exists().where(Region.code == province_code):
        raise NotFound()
    now = datetime.now(UTC)
    async with transaction():
        before = await senior_rule(province_code)
        if senior_high is DEFAULT_SENIOR_RULE:
            await RepeatRule.delete().where(RepeatRule.province_code == province_code)
        else:
            await RepeatRule.insert(
                RepeatRule(
                    province_code=province_code,
                    senior_high=senior_high.value,
                    updated_by=principal.account_id,
                    updated_at=now,
                )
            ).on_conflict(
                target=RepeatRule.province_code,
                action="DO UPDATE",
                values=[RepeatRule.senior_high, RepeatRule.updated_by, RepeatRule.updated_at],
            )
        await audit.record(
            actor,
            "set_repeat_rule",
            "repeat_rule",
            province_code,
            before={"senior_high": before.senior_high.value},
            after={"senior_high": senior_high.value},
        )
    return ProvinceRepeatRule(province_code, senior_high, senior_high is not DEFAULT_SENIOR_RULE)
