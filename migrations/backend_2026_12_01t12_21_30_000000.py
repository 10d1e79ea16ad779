"""Indexes for the inbox (`notify/`): one user's notifications newest first, and their unread
count, are one index range each; the push sweeper finds pushes still to make by their time.

Plain SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T12:21:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "inbox indexes"

INDEXES = {
    "notification_inbox": "notification (account, id)",
    "notification_unread": "notification (account, read_at)",
    "notification_push_due": "notification (pushed_at, push_at)",
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
