"""Campaign progress per county: one row per (campaign, county).

Plain SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T15:55:42:000000"
VERSION = "1.38.0"
DESCRIPTION = "progress_county's key"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create() -> None:
        db = engine_finder()
        assert db is not None
        await db.run_querystring(
            QueryString(
                "CREATE UNIQUE INDEX progress_county_key ON progress_county (campaign, region_code)"
            )
        )

    async def drop() -> None:
        db = engine_finder()
        assert db is not None
        await db.run_querystring(QueryString("DROP INDEX progress_county_key"))

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
