"""HTTP for status changes (学籍异动): the schools' and authorities' (`/status-changes`), and a
parent's (`/my/children/{student_id}/status-changes`, `/my/status-changes`). Steps are decided
through `POST /review-steps/{step_id}/decision`, like a correction's."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.permissions import Action
from backend.deps import ActorDep, IdFilter, PrincipalDep, RedisDep, SettingsDep, StorageDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, SIGNED_IN, STAFF, UPLOAD, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.parents.request_service import refuse_fields
from backend.records import request_service
from backend.records.change_request_controllers import PHOTO_ERRORS, UPLOAD_OPT
from backend.records.evidence import MAX_REQUEST_BYTES
from backend.transfers import effects as _registers_its_handler  # noqa: F401
from backend.transfers import reads, service
from backend.transfers.rule_schemas import DocumentListRead, document_list
from backend.transfers.schemas import (
    ChangeStart,
    ClassChoice,
    MyStatusChangeCreate,
    StatusChangeAmendment,
    StatusChangeDetail,
    StatusChangeRead,
    TransferStart,
)
from backend.transfers.tables import ChangeKind, ChangeState

REGISTRAR_ONLY = {403: "status_change_registrar_only"}
PARENT_ONLY = {403: "parents_only"}
START_ERRORS = {409: "change_already_open status_not_allowed"}
PHOTOS = {400: PHOTO_ERRORS, 413: "photo_too_large evidence_too_large"}
APPLY_FIELDS = {"kind", "to_school_id", "reason"}
AMEND_FIELDS = {"reason"}


async def _form_keys(request: Request[Any, Any, Any]) -> list[str]:
    return list((await request.form()).keys())


class StatusChangeController(Controller):
    path = "/status-changes"
    tags = ["status-changes"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/transfers",
        status_code=HTTP_201_CREATED,
        summary="Start a transfer into my school",
        operation_id="startTransfer",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            REGISTRAR_ONLY,
            START_ERRORS,
            {
                400: "same_school documents_missing",
                404: "student_not_found",
                429: "too_many_transfer_starts",
            },
        ),
    )
    async def start_transfer(
        self,
        data: JSONBody[TransferStart],
        principal: PrincipalDep,
        actor: ActorDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> StatusChangeDetail:
        """Start a transfer (转学) of a student of another school into `to_class_id`, a class
        of the caller's school: the student is found by `registry_number` and `student_name`
        together. The start step is the caller's and is approved at once; then the sending
        school releases it, the sending school's authority reviews it and, between counties
        or provinces, the receiving school's authority: each within 10 working days of the
        step becoming theirs. `span` says which (`county`, `province`, `country`). While it
        is open the record accepts no other change. `documents_checked` lists the documents
        the caller checked on paper; each one the receiving school's province asks for with a
        transfer of that span must be there (`GET /provinces/{code}/change-documents`).
        Audited.

        **Who may call**: a registrar of the receiving school.

        **Errors**: `status_change_registrar_only` (403); `not_found` (404) a class outside
        the caller's school; `student_not_found` (404) no student with that registry number
        and name; `same_school` (400) the student is at the caller's school already;
        `change_already_open` (409) another change of the student is open (a parent's
        application to this school among them: take it up instead);
        `status_not_allowed` (409) the record's status allows no transfer;
        `documents_missing` (400, each missing one in `field_errors`);
        `too_many_transfer_starts` (429, `Retry-After`) past the caller's tries an hour or the
        school's starts a day, found or not (`TRANSFER_START_TRIES_PER_HOUR`, 30;
        `TRANSFER_STARTS_PER_SCHOOL_PER_DAY`, 300)."""
        change_id = await service.start_transfer(
            principal,
            actor,
            registry_number=data.registry_number,
            student_name=data.student_name,
            to_class_id=data.to_class_id,
            reason=data.reason,
            details=data.details,
            documents_checked=data.documents_checked,
            redis=redis,
            settings=settings,
        )
        return await reads.detail(principal, change_id)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Enter a status change of a student of my school",
        operation_id="startStatusChange",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            REGISTRAR_ONLY,
            START_ERRORS,
            {
                400: "reason_required wrong_target_class transfer_started_by_receiving_school "
                "documents_missing repeat_not_allowed"
            },
        ),
    )
    async def start(
        self, data: JSONBody[ChangeStart], principal: PrincipalDep, actor: ActorDep
    ) -> StatusChangeDetail:
        """Enter a suspension (`suspend`), a return (`resume`, from suspended, left or
        abroad), leaving (`leave`), a skip (`skip`, `to_class_id` of a higher grade of the
        school), a repeat (`repeat`, a lower grade), study abroad (`abroad`) or a cancellation
        after death (`cancel`, with its `reason`; 60 working days per step) for a student of
        the caller's school. The entering step is the caller's and is approved at once; the
        authority administering the school reviews it. `documents_checked`: the documents
        checked on paper, each one the province asks for with the kind required. A repeat in
        compulsory education is for special-education students only. Audited.

        **Who may call**: a registrar of the student's school.

        **Errors**: `status_change_registrar_only` (403); `not_found` (404) a student outside
        the caller's school; `reason_required` (400) a cancellation without a reason;
        `wrong_target_class` (400) no class, or one of the wrong grade or school;
        `transfer_started_by_receiving_school` (400) for `transfer`; `documents_missing`
        (400); `repeat_not_allowed` (400) a repeat the rules do not allow;
        `change_already_open`, `status_not_allowed` (409)."""
        change_id = await service.start_change(
            principal,
            actor,
            kind=data.kind,
            student_id=data.student_id,
            to_class_id=data.to_class_id,
            reason=data.reason,
            details=data.details,
            documents_checked=data.documents_checked,
        )
        return await reads.detail(principal, change_id)

    @get(
        "/",
        summary="List the status changes of my scope",
        operation_id="listStatusChanges",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_changes(
        self,
        principal: PrincipalDep,
        kind: Annotated[ChangeKind | None, QueryParameter()] = None,
        change_state: Annotated[ChangeState | None, QueryParameter(name="state")] = None,
        student_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[StatusChangeRead]:
        """The status changes in the caller's scope, latest changed first: a school sees those
        of its students and the transfers coming to it; an authority those of the schools in
        its region, both ways. Each with its state and current step in Chinese: which step,
        who holds it (`holder`), its due date, overdue. Filters: `kind`, `state`,
        `student_id`.

        **Who may call**: staff.

        **Errors**: `validation_error` (400)."""
        return await reads.list_changes(
            principal,
            kind=kind,
            state=change_state,
            student_id=student_id,
            page=page,
            page_size=page_size,
        )

    @get(
        "/{change_id:int}",
        summary="Read a status change and its steps",
        operation_id="getStatusChange",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_change(
        self, change_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> StatusChangeDetail:
        """The change with every step of every round in Chinese (who holds or held it, the
        due date, overdue, the reason of a refusal or send-back) and its documents.

        **Who may call**: staff of either side.

        **Errors**: `not_found` (404, audited) outside the caller's scope."""
        return await reads.get_change(principal, actor, change_id)

    @post(
        "/{change_id:int}/class",
        status_code=HTTP_200_OK,
        summary="Choose the class a student goes to",
        operation_id="chooseStatusChangeClass",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            REGISTRAR_ONLY,
            {400: "wrong_target_class", 409: "class_not_choosable"},
        ),
    )
    async def choose_class(
        self,
        change_id: FromPath[int],
        data: JSONBody[ClassChoice],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> StatusChangeDetail:
        """Taking up a parent's application: the class of the caller's school the student goes
        to (a transfer's receiving class; a skip's or repeat's class), chosen while the
        school's first step is current, before approving it. Audited.

        **Who may call**: the registrar whose step is current.

        **Errors**: `not_found` (404); `class_not_choosable` (409) not the caller's first
        step, or a kind without a class; `wrong_target_class` (400);
        `status_change_registrar_only` (403)."""
        await service.choose_class(principal, actor, change_id, data.class_id)
        return await reads.detail(principal, change_id)

    @post(
        "/{change_id:int}/withdraw",
        status_code=HTTP_200_OK,
        summary="Withdraw a status change I started",
        operation_id="withdrawStatusChange",
        responses=errors(
            SIGNED_IN, STAFF, BY_ID, {403: "not_your_change", 409: "not_withdrawable"}
        ),
    )
    async def withdraw(
        self, change_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> StatusChangeDetail:
        """Take back a change the caller started, while it is open; the record accepts
        changes again. Audited.

        **Who may call**: whoever started it.

        **Errors**: `not_found` (404); `not_your_change` (403); `not_withdrawable` (409)."""
        await service.withdraw(principal, actor, change_id)
        return await reads.detail(principal, change_id)

    @post(
        "/{change_id:int}/resubmit",
        status_code=HTTP_200_OK,
        summary="Amend and resubmit a status change sent back to me",
        operation_id="resubmitStatusChange",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(
            SIGNED_IN,
            STAFF,
            UPLOAD,
            BY_ID,
            PHOTOS,
            {403: "not_your_change", 409: "not_resubmittable"},
        ),
    )
    async def resubmit(
        self,
        request: Request[Any, Any, Any],
        change_id: FromPath[int],
        data: MultipartBody[StatusChangeAmendment],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> StatusChangeDetail:
        """Amend a change sent back to the caller (`reason`, more documents as photos in parts
        named by kind) and submit it again: a new round, from the step that sent it back.
        Audited.

        **Who may call**: whoever started it.

        **Errors**: `not_found` (404); `not_your_change` (403); `not_resubmittable` (409)
        unless returned; `validation_error` (400) a part it does not take; the photo errors
        (400, 413)."""
        request_service.refuse_unknown(
            request_service.unknown_fields(await _form_keys(request), AMEND_FIELDS)
        )
        await service.resubmit(
            principal,
            actor,
            storage,
            change_id,
            reason=data.reason,
            photos=await request_service.photos_of(data),
        )
        return await reads.detail(principal, change_id)


class MyChildStatusChangeController(Controller):
    path = "/my/children/{student_id:int}/status-changes"
    tags = ["parents"]
    guards = [allowed(Action.use_parent_api)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Apply for a transfer or another status change of my child",
        operation_id="applyForStatusChange",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(
            SIGNED_IN,
            UPLOAD,
            BY_ID,
            PARENT_ONLY,
            PHOTOS,
            START_ERRORS,
            {
                400: "kind_not_for_parents to_school_required reason_required same_school "
                "documents_missing repeat_not_allowed",
                403: "parent_field_forbidden",
                404: "school_not_found",
            },
        ),
    )
    async def apply(
        self,
        request: Request[Any, Any, Any],
        student_id: FromPath[int],
        data: MultipartBody[MyStatusChangeCreate],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> StatusChangeDetail:
        """Apply, as `multipart/form-data`: `kind` (`transfer` with `to_school_id` and a
        `reason`; `suspend`, `resume`, `leave`, `skip`, `repeat`, `abroad`), and the
        documents the province asks for as photos in parts named by kind (`household_register`,
        `enrolment_proof`, `registration_receipt`, `id_scan`, `other`). The school that acts
        first (the receiving school for a transfer, the child's school otherwise) takes it up
        within 10 working days; follow it at `GET /my/status-changes/{change_id}`. Nothing
        else may be set. Audited.

        **Who may call**: a parent whose link to the child is confirmed.

        **Errors**: `not_found` (404, audited) not my child; `school_not_found` (404);
        `kind_not_for_parents` (400) a cancellation; `to_school_required`, `reason_required`,
        `same_school` (400); `documents_missing` (400, each missing document in
        `field_errors`); `repeat_not_allowed` (400) a repeat of an ordinary student in
        compulsory education; `parent_field_forbidden` (403, audited) any other part;
        `change_already_open`, `status_not_allowed` (409); the photo errors (400, 413);
        `parents_only` (403)."""
        extra = request_service.unknown_fields(await _form_keys(request), APPLY_FIELDS)
        await refuse_fields(principal, actor, student_id, extra)
        change_id = await service.apply_as_parent(
            principal,
            actor,
            storage,
            student_id=student_id,
            kind=data.kind,
            to_school_id=data.to_school_id,
            reason=request_service.text(data.reason, "reason"),
            photos=await request_service.photos_of(data),
        )
        return await reads.detail(principal, change_id)

    @get(
        "/documents",
        summary="Which documents to attach to an application",
        operation_id="getApplicationDocuments",
        responses=errors(
            SIGNED_IN,
            QUERY,
            BY_ID,
            PARENT_ONLY,
            {400: "kind_not_for_parents to_school_required same_school", 404: "school_not_found"},
        ),
    )
    async def documents(
        self,
        student_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        kind: Annotated[ChangeKind, QueryParameter()],
        to_school_id: IdFilter = None,
    ) -> DocumentListRead:
        """Before applying: the documents the province asks for with a change of `kind` of
        my child (a transfer: to `to_school_id`; the receiving school's province asks, and
        how far the transfer goes decides the list), each with the multipart parts a photo of
        it may be sent in. An application without one of them is refused
        (`documents_missing`).

        **Who may call**: a parent whose link to the child is confirmed.

        **Errors**: `not_found` (404, audited) not my child; `school_not_found` (404);
        `kind_not_for_parents` (400) a cancellation; `to_school_required`, `same_school`
        (400); `parents_only` (403)."""
        found = await service.documents_for_child(
            principal, actor, student_id=student_id, kind=kind, to_school_id=to_school_id
        )
        return document_list(found)


class MyStatusChangeController(Controller):
    path = "/my/status-changes"
    tags = ["parents"]
    guards = [allowed(Action.use_parent_api)]

    @get(
        "/",
        summary="List my children's status changes",
        operation_id="listMyStatusChanges",
        responses=errors(SIGNED_IN, QUERY, PARENT_ONLY),
    )
    async def list_changes(
        self,
        principal: PrincipalDep,
        student_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[StatusChangeRead]:
        """My children's transfers and other status changes (whoever started them), latest
        changed first, each with where it stands in Chinese: the current step, who holds it,
        its due date.

        **Who may call**: a parent.

        **Errors**: `parents_only` (403); `validation_error` (400)."""
        return await reads.list_changes(
            principal, student_id=student_id, page=page, page_size=page_size
        )

    @get(
        "/{change_id:int}",
        summary="Follow my child's status change",
        operation_id="getMyStatusChange",
        responses=errors(SIGNED_IN, BY_ID, PARENT_ONLY),
    )
    async def get_change(
        self, change_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> StatusChangeDetail:
        """Where it stands: every step with who holds it, its due date, whether it is overdue,
        and the reason if it was refused or sent back.

        **Who may call**: a parent of the child (link confirmed).

        **Errors**: `not_found` (404) not my child's; `parents_only` (403)."""
        return await reads.get_change(principal, actor, change_id)

    @post(
        "/{change_id:int}/withdraw",
        status_code=HTTP_200_OK,
        summary="Withdraw my application",
        operation_id="withdrawMyStatusChange",
        responses=errors(
            SIGNED_IN, BY_ID, PARENT_ONLY, {403: "not_your_change", 409: "not_withdrawable"}
        ),
    )
    async def withdraw(
        self, change_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> StatusChangeDetail:
        """Take my application back while it is open. Audited.

        **Who may call**: the parent who applied.

        **Errors**: `not_found` (404); `not_your_change` (403); `not_withdrawable` (409);
        `parents_only` (403)."""
        await service.withdraw(principal, actor, change_id)
        return await reads.detail(principal, change_id)

    @post(
        "/{change_id:int}/resubmit",
        status_code=HTTP_200_OK,
        summary="Amend and resubmit my application",
        operation_id="resubmitMyStatusChange",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(
            SIGNED_IN,
            UPLOAD,
            BY_ID,
            PARENT_ONLY,
            PHOTOS,
            {403: "not_your_change parent_field_forbidden", 409: "not_resubmittable"},
        ),
    )
    async def resubmit(
        self,
        request: Request[Any, Any, Any],
        change_id: FromPath[int],
        data: MultipartBody[StatusChangeAmendment],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> StatusChangeDetail:
        """My application was sent back (its `refusal` says why): a new `reason` and more
        documents, as `multipart/form-data`; it goes back to the step that sent it. Audited.

        **Who may call**: the parent who applied.

        **Errors**: `not_found` (404); `not_your_change` (403); `parent_field_forbidden`
        (403, audited) any other part; `not_resubmittable` (409); the photo errors (400,
        413); `parents_only` (403)."""
        extra = request_service.unknown_fields(await _form_keys(request), AMEND_FIELDS)
        await refuse_fields(principal, actor, None, extra)
        await service.resubmit(
            principal,
            actor,
            storage,
            change_id,
            reason=data.reason,
            photos=await request_service.photos_of(data),
        )
        return await reads.detail(principal, change_id)


ROUTES: list[Any] = [
    StatusChangeController,
    MyChildStatusChangeController,
    MyStatusChangeController,
]
