"""What the conversation endpoints take and answer: states and sides with their Chinese
labels beside them, no names (who wrote is a side: the parent, the school, the authority)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile

from backend.messages.tables import AboutKind, Side, ThreadState

MAX_BODY = 2000
MAX_PHOTOS = 3

Body = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_BODY,
        description=f"The message, plain text, at most {MAX_BODY} characters",
        examples=["孩子的出生日期印错了，应该怎么改？"],
    ),
]
OptionalId = Annotated[int, msgspec.Meta(ge=1, le=2_147_483_647)] | None

STATE_LABEL = {
    ThreadState.open: "待答复",
    ThreadState.answered: "已答复",
    ThreadState.closed: "已关闭",
}
SIDE_LABEL = {Side.parent: "家长", Side.school: "学校", Side.authority: "教育行政部门"}
ABOUT_LABEL = {
    AboutKind.record: "学籍信息",
    AboutKind.form: "信息确认表",
    AboutKind.verdict: "确认表核对结果",
    AboutKind.change_request: "更正申请",
}


@dataclass(kw_only=True)
class ThreadCreate:
    """A parent's question, as `multipart/form-data`: what it is about (`about_kind` and
    `about_id`), the text, and up to 3 photos in parts named `photo`."""

    about_kind: AboutKind
    about_id: Annotated[int, msgspec.Meta(ge=1, le=2_147_483_647)]
    body: Body
    photo: list[UploadFile] | None = None


@dataclass(kw_only=True)
class ParentMessageCreate:
    """A parent writes again, as `multipart/form-data`: the text, `corrects` (the id of one of
    my earlier messages this one corrects), up to 3 photos in parts named `photo`."""

    body: Body
    corrects: OptionalId = None
    photo: list[UploadFile] | None = None


class AnswerCreate(msgspec.Struct, forbid_unknown_fields=True):
    """The school's or the authority's message. `for_parent` false: a note between the school
    and its authority, which the parent does not read (the authority's always are)."""

    body: Body = ""
    canned_answer_id: OptionalId = None  # the school's canned answer: its text when body is empty
    corrects: OptionalId = None
    for_parent: bool = True


class PassUp(msgspec.Struct, forbid_unknown_fields=True):
    """Why the school passes the thread up (read by the authority, not by the parent)."""

    note: Body = ""


class PhotoRead(msgspec.Struct):
    id: int
    url: str


class MessageRead(msgspec.Struct):
    id: int
    side: Side
    side_label: str
    mine: bool
    body: str
    for_parent: bool
    corrects: int | None
    created_at: datetime
    photos: list[PhotoRead]


class ThreadRead(msgspec.Struct):
    id: int
    about_kind: AboutKind
    about_label: str
    about_id: int
    student_id: int
    state: ThreadState
    state_label: str
    due_on: date | None  # the school's answer is due by the end of this day (China time)
    overdue: bool  # for whoever holds it now: the school, or the authority once passed up
    passed_up: bool
    passed_up_at: datetime | None
    authority_due_on: date | None  # the authority's answer, while it has not given it
    authority_answered: bool
    unread: int  # messages I have not read (my own not counted)
    last_message_at: datetime
    created_at: datetime


class ThreadDetail(ThreadRead, kw_only=True):
    messages: list[MessageRead]


class CannedAnswerWrite(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=60, examples=["如何更正出生日期"])]
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_BODY)]


class CannedAnswerRead(msgspec.Struct):
    id: int
    title: str
    body: str
    updated_at: datetime
