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
from backend.records.review_tables import ChangeRequest
from backend.records.tables import Campaign, IssuedForm, Student, confirmed_children
from backend.statuses import Lifecycle


class ServerVerdict(StrEnum):
    """The reader's verdicts (`backend.ocr.Verdict`, same precedence), and two that only the
    records can tell, both asking for the newest sheet: `record_changed`, the record changed
    after the photographed sheet was printed (the report lists what changed), and
    `form_superseded`, the class was printed again since that sheet and nothing on it is
    wrong. A changed record outranks a newer printing: it is what the family must know."""

    retake = "retake"
    not_this_form = "not_this_form"
    record_changed = "record_changed"
    form_superseded = "form_superseded"
    differs = "differs"
    corrections_written = "corrections_written"
    unsigned = "unsigned"
    undated = "undated"
    matches = "matches"


class UploadStatus(StrEnum):
    """Where an upload is (`UPLOAD_STATUS`): waiting for its check, being checked, the
    check's verdict (`ServerVerdict`), or `check_failed` (the school checks it by hand)."""

    uploaded = "uploaded"
    checking = "checking"
    retake = "retake"
    not_this_form = "not_this_form"
    record_changed = "record_changed"
    form_superseded = "form_superseded"
    differs = "differs"
    corrections_written = "corrections_written"
    unsigned = "unsigned"
    undated = "undated"
    matches = "matches"
    check_failed = "check_failed"


VERDICTS = frozenset(UploadStatus(v.value) for v in ServerVerdict)  # fails at import if one lacks


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
    status = Varchar(length=24, default=UploadStatus.uploaded.value, index=True)
    check_attempts = Integer(default=0)
    check_started_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    # The same photo sent again: the family's state follows the photo sent last, by
    # COALESCE(last_sent_at, created_at) (`parents.states`).
    last_sent_at = Timestamptz(null=True, default=None)


# checking → checking: a lease that ran out is taken over; checking → uploaded: a failed try
# waits for the next; uploaded → check_failed: the sweeper gives up on one out of tries.
# check_failed → a verdict: a check that finishes after the sweeper gave up still tells.
# corrections_written → retake: the teacher cannot read a correction (`parents.drafts`).
UPLOAD_STATUS = Lifecycle(
    Upload.status,
    {
        UploadStatus.uploaded: {UploadStatus.checking, UploadStatus.check_failed},
        UploadStatus.checking: {
            UploadStatus.checking,
            UploadStatus.uploaded,
            UploadStatus.check_failed,
            *VERDICTS,
        },
        UploadStatus.corrections_written: {UploadStatus.retake},
        **{verdict: () for verdict in VERDICTS - {UploadStatus.corrections_written}},
        UploadStatus.check_failed: VERDICTS,
    },
)


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
    verdict = Varchar(length=24)  # ServerVerdict, written once
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
    """Where a correction written on paper stands (`DRAFT_STATE`)."""

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
    state = Varchar(length=16, default=DraftState.draft.value, index=True)
    decided_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    decided_at = Timestamptz(null=True, default=None)
    # The change request a legible draft was transcribed into (`records.change_requests`)
    change_request = ForeignKey(
        references=ChangeRequest, null=True, default=None, on_delete=OnDelete.set_null
    )
    created_at = Timestamptz()


# A decided draft stays decided: an illegible one has already sent the family back to the
# camera, and the new photo brings new drafts.
DRAFT_STATE = Lifecycle(
    CorrectionDraft.state,
    {
        DraftState.draft: {DraftState.legible, DraftState.illegible},
        DraftState.legible: (),
        DraftState.illegible: (),
    },
)


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
