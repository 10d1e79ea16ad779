"""回收: the class teacher (or the school's registrar) ticks off each family whose signed paper
form came back to school, and can take the tick back. The tick is on the issued form, live
forms only (a superseded one was replaced by a newer printing, on which the family signs
again); each change is one conditional UPDATE and its audit row, in one transaction.

Ticking twice, or taking back a tick that is not there, changes nothing and answers the form
as it stands (a teacher tapping twice on a slow phone is not an error)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped, scoped
from backend.accounts.tables import SchoolClass
from backend.db import transaction
from backend.errors import Conflict
from backend.records.holds import on_roll
from backend.records.tables import Campaign, IssuedForm, Student

SUPERSEDED = Conflict(
    "这张确认表已被重新打印的新表取代，请在新表上登记回收", code="form_superseded"
)


@dataclass(frozen=True, slots=True)
class PaperReturn:
    form_id: str
    campaign_id: int
    student_id: int
    class_id: int
    returned_at: datetime | None
    returned_by: int | None


def _read(row: dict[str, Any]) -> PaperReturn:
    return PaperReturn(
        row["form_id"],
        row["campaign"],
        row["student"],
        row["school_class"],
        row["paper_returned_at"],
        row["paper_returned_by"],
    )


async def set_returned(
    principal: Principal, actor: Actor, form_id: str, returned: bool
) -> PaperReturn:
    """Tick (`returned`) or untick one live form in the caller's scope: 403 for anyone but the
    class's teacher and the school's registrar, 404 outside the scope (audited), 409
    `form_superseded` for a form printed again since."""
    require(principal, Action.tick_paper_return)
    where = IssuedForm.form_id == form_id
    row = await get_scoped(actor, principal.scope, IssuedForm, where, "issued_form", form_id)
    if row["superseded_at"] is not None:
        raise SUPERSEDED
    now = datetime.now(UTC)
    async with transaction():
        if returned:
            values: dict[Any, Any] = {
                IssuedForm.paper_returned_at: now,
                IssuedForm.paper_returned_by: principal.account_id,
            }
            state = IssuedForm.paper_returned_at.is_null()
        else:
            values = {IssuedForm.paper_returned_at: None, IssuedForm.paper_returned_by: None}
            state = IssuedForm.paper_returned_at.is_not_null()
        changed = await (
            IssuedForm.update(values)
            .where((IssuedForm.id == row["id"]) & IssuedForm.superseded_at.is_null() & state)
            .returning(IssuedForm.id)
        )
        if changed:
            await audit.record(
                actor,
                "paper_returned" if returned else "paper_return_cleared",
                "issued_form",
                row["id"],
                before={"paper_returned_at": row["paper_returned_at"]},
                after={"paper_returned_at": now if returned else None},
            )
    fresh = await IssuedForm.select().where(IssuedForm.id == row["id"]).first()
    assert fresh is not None
    if fresh["superseded_at"] is not None:
        raise SUPERSEDED  # printed again between the read and the write
    return _read(fresh)


@dataclass(frozen=True, slots=True)
class ClassForm:
    student_id: int
    name: str
    form: PaperReturn | None  # None: no live form of the campaign printed for the child


async def class_returns(
    principal: Principal,
    actor: Actor,
    campaign_id: int,
    class_id: int,
    limit: int,
    offset: int,
) -> tuple[list[ClassForm], int]:
    """The enrolled children of a class in the caller's scope, by name, each with its live
    form of the campaign and whether the paper came back (the teacher's checklist); a child in
    the middle of a status change (`records.holds`) is not on it. A campaign
    or class outside the scope answers 404 (audited), not an empty checklist."""
    require(principal, Action.tick_paper_return)
    # the campaign and the class must lie in scope (404 otherwise, audited)
    await get_scoped(
        actor, principal.scope, Campaign, Campaign.id == campaign_id, "campaign", campaign_id
    )
    await get_scoped(
        actor, principal.scope, SchoolClass, SchoolClass.id == class_id, "school_class", class_id
    )
    students = scoped(
        Student.select(Student.id, Student.name).where(
            (Student.school_class == class_id) & on_roll()
        ),
        principal.scope,
        Student,
    )
    count = scoped(
        Student.count().where((Student.school_class == class_id) & on_roll()),
        principal.scope,
        Student,
    )
    rows = await students.order_by(Student.name).order_by(Student.id).limit(limit).offset(offset)
    total = int(await count)
    ids = [r["id"] for r in rows] or [0]
    forms = {
        f["student"]: _read(f)
        for f in await IssuedForm.select().where(
            IssuedForm.student.is_in(ids)
            & (IssuedForm.campaign == campaign_id)
            & IssuedForm.superseded_at.is_null()
        )
    }
    return [ClassForm(r["id"], r["name"], forms.get(r["id"])) for r in rows], total
