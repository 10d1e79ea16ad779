"""The registrar's roll mismatches as a queue (school, state, due date), and the due date of
the mismatches already waiting: 10 working days from when they were marked, as new ones get.

Plain SQL that SQLite and PostgreSQL share, and one pass in Python for the working days."""

from __future__ import annotations

from datetime import datetime

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

from backend.workdays import due_date

ID = "2026-12-01T15:44:17:000000"
VERSION = "1.38.0"
DESCRIPTION = "roll entries queue index and due dates"

INDEXES = {"roll_entry_school_state_due": "roll_entry (school, state, due_on)"}


def _moment(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def backfill_due_dates() -> int:
    """Give each waiting entry without a due date the one it would have had; how many."""
    db = engine_finder()
    waiting = await db.run_querystring(
        QueryString(
            "SELECT id, marked_at FROM roll_entry WHERE state = 'waiting' AND due_on IS NULL"
        )
    )
    for row in waiting:
        await db.run_querystring(
            QueryString(
                "UPDATE roll_entry SET due_on = {} WHERE id = {}",
                due_date(_moment(row["marked_at"])),
                row["id"],
            )
        )
    return len(waiting)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create() -> None:
        db = engine_finder()
        for name, columns in INDEXES.items():
            await db.run_querystring(QueryString(f"CREATE INDEX {name} ON {columns}"))
        await backfill_due_dates()

    async def drop() -> None:
        db = engine_finder()
        for name in INDEXES:
            await db.run_querystring(QueryString(f"DROP INDEX {name}"))

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
