"""A family's state of its form in the campaign open for its region, read with hand-written SQL
(one query for a parent's children, two for a page of families: `bench/http_auth.py`).

The state is `no_campaign` (none open for the region), `change_open` (a status change such as a
transfer is open on the record: checked once it is done), `not_issued` (no form printed in it),
`not_uploaded`, or the status of the photo the family sent last (`uploaded`, `checking`, a
verdict, `check_failed`): the upload of the form's campaign with the latest
COALESCE(last_sent_at, created_at). The same photo sent again is stored once, yet it is the
family's latest word (`uploads.upload_photo` sets its `last_sent_at`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from backend.accounts.scope import Scope, in_scope_sql
from backend.db import fetch_rows, json_value
from backend.parents import drafts
from backend.parents.checks import CHECK_FAILED_MESSAGE
from backend.parents.schemas import FormState, FormStatus
from backend.records.catalog import BY_CODE
from backend.records.open_campaigns import current

STATUS_MESSAGES = {
    "uploaded": "照片已收到，正在检查，通常几秒钟就有结果。",
    "checking": "照片已收到，正在检查，通常几秒钟就有结果。",
    "check_failed": CHECK_FAILED_MESSAGE,
    "change_open": "孩子正在办理学籍异动（如转学），办结后再核对确认表，现在不用拍照上传。",
    "form_outdated": "学籍信息已按更正申请修改，这张确认表已过期。请等学校重新打印后，"
    "在新表上核对、签字并拍照上传。",
}

# The live form is outdated: a change request was applied to the record after it was printed
# (`records.change_requests.apply_request`). One indexed look-up per form.
_OUTDATED = """EXISTS (SELECT 1 FROM change_request r WHERE r.student = f.student
            AND r.state = 'applied' AND r.applied_at > f.issued_at)"""

# `f` is the student's issued form; `u` the photo sent last for it, `c` that photo's check.
_STATE_COLUMNS = f"""f.campaign AS form_campaign, f.form_id,
       u.id AS upload_id, u.status AS upload_status, u.created_at AS uploaded_at,
       u.on_behalf AS uploaded_on_behalf,
       c.message AS check_message, c.differing AS check_differing,
       c.corrections AS check_corrections,
       (u.status = 'retake' AND EXISTS (SELECT 1 FROM correction_draft d
            WHERE d.upload = u.id AND d.state = 'illegible')) AS has_illegible,
       (f.id IS NOT NULL AND {_OUTDATED}) AS form_outdated"""
_STATE_JOINS = """LEFT JOIN upload u ON u.id = (
    SELECT l.id FROM upload l WHERE l.student = f.student AND l.campaign = f.campaign
    ORDER BY COALESCE(l.last_sent_at, l.created_at) DESC, l.id DESC LIMIT 1)
LEFT JOIN upload_check c ON c.upload = u.id"""


def _labels(raw: Any) -> list[str]:
    if raw is None or raw == "[]":  # most checks: skip the JSON decoder
        return []
    return [BY_CODE[c].label if c in BY_CODE else c for c in json_value(raw)]


async def _illegible(rows: Sequence[Mapping[str, Any]]) -> dict[int, list[str]]:
    """The fields the teacher could not read, for the few photos sent back for that."""
    return await drafts.illegible_fields([r["upload_id"] for r in rows if r.get("has_illegible")])


def form_status(
    row: Mapping[str, Any] | None,
    campaign: dict[str, Any] | None,
    illegible: dict[int, list[str]] | None = None,
    change_open: bool = False,
) -> FormStatus:
    """The state from a row of `_STATE_COLUMNS` for the campaign's form (None: no form);
    `illegible` the fields a teacher could not read, by upload (`_illegible`); `change_open`
    whether a status change is open on the record (it sets the state apart)."""
    if campaign is None:
        return FormStatus(None, None, False, None, FormState.no_campaign, None, None, None, None)
    if change_open:
        return FormStatus(
            campaign["id"],
            campaign["name"],
            row is not None and row["form_id"] is not None,
            None,
            FormState.change_open,
            None,
            None,
            None,
            None,
            message=STATUS_MESSAGES["change_open"],
        )
    if row is None or row["form_id"] is None:
        status, row = "not_issued", None
    elif row["form_outdated"]:
        status = "form_outdated"
    elif row["upload_id"] is None:
        status = "not_uploaded"
    else:
        status = row["upload_status"]
    upload = row if row is not None and row["upload_id"] is not None else None
    upload_id = upload["upload_id"] if upload else None
    message = row["check_message"] if row and status != "form_outdated" else None
    # A teacher who cannot read a correction sends the family back to the camera.
    unreadable = (illegible or {}).get(upload_id) if upload_id else None
    if unreadable:
        message = drafts.illegible_message(unreadable)
    return FormStatus(
        campaign_id=campaign["id"],
        campaign_name=campaign["name"],
        form_issued=row is not None,
        form_id=row["form_id"] if row else None,
        status=cast(FormState, status),  # an upload's status is a FormState value
        upload_id=upload_id,
        uploaded_at=upload["uploaded_at"] if upload else None,
        uploaded_on_behalf=bool(upload["uploaded_on_behalf"]) if upload else None,
        photo_url=f"/uploads/{upload_id}/photo" if upload_id else None,
        message=message if message is not None else STATUS_MESSAGES.get(status),
        differing=_labels(row["check_differing"]) if row else [],
        corrections=_labels(row["check_corrections"]) if row else [],
    )


# A parent's links, confirmed ones first (by child), then the others in the order made.
CHILDREN_SQL = f"""
SELECT gl.student AS id, gl.status AS link_status, s.name, s.registry_number, s.school,
       s.school_class, s.region_code, s.open_change IS NOT NULL AS change_open, {_STATE_COLUMNS},
       CASE WHEN gl.status = 'confirmed' THEN 0 ELSE 1 END AS pending_order,
       CASE WHEN gl.status = 'confirmed' THEN gl.student ELSE gl.id END AS link_order
FROM guardian_link gl
LEFT JOIN student s ON s.id = gl.student AND gl.status = 'confirmed'
LEFT JOIN issued_form f ON f.student = s.id AND f.superseded_at IS NULL
{_STATE_JOINS}
WHERE gl.account = {{}}
"""
CHILDREN_ORDER = ("pending_order", "link_order")


async def children_of(account_id: int) -> list[tuple[Mapping[str, Any], FormStatus | None]]:
    """A parent's links, confirmed ones first (by child), each confirmed child's record
    columns with its state; a pending or rejected link carries only its `link_status`."""
    return await children_from(
        await fetch_rows(f"{CHILDREN_SQL} ORDER BY {', '.join(CHILDREN_ORDER)}", account_id)
    )


async def children_from(
    rows: Sequence[Mapping[str, Any]],
) -> list[tuple[Mapping[str, Any], FormStatus | None]]:
    """`children_of` from the rows of `CHILDREN_SQL` (in `CHILDREN_ORDER`)."""
    illegible = await _illegible(rows)
    found: dict[int, tuple[Mapping[str, Any], FormStatus | None]] = {}
    chosen: set[int] = set()  # children whose row is the open campaign's form
    for row in rows:
        if row["link_status"] != "confirmed":
            found.setdefault(row["id"], (row, None))
            continue
        campaign = await current(row["region_code"])
        here = campaign is not None and row["form_campaign"] == campaign["id"]
        if row["id"] not in found or (here and row["id"] not in chosen):
            state = form_status(
                row if here else None, campaign, illegible, change_open=bool(row["change_open"])
            )
            found[row["id"]] = (row, state)
        if here:
            chosen.add(row["id"])
    return list(found.values())


async def _campaign_case(regions: list[str]) -> tuple[str, list[Any], dict[str, Any]]:
    """SQL for the id of the campaign open for `s.region_code`, and the campaigns by region."""
    open_in = {r: c for r in regions if (c := await current(r)) is not None}
    if not open_in:
        return "CAST(NULL AS INTEGER)", [], open_in
    whens = " ".join("WHEN {} THEN CAST({} AS INTEGER)" for _ in open_in)
    args: list[Any] = []
    for region, campaign in open_in.items():
        args += [region, campaign["id"]]
    return f"CASE s.region_code {whens} END", args, open_in


# The regions a scope's families live in, as this process last found them: `families_page`
# builds the open campaign of each into its query, and the same query says whether a family
# in scope lives in a region not among them (then it asks again): never a stale answer.
_regions_of: dict[tuple[Scope, int | None], tuple[str, ...]] = {}
_REGIONS_KEPT = 10_000


def _families_where(scope: Scope, class_id: int | None, alias: str) -> tuple[str, list[Any]]:
    where, where_args = in_scope_sql(scope, alias, student="id")
    args: list[Any] = list(where_args)
    where = f"{alias}.status = 'enrolled' AND {where}"
    if class_id is not None:
        where += f" AND {alias}.school_class = {{}}"
        args.append(class_id)
    return where, args


async def _regions(scope: Scope, class_id: int | None) -> tuple[str, ...]:
    where, args = _families_where(scope, class_id, "s")
    rows = await fetch_rows(f"SELECT DISTINCT s.region_code FROM student s WHERE {where}", *args)
    if len(_regions_of) >= _REGIONS_KEPT:
        _regions_of.clear()
    found = _regions_of[(scope, class_id)] = tuple(r["region_code"] for r in rows)
    return found


Fetch = Callable[..., Awaitable[Sequence[Mapping[str, Any]]]]
FAMILIES_ORDER = ("school_class", "name", "id")


async def families_page(
    scope: Scope,
    class_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
    first_fetch: Fetch = fetch_rows,
) -> tuple[list[tuple[Mapping[str, Any], FormStatus]], int]:
    """Enrolled students in scope (of one class), by class and name, with their states;
    filtered by state in SQL, so the total counts every family in scope. One query once the
    scope's regions are known (`_regions_of`); the page's first query goes through
    `first_fetch` (which must keep `FAMILIES_ORDER`)."""
    regions = _regions_of.get((scope, class_id))
    fresh = regions is None
    if regions is None:
        regions = await _regions(scope, class_id)
    fetch = first_fetch
    while True:
        rows, total, open_in = await _families_query(
            scope, class_id, regions, status, limit, offset, fetch
        )
        fetch = fetch_rows
        if fresh or (rows and not rows[0]["unseen_region"]):
            break
        # A family in a region not known here, or an empty page (whose rows cannot say).
        regions, fresh = await _regions(scope, class_id), True
    illegible = await _illegible(rows)
    return [
        (
            row,
            form_status(
                row,
                open_in.get(row["region_code"]),
                illegible,
                change_open=bool(row["change_open"]),
            ),
        )
        for row in rows
    ], total


async def _families_query(
    scope: Scope,
    class_id: int | None,
    regions: tuple[str, ...],
    status: str | None,
    limit: int,
    offset: int,
    fetch: Fetch,
) -> tuple[Sequence[Mapping[str, Any]], int, dict[str, Any]]:
    """The page, its total and the open campaigns by region, for families in `regions`; each
    row's `unseen_region` says whether a family in scope lives in another region."""
    where, args = _families_where(scope, class_id, "s")
    case, case_args, open_in = await _campaign_case(list(regions))
    joins = f"""LEFT JOIN issued_form f ON f.student = s.id AND f.superseded_at IS NULL
    AND f.campaign = ({case})
{_STATE_JOINS}"""
    query_args = [*case_args, *args]
    if status is not None:
        where += f""" AND (CASE WHEN ({case}) IS NULL THEN 'no_campaign'
            WHEN s.open_change IS NOT NULL THEN 'change_open'
            WHEN f.id IS NULL THEN 'not_issued' WHEN {_OUTDATED} THEN 'form_outdated'
            WHEN u.id IS NULL THEN 'not_uploaded' ELSE u.status END) = {{}}"""
        query_args += [*case_args, status]
    other_where, other_args = _families_where(scope, class_id, "o")
    if regions:
        other_where += f" AND o.region_code NOT IN ({', '.join('{}' for _ in regions)})"
        other_args += regions
    sql = f"""
SELECT s.id, s.name, s.school_class, s.region_code, {_STATE_COLUMNS},
       s.open_change IS NOT NULL AS change_open,
       COUNT(*) OVER () AS total,
       EXISTS (SELECT 1 FROM student o WHERE {other_where}) AS unseen_region
FROM student s
{joins}
WHERE {where}
ORDER BY {", ".join(f"s.{column}" for column in FAMILIES_ORDER)}
LIMIT {{}} OFFSET {{}}"""
    rows = await fetch(sql, *other_args, *query_args, limit, offset)
    if rows:
        return rows, int(rows[0]["total"]), open_in
    # past the last page: count on its own
    counted = await fetch_rows(
        f"SELECT COUNT(*) AS total FROM student s {joins} WHERE {where}", *query_args
    )
    return rows, int(counted[0]["total"]), open_in
