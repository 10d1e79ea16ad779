"""Indexes for the review queues (`records/queues.py`): what waits on a teacher, a school's
registrar or leader, and an authority is one index range each, already in due-date order, and
a page's evidence is found by its subject.

Plain SQL that SQLite and PostgreSQL share. `id` follows the due date in each queue index so
that the queue's order (due date, then step) is the index's own: a page is read from the
index, never sorted. The last column is the one the caller's scope checks (class, school or
region), so the queue's total is counted from the index alone (an index-only scan once
vacuumed). The request counts by state for the badge are per class, school or region.
"""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T09:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "review queue indexes"

INDEXES = {
    "review_step_queue_class": "review_step (state, role, seat_class, due_on, id, school_class)",
    "review_step_queue_school": "review_step (state, role, seat_school, due_on, id, school)",
    "review_step_queue_region": "review_step (state, role, seat_region, due_on, id, region_code)",
    "review_step_subject": "review_step (subject_kind, subject_id)",
    "evidence_subject": "evidence (subject_kind, subject_id)",
    "change_request_class_state": "change_request (school_class, state)",
    "change_request_school_state": "change_request (school, state)",
    "change_request_region_state": "change_request (region_code, state)",
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create() -> None:
        db = engine_finder()
        for name, columns in INDEXES.items():
            await db.run_querystring(QueryString(f"CREATE INDEX {name} ON {columns}"))

    async def drop() -> None:
        db = engine_finder()
        for name in INDEXES:
            await db.run_querystring(QueryString(f"DROP INDEX {name}"))

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
