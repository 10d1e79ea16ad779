"""The phone's lists: a parent's children, a teacher's class and a registrar's school, each
family with the state of its confirmation form in the current campaign."""

from __future__ import annotations

from typing import Any

from backend import masking
from backend.accounts.audit import Actor
from backend.accounts.org import MAX_PAGE_SIZE, paginate
from backend.accounts.principal import Principal
from backend.accounts.schemas import Page
from backend.accounts.scope import get_scoped, scoped
from backend.accounts.tables import SchoolClass
from backend.db import json_value
from backend.parents.checks import CHECK_FAILED_MESSAGE
from backend.parents.schemas import ChildStatus, FamilyStatus, FieldCheck, FormState, FormStatus
from backend.parents.tables import Upload, UploadCheck
from backend.records.campaigns import active_campaign
from backend.records.catalog import BY_CODE
from backend.records.tables import IssuedForm, Student


async def form_statuses(students: list[dict[str, Any]]) -> dict[int, FormStatus]:
    """Each student's form and latest upload in the campaign now open for its region."""
    campaigns: dict[str, dict[str, Any] | None] = {}
    for region in {s["region_code"] for s in students}:
        campaigns[region] = await active_campaign(region)
    ids = [s["id"] for s in students]
    forms: dict[int, dict[str, Any]] = {}
    uploads: dict[int, dict[str, Any]] = {}
    if ids:
        for form in await IssuedForm.select(
            IssuedForm.student, IssuedForm.campaign, IssuedForm.form_id
        ).where(IssuedForm.student.is_in(ids) & IssuedForm.superseded_at.is_null()):
            forms[(form["student"], form["campaign"])] = form  # type: ignore[index]
        for upload in await Upload.select().where(Upload.student.is_in(ids)).order_by(Upload.id):
            uploads[(upload["student"], upload["campaign"])] = upload  # type: ignore[index]
    reports = await _reports([u["id"] for u in uploads.values()])
    result: dict[int, FormStatus] = {}
    for student in students:
        campaign = campaigns[student["region_code"]]
        if campaign is None:
            result[student["id"]] = FormStatus(
                None, None, False, None, FormState.no_campaign, None, None, None, None
            )
            continue
        key = (student["id"], campaign["id"])
        form = forms.get(key)  # type: ignore[call-overload]
        upload = uploads.get(key)  # type: ignore[call-overload]
        status = (
            "not_issued"
            if form is None
            else ("not_uploaded" if upload is None else upload["status"])
        )
        report = reports.get(upload["id"]) if upload else None
        result[student["id"]] = FormStatus(
            campaign_id=campaign["id"],
            campaign_name=campaign["name"],
            form_issued=form is not None,
            form_id=form["form_id"] if form else None,
            status=FormState(status),
            upload_id=upload["id"] if upload else None,
            uploaded_at=upload["created_at"] if upload else None,
            uploaded_on_behalf=upload["on_behalf"] if upload else None,
            photo_url=f"/uploads/{upload['id']}/photo" if upload else None,
            message=_message(status, report),
            differing=_labels(report, "differing"),
            corrections=_labels(report, "corrections"),
        )
    return result


STATUS_MESSAGES = {
    "uploaded": "照片已收到，正在检查，通常几秒钟就有结果。",
    "checking": "照片已收到，正在检查，通常几秒钟就有结果。",
    "check_failed": CHECK_FAILED_MESSAGE,
}


async def _reports(upload_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not upload_ids:
        return {}
    rows = await UploadCheck.select().where(UploadCheck.upload.is_in(upload_ids))
    return {row["upload"]: row for row in rows}


def _message(status: str, report: dict[str, Any] | None) -> str | None:
    if report is not None:
        return str(report["message"])
    return STATUS_MESSAGES.get(status)


def _labels(report: dict[str, Any] | None, key: str) -> list[str]:
    if report is None:
        return []
    codes = json_value(report[key])
    return [BY_CODE[c].label if c in BY_CODE else c for c in codes]


def report_fields(readings: dict[str, Any]) -> list[FieldCheck]:
    """What the photo check read, field by field, through the one masking rule: the report
    carries the child's and both guardians' ID numbers and phones as read from the photo.

    Masked for the parent too: the parent holds the paper and needs only whether each value
    was read right (`match`); an account linked to a child is not proof of holding the paper
    (sign-up can link a phone that is none of the record's), and a report is no way around
    the audited reveal."""
    checks: list[FieldCheck] = []
    for code, reading in readings.items():
        field = BY_CODE.get(code)
        checks.append(
            FieldCheck(
                code,
                field.label if field else code,
                masking.mask(field, reading["text"]),
                reading["match"],
                reading["current_match"],
                masked=masking.is_masked(field, reading["text"]),
            )
        )
    return checks


COLUMNS = (
    Student.id,
    Student.name,
    Student.registry_number,
    Student.school,
    Student.school_class,
    Student.region_code,
)


async def my_children(principal: Principal) -> list[ChildStatus]:
    query = scoped(Student.select(*COLUMNS), principal.scope, Student).order_by(Student.id)
    rows = await query.limit(MAX_PAGE_SIZE)
    statuses = await form_statuses(rows)
    return [
        ChildStatus(
            r["id"],
            r["name"],
            masking.mask_registry_number(r["registry_number"]),
            r["school"],
            r["school_class"],
            statuses[r["id"]],
        )
        for r in rows
    ]


async def families(
    principal: Principal,
    actor: Actor,
    class_id: int | None,
    status: FormState | None,
    page: int,
    page_size: int,
) -> Page[FamilyStatus]:
    """The teacher's class or the registrar's school (optionally one class of it)."""
    if class_id is not None:
        await get_scoped(
            actor,
            principal.scope,
            SchoolClass,
            SchoolClass.id == class_id,
            "school_class",
            class_id,
        )
    where = [Student.status == "enrolled"]
    if class_id is not None:
        where.append(Student.school_class == class_id)
    query = scoped(Student.select(*COLUMNS), principal.scope, Student)
    query = query.order_by(Student.school_class).order_by(Student.name)
    count = scoped(Student.count(), principal.scope, Student)
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    if status is None:
        rows, total = await paginate(query, count, page, page_size)
        statuses = await form_statuses(rows)
    else:  # the status is derived, so filter after computing it (a class is small)
        everything = await query.limit(5000)
        all_statuses = await form_statuses(everything)
        matching = [r for r in everything if all_statuses[r["id"]].status == status]
        total = len(matching)
        size = min(page_size, MAX_PAGE_SIZE)
        rows = matching[(page - 1) * size : page * size]
        statuses = all_statuses
    items = [FamilyStatus(r["id"], r["name"], r["school_class"], statuses[r["id"]]) for r in rows]
    return Page(items, page, min(page_size, MAX_PAGE_SIZE), total)
