"""An import's changes to the key fields (关键数据: `catalog.KEY_FIELDS`) of students already
on the roll. The import never writes them (`service.write_records(hold=KEY_FIELDS)`): each
becomes a key-data change request (`change_requests.create_request`, source `import`), one per
field, that waits for the school's registrar to attach the ID document and enter it, then for
the authority administering the school to review it (`records.chains`). The import report
lists them, masked.

- The request's author is the importing account; its steps are never taken on its behalf
  (`author_takes_own_steps=False`), so the enter step is the school's registrar's even when a
  county, city or province account imported the file.
- The campaign's corrections switch is not checked (`check_window=False`): records are
  imported all year round (a new term, transfers), and a request only waits for review, it
  changes nothing by itself. Deciding it is the chain's business.
- An identical request still open (same student, field and new value, `in_review` or
  `returned`) is not made again: importing the same file twice makes one request, and the
  report points at it.
- A dry run makes none and reports which it would make.

Nothing here runs for a row whose key fields did not change: what changed is known from the
write plan's before and after, so an import without key changes makes no extra query.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.masking import mask
from backend.records.catalog import BY_CODE
from backend.records.change_requests import NewRequest, create_request
from backend.records.review_tables import ChangeRequest, RequestSource, RequestState
from backend.records.service import CHUNK, HeldChange

OPEN_STATES = (RequestState.in_review.value, RequestState.returned.value)
MAX_REPORTED_ROWS = 1000  # the report lists the first rows; its counts are of all of them


class KeyChangeOutcome(StrEnum):
    """What became of one changed key field."""

    created = "created"  # this import made a request
    already_waiting = "already_waiting"  # an identical request is still open
    would_create = "would_create"  # a dry run: the real run would make a request


async def open_requests(held: Sequence[HeldChange]) -> dict[tuple[int, str, str], int]:
    """The open requests of these students, by (student, field, new value): the oldest id."""
    students = sorted({h.student_id for h in held})
    found: dict[tuple[int, str, str], int] = {}
    for start in range(0, len(students), CHUNK):
        rows = (
            await ChangeRequest.select(
                ChangeRequest.id,
                ChangeRequest.student,
                ChangeRequest.field_code,
                ChangeRequest.new_value,
            )
            .where(
                ChangeRequest.student.is_in(students[start : start + CHUNK])
                & ChangeRequest.state.is_in(list(OPEN_STATES))
            )
            .order_by(ChangeRequest.id)
        )
        for row in rows:
            found.setdefault((row["student"], row["field_code"], row["new_value"]), row["id"])
    return found


def empty_report() -> dict[str, Any]:
    return {"key_changes": 0, "key_change_requests_created": 0, "key_change_rows": []}


async def request_key_changes(
    job_id: int,
    principal: Principal,
    actor: Actor,
    file_rows: Sequence[int],
    held: Sequence[HeldChange],
    *,
    dry_run: bool,
) -> dict[str, Any]:
    """Make a request for each held key-field change (none in a dry run) and the report's part
    about them. `file_rows[i]` is the spreadsheet row of the i-th record written. Inside the
    import's transaction: the requests stand or fall with the rest of the import."""
    if not held:
        return empty_report()
    waiting = await open_requests(held)
    created = 0
    by_row: dict[int, dict[str, Any]] = {}
    for change in held:
        row = file_rows[change.index]
        found = BY_CODE[change.field_code]
        key = (change.student_id, change.field_code, change.new_value)
        request_id = waiting.get(key)
        if request_id is not None:
            outcome = KeyChangeOutcome.already_waiting
        elif dry_run:
            outcome = KeyChangeOutcome.would_create
        else:
            request_id = await create_request(
                principal,
                actor,
                NewRequest(
                    change.student_id,
                    change.field_code,
                    change.new_value,
                    f"导入文件第 {row} 行的{found.label}与现有学籍不同（导入任务 {job_id}）",
                    RequestSource.import_file,
                    author_takes_own_steps=False,
                    check_window=False,
                ),
            )
            waiting[key] = request_id
            outcome = KeyChangeOutcome.created
            created += 1
        entry = by_row.setdefault(row, {"row": row, "student_id": change.student_id, "fields": []})
        entry["fields"].append(
            {
                "field": found.code,
                "label": found.label,
                "old_value": mask(found, change.old_value),
                "new_value": mask(found, change.new_value),
                "request": outcome.value,
                "request_id": request_id,
            }
        )
    rows = [by_row[row] for row in sorted(by_row)]
    return {
        "key_changes": len(held),
        "key_change_requests_created": created,
        "key_change_rows": rows[:MAX_REPORTED_ROWS],
    }
