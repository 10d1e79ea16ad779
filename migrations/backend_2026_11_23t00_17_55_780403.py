from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-23T00:17:55:780403"
VERSION = "1.38.0"
DESCRIPTION = "composite unique indexes"

# Plain SQL that SQLite and PostgreSQL share (Piccolo's columns cannot say "unique together").
INDEXES = {
    # One row per (chain, seq): a forked audit chain cannot be written, and each chain's
    # newest row is one index probe away.
    "audit_log_chain_seq": "audit_log (chain, seq)",
    # A registry number is unique within a school; the same ID number at two schools is a
    # problem record to flag, not an error to refuse.
    "student_school_registry_number": "student (school, registry_number)",
}


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="backend", description=DESCRIPTION
    )

    async def create() -> None:
        for name, target in INDEXES.items():
            await engine_finder().run_querystring(
                QueryString(f"CREATE UNIQUE INDEX {name} ON {target}")
            )

    async def drop() -> None:
        for name in INDEXES:
            await engine_finder().run_querystring(QueryString(f"DROP INDEX {name}"))

    manager.add_raw(create)
    manager.add_raw_backwards(drop)

    return manager
