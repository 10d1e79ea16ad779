"""Class-roll mismatches where a registrar looks for what waits on them: the review queue
(`GET /review-steps`), its badge (`GET /review-steps/counts`) and the daily reminders.

A mismatch (`RollEntry`, state `waiting`) is no review step (an unregistered child has no
record for a step to belong to, and the registrar's answer is a choice among outcomes), so it
is listed *beside* the steps: `queues.list_beside` adds the school's waiting entries to its
registrars' queue, ordered with the steps by due date (`RollEntry.due_on`, 10 working days
after the mismatch began waiting), counted on the badge, summarised in one Chinese line;
`reminders.also_remind` gives them the steps' due-soon and overdue notes (escalated to the
school's leaders) and a place in the morning digest. Each item says `subject_kind`
`roll_entry` and `step_kind` `settle`, with no step id: the app opens
`GET /roll-entries/{subject_id}` and decides there.

Imported by the app (through `roll_controllers`) and by the worker (its daily reminders).
"""

from __future__ import annotations

from typing import Any

from backend.accounts.principal import Principal
from backend.accounts.roles import Role, ScopeKind
from backend.records import queues, reminders
from backend.records.queue_schemas import SubjectSummary
from backend.records.review_tables import StepKind, SubjectKind
from backend.records.roll_schemas import MARK_LABEL, REASON_LABEL
from backend.records.roll_tables import AbsenceReason, RollMark, RollState

_WAITING = f"r.state = '{RollState.waiting.value}'"
_KIND = SubjectKind.roll_entry.value
_REGISTRAR = Role.registrar.value


def waiting_on(principal: Principal) -> tuple[str, list[Any]] | None:
    """The school's waiting mismatches, for a registrar of the school (only they decide them:
    `Action.decide_roll_entry`)."""
    scope = principal.scope
    if principal.role is not Role.registrar or scope.kind is not ScopeKind.school:
        return None
    return (
        f"""SELECT CAST(NULL AS INTEGER) AS id, '{_KIND}' AS subject_kind, r.id AS subject_id,
             '{StepKind.settle.value}' AS kind, '{_REGISTRAR}' AS role, r.student, r.school,
             r.school_class, r.marked_at AS became_current_at, r.due_on, r.name,
             1 AS sort_kind, r.id AS sort_id
      FROM roll_entry r
      WHERE r.school = {{}} AND {_WAITING}""",
        [scope.school_id],
    )


def summary(row: dict[str, Any]) -> SubjectSummary | None:
    if row["re_mark"] is None:
        return None
    mark = RollMark(row["re_mark"])
    title = f"班级名册核对：{MARK_LABEL[mark]}"
    if row["re_reason"]:
        title += f"（{REASON_LABEL[AbsenceReason(row['re_reason'])]}）"
    return SubjectSummary(
        title=title,
        field=None,
        source=None,
        reason=row["re_note"] or "",  # the teacher's note
        has_document=False,
        evidence=[],
        round=1,
    )


queues.list_beside(queues.Beside(SubjectKind.roll_entry, StepKind.settle, waiting_on))
queues.summarize(
    SubjectKind.roll_entry,
    queues.Summary(
        join=f"LEFT JOIN roll_entry re ON p.subject_kind = '{_KIND}' AND re.id = p.subject_id",
        columns=lambda: "re.mark AS re_mark, re.reason AS re_reason, re.note AS re_note",
        read=summary,
    ),
)
reminders.also_remind(
    _KIND,
    f"""SELECT '{_KIND}' AS subject, r.id, '{_REGISTRAR}' AS role,
               CAST(NULL AS INTEGER) AS seat_class, r.school AS seat_school,
               CAST(NULL AS VARCHAR(6)) AS seat_region, r.school, r.region_code, r.due_on
        FROM roll_entry r WHERE {_WAITING}""",
)
