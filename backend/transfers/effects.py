"""What a decision on a status change's step means, inside the decision's transaction
(`records.reviews.handle`), and who is told (`reviews.tell_on_decision`).

- Approving the first step of a change that names a class (a transfer, a skip, a repeat)
  needs the class chosen (`service.choose_class`).
- Approving the last step applies the change (`EFFECTS`, one function per kind), clears the
  record's `open_change` and completes the change, with its audit row: the change, the
  record's move or status and the decision commit together or not at all.
- A refusal ends the change with its reason and frees the record; a send-back returns it to
  whoever applied, the record still held, for them to amend and resubmit.

The child's confirmed guardians are told of every decision (`change_decided`); the push says
what happened, never a name, an ID number or the reviewer's reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.errors import BadRequest, Conflict, NotFound
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.outbox import Outbox
from backend.records.moves import move_student
from backend.records.notices import guardians_of
from backend.records.review_tables import StepState, SubjectKind
from backend.records.reviews import handle, tell_on_decision
from backend.records.tables import STUDENT_STATUS, Student, StudentStatus
from backend.transfers.service import FIRST_STEPS, WITH_CLASS, release
from backend.transfers.tables import CHANGE_STATE, ChangeKind, ChangeState, StatusChange

KIND_LABEL: dict[ChangeKind, str] = {
    ChangeKind.transfer: "转学",
    ChangeKind.suspend: "休学",
    ChangeKind.resume: "复学",
    ChangeKind.leave: "离校",
    ChangeKind.skip: "跳级",
    ChangeKind.repeat: "留级",
    ChangeKind.abroad: "境外就读",
    ChangeKind.cancel: "注销学籍",
}


class ClassRequired(BadRequest):
    code = "target_class_required"
    message = "请先选择学生转入的班级，再通过这一步"


class RecordChangedSince(Conflict):
    code = "record_status_changed"
    message = "该学生的学籍状态在申请后已经改变，请不通过并按现状重新办理"


async def _change(change_id: int) -> dict[str, Any]:
    row = await StatusChange.select().where(StatusChange.id == change_id).first()
    if row is None:
        raise NotFound("学籍异动不存在", code="status_change_not_found")
    return dict(row)


async def _move(actor: Actor, change: dict[str, Any]) -> None:
    if change["to_class"] is None:
        raise ClassRequired()
    student = await Student.select(Student.status).where(Student.id == change["student"]).first()
    if student is None or student["status"] != StudentStatus.enrolled.value:
        raise RecordChangedSince()
    await move_student(actor, change["student"], change["to_class"], for_change=change["id"])


def _status(to: StudentStatus) -> Callable[[Actor, dict[str, Any]], Awaitable[None]]:
    async def apply(actor: Actor, change: dict[str, Any]) -> None:
        row = await Student.select(Student.status).where(Student.id == change["student"]).first()
        if row is None:
            raise NotFound("学生不存在", code="student_not_found")
        before = StudentStatus(row["status"])
        if not STUDENT_STATUS.allows(before, to) or not await STUDENT_STATUS.move(
            change["student"], to, sources={before}
        ):
            raise RecordChangedSince()
        await audit.record(
            actor,
            "status",
            "student",
            change["student"],
            before={"status": before.value},
            after={"status": to.value, "status_change": change["id"]},
        )

    return apply


# What the last approval does to the record, by kind.
EFFECTS: dict[ChangeKind, Callable[[Actor, dict[str, Any]], Awaitable[None]]] = {
    ChangeKind.transfer: _move,  # school, class, region; the record stays enrolled
    ChangeKind.skip: _move,
    ChangeKind.repeat: _move,
    ChangeKind.suspend: _status(StudentStatus.suspended),
    ChangeKind.resume: _status(StudentStatus.enrolled),
    ChangeKind.leave: _status(StudentStatus.left),
    ChangeKind.abroad: _status(StudentStatus.abroad),
    ChangeKind.cancel: _status(StudentStatus.cancelled),
}


async def apply_change(actor: Actor, change: dict[str, Any], now: datetime) -> None:
    await EFFECTS[ChangeKind(change["kind"])](actor, change)
    if not await CHANGE_STATE.move(
        change["id"],
        ChangeState.completed,
        sources={ChangeState.in_review},
        values={StatusChange.completed_at: now, StatusChange.updated_at: now},
    ):
        raise Conflict("该异动已不在办理中", code="step_already_decided")
    await release(change["student"], change["id"])
    await audit.record(
        actor,
        "complete",
        "status_change",
        change["id"],
        before={"state": ChangeState.in_review.value},
        after={
            "state": ChangeState.completed.value,
            "kind": change["kind"],
            "student": change["student"],
            "to_class": change["to_class"],
        },
    )


async def _end(change: dict[str, Any], to: ChangeState, reason: str) -> None:
    now = datetime.now(UTC)
    await CHANGE_STATE.move(
        change["id"],
        to,
        sources={ChangeState.in_review},
        values={StatusChange.refusal: reason, StatusChange.updated_at: now},
    )
    if to is ChangeState.refused:
        await release(change["student"], change["id"])


class ChangeDecisions:
    """What a decision on a status change's step does (inside the decision's transaction)."""

    async def approved(self, step: dict[str, Any], actor: Actor, *, last: bool) -> None:
        change = await _change(step["subject_id"])
        now = datetime.now(UTC)
        if step["kind"] in FIRST_STEPS:
            if ChangeKind(change["kind"]) in WITH_CLASS and change["to_class"] is None:
                raise ClassRequired()
            if change["started_by"] is None:
                await StatusChange.update(
                    {StatusChange.started_by: actor.account_id, StatusChange.updated_at: now}
                ).where(StatusChange.id == change["id"])
        if last:
            await apply_change(actor, change, now)

    async def rejected(self, step: dict[str, Any], actor: Actor, reason: str) -> None:
        await _end(await _change(step["subject_id"]), ChangeState.refused, reason)

    async def sent_back(self, step: dict[str, Any], actor: Actor, reason: str) -> None:
        await _end(await _change(step["subject_id"]), ChangeState.returned, reason)


OUTCOME: dict[str, tuple[str, str]] = {
    ChangeState.completed.value: ("已办结", "学籍已按申请办理完成"),
    ChangeState.refused.value: ("未通过", "原因请在应用中查看"),
    ChangeState.returned.value: ("被退回", "请在应用中查看说明，补充材料后重新提交"),
    StepState.approved.value: ("已通过一个环节", "请在应用中查看当前办理环节和期限"),
}


async def change_decided(step: dict[str, Any], outbox: Outbox, now: datetime) -> None:
    """After each decision on a change's step: the child's guardians are told where it
    stands (no name, no reason: the app fetches those after sign-in)."""
    change = (
        await StatusChange.select(
            StatusChange.id, StatusChange.kind, StatusChange.state, StatusChange.student
        )
        .where(StatusChange.id == step["subject_id"])
        .first()
    )
    if change is None:
        return
    # a step passed (still in review), or the change ended: completed, refused, returned
    title, body = OUTCOME.get(change["state"], OUTCOME[StepState.approved.value])
    note = Note(
        Category.status_change_decided,
        f"{KIND_LABEL[ChangeKind(change['kind'])]}申请{title}",
        body,
        subject=("status_change", change["id"]),
        once=f"status_change_decided:review_step:{step['id']}",
    )
    await notify(outbox, await guardians_of(change["student"]), note, now=now)


handle(SubjectKind.status_change, ChangeDecisions())
tell_on_decision(SubjectKind.status_change, change_decided)
