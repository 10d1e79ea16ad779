"""What an export reads: for each kind, its columns and its rows within a scope, in batches.

A `Sheet` is the small interface every kind offers the export service: a title, the columns,
`count()` (to decide between building the file at once and queuing a job) and `batches()`
(rows, a batch at a time, keyset-paged by id so a national list never sits in one result).
Every row is already what the file shows: masked by `backend.masking` for the masked kinds,
in full only for `student_records` (which the service allows under a confirmed approval).

Progress tables come from `backend.reports.progress.progress_table` (a node and its children
one level down), checked there as its own API checks them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import Scope, scoped
from backend.accounts.scope_rules import ancestors
from backend.accounts.tables import Region, School, SchoolClass
from backend.db import json_value
from backend.masking import mask_id_number, mask_registry_number, mask_text
from backend.records.catalog import FIELDS
from backend.records.problem_schemas import CASE_STATE_LABEL
from backend.records.problem_tables import OPEN_STATES, CaseKind, CaseSource, CaseState, ProblemCase
from backend.records.problems import KIND_LABEL, refresh
from backend.records.tables import Student, StudentStatus
from backend.reports import progress
from backend.reports.exports_files import Column, Row
from backend.reports.progress_tables import COUNTS

BATCH = 1000


@dataclass(frozen=True, slots=True)
class Sheet:
    title: str
    columns: Sequence[Column]
    count: Callable[[], Awaitable[int]]
    batches: Callable[[], AsyncIterator[list[Row]]]
    note: str = ""
    file_stem: str = "export"  # the file's name before the date and extension (ASCII)


@dataclass(frozen=True, slots=True)
class ProblemFilter:
    kind: CaseKind | None = None
    state: CaseState | None = None
    open_only: bool = False
    school_id: int | None = None


MASKED_NOTE = "身份证件号、学籍号、手机号已按统一规则脱敏"
SOURCE_LABEL = {CaseSource.local: "本系统核验", CaseSource.national: "全国系统下发"}

PROBLEM_COLUMNS = (
    Column("学校", 24),
    Column("班级", 12),
    Column("学生姓名", 12),
    Column("学籍号", 22),
    Column("身份证件号", 22),
    Column("问题类型", 22),
    Column("状态", 10),
    Column("来源", 12),
    Column("问题描述", 36),
    Column("处理期限", 12),
    Column("更新时间", 20),
)


def _problem_row(r: dict[str, Any]) -> Row:
    return (
        r["school_name"],
        r["class_name"],
        r["student_name"],
        mask_registry_number(r["registry_number"]),
        mask_id_number(r["student_id_number"]),
        KIND_LABEL[CaseKind(r["kind"])],
        CASE_STATE_LABEL[CaseState(r["state"])],
        SOURCE_LABEL.get(CaseSource(r["source"]), r["source"]),
        mask_text(r["detail"] or ""),
        r["due_on"],
        r["updated_at"],
    )


def problem_sheet(scope: Scope, by: ProblemFilter) -> Sheet:
    """The problem records (问题学籍) in `scope`, as the list shows them (masked)."""

    def query(select: Any) -> Any:
        q = scoped(select, scope, ProblemCase)
        if by.kind is not None:
            q = q.where(ProblemCase.kind == by.kind.value)
        if by.state is not None:
            q = q.where(ProblemCase.state == by.state.value)
        if by.open_only:
            q = q.where(ProblemCase.state.is_in([s.value for s in OPEN_STATES]))
        if by.school_id is not None:
            q = q.where(ProblemCase.school == by.school_id)
        return q

    async def count() -> int:
        await refresh(scope)  # as the list does: the cases up to date first
        return int(await query(ProblemCase.count()))

    async def batches() -> AsyncIterator[list[Row]]:
        last = 0
        while True:
            rows = (
                await query(
                    ProblemCase.select(
                        ProblemCase.id,
                        ProblemCase.kind,
                        ProblemCase.state,
                        ProblemCase.source,
                        ProblemCase.detail,
                        ProblemCase.due_on,
                        ProblemCase.updated_at,
                        ProblemCase.school.name.as_alias("school_name"),
                        ProblemCase.school_class.name.as_alias("class_name"),
                        ProblemCase.student.name.as_alias("student_name"),
                        ProblemCase.student.registry_number.as_alias("registry_number"),
                        ProblemCase.student.id_number.as_alias("student_id_number"),
                    )
                )
                .where(ProblemCase.id > last)
                .order_by(ProblemCase.id)
                .limit(BATCH)
            )
            if not rows:
                return
            last = rows[-1]["id"]
            yield [_problem_row(r) for r in rows]

    return Sheet("问题学籍名单", PROBLEM_COLUMNS, count, batches, MASKED_NOTE, "problem-records")


RECORD_COLUMNS = (
    Column("学校", 24),
    Column("班级", 12),
    Column("学籍号", 22),
    *(Column(f.label, 16) for f in FIELDS),
)


def _record_row(r: dict[str, Any]) -> Row:
    values = json_value(r["fields"]) or {}
    return (
        r["school_name"],
        r["class_name"],
        r["registry_number"],
        *(f.label_of(values.get(f.code)) for f in FIELDS),
    )


def student_records_sheet(region_code: str, note: str) -> Sheet:
    """Every enrolled student's full record in `region_code`: nothing masked. Only the
    export service calls this, under a confirmed approval covering the region."""
    region = Scope(ScopeKind.region, region_code)

    def query(select: Any) -> Any:
        return scoped(select, region, Student).where(Student.status == StudentStatus.enrolled.value)

    async def count() -> int:
        return int(await query(Student.count()))

    async def batches() -> AsyncIterator[list[Row]]:
        last = 0
        while True:
            rows = (
                await query(
                    Student.select(
                        Student.id,
                        Student.registry_number,
                        Student.fields,
                        Student.school.name.as_alias("school_name"),
                        Student.school_class.name.as_alias("class_name"),
                    )
                )
                .where(Student.id > last)
                .order_by(Student.id)
                .limit(BATCH)
            )
            if not rows:
                return
            last = rows[-1]["id"]
            yield [_record_row(r) for r in rows]

    return Sheet("学生学籍信息", RECORD_COLUMNS, count, batches, note, "student-records")


COUNT_LABEL = {
    "students": "在籍学生",
    "forms_issued": "确认表已下发",
    "paper_returned": "纸质表已回收",
    "photos_uploaded": "照片已上传",
    "photos_matches": "核验一致",
    "photos_differs": "与学籍不一致",
    "photos_corrections_written": "纸面填写更正",
    "photos_unsigned": "未签名",
    "photos_undated": "未填日期",
    "photos_retake": "需重拍",
    "photos_not_this_form": "非本表",
    "photos_record_changed": "学籍已变更",
    "photos_form_superseded": "表已作废",
    "photos_check_failed": "核验失败",
    "photos_checking": "核验中",
    "pending_check": "待核对笔迹",
    "pending_enter": "待录入",
    "pending_approve": "待学校审核",
    "pending_review": "待主管部门审核",
    "pending_arbitrate": "待仲裁",
    "steps_overdue": "超期环节",
    "corrections_entered": "更正已录入",
    "problems_open": "问题学籍未处理",
}
LEVEL_LABEL = {
    "province": "省",
    "city": "市",
    "county": "区县",
    "school": "学校",
    "class": "班级",
}
PROGRESS_NOTE = "仅含统计数字，不含学生个人信息；第一行为所选地区或学校本身，其后为下一级"


@dataclass(frozen=True, slots=True)
class ProgressAsk:
    campaign_id: int
    region_code: str | None = None
    school_id: int | None = None
    class_id: int | None = None


def progress_sheet(principal: Principal, actor: Actor, ask: ProgressAsk) -> Sheet:
    """A node's progress table (the node, then each child one level down) from
    `backend.reports.progress`, checked as its API checks it (403 for a parent, 404 outside
    the scope); counts only, nothing to mask."""
    got: list[list[Row]] = []

    async def rows() -> list[Row]:
        if not got:
            found = await progress.progress_table(
                principal,
                actor,
                ask.campaign_id,
                progress.NodeQuery(ask.region_code, ask.school_id, ask.class_id),
            )
            got.append(
                [
                    (
                        LEVEL_LABEL.get(r["level"], r["level"]),
                        r["name"],
                        r["region_code"],
                        *(int(r.get(c, 0) or 0) for c in COUNTS),
                    )
                    for r in found
                ]
            )
        return got[0]

    async def count() -> int:
        return len(await rows())

    async def batches() -> AsyncIterator[list[Row]]:
        yield await rows()

    columns = (
        Column("层级", 8),
        Column("名称", 24),
        Column("地区代码", 10),
        *(Column(COUNT_LABEL.get(c, c), 12) for c in COUNTS),
    )
    return Sheet("核查进度表", columns, count, batches, PROGRESS_NOTE, "progress")


async def scope_label(scope: Scope) -> str:
    """A scope as people name it: 浙江省杭州市西湖区, …学校A, …A1班, or 全国."""
    if scope.kind is ScopeKind.national:
        return "全国"
    region_code, school_id = scope.region_code, scope.school_id
    school_name = class_name = ""
    if scope.class_id is not None:
        klass = (
            await SchoolClass.select(SchoolClass.name, SchoolClass.school)
            .where(SchoolClass.id == scope.class_id)
            .first()
        )
        if klass is not None:
            class_name, school_id = klass["name"], school_id or klass["school"]
    if school_id is not None:
        school = (
            await School.select(School.name, School.region_code)
            .where(School.id == school_id)
            .first()
        )
        if school is not None:
            school_name, region_code = school["name"], school["region_code"]
    return await region_label(region_code) + school_name + class_name


async def region_label(region_code: str | None) -> str:
    if not region_code:
        return ""
    codes = ancestors(region_code)  # province, city, county: each once, in that order
    names = {
        r["code"]: r["name"]
        for r in await Region.select(Region.code, Region.name).where(Region.code.is_in(codes))
    }
    return "".join(names.get(c, "") for c in codes) or region_code
