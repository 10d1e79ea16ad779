"""Indexes for the transfers bulletin (`transfers/bulletin.py`): the changes started in a
period whose sending (`from_region`) or receiving (`to_region`) side lies in a region are one
index range each, by region then start date. A county's steps are found from its changes by
`review_step_subject`; a province's are most of the status changes' steps, read from a
partial index holding those alone with the columns the bulletin counts (an index-only scan,
never the heap of every correction's and problem record's steps).

Plain SQL that SQLite and PostgreSQL share.
"""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T20:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "transfers bulletin indexes"

INDEXES = {
    "status_change_sent": "status_change (from_region, started_on)",
    "status_change_received": "status_change (to_region, started_on)",
    "review_step_change_steps": "review_step (subject_id, kind, state, became_current_at, "
    "decided_at, due_on) WHERE subject_kind = 'status_change'",
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
