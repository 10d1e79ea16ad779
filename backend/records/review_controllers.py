"""HTTP for review steps: deciding one (the queues of what waits on whom come beside it)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from backend.accounts.permissions import Action
from backend.deps import ActorDep, PrincipalDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, SIGNED_IN, STAFF, errors
from backend.records import change_requests as _registers_its_handler  # noqa: F401
from backend.records import reviews
from backend.records.review_schemas import DecisionWrite, StepRead
from backend.workdays import china_today


def step_read(row: dict[str, Any]) -> StepRead:
    due = row["due_on"]
    return StepRead(
        id=row["id"],
        subject_kind=row["subject_kind"],
        subject_id=row["subject_id"],
        round=row["round"],
        position=row["position"],
        kind=row["kind"],
        role=row["role"],
        state=row["state"],
        student_id=row["student"],
        due_on=due,
        overdue=due is not None and row["state"] == "current" and china_today() > due,
        decided_at=row["decided_at"],
        reason=row["reason"],
    )


class ReviewStepController(Controller):
    path = "/review-steps"
    tags = ["reviews"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/{step_id:int}/decision",
        status_code=HTTP_200_OK,
        summary="Decide a review step",
        operation_id="decideReviewStep",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {
                400: "reason_required evidence_required",
                403: "not_your_step",
                409: "step_already_decided record_changed_since",
            },
        ),
    )
    async def decide(
        self,
        step_id: FromPath[int],
        data: JSONBody[DecisionWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> StepRead:
        """Approve, reject or send back the current step of a change request (or another
        reviewed thing). Approving passes it to the next step, whose 10-working-day due date
        starts now; approving the last step applies the change to the record in the same
        transaction, with its audit row. Rejecting ends the round (the author may amend and
        submit again); sending back returns it to its author (or the parent) for evidence or
        confirmation. Both need a `reason`, which the author and the parent read. Audited.

        **Who may call**: whoever sits in the step's seat: the class teacher for a parent's
        request's first check, the school's registrar to enter, a school leader to approve an
        ordinary change, the authority administering the school (county reviewer, or the
        city / province admin for schools they run directly) to review a key-data change.

        **Errors**: `not_found` (404) for a step outside the caller's scope; `not_your_step`
        (403) for a step someone else decides; `step_already_decided` (409) when the step
        was decided a moment ago (by another reviewer) or withdrawn; `reason_required` (400)
        to reject or send back without a reason; `evidence_required` (400) to enter a
        key-data change without the ID document; `record_changed_since` (409) when the field
        changed after the request was made (reject it and submit again).
        """
        row = await reviews.decide(principal, actor, step_id, data.decision, data.reason)
        return step_read(row)


ROUTES: list[Any] = [ReviewStepController]
