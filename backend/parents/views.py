"""The phone's lists: a parent's children, a teacher's class and a registrar's school, each
family with the state of its confirmation form in the current campaign."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend import masking
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped
from backend.accounts.tables import SchoolClass
from backend.pages import Page, window
from backend.parents import states
from backend.parents.schemas import ChildStatus, FamilyStatus, FieldCheck, FormState, FormStatus
from backend.records.catalog import BY_CODE
from backend.records.holds import CHANGE_OPEN_LABEL


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


async def my_children(principal: Principal) -> list[ChildStatus]:
    """The confirmed children with their records' state, then the links waiting for the
    class (or refused by it): only the link's state, none of the record's data. One query:
    the guardian scope is the account's confirmed links (`records.tables.confirmed_children`)."""
    return children_statuses(await states.children_of(principal.account_id))


def children_statuses(
    children: list[tuple[Mapping[str, Any], FormStatus | None]],
) -> list[ChildStatus]:
    """`my_children` from `states.children_of` (or `children_from`)."""
    statuses = []
    for row, form in children:
        if form is None:
            statuses.append(
                ChildStatus(row["id"], None, None, None, None, None, link_status=row["link_status"])
            )
            continue
        statuses.append(
            ChildStatus(
                row["id"],
                row["name"],
                masking.mask_registry_number(row["registry_number"]),
                row["school"],
                row["school_class"],
                form,
                change_open=bool(row["change_open"]),
                change_open_label=CHANGE_OPEN_LABEL if row["change_open"] else None,
            )
        )
    return statuses


async def families(
    principal: Principal,
    actor: Actor,
    class_id: int | None,
    status: FormState | None,
    page: int,
    page_size: int,
) -> Page[FamilyStatus]:
    """The teacher's class or the registrar's school (optionally one class of it), filtered
    by state in the database, so the total counts every family in scope."""
    if class_id is not None:
        await get_scoped(
            actor,
            principal.scope,
            SchoolClass,
            SchoolClass.id == class_id,
            "school_class",
            class_id,
        )
    w = window(page, page_size)
    rows, total = await states.families_page(principal.scope, class_id, status, w.size, w.offset)
    return families_of(rows, w.number, w.size, total)


def families_of(
    rows: list[tuple[Mapping[str, Any], FormStatus]], page: int, size: int, total: int
) -> Page[FamilyStatus]:
    """A page of `families` from `states.families_page`."""
    items = [
        FamilyStatus(
            r["id"],
            r["name"],
            r["school_class"],
            form,
            change_open=bool(r["change_open"]),
            change_open_label=CHANGE_OPEN_LABEL if r["change_open"] else None,
        )
        for r, form in rows
    ]
    return window(page, size).page(items, total)
