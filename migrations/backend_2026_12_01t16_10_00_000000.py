"""progress_mark is written and emptied all day: vacuum it after every thousand dead rows
rather than after a fifth of the table (PostgreSQL; SQLite has nothing to tune)."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

ID = "2026-12-01T16:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "progress_mark: vacuumed after every thousand dead rows"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def tune() -> None:
        db = engine_finder()
        if isinstance(db, PostgresEngine):
            await db.run_querystring(
                QueryString(
                    "ALTER TABLE progress_mark SET (autovacuum_vacuum_scale_factor = 0, "
                    "autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0, "
                    "autovacuum_analyze_threshold = 1000)"
                )
            )

    async def untune() -> None:
        db = engine_finder()
        if isinstance(db, PostgresEngine):
            await db.run_querystring(
                QueryString(
                    "ALTER TABLE progress_mark RESET (autovacuum_vacuum_scale_factor, "
                    "autovacuum_vacuum_threshold, autovacuum_analyze_scale_factor, "
                    "autovacuum_analyze_threshold)"
                )
            )

    manager.add_raw(tune)
    manager.add_raw_backwards(untune)
    return manager
