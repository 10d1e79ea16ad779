"""Tables of what parents and teachers do from the phone."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSONB,
    Boolean,
    ForeignKey,
    Integer,
    Real,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.scope_rules import OnMove, ScopedColumns, declare_scoped
from backend.accounts.tables import Account, School, SchoolClass
from backend.records.tables import Campaign, IssuedForm, Student, confirmed_children


class Upload(Table, tablename="upload"):
    """A photo of a signed confirmation form, as stored (upright, re-encoded, no EXIF)."""

    id = Serial(primary_key=True)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    campaign = ForeignKey(references=Campaign, index=True, on_delete=OnDelete.restrict)
    form = ForeignKey(references=IssuedForm, null=True, default=None, on_delete=OnDelete.restrict)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    uploaded_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    on_behalf = Boolean(default=False)  # a teacher uploaded it for the family
    storage_key = Varchar(length=200)
    content_hash = Varchar(length=64, index=True)  # of the bytes received
    width = Integer()
    height = Integer()
    # uploaded (waiting for its check), checking, a verdict, or check_failed
    status = Varchar(length=24, default="uploaded", index=True)
    check_attempts = Integer(default=0)
    check_started_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    # The same photo sent again: the family's state follows the photo sent last, by
    # COALESCE(last_sent_at, created_at) (`parents.states`).
    last_sent_at = Timestamptz(null=True, default=None)


# Follows the student: the photo confirms the child's record, which the new school now
# holds and answers for; its teacher helps the family with the check, and the old school no
# longer needs the child's photos.
declare_scoped(
    Upload,
    ScopedColumns(
        region=Upload.region_code,
        school=Upload.school,
        school_class=Upload.school_class,
        guardian=lambda account_id: Upload.student.is_in(confirmed_children(account_id)),
        student=Upload.student,
        on_move=OnMove.follows,
    ),
)


class UploadCheck(Table, tablename="upload_check"):
    """The photo check's report: one per upload, however often the job ran."""

    id = Serial(primary_key=True)
    upload = ForeignKey(references=Upload, unique=True, on_delete=OnDelete.cascade)
    verdict = Varchar(length=24)
    message = Text()  # for the parent, in Chinese
    retake_reason = Varchar(length=32, null=True, default=None)
    form_id_read = Varchar(length=40, null=True, default=None)
    # code → {text, confidence, match (printed snapshot), current_match, method}
    fields = JSONB(default={})
    differing = JSONB(default=[])
    corrections = JSONB(default=[])  # codes of correction cells with handwriting
    outdated = JSONB(default=[])  # codes whose record changed after the form was printed
    signed = Boolean(default=False)
    date_written = Boolean(default=False)
    seconds = Real(default=0.0)
    timings = JSONB(default={})
    created_at = Timestamptz()


class DraftState(StrEnum):
    """Where a correction written on paper stands (`backend.parents.drafts.TRANSITIONS`)."""

    draft = "draft"  # found by the photo check, waiting for the teacher to read it
    legible = "legible"  # the teacher can read it: ready to be transcribed
    illegible = "illegible"  # the teacher cannot: the family is asked for a new photo


class CorrectionDraft(Table, tablename="correction_draft"):
    """A correction a parent wrote on paper: the crop of the cell, read by the teacher or
    registrar (legible or not), then transcribed (the correction flow builds on these)."""

    id = Serial(primary_key=True)
    upload = ForeignKey(references=Upload, index=True, on_delete=OnDelete.cascade)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    field_code = Varchar(length=40)
    crop_key = Varchar(length=200)
    state = Varchar(length=16, default=DraftState.draft.value, index=True)  # DraftState
    decided_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    decided_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


# Follows the student: a correction to the record goes to whoever holds the record now, and
# a draft is seen wherever its photo is.
declare_scoped(
    CorrectionDraft,
    ScopedColumns(
        region=CorrectionDraft.region_code,
        school=CorrectionDraft.school,
        school_class=CorrectionDraft.school_class,
        student=CorrectionDraft.student,
        on_move=OnMove.follows,
    ),
)
