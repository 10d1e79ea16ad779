"""One roll entry per record and campaign (unregistered children, with no record, are not
limited), one control per province and field.

Plain SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T12:25:24:000000"
VERSION = "1.38.0"
DESCRIPTION = "roll and field control unique indexes"

INDEXES = {
    "roll_entry_campaign_student": "roll_entry (campaign, student)",
    "field_control_province_field": "field_control (province_code, field_code)",
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create() -> None:
        db = engine_finder()
        for name, columns in INDEXES.items():
            await db.run_querystring(QueryString(f"CREATE UNIQUE INDEX {name} ON {columns}"))

    async def drop() -> None:
        db = engine_finder()
        for name in INDEXES:
            await db.run_querystring(QueryString(f"DROP INDEX {name}"))

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
