"""HTTP for conversations: a parent's own threads (`/my/threads`), the staff side
(`/threads`: the school answers or passes up, the authority answers the school), their photos
(`/thread-photos/{id}`), and a school's canned answers (`/canned-answers`)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend.accounts.permissions import Action
from backend.deps import ActorDep, IdFilter, OutboxDep, PrincipalDep, RedisDep, StorageDep
from backend.errors import BadRequest, PayloadTooLarge
from backend.http import NO_STORE, allowed
from backend.messages import canned, service
from backend.messages import reminders as _registers_its_reminders  # noqa: F401
from backend.messages.schemas import (
    AnswerCreate,
    CannedAnswerRead,
    CannedAnswerWrite,
    ParentMessageCreate,
    PassUp,
    ThreadCreate,
    ThreadDetail,
    ThreadRead,
)
from backend.messages.service import ThreadFilter
from backend.messages.tables import ThreadState
from backend.openapi import BY_ID, JSON_BODY, QUERY, REDIS, SIGNED_IN, STAFF, UPLOAD, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.records.evidence import MAX_REQUEST_BYTES


class PhotosTooLarge(PayloadTooLarge):
    """Refused before it is read (the request's size limit), in its own words."""

    code = "photos_too_large"
    message = f"照片合计不能超过 {MAX_REQUEST_BYTES // 1024 // 1024} MB，请压缩后再上传"


UPLOAD_OPT = {"upload_noun": "照片", "too_large": PhotosTooLarge}
PHOTO_ERRORS = {
    400: "photo_empty photo_unsupported photo_damaged photo_truncated photo_too_many_pixels "
    "too_many_photos",
    413: "photo_too_large photos_too_large",
}
PARENT_ONLY = {403: "parents_only"}
WRITE_ERRORS = {400: "empty_message invalid_correction", 429: "too_many_messages"}
ANSWER_ERRORS = {
    400: "empty_message invalid_correction",
    403: "answerers_only not_school_participant not_your_authority",
    409: "thread_closed not_passed_up",
}
THREAD_PARTS = {"about_kind", "about_id", "body", "photo"}
MESSAGE_PARTS = {"body", "corrects", "photo"}

StateFilter = Annotated[ThreadState | None, QueryParameter(name="state")]


async def _refuse_unknown(request: Request[Any, Any, Any], known: set[str]) -> None:
    unknown = sorted(set((await request.form()).keys()) - known)
    if unknown:
        raise BadRequest(
            "提交的数据不符合要求，请检查后重试",
            code="validation_error",
            field_errors=dict.fromkeys(unknown, "不支持此字段"),
        )


async def _photos(files: list[UploadFile] | None) -> list[bytes]:
    return [await f.read() for f in files or [] if isinstance(f, UploadFile)]


class MyThreadController(Controller):
    path = "/my/threads"
    tags = ["conversations"]
    guards = [allowed(Action.ask_question)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Ask the school a question about my child",
        operation_id="createMyThread",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(SIGNED_IN, UPLOAD, BY_ID, PARENT_ONLY, PHOTO_ERRORS, WRITE_ERRORS, REDIS),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: MultipartBody[ThreadCreate],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
        redis: RedisDep,
        outbox: OutboxDep,
    ) -> ThreadDetail:
        """Ask about my child's record (`about_kind` `record`, `about_id` the student id),
        a confirmation form (`form`, the issued form's id), the photo check's verdict
        (`verdict`, the upload's id) or a change request (`change_request`), as
        `multipart/form-data`: `body` (plain text, at most 2000 characters) and up to 3
        photos in parts named `photo` (JPEG, PNG, WebP or HEIC, at most 15 MB each; stored
        as an upright JPEG without metadata). The child's class teacher and the school's
        registrars are told; they answer within 3 working days. At most 5 new questions a
        day and 20 messages an hour. Audited.

        **Who may call**: a parent, about a child whose link is confirmed.

        **Errors**: `not_found` (404, audited) not my child's; `empty_message` (400);
        `validation_error` (400) a part the operation does not take; `photo_empty`,
        `photo_unsupported`, `photo_damaged`, `photo_truncated`, `photo_too_many_pixels`,
        `too_many_photos` (400); `photo_too_large`, `photos_too_large` (413);
        `too_many_messages` (429, with `Retry-After`); `parents_only` (403)."""
        await _refuse_unknown(request, THREAD_PARTS)
        return await service.ask(
            principal,
            actor,
            storage,
            redis,
            outbox,
            about_kind=data.about_kind,
            about_id=data.about_id,
            body=data.body,
            photos=await _photos(data.photo),
        )

    @get(
        "/",
        summary="List my questions",
        operation_id="listMyThreads",
        responses=errors(SIGNED_IN, QUERY, PARENT_ONLY),
    )
    async def list_threads(
        self,
        principal: PrincipalDep,
        thread_state: StateFilter = None,
        student_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[ThreadRead]:
        """My questions, the latest message first, each with its state in Chinese, my unread
        count and the school's due date; filter by `state` and `student_id`.

        **Who may call**: a parent.

        **Errors**: `validation_error` (400); `parents_only` (403)."""
        return await service.list_threads(
            principal,
            ThreadFilter(state=thread_state, student_id=student_id),
            page=page,
            page_size=page_size,
        )

    @get(
        "/{thread_id:int}",
        summary="Read my question and its answers",
        operation_id="getMyThread",
        responses=errors(SIGNED_IN, BY_ID, PARENT_ONLY),
    )
    async def get_thread(
        self, thread_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ThreadDetail:
        """The question and the school's answers, oldest first (never the notes between the
        school and the education authority); marks them read.

        **Who may call**: the parent who asked, while the child is theirs.

        **Errors**: `not_found` (404, audited); `parents_only` (403)."""
        return await service.detail(principal, actor, thread_id)

    @post(
        "/{thread_id:int}/messages",
        status_code=HTTP_201_CREATED,
        summary="Write again in my question",
        operation_id="writeMyThread",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(SIGNED_IN, UPLOAD, BY_ID, PARENT_ONLY, PHOTO_ERRORS, WRITE_ERRORS, REDIS),
    )
    async def write(
        self,
        request: Request[Any, Any, Any],
        thread_id: FromPath[int],
        data: MultipartBody[ParentMessageCreate],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
        redis: RedisDep,
        outbox: OutboxDep,
    ) -> ThreadDetail:
        """Another message, as `multipart/form-data`: `body`, `corrects` (the id of one of my
        messages it corrects: messages are never edited) and up to 3 photos in parts named
        `photo`. An answered or closed question is open again, due in 3 working days; the
        school is told. Audited.

        **Who may call**: the parent who asked.

        **Errors**: `not_found` (404, audited); `empty_message`, `invalid_correction`
        (400); `validation_error` (400) another part; the photo errors as `createMyThread`;
        `too_many_messages` (429, with `Retry-After`); `parents_only` (403)."""
        await _refuse_unknown(request, MESSAGE_PARTS)
        return await service.parent_writes(
            principal,
            actor,
            storage,
            redis,
            outbox,
            thread_id,
            body=data.body,
            corrects=data.corrects,
            photos=await _photos(data.photo),
        )

    @post(
        "/{thread_id:int}/close",
        status_code=HTTP_200_OK,
        summary="Close my question",
        operation_id="closeMyThread",
        responses=errors(SIGNED_IN, BY_ID, PARENT_ONLY, {409: "thread_closed"}),
    )
    async def close(
        self, thread_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ThreadDetail:
        """The question is settled; writing again reopens it. Audited.

        **Who may call**: the parent who asked.

        **Errors**: `not_found` (404); `thread_closed` (409) already closed;
        `parents_only` (403)."""
        return await service.close(principal, actor, thread_id)


class ThreadController(Controller):
    path = "/threads"
    tags = ["conversations"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List parents' questions",
        operation_id="listThreads",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_threads(
        self,
        principal: PrincipalDep,
        thread_state: StateFilter = None,
        overdue: FromQuery[bool | None] = None,
        passed_up: FromQuery[bool | None] = None,
        class_id: IdFilter = None,
        student_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[ThreadRead]:
        """Parents' questions in the caller's scope (a teacher's class, a school), the latest
        message first, each with the caller's unread count and its due dates; an education
        authority's staff see the questions passed up to them. Filter by `state`, `overdue`
        (past due for whoever holds it), `passed_up`, `class_id`, `student_id`.

        **Who may call**: staff.

        **Errors**: `validation_error` (400); `forbidden` (403) a parent."""
        return await service.list_threads(
            principal,
            ThreadFilter(
                state=thread_state,
                overdue=overdue,
                passed_up=passed_up,
                class_id=class_id,
                student_id=student_id,
            ),
            page=page,
            page_size=page_size,
        )

    @get(
        "/{thread_id:int}",
        summary="Read a parent's question",
        operation_id="getThread",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_thread(
        self, thread_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ThreadDetail:
        """The question and every message (the notes between the school and the authority
        included), oldest first; marks them read.

        **Who may call**: staff with the student in scope.

        **Errors**: `not_found` (404, audited) outside the caller's scope; `forbidden` (403)
        a parent."""
        return await service.detail(principal, actor, thread_id)

    @post(
        "/{thread_id:int}/messages",
        status_code=HTTP_201_CREATED,
        summary="Answer a parent's question",
        operation_id="answerThread",
        responses=errors(SIGNED_IN, STAFF, JSON_BODY, BY_ID, ANSWER_ERRORS),
    )
    async def answer(
        self,
        thread_id: FromPath[int],
        data: JSONBody[AnswerCreate],
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
    ) -> ThreadDetail:
        """The school answers the parent (`body`, or a `canned_answer_id` of the school's
        whose text is used when `body` is empty): the question is `answered` and the parent
        told. With `for_parent` false the school writes to the authority it passed the
        question to instead. The authority's support staff answer the school (never the
        parent: the school relays it); the school's teacher and registrars are told.
        `corrects` names an earlier message of mine this one corrects. Audited.

        **Who may call**: the child's class teacher, the school's registrars; once passed
        up, the support staff of the authority it was passed to.

        **Errors**: `not_found` (404, audited) outside the caller's scope, or a canned answer
        not the school's; `answerers_only` (403) another role; `not_school_participant`
        (403) a teacher of another class; `not_your_authority` (403) another authority;
        `not_passed_up` (409) an authority, or a note for it, before it was passed up;
        `thread_closed` (409); `empty_message`, `invalid_correction` (400)."""
        return await service.answer(
            principal,
            actor,
            outbox,
            thread_id,
            body=data.body,
            canned_answer_id=data.canned_answer_id,
            corrects=data.corrects,
            for_parent=data.for_parent,
        )

    @post(
        "/{thread_id:int}/pass-up",
        status_code=HTTP_200_OK,
        summary="Pass a question up to the education authority",
        operation_id="passThreadUp",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {
                403: "school_desk_only not_school_participant",
                409: "thread_closed already_passed_up",
            },
        ),
    )
    async def pass_up(
        self,
        thread_id: FromPath[int],
        data: JSONBody[PassUp],
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
    ) -> ThreadDetail:
        """Hand the question to the support staff of the authority administering the school
        (the county, or the city or province for a school it runs directly), with a `note`
        for them that the parent does not read. They are told and answer the school within 3
        working days; the school still answers the parent. Audited.

        **Who may call**: the child's class teacher, the school's registrars.

        **Errors**: `not_found` (404, audited); `school_desk_only` (403) another role;
        `not_school_participant` (403) a teacher of another class; `thread_closed` (409);
        `already_passed_up` (409) while the authority has not answered."""
        return await service.pass_up(principal, actor, outbox, thread_id, note=data.note)

    @post(
        "/{thread_id:int}/close",
        status_code=HTTP_200_OK,
        summary="Close a parent's question",
        operation_id="closeThread",
        responses=errors(
            SIGNED_IN,
            STAFF,
            BY_ID,
            {403: "answerers_only not_school_participant", 409: "thread_closed"},
        ),
    )
    async def close(
        self, thread_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ThreadDetail:
        """The question is settled; a new message from the parent reopens it. Audited.

        **Who may call**: the child's class teacher, the school's registrars.

        **Errors**: `not_found` (404); `answerers_only`, `not_school_participant` (403);
        `thread_closed` (409) already closed."""
        return await service.close(principal, actor, thread_id)


class ThreadPhotoController(Controller):
    path = "/thread-photos"
    tags = ["conversations"]

    @get(
        "/{photo_id:int}",
        media_type="image/jpeg",
        summary="Download a photo of a question",
        operation_id="getThreadPhoto",
        responses=errors(SIGNED_IN, BY_ID),
    )
    async def photo(
        self,
        photo_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        """A photo a parent sent with a message (upright JPEG, no metadata); never cached.

        **Who may call**: the parent who asked, and staff with the student in scope.

        **Errors**: `not_found` (404, audited) a photo missing or of a thread outside the
        caller's scope."""
        data = await service.photo_bytes(principal, actor, storage, photo_id)
        return Response(data, media_type="image/jpeg", headers=NO_STORE)


CANNED_ERRORS = {403: "answerers_only school_staff_only"}


class CannedAnswerController(Controller):
    path = "/canned-answers"
    tags = ["conversations"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List the school's canned answers",
        operation_id="listCannedAnswers",
        responses=errors(SIGNED_IN, STAFF, QUERY, CANNED_ERRORS),
    )
    async def list_answers(
        self,
        principal: PrincipalDep,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[CannedAnswerRead]:
        """The answers to common questions the school wrote once, by title, to pick one when
        answering a parent (`canned_answer_id`).

        **Who may call**: a class teacher or a registrar, for their school.

        **Errors**: `answerers_only` (403) another role; `school_staff_only` (403) staff of
        an authority; `validation_error` (400)."""
        return await canned.list_answers(principal, page=page, page_size=page_size)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Write a canned answer",
        operation_id="createCannedAnswer",
        responses=errors(SIGNED_IN, STAFF, JSON_BODY, {403: "registrars_only"}),
    )
    async def create(
        self, data: JSONBody[CannedAnswerWrite], principal: PrincipalDep, actor: ActorDep
    ) -> CannedAnswerRead:
        """A `title` and the answer's `body`, for the caller's school. Audited.

        **Who may call**: a registrar.

        **Errors**: `registrars_only` (403) another role; `validation_error` (400)."""
        return await canned.create(principal, actor, title=data.title, body=data.body)

    @put(
        "/{answer_id:int}",
        status_code=HTTP_200_OK,
        summary="Change a canned answer",
        operation_id="updateCannedAnswer",
        responses=errors(SIGNED_IN, STAFF, JSON_BODY, BY_ID, {403: "registrars_only"}),
    )
    async def update(
        self,
        answer_id: FromPath[int],
        data: JSONBody[CannedAnswerWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> CannedAnswerRead:
        """Replace its title and body (the messages that used it keep their text). Audited.

        **Who may call**: a registrar of the school.

        **Errors**: `registrars_only` (403); `not_found` (404, audited) another school's;
        `validation_error` (400)."""
        return await canned.update(principal, actor, answer_id, title=data.title, body=data.body)

    @delete(
        "/{answer_id:int}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a canned answer",
        operation_id="deleteCannedAnswer",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "registrars_only"}),
    )
    async def delete_answer(
        self, answer_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> None:
        """Remove it from the school's list (the messages that used it keep their text).
        Audited.

        **Who may call**: a registrar of the school.

        **Errors**: `registrars_only` (403); `not_found` (404, audited) another school's."""
        await canned.delete(principal, actor, answer_id)


ROUTES: list[Any] = [
    MyThreadController,
    ThreadController,
    ThreadPhotoController,
    CannedAnswerController,
]
