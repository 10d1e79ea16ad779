"""HTTP for review steps: what waits on the caller (`records.queues`), its counts, deciding
one, and a school leader's bulk approval of ordinary changes."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from backend.accounts.permissions import Action
from backend.deps import ActorDep, OutboxDep, PrincipalDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, SIGNED_IN, STAFF, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.records import change_requests as _registers_its_handler  # noqa: F401
from backend.records import queues, reviews
from backend.records.queue_schemas import BulkApproval, BulkResult, QueueCounts, QueueItem
from backend.records.review_schemas import DecisionWrite, StepRead, step_read
from backend.records.review_tables import StepKind, SubjectKind


class ReviewStepController(Controller):
    path = "/review-steps"
    tags = ["reviews"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List the review steps waiting on me",
        operation_id="listMyReviewSteps",
        responses=errors(SIGNED_IN, STAFF, QUERY, {403: "reviewers_only"}),
    )
    async def waiting_on_me(
        self,
        principal: PrincipalDep,
        subject_kind: FromQuery[SubjectKind | None] = None,
        step_kind: FromQuery[StepKind | None] = None,
        overdue: FromQuery[bool] = False,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[QueueItem]:
        """What waits on me: the steps the caller is the one to decide now, oldest due date
        first (then oldest step), each with what a reviewer needs to decide without another
        request: the student, school and class, the field with its old and new values
        (sensitive values masked), the request's source and reason, its evidence (whether
        the ID document is attached), the due date and how many working days it is overdue
        (China's date past `due_on`). `in_bulk` marks steps a school leader may approve
        together (`POST /review-steps/bulk-approval`). A registrar's queue also lists the
        school's class-roll mismatches, in the same order: `subject_kind` `roll_entry`,
        `step_kind` `settle`, `step_id` null (decide through
        `POST /roll-entries/{subject_id}/decision` or `/registration`), `student_id` null for a
        child without a record. Filters: `subject_kind` (`change_request`, `problem_action`,
        `roll_entry`, `status_change`), `step_kind`, `overdue=true` for overdue only.
        A kind of subject this version cannot summarise is listed with `summary` null.

        **Who may call**: staff. A teacher sees the checks of their class's parents'
        requests; a registrar the changes to enter at their school; a school leader the
        ordinary changes to approve there; the county reviewer (or the city / province admin
        for schools it runs directly) the key-data changes of the schools it administers; a
        national sysadmin the arbitrations.

        **Errors**: `validation_error` (400) for a filter outside its values or a page out
        of range; `reviewers_only` (403)."""
        return await queues.waiting_on(
            principal,
            subject_kind=subject_kind,
            step_kind=step_kind,
            overdue_only=overdue,
            page=page,
            page_size=page_size,
        )

    @get(
        "/counts",
        summary="Count the review steps waiting on me",
        operation_id="countMyReviewSteps",
        responses=errors(SIGNED_IN, STAFF, {403: "reviewers_only"}),
    )
    async def counts(self, principal: PrincipalDep) -> QueueCounts:
        """The badge on the phone: how many steps wait on the caller (`waiting`; a registrar's
        count includes the school's class-roll mismatches, also counted alone in
        `roll_entries`), how many of them are overdue, and how many are due within the next 2
        working days; and the change requests in the caller's scope by state (`requests`,
        every state listed).

        **Who may call**: staff.

        **Errors**: `reviewers_only` (403)."""
        return await queues.counts(principal)

    @post(
        "/bulk-approval",
        status_code=HTTP_200_OK,
        summary="Approve many ordinary changes at once",
        operation_id="approveReviewStepsInBulk",
        responses=errors(SIGNED_IN, STAFF, JSON_BODY, {403: "leaders_only"}),
    )
    async def bulk_approval(
        self,
        data: JSONBody[BulkApproval],
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
    ) -> BulkResult:
        """Approve up to 200 steps (`step_ids`) as a school leader, each as
        `POST /review-steps/{step_id}/decision` would, in its own transaction: one refused
        step undoes nothing of the others. The answer says, for each id in the order given
        (a repeated id once), `approved` or `refused` with the refusal's `code` and Chinese
        `message`: `not_in_bulk` for a key-data review (reviewed one by one, never in bulk),
        `not_found` for a step outside the caller's school (audited), `not_your_step`,
        `step_already_decided` (decided meanwhile, or withdrawn), `record_changed_since`.
        Each approval is audited as one decision made in bulk.

        **Who may call**: a school leader.

        **Errors**: `leaders_only` (403) for any other role; `validation_error` (400) for no
        ids or more than 200."""
        return await queues.approve_in_bulk(principal, actor, data.step_ids, outbox)

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
                400: "reason_required evidence_required target_class_required",
                403: "not_your_step own_request",
                409: "step_already_decided record_changed_since registry_number_taken "
                "record_change_open record_status_changed",
            },
        ),
    )
    async def decide(
        self,
        step_id: FromPath[int],
        data: JSONBody[DecisionWrite],
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
    ) -> StepRead:
        """Approve, reject or send back the current step of a change request (or another
        reviewed thing). Approving passes it to the next step, whose 10-working-day due date
        starts now; approving the last step applies the change to the record in the same
        transaction, with its audit row. Rejecting ends the round (the author may amend and
        submit again); sending back returns it to its author (or the parent) for evidence or
        confirmation. Both need a `reason`, which the author and the parent read. Audited.
        The family is told (a notification, without the reason) when the decision applies,
        rejects or sends back a parent's request or one transcribed from their form.

        **Who may call**: whoever sits in the step's seat: the class teacher for a parent's
        request's first check, the school's registrar to enter, a school leader to approve an
        ordinary change, the authority administering the school (county reviewer, or the
        city / province admin for schools they run directly) to review a key-data change.
        No one approves or reviews a change they asked for themselves (a county reviewer's
        own import): another account of the same seat does.

        **Errors**: `not_found` (404) for a step outside the caller's scope; `not_your_step`
        (403) for a step someone else decides; `own_request` (403) to approve or review
        one's own request; `step_already_decided` (409) when the step
        was decided a moment ago (by another reviewer) or withdrawn; `reason_required` (400)
        to reject or send back without a reason; `evidence_required` (400) to enter a
        key-data change without the ID document; `record_changed_since` (409) when the field
        changed after the request was made (reject it and submit again);
        `registry_number_taken` (409) when a record of the same school already holds the
        G + ID registry number an approved ID change would give this one (a child without a
        resident ID number getting one: docs/class-roll.md); `record_change_open` (409) for
        the last approval of a change request, or an approved deletion, while a status change
        (a transfer …) is open on the record: nothing is decided, the step stays current
        until the change is done. A status change's steps (docs/transfers.md):
        `target_class_required` (400) to approve the first step of a transfer, skip or repeat
        before its class is chosen; `record_status_changed` (409) when the record's status no
        longer allows the change.
        """
        row = await reviews.decide(
            principal, actor, step_id, data.decision, data.reason, outbox=outbox
        )
        return step_read(row)


ROUTES: list[Any] = [ReviewStepController]
