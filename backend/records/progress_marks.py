"""Marks: which schools' campaign progress must be counted again (`backend/reports/progress.py`).

A write that changes what progress counts (a student enrolled, moved or removed, a form issued,
superseded or ticked as returned on paper, a photo uploaded or checked, a change request or a
review step written, a problem record opened or closed) leaves one row here naming the school
whose counts it changed — both schools, for a move. The rows are written by the database
itself: statement-level triggers on `student`, `issued_form`, `upload`, `change_request`,
`review_step` and `problem_case` (row-level ones on SQLite), created by the migration that made
this table. So every write path marks, present and future, hand-written SQL and bulk loads
included, inside the writer's own transaction: a mark commits (or rolls back) with the change it
stands for, and no code path can forget it.

Marks are only ever inserted (no unique key, no row lock a writer could wait on). The refresh
(`reports.progress.refresh`) takes a batch with `DELETE … RETURNING` and counts those schools
again in the same transaction; a mark committed after that DELETE stays for the next round, so
no change is ever lost between a count and its mark. What no write marks — a campaign seen
for the first time, a step falling overdue at midnight — the refresh marks itself
(`reports.progress_refresh.mark_region`).
"""

from __future__ import annotations

from piccolo.columns import BigSerial, Integer, Timestamptz
from piccolo.table import Table


class ProgressMark(Table, tablename="progress_mark"):
    """One school to count again. `school_id` is a plain integer, not a foreign key, and carries
    no scope: a mark is work for the worker, shown to no one (the progress answers only say
    how many of a node's schools wait, and since when)."""

    id = BigSerial(primary_key=True)
    school_id = Integer()
    marked_at = Timestamptz()
