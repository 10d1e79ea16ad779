"""Conversations: a parent asks about their own child's record, form, verdict or change
request; the child's class teacher and the school's registrars answer; the school may pass
the thread up to its administering authority's support staff, who answer the school.

Who reads what (notice 001: schools answer parents, authorities answer schools):

- the parent reads the thread they opened, except the notes between the school and the
  authority (`for_parent` false: a note passing it up, the authority's answers); the school
  relays what the authority said in its own answer;
- the school (class teacher, registrars; any staff with the student in scope) and, once
  passed up, the authority read every message.

A thread is `open` while the parent waits for the school (due 3 working days after the
parent's last question), `answered` once the school answers the parent, `closed` by either
side; a new message from the parent reopens it. Passed up, the authority's own due date runs
from that day until it answers. Messages are never edited: a correction is a new message
naming the one it corrects. Anything outside the caller's scope answers 404, audited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from piccolo.columns import Column
from piccolo.table import Table
from redis.asyncio import Redis

from backend import quota
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import (
    AUTHORITY_ROLE,
    Administration,
    Role,
    ScopeKind,
    administering_region,
)
from backend.accounts.scope import get_scoped, scoped
from backend.accounts.tables import Account, AccountStatus, School
from backend.db import transaction
from backend.errors import BadRequest, Conflict, DomainError, Forbidden, NotFound, TooManyAttempts
from backend.messages.schemas import (
    ABOUT_LABEL,
    MAX_PHOTOS,
    SIDE_LABEL,
    STATE_LABEL,
    MessageRead,
    PhotoRead,
    ThreadDetail,
    ThreadRead,
)
from backend.messages.tables import (
    THREAD_STATE,
    AboutKind,
    CannedAnswer,
    Message,
    MessagePhoto,
    ReadMarker,
    Side,
    Thread,
    ThreadState,
)
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.notify.schedule import Due, due_state
from backend.outbox import Outbox
from backend.pages import Page, window
from backend.parents.photos import strip_metadata
from backend.parents.tables import Upload
from backend.records.evidence import EvidencePhoto, store_photos
from backend.records.review_tables import ChangeRequest, EvidenceKind
from backend.records.tables import IssuedForm, Student, confirmed_children
from backend.storage import Storage
from backend.workdays import CHINA, add_working_days

ANSWER_DAYS = 3  # working days for the school's (or, passed up, the authority's) answer
THREADS_PER_DAY = 5  # a parent's new threads a day
MESSAGES_PER_HOUR = 20  # a parent's messages an hour (a new thread's first one counted)
HOUR, DAY = 3600, 24 * 3600

SCHOOL_DESK = frozenset({Role.teacher, Role.registrar})
# Control characters other than line breaks and tabs: nothing a person typed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

ABOUT: dict[AboutKind, tuple[type[Table], Column, str]] = {
    AboutKind.record: (Student, Student.id, "student"),
    AboutKind.form: (IssuedForm, IssuedForm.student, "issued_form"),
    AboutKind.verdict: (Upload, Upload.student, "upload"),
    AboutKind.change_request: (ChangeRequest, ChangeRequest.student, "change_request"),
}


class EmptyMessage(BadRequest):
    code = "empty_message"
    message = "请填写咨询内容"


class TooManyThreadPhotos(BadRequest):
    code = "too_many_photos"
    message = f"每条消息最多附 {MAX_PHOTOS} 张照片"


class InvalidCorrection(BadRequest):
    code = "invalid_correction"
    message = "只能更正本咨询中自己发出的消息"


class ThreadClosed(Conflict):
    code = "thread_closed"
    message = "该咨询已关闭"


class NotPassedUp(Conflict):
    code = "not_passed_up"
    message = "该咨询未转交上级部门"


class AlreadyPassedUp(Conflict):
    code = "already_passed_up"
    message = "该咨询已转交上级部门，正在等待答复"


class NotYourAuthority(Forbidden):
    code = "not_your_authority"
    message = "该咨询转交给了其他教育行政部门"


class NotYourThread(Forbidden):
    code = "not_school_participant"
    message = "只有该学生的班主任和本校学籍管理员可以答复家长"


# --- reading -------------------------------------------------------------------------------


def _today(now: datetime) -> date:
    return now.astimezone(CHINA).date()


def is_overdue(row: dict[str, Any], today: date) -> bool:
    """Past due for whoever holds it: the school while open, the authority until it answers."""
    school = row["state"] == ThreadState.open.value and row["due_on"] is not None
    authority = row["passed_up_at"] is not None and row["authority_answered_at"] is None
    return (school and due_state(row["due_on"], today) is Due.overdue) or (
        authority
        and row["authority_due_on"] is not None
        and due_state(row["authority_due_on"], today) is Due.overdue
    )


def _read(row: dict[str, Any], unread: int, today: date) -> dict[str, Any]:
    state = ThreadState(row["state"])
    return {
        "id": row["id"],
        "about_kind": AboutKind(row["about_kind"]),
        "about_label": ABOUT_LABEL[AboutKind(row["about_kind"])],
        "about_id": row["about_id"],
        "student_id": row["student"],
        "state": state,
        "state_label": STATE_LABEL[state],
        "due_on": row["due_on"],
        "overdue": is_overdue(row, today),
        "passed_up": row["passed_up_at"] is not None,
        "passed_up_at": row["passed_up_at"],
        "authority_due_on": row["authority_due_on"],
        "authority_answered": row["authority_answered_at"] is not None,
        "unread": unread,
        "last_message_at": row["last_message_at"],
        "created_at": row["created_at"],
    }


def _for_parent_only(principal: Principal) -> bool:
    return principal.role is Role.parent


async def _unread(principal: Principal, thread_ids: Sequence[int]) -> dict[int, int]:
    if not thread_ids:
        return {}
    markers = {
        row["thread"]: row["last_read"]
        for row in await ReadMarker.select(ReadMarker.thread, ReadMarker.last_read).where(
            ReadMarker.thread.is_in(list(thread_ids)) & (ReadMarker.account == principal.account_id)
        )
    }
    where = Message.thread.is_in(list(thread_ids)) & (Message.author != principal.account_id)
    if _for_parent_only(principal):
        where &= Message.for_parent == True  # noqa: E712 (a Piccolo expression)
    counts = dict.fromkeys(thread_ids, 0)
    for row in await Message.select(Message.thread, Message.id).where(where):
        if row["id"] > markers.get(row["thread"], 0):
            counts[row["thread"]] += 1
    return counts


async def _mark_read(thread_id: int, account_id: int, message_id: int) -> None:
    await ReadMarker.insert(
        ReadMarker(
            thread=thread_id,
            account=account_id,
            last_read=message_id,
            dedupe=f"{thread_id}:{account_id}",
        )
    ).on_conflict(target=ReadMarker.dedupe, action="DO UPDATE", values=[ReadMarker.last_read])


async def get_thread_row(principal: Principal, actor: Actor, thread_id: int) -> dict[str, Any]:
    """The thread in the caller's scope (a parent: one they opened about a child still
    theirs); 404 otherwise, audited."""
    return await get_scoped(
        actor, principal.scope, Thread, Thread.id == thread_id, "thread", thread_id
    )


async def detail(
    principal: Principal, actor: Actor, thread_id: int, *, now: datetime | None = None
) -> ThreadDetail:
    """The thread with the messages the caller reads, oldest first; marks them read."""
    row = await get_thread_row(principal, actor, thread_id)
    now = now or datetime.now(UTC)
    where: Any = Message.thread == thread_id
    if _for_parent_only(principal):
        where &= Message.for_parent == True  # noqa: E712
    messages = await Message.select().where(where).order_by(Message.id)
    photos: dict[int, list[PhotoRead]] = {}
    for photo in (
        await MessagePhoto.select(MessagePhoto.id, MessagePhoto.message)
        .where(MessagePhoto.thread == thread_id)
        .order_by(MessagePhoto.id)
    ):
        photos.setdefault(photo["message"], []).append(
            PhotoRead(photo["id"], f"/thread-photos/{photo['id']}")
        )
    unread = (await _unread(principal, [thread_id]))[thread_id]
    if messages:
        await _mark_read(thread_id, principal.account_id, messages[-1]["id"])
    return ThreadDetail(
        **_read(row, unread, _today(now)),
        messages=[
            MessageRead(
                id=m["id"],
                side=Side(m["side"]),
                side_label=SIDE_LABEL[Side(m["side"])],
                mine=m["author"] == principal.account_id,
                body=m["body"],
                for_parent=bool(m["for_parent"]),
                corrects=m["corrects"],
                created_at=m["created_at"],
                photos=photos.get(m["id"], []),
            )
            for m in messages
        ],
    )


@dataclass(frozen=True, slots=True)
class ThreadFilter:
    state: ThreadState | None = None
    overdue: bool | None = None
    passed_up: bool | None = None
    class_id: int | None = None
    student_id: int | None = None


async def list_threads(
    principal: Principal,
    filters: ThreadFilter,
    *,
    page: int,
    page_size: int,
    now: datetime | None = None,
) -> Page[ThreadRead]:
    """Threads in the caller's scope (a parent: their own), the latest message first, each
    with its unread count and due date. An authority's staff see what their schools passed
    up to them (the rest of their region's threads is the schools' business)."""
    now = now or datetime.now(UTC)
    today = _today(now)
    where: Any = Thread.id > 0
    if filters.state is not None:
        where &= Thread.state == filters.state.value
    if filters.passed_up is not None:
        where &= (
            Thread.passed_up_at.is_not_null()
            if filters.passed_up
            else Thread.passed_up_at.is_null()
        )
    if filters.class_id is not None:
        where &= Thread.school_class == filters.class_id
    if filters.student_id is not None:
        where &= Thread.student == filters.student_id
    if principal.role in AUTHORITY_ROLE.values() and principal.scope.kind is ScopeKind.region:
        where &= (Thread.authority_role == principal.role.value) & (
            Thread.authority_region == principal.scope.region_code
        )
    if filters.overdue is not None:
        overdue = ((Thread.state == ThreadState.open.value) & (Thread.due_on < today)) | (
            Thread.passed_up_at.is_not_null()
            & Thread.authority_answered_at.is_null()
            & (Thread.authority_due_on < today)
        )
        where &= overdue if filters.overdue else _not_overdue(today)
    w = window(page, page_size)
    query = (
        scoped(Thread.select().where(where), principal.scope, Thread)
        .order_by(Thread.last_message_at, ascending=False)
        .order_by(Thread.id, ascending=False)
    )
    count = scoped(Thread.count().where(where), principal.scope, Thread)
    rows, total = await w.fetch(query, count)
    unread = await _unread(principal, [r["id"] for r in rows])
    return w.page([ThreadRead(**_read(r, unread[r["id"]], today)) for r in rows], total)


def _not_overdue(today: date) -> Any:
    school_ok = (
        (Thread.state != ThreadState.open.value)
        | Thread.due_on.is_null()
        | (Thread.due_on >= today)
    )
    authority_ok = (
        Thread.passed_up_at.is_null()
        | Thread.authority_answered_at.is_not_null()
        | Thread.authority_due_on.is_null()
        | (Thread.authority_due_on >= today)
    )
    return school_ok & authority_ok


async def photo_bytes(principal: Principal, actor: Actor, storage: Storage, photo_id: int) -> bytes:
    """A photo of a message the caller reads (404 otherwise, audited)."""
    row = (
        await MessagePhoto.select(MessagePhoto.thread, MessagePhoto.storage_key)
        .where(MessagePhoto.id == photo_id)
        .first()
    )
    if row is None:
        raise NotFound()
    visible = await scoped(
        Thread.count().where(Thread.id == row["thread"]), principal.scope, Thread
    )
    if not visible:
        await audit.record(actor, "access_denied", "thread_photo", photo_id)
        raise NotFound()
    return strip_metadata(await storage.get(row["storage_key"]))


# --- who takes part -------------------------------------------------------------------------


async def _active(where: Any) -> list[int]:
    rows = await Account.select(Account.id).where(
        where & (Account.status == AccountStatus.active.value)
    )
    return [r["id"] for r in rows]


async def school_desk(thread: dict[str, Any]) -> list[int]:
    """The class teacher(s) and the school's registrars: who answer the parent."""
    return await _active(
        ((Account.role == Role.teacher.value) & (Account.school_class == thread["school_class"]))
        | ((Account.role == Role.registrar.value) & (Account.school == thread["school"]))
    )


async def school_leaders(thread: dict[str, Any]) -> list[int]:
    return await _active(
        (Account.role == Role.school_leader.value) & (Account.school == thread["school"])
    )


async def authority_staff(thread: dict[str, Any]) -> list[int]:
    """The administering authority's support staff a thread was passed up to."""
    if thread["authority_role"] is None:
        return []
    return await _active(
        (Account.role == thread["authority_role"])
        & (Account.region_code == thread["authority_region"])
    )


ABOVE: dict[str, tuple[Role, int]] = {
    # an authority's role → the level above it, and how many digits of the region it keeps
    Role.county_reviewer.value: (Role.city_admin, 4),
    Role.city_admin.value: (Role.province_admin, 2),
}


async def above_authority(thread: dict[str, Any]) -> list[int]:
    """The level above the authority a thread was passed up to (none above a province)."""
    above = ABOVE.get(thread["authority_role"] or "")
    if above is None:
        return []
    role, digits = above
    region = thread["authority_region"][:digits].ljust(6, "0")
    return await _active((Account.role == role.value) & (Account.region_code == region))


# --- writing --------------------------------------------------------------------------------


def clean_body(body: str, *, required: bool = True) -> str:
    text = _CONTROL.sub("", body).strip()
    if required and not text:
        raise EmptyMessage(field_errors={"body": EmptyMessage.message})
    return text


async def _take_quota(redis: Redis, principal: Principal, new_thread: bool) -> list[quota.Quota]:
    """One message (and, for a new thread, one thread) of the parent's limits, or 429."""
    hourly = quota.Quota(f"thread-quota:{principal.account_id}:messages", MESSAGES_PER_HOUR, HOUR)
    daily = quota.Quota(f"thread-quota:{principal.account_id}:threads", THREADS_PER_DAY, DAY)
    taken = [hourly, daily] if new_thread else [hourly]
    refused = await quota.take(redis, taken)
    if refused is None:
        return taken
    wait = f"请 {max(refused.retry_after // 60, 1)} 分钟后再试"
    if refused.quota is daily:
        message = f"您今天已发起 {THREADS_PER_DAY} 条咨询，达到每日上限，{wait}"
    else:
        message = f"您每小时最多发送 {MESSAGES_PER_HOUR} 条消息，{wait}"
    raise TooManyAttempts(message, code="too_many_messages", retry_after=refused.retry_after)


async def _store(
    redis: Redis,
    taken: list[quota.Quota],
    storage: Storage,
    student_id: int,
    photos: Sequence[bytes],
) -> list[Any]:
    """Check, clean and store the photos; a refused photo gives the message's use back."""
    try:
        return await store_photos(
            storage, student_id, [EvidencePhoto(EvidenceKind.other, data) for data in photos]
        )
    except DomainError as exc:  # the evidence rules speak of its kind's part: ours is `photo`
        await quota.give_back(redis, taken)
        if exc.field_errors:
            exc.field_errors = {"photo": exc.message}
        raise


async def _child_of(principal: Principal, actor: Actor, kind: AboutKind, about_id: int) -> int:
    """The student a parent's question is about: a row of one of their confirmed children,
    else 404 (audited when the row exists)."""
    table, student, entity = ABOUT[kind]
    pk = table._meta.primary_key
    row = (
        await table.select(student.as_alias("student"))
        .where((pk == about_id) & student.is_in(confirmed_children(principal.account_id)))
        .first()
    )
    if row is not None:
        return int(row["student"])
    if await table.exists().where(pk == about_id):
        await audit.record(actor, "access_denied", entity, about_id)
    raise NotFound()


async def _check_correction(thread_id: int, author: int, corrects: int | None) -> None:
    if corrects is None:
        return
    if not await Message.exists().where(
        (Message.id == corrects) & (Message.thread == thread_id) & (Message.author == author)
    ):
        raise InvalidCorrection(field_errors={"corrects": InvalidCorrection.message})


async def _add_message(
    thread_id: int,
    principal: Principal,
    side: Side,
    body: str,
    now: datetime,
    *,
    for_parent: bool = True,
    corrects: int | None = None,
    canned_answer: int | None = None,
    photos: Sequence[Any] = (),
) -> int:
    message_id: int = (
        await Message.insert(
            Message(
                thread=thread_id,
                author=principal.account_id,
                side=side.value,
                body=body,
                for_parent=for_parent,
                corrects=corrects,
                canned_answer=canned_answer,
                created_at=now,
            )
        ).returning(Message.id)
    )[0]["id"]
    if photos:
        await MessagePhoto.insert(
            *(
                MessagePhoto(
                    message=message_id,
                    thread=thread_id,
                    storage_key=p.storage_key,
                    content_type=p.content_type,
                    size_bytes=p.size_bytes,
                    created_at=now,
                )
                for p in photos
            )
        )
    await Thread.update({Thread.last_message_at: now}).where(Thread.id == thread_id)
    await _mark_read(thread_id, principal.account_id, message_id)
    return message_id


async def ask(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    redis: Redis,
    outbox: Outbox,
    *,
    about_kind: AboutKind,
    about_id: int,
    body: str,
    photos: Sequence[bytes] = (),
    now: datetime | None = None,
) -> ThreadDetail:
    """A parent's new question about their own child: the class teacher and the school's
    registrars are told (`thread_new`); due in 3 working days."""
    require(principal, Action.ask_question)
    now = now or datetime.now(UTC)
    text = clean_body(body)
    student_id = await _child_of(principal, actor, about_kind, about_id)
    if len(photos) > MAX_PHOTOS:
        raise TooManyThreadPhotos(field_errors={"photo": TooManyThreadPhotos.message})
    taken = await _take_quota(redis, principal, new_thread=True)
    stored = await _store(redis, taken, storage, student_id, photos)
    student = (
        await Student.select(Student.school, Student.school_class, Student.region_code)
        .where(Student.id == student_id)
        .first()
    )
    assert student is not None
    async with transaction():
        thread_id: int = (
            await Thread.insert(
                Thread(
                    parent=principal.account_id,
                    about_kind=about_kind.value,
                    about_id=about_id,
                    state=ThreadState.open.value,
                    student=student_id,
                    school=student["school"],
                    school_class=student["school_class"],
                    region_code=student["region_code"],
                    due_on=add_working_days(_today(now), ANSWER_DAYS),
                    last_message_at=now,
                    created_at=now,
                )
            ).returning(Thread.id)
        )[0]["id"]
        message_id = await _add_message(thread_id, principal, Side.parent, text, now, photos=stored)
        thread = await _thread(thread_id)
        await notify(
            outbox,
            await school_desk(thread),
            Note(
                Category.thread_new,
                "有一条新的家长咨询",
                subject=("thread", thread_id),
                once=f"thread_new:{message_id}",
            ),
            now=now,
        )
        await audit.record(
            actor,
            "ask",
            "thread",
            thread_id,
            after={"about": about_kind.value, "about_id": about_id, "photos": len(stored)},
        )
    return await detail(principal, actor, thread_id, now=now)


async def _thread(thread_id: int) -> dict[str, Any]:
    row = await Thread.select().where(Thread.id == thread_id).first()
    assert row is not None
    return row


async def parent_writes(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    redis: Redis,
    outbox: Outbox,
    thread_id: int,
    *,
    body: str,
    corrects: int | None = None,
    photos: Sequence[bytes] = (),
    now: datetime | None = None,
) -> ThreadDetail:
    """The parent writes again: the thread is open again (due 3 working days from now) and
    the school is told."""
    require(principal, Action.ask_question)
    now = now or datetime.now(UTC)
    thread = await get_thread_row(principal, actor, thread_id)
    text = clean_body(body)
    await _check_correction(thread_id, principal.account_id, corrects)
    if len(photos) > MAX_PHOTOS:
        raise TooManyThreadPhotos(field_errors={"photo": TooManyThreadPhotos.message})
    taken = await _take_quota(redis, principal, new_thread=False)
    stored = await _store(redis, taken, storage, thread["student"], photos)
    async with transaction():
        state = ThreadState(thread["state"])
        due = add_working_days(_today(now), ANSWER_DAYS)
        if state is ThreadState.open:
            await Thread.update({Thread.due_on: due}).where(Thread.id == thread_id)
        else:
            await THREAD_STATE.move(thread_id, ThreadState.open, values={Thread.due_on: due})
        message_id = await _add_message(
            thread_id, principal, Side.parent, text, now, corrects=corrects, photos=stored
        )
        await notify(
            outbox,
            await school_desk(thread),
            Note(
                Category.thread_new,
                "家长咨询有新消息",
                subject=("thread", thread_id),
                once=f"thread_new:{message_id}",
            ),
            now=now,
        )
        await audit.record(actor, "write", "thread", thread_id, after={"message": message_id})
    return await detail(principal, actor, thread_id, now=now)


def _is_school_desk(principal: Principal, thread: dict[str, Any]) -> bool:
    if principal.role is Role.teacher:
        return bool(principal.scope.class_id == thread["school_class"])
    return principal.role is Role.registrar and bool(principal.scope.school_id == thread["school"])


def _is_authority(principal: Principal, thread: dict[str, Any]) -> bool:
    return bool(
        thread["authority_role"] == principal.role.value
        and thread["authority_region"] == principal.scope.region_code
    )


async def answer(
    principal: Principal,
    actor: Actor,
    outbox: Outbox,
    thread_id: int,
    *,
    body: str,
    canned_answer_id: int | None = None,
    corrects: int | None = None,
    for_parent: bool = True,
    now: datetime | None = None,
) -> ThreadDetail:
    """The school answers the parent (`answered`; the parent is told), or writes a note to
    the authority it passed the thread to (`for_parent` false); the authority answers the
    school (the school's teacher and registrars are told)."""
    require(principal, Action.answer_thread)
    now = now or datetime.now(UTC)
    thread = await get_thread_row(principal, actor, thread_id)
    if thread["state"] == ThreadState.closed.value:
        raise ThreadClosed()
    school = _is_school_desk(principal, thread)
    if not school and principal.role in SCHOOL_DESK:
        raise NotYourThread()
    if not school:
        if thread["passed_up_at"] is None:
            raise NotPassedUp()
        if not _is_authority(principal, thread):
            raise NotYourAuthority()
    text = clean_body(body, required=canned_answer_id is None)
    if canned_answer_id is not None:
        if not school:
            raise NotFound()
        canned = (
            await CannedAnswer.select(CannedAnswer.body)
            .where(
                (CannedAnswer.id == canned_answer_id) & (CannedAnswer.school == thread["school"])
            )
            .first()
        )
        if canned is None:
            raise NotFound(field_errors={"canned_answer_id": "没有这条常见问题答复"})
        text = text or canned["body"]
    await _check_correction(thread_id, principal.account_id, corrects)
    async with transaction():
        if not school:
            message_id = await _add_message(
                thread_id, principal, Side.authority, text, now, for_parent=False, corrects=corrects
            )
            await Thread.update(
                {Thread.authority_answered_at: now, Thread.authority_due_on: None}
            ).where(Thread.id == thread_id)
            recipients = await school_desk(thread)
            note = Note(Category.thread_answered, "上级部门答复了转交的咨询")
        elif for_parent:
            message_id = await _add_message(
                thread_id,
                principal,
                Side.school,
                text,
                now,
                corrects=corrects,
                canned_answer=canned_answer_id,
            )
            if thread["state"] == ThreadState.open.value:
                await THREAD_STATE.move(
                    thread_id, ThreadState.answered, values={Thread.due_on: None}
                )
            recipients = [thread["parent"]]
            note = Note(Category.thread_answered, "您的咨询有新回复")
        else:
            if thread["passed_up_at"] is None:
                raise NotPassedUp()
            message_id = await _add_message(
                thread_id, principal, Side.school, text, now, for_parent=False, corrects=corrects
            )
            recipients = await authority_staff(thread)
            note = Note(Category.thread_passed_up, "学校转交的咨询有新消息")
        await notify(
            outbox,
            [r for r in recipients if r != principal.account_id],
            Note(
                note.category,
                note.title,
                subject=("thread", thread_id),
                once=f"{note.category.value}:{message_id}",
            ),
            now=now,
        )
        await audit.record(actor, "answer", "thread", thread_id, after={"message": message_id})
    return await detail(principal, actor, thread_id, now=now)


async def pass_up(
    principal: Principal,
    actor: Actor,
    outbox: Outbox,
    thread_id: int,
    *,
    note: str = "",
    now: datetime | None = None,
) -> ThreadDetail:
    """The school hands the thread to the support staff of the authority that administers it
    (`roles.AUTHORITY_ROLE`): due from them in 3 working days; they are told
    (`thread_passed_up`). The thread stays the school's to answer the parent."""
    require(principal, Action.pass_thread_up)
    now = now or datetime.now(UTC)
    thread = await get_thread_row(principal, actor, thread_id)
    if not _is_school_desk(principal, thread):
        raise NotYourThread()
    if thread["state"] == ThreadState.closed.value:
        raise ThreadClosed()
    if thread["passed_up_at"] is not None and thread["authority_answered_at"] is None:
        raise AlreadyPassedUp()
    text = clean_body(note, required=False)
    school = (
        await School.select(School.region_code, School.administered_by)
        .where(School.id == thread["school"])
        .first()
    )
    assert school is not None
    administration = Administration(school["administered_by"])
    region = administering_region(school["region_code"], administration)
    role = AUTHORITY_ROLE[administration]
    async with transaction():
        await Thread.update(
            {
                Thread.passed_up_at: now,
                Thread.authority_region: region,
                Thread.authority_role: role.value,
                Thread.authority_due_on: add_working_days(_today(now), ANSWER_DAYS),
                Thread.authority_answered_at: None,
            }
        ).where(Thread.id == thread_id)
        message_id = None
        if text:
            message_id = await _add_message(
                thread_id, principal, Side.school, text, now, for_parent=False
            )
        passed = await _thread(thread_id)
        await notify(
            outbox,
            await authority_staff(passed),
            Note(
                Category.thread_passed_up,
                "有一条学校转交的咨询",
                subject=("thread", thread_id),
                once=f"thread_passed_up:{thread_id}:{now.isoformat()}",
            ),
            now=now,
        )
        await audit.record(
            actor,
            "pass_up",
            "thread",
            thread_id,
            after={"authority": region, "role": role.value, "message": message_id},
        )
    return await detail(principal, actor, thread_id, now=now)


async def close(
    principal: Principal, actor: Actor, thread_id: int, *, now: datetime | None = None
) -> ThreadDetail:
    """The parent or the school closes the thread; a new message from the parent reopens it."""
    thread = await get_thread_row(principal, actor, thread_id)
    if principal.role is Role.parent:
        require(principal, Action.ask_question)
    else:
        require(principal, Action.answer_thread)
        if not _is_school_desk(principal, thread):
            raise NotYourThread()
    async with transaction():
        moved = await THREAD_STATE.move(
            thread_id,
            ThreadState.closed,
            sources={ThreadState.open, ThreadState.answered},
            values={Thread.due_on: None},
        )
        if not moved:
            raise ThreadClosed()
        await audit.record(actor, "close", "thread", thread_id)
    return await detail(principal, actor, thread_id, now=now)
