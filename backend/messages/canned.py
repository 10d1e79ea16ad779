"""A school's canned answers: the common questions' answers its registrars write once, which
the class teacher or a registrar picks when answering a parent (`service.answer`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped
from backend.accounts.tables import School
from backend.db import transaction
from backend.errors import Forbidden
from backend.messages.schemas import CannedAnswerRead
from backend.messages.tables import CannedAnswer
from backend.pages import Page, window


class SchoolStaffOnly(Forbidden):
    code = "school_staff_only"
    message = "常见问题答复属于学校，只有学校的班主任和学籍管理员可以查看"


def _read(row: dict[str, Any]) -> CannedAnswerRead:
    return CannedAnswerRead(row["id"], row["title"], row["body"], row["updated_at"])


def _school_of(principal: Principal) -> int:
    if principal.scope.school_id is None:
        raise SchoolStaffOnly()
    return principal.scope.school_id


async def list_answers(
    principal: Principal, *, page: int, page_size: int
) -> Page[CannedAnswerRead]:
    """The caller's school's canned answers, by title."""
    require(principal, Action.answer_thread)
    school = _school_of(principal)
    w = window(page, page_size)
    where = CannedAnswer.school == school
    rows, total = await w.fetch(
        CannedAnswer.select().where(where).order_by(CannedAnswer.title).order_by(CannedAnswer.id),
        CannedAnswer.count().where(where),
    )
    return w.page([_read(r) for r in rows], total)


async def create(principal: Principal, actor: Actor, *, title: str, body: str) -> CannedAnswerRead:
    require(principal, Action.manage_canned_answers)
    school = _school_of(principal)
    region = await School.select(School.region_code).where(School.id == school).first()
    assert region is not None
    now = datetime.now(UTC)
    async with transaction():
        row = (
            await CannedAnswer.insert(
                CannedAnswer(
                    school=school,
                    region_code=region["region_code"],
                    title=title.strip(),
                    body=body.strip(),
                    updated_by=principal.account_id,
                    updated_at=now,
                )
            ).returning(*CannedAnswer.all_columns())
        )[0]
        await audit.record(actor, "create", "canned_answer", row["id"])
    return _read(row)


async def _own(principal: Principal, actor: Actor, answer_id: int) -> dict[str, Any]:
    require(principal, Action.manage_canned_answers)
    return await get_scoped(
        actor,
        principal.scope,
        CannedAnswer,
        CannedAnswer.id == answer_id,
        "canned_answer",
        answer_id,
    )


async def update(
    principal: Principal, actor: Actor, answer_id: int, *, title: str, body: str
) -> CannedAnswerRead:
    await _own(principal, actor, answer_id)
    async with transaction():
        row = (
            await CannedAnswer.update(
                {
                    CannedAnswer.title: title.strip(),
                    CannedAnswer.body: body.strip(),
                    CannedAnswer.updated_by: principal.account_id,
                    CannedAnswer.updated_at: datetime.now(UTC),
                }
            )
            .where(CannedAnswer.id == answer_id)
            .returning(*CannedAnswer.all_columns())
        )[0]
        await audit.record(actor, "update", "canned_answer", answer_id)
    return _read(row)


async def delete(principal: Principal, actor: Actor, answer_id: int) -> None:
    await _own(principal, actor, answer_id)
    async with transaction():
        await CannedAnswer.delete().where(CannedAnswer.id == answer_id)
        await audit.record(actor, "delete", "canned_answer", answer_id)
