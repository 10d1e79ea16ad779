"""One document list per province, kind of change and span.

Plain SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T23:14:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "change documents unique index"

INDEXES = {
    "change_documents_province_kind_span": "change_documents (province_code, kind, span)",
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
