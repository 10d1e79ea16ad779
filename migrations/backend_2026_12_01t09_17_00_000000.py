from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T09:17:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "problem records: one case per student and kind"

# Plain SQL that SQLite and PostgreSQL share (Piccolo's columns cannot say "unique together").
INDEXES = {
    # One case per (student, kind): the checks and the national list update it, never repeat it.
    "problem_case_student_kind": "problem_case (student, kind)",
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
