"""What families are told when something of theirs is decided, written in the transaction
that decides it (`notify.inbox.notify`): a decision on a correction they asked for.

Who is told: the parent who made the request; for a request a teacher or registrar
transcribed from the family's paper form, the child's confirmed guardians; nobody for the
school's own changes. The push says what happened, never why: a rejection's reason may name
people or documents, so the app fetches it after sign-in (`subject` is the request).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.accounts.tables import Account, AccountStatus
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.outbox import Outbox
from backend.records.review_tables import ChangeRequest, RequestSource, RequestState
from backend.records.tables import GuardianLink, LinkStatus


async def guardians_of(student_id: int) -> list[int]:
    """The active accounts confirmed as the child's guardians."""
    rows = await GuardianLink.select(GuardianLink.account).where(
        (GuardianLink.student == student_id)
        & (GuardianLink.status == LinkStatus.confirmed.value)
        & GuardianLink.account.is_in(
            Account.select(Account.id).where(Account.status == AccountStatus.active.value)
        )
    )
    return sorted({row["account"] for row in rows})


async def family_of_request(request: dict[str, Any]) -> list[int]:
    source = RequestSource(request["source"])
    if source is RequestSource.parent:
        return [request["author"]]
    if source is RequestSource.transcribed:
        return await guardians_of(request["student"])
    return []


DECIDED: dict[RequestState, tuple[str, str]] = {
    RequestState.applied: ("您的更正申请已通过", "学籍信息已按申请更正"),
    RequestState.rejected: ("您的更正申请未通过", "原因请在应用中查看，可修改后重新提交"),
    RequestState.returned: ("您的更正申请需要补充材料或确认", "请在应用中查看说明并处理"),
}


async def request_decided(step: dict[str, Any], outbox: Outbox, now: datetime) -> None:
    """After a decision on one of a change request's steps (inside its transaction): the
    family is told when it ended the round (applied, rejected, sent back to them)."""
    request = (
        await ChangeRequest.select(
            ChangeRequest.id,
            ChangeRequest.state,
            ChangeRequest.source,
            ChangeRequest.author,
            ChangeRequest.student,
        )
        .where(ChangeRequest.id == step["subject_id"])
        .first()
    )
    if request is None or RequestState(request["state"]) not in DECIDED:
        return
    title, body = DECIDED[RequestState(request["state"])]
    note = Note(
        Category.request_decided,
        title,
        body,
        subject=("change_request", request["id"]),
        once=f"request_decided:review_step:{step['id']}",  # each step is decided once
    )
    await notify(outbox, await family_of_request(request), note, now=now)
