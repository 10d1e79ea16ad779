"""Tables of conversations: a thread a parent opens about their child, its messages (never
edited: a correction is a new message naming the one it corrects), their photos, each
participant's read marker, and a school's canned answers."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.scope_rules import OnMove, ScopedColumns, declare_scoped
from backend.accounts.tables import Account, School, SchoolClass
from backend.records.tables import Student, confirmed_children
from backend.statuses import Lifecycle


class AboutKind(StrEnum):
    """What a parent's question is about (a row of their own child's)."""

    record = "record"  # the child's record (the student id)
    form = "form"  # an issued confirmation form
    verdict = "verdict"  # the photo check's verdict on an upload
    change_request = "change_request"


class ThreadState(StrEnum):
    """Where a thread stands (`THREAD_STATE`)."""

    open = "open"  # the parent waits for the school's answer
    answered = "answered"  # the school answered the parent
    closed = "closed"  # by the parent or the school; a new parent message reopens it


class Side(StrEnum):
    """Who wrote a message, and so who reads it."""

    parent = "parent"
    school = "school"  # the class teacher or a registrar
    authority = "authority"  # the administering authority's support staff


class Thread(Table, tablename="thread"):
    id = Serial(primary_key=True)
    parent = ForeignKey(references=Account, index=True, on_delete=OnDelete.restrict)
    about_kind = Varchar(length=20)  # AboutKind
    about_id = Integer()
    state = Varchar(length=10, default=ThreadState.open.value, index=True)
    # Where the student is, for scopes (and for moves)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    due_on = Date(null=True, default=None)  # the school's answer, while open (China time)
    # Passed up to the administering authority: its region and the role that answers there
    passed_up_at = Timestamptz(null=True, default=None)
    authority_region = Varchar(length=6, null=True, default=None, index=True)
    authority_role = Varchar(length=20, null=True, default=None)
    authority_due_on = Date(null=True, default=None)  # while the authority has not answered
    authority_answered_at = Timestamptz(null=True, default=None)
    last_message_at = Timestamptz()
    created_at = Timestamptz()


THREAD_STATE = Lifecycle(
    Thread.state,
    {
        ThreadState.open: {ThreadState.answered, ThreadState.closed},
        ThreadState.answered: {ThreadState.open, ThreadState.closed},
        ThreadState.closed: {ThreadState.open},
    },
)


# Follows the student: the question is about the child's record, which the new school now
# holds and answers for. A parent reads only the threads they opened about a child whose
# link is confirmed.
declare_scoped(
    Thread,
    ScopedColumns(
        region=Thread.region_code,
        school=Thread.school,
        school_class=Thread.school_class,
        guardian=lambda account_id: (
            (Thread.parent == account_id) & Thread.student.is_in(confirmed_children(account_id))
        ),
        student=Thread.student,
        on_move=OnMove.follows,
    ),
)


class Message(Table, tablename="thread_message"):
    """One message, never edited. `for_parent` false: between the school and the authority
    (a note passing it up, the authority's answer), which the parent does not read."""

    id = Serial(primary_key=True)
    thread = ForeignKey(references=Thread, index=True, on_delete=OnDelete.cascade)
    author = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    side = Varchar(length=10)  # Side
    body = Text()
    for_parent = Boolean(default=True)
    corrects = Integer(null=True, default=None)  # the id of an earlier message of the thread
    canned_answer = Integer(null=True, default=None)  # the canned answer it started from
    created_at = Timestamptz()


class MessagePhoto(Table, tablename="thread_photo"):
    """A photo with a parent's message (checked and cleaned like evidence photos)."""

    id = Serial(primary_key=True)
    message = ForeignKey(references=Message, index=True, on_delete=OnDelete.cascade)
    thread = ForeignKey(references=Thread, index=True, on_delete=OnDelete.cascade)
    storage_key = Varchar(length=200)
    content_type = Varchar(length=40)
    size_bytes = Integer()
    created_at = Timestamptz()


class ReadMarker(Table, tablename="thread_read"):
    """The last message of a thread one participant has read: what is unread is after it."""

    id = Serial(primary_key=True)
    thread = ForeignKey(references=Thread, on_delete=OnDelete.cascade)
    account = ForeignKey(references=Account, index=True, on_delete=OnDelete.cascade)
    last_read = Integer(default=0)  # a message id
    dedupe = Varchar(length=40, unique=True)  # "{thread}:{account}": one marker each


class CannedAnswer(Table, tablename="canned_answer"):
    """A school's answer to a common question, written once and picked when answering."""

    id = Serial(primary_key=True)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.cascade)
    region_code = Varchar(length=6)
    title = Varchar(length=60)
    body = Text()
    updated_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    updated_at = Timestamptz()


# A school's own texts; a registrar moves with no student.
declare_scoped(
    CannedAnswer, ScopedColumns(region=CannedAnswer.region_code, school=CannedAnswer.school)
)
