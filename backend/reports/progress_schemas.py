"""What the progress endpoints answer (docs/progress.md says what each count means)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from backend.pages import Page
from backend.reports.progress import Counted, Day, Node, NodeLevel

Count = Annotated[int, msgspec.Meta(ge=0)]


class VerdictCounts(msgspec.Struct):
    """Families by the state of the photo they sent last (the photo check's verdicts)."""

    matches: Count  # 核对无误: the form matches the record, signed and dated
    differs: Count  # what the photo shows differs from the record
    corrections_written: Count  # the family wrote corrections on the paper
    unsigned: Count
    undated: Count
    retake: Count  # unreadable: the family is asked for a new photo
    not_this_form: Count
    record_changed: Count  # the record changed after the form was printed
    form_superseded: Count  # the class was printed again since
    check_failed: Count  # the check gave up: the school looks at the photo
    checking: Count  # received, not yet checked


class PendingSteps(msgspec.Struct):
    """Change requests waiting, by the step they wait at (its current step)."""

    check: Count  # the class teacher checks (班主任核对)
    enter: Count  # the registrar enters (录入)
    approve: Count  # a school leader approves
    review: Count  # the administering authority reviews
    arbitrate: Count  # national arbitration


class ProgressCounts(msgspec.Struct):
    students: Count  # enrolled students
    forms_issued: Count  # 下发: live forms printed in the campaign
    paper_returned: Count  # 回收: of those, signed paper ticked off as back at school
    photos_uploaded: Count  # families with at least one photo of the form
    verdicts: VerdictCounts
    pending_by_step: PendingSteps
    steps_overdue: Count  # review steps (any subject) past their due date
    corrections_entered: Count  # 录入: change requests applied to the record in the campaign
    problems_open: Count  # problem records open (open, in review, sent back, arbitration)


class ProgressNodeRead(msgspec.Struct):
    level: NodeLevel
    name: str
    region_code: str  # a region's own code; a school's or class's county
    school_id: int | None = None
    class_id: int | None = None


class ProgressChildRead(msgspec.Struct):
    node: ProgressNodeRead
    counts: ProgressCounts


class ProgressRead(msgspec.Struct):
    campaign_id: int
    node: ProgressNodeRead
    counts: ProgressCounts
    # Every change committed before this instant is in the counts (now, unless some of the
    # node's schools wait to be counted again: then the oldest such change).
    as_of: datetime
    schools_waiting: Count
    # When the node's counts were last written by the refresh (None: not counted yet).
    refreshed_at: datetime | None
    children: Page[ProgressChildRead]  # one level down, paged; empty for a class


class DayCounts(msgspec.Struct):
    forms_issued: Count
    paper_returned: Count
    photos_uploaded: Count  # families whose first photo came that day
    photos_matches: Count  # families whose last photo (sent that day) matched
    corrections_entered: Count
    problems_resolved: Count


class ProgressDayRead(msgspec.Struct):
    day: date  # China date
    events: DayCounts  # what happened that day
    totals: DayCounts  # the running totals at the end of the day


class ProgressSeriesRead(msgspec.Struct):
    campaign_id: int
    node: ProgressNodeRead
    as_of: datetime
    days: list[ProgressDayRead]  # days with something in them, oldest first


def node_read(node: Node) -> ProgressNodeRead:
    return ProgressNodeRead(node.level, node.name, node.region_code, node.school_id, node.class_id)


def counts_read(counts: dict[str, int]) -> ProgressCounts:
    verdicts = {f: counts[f"photos_{f}"] for f in VerdictCounts.__struct_fields__}
    pending = {f: counts[f"pending_{f}"] for f in PendingSteps.__struct_fields__}
    return ProgressCounts(
        students=counts["students"],
        forms_issued=counts["forms_issued"],
        paper_returned=counts["paper_returned"],
        photos_uploaded=counts["photos_uploaded"],
        verdicts=VerdictCounts(**verdicts),
        pending_by_step=PendingSteps(**pending),
        steps_overdue=counts["steps_overdue"],
        corrections_entered=counts["corrections_entered"],
        problems_open=counts["problems_open"],
    )


def child_read(child: Counted) -> ProgressChildRead:
    return ProgressChildRead(node_read(child.node), counts_read(child.counts))


def day_read(day: Day) -> ProgressDayRead:
    return ProgressDayRead(
        date.fromisoformat(day.day), DayCounts(**day.events), DayCounts(**day.totals)
    )
