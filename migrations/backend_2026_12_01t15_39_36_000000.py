"""Campaign progress: the tallies' unique keys and read indexes, and the triggers that mark a
school whenever a row progress counts is written (`backend/records/progress_marks.py`).

PostgreSQL: one statement-level trigger per table and event, reading the statement's transition
tables, so a bulk write (a class's forms, an import of a thousand students, a move) leaves one
mark per school it touched, not one per row. SQLite (the embedded default): row-level triggers.
An UPDATE marks the school before and after (a move marks both schools).

The SQL is a frozen copy: later changes to the tables do not change what this migration does."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

ID = "2026-12-01T15:39:36:000000"
VERSION = "1.38.0"
DESCRIPTION = "progress tallies' keys and indexes; triggers that mark schools to count again"

INDEXES = {  # name → "[UNIQUE] INDEX name ON table (columns)"
    "progress_class_key": "UNIQUE {} ON progress_class (campaign, school_class)",
    "progress_school_key": "UNIQUE {} ON progress_school (campaign, school)",
    "progress_school_region": "{} ON progress_school (campaign, region_code)",
    "progress_day_key": "UNIQUE {} ON progress_day (campaign, school, day)",
    "progress_day_region": "{} ON progress_day (campaign, region_code, day)",
    "progress_mark_school": "{} ON progress_mark (school_id)",
    # what the recount reads: a school's forms and photos of a campaign, its current steps
    "issued_form_school_campaign": "{} ON issued_form (school, campaign)",
    "upload_school_campaign": "{} ON upload (school, campaign)",
    "review_step_school_state": "{} ON review_step (school, state)",
}

TABLES = ("student", "issued_form", "upload", "change_request", "review_step", "problem_case")

PG_FUNCTIONS = [
    """
CREATE OR REPLACE FUNCTION progress_mark_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO progress_mark (school_id, marked_at)
    SELECT DISTINCT school, now() FROM new_rows WHERE school IS NOT NULL;
    RETURN NULL;
END $$
""",
    """
CREATE OR REPLACE FUNCTION progress_mark_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO progress_mark (school_id, marked_at)
    SELECT DISTINCT school, now() FROM old_rows WHERE school IS NOT NULL;
    RETURN NULL;
END $$
""",
    """
CREATE OR REPLACE FUNCTION progress_mark_both() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO progress_mark (school_id, marked_at)
    SELECT school, now() FROM (SELECT school FROM new_rows UNION SELECT school FROM old_rows) s
    WHERE school IS NOT NULL;
    RETURN NULL;
END $$
""",
]


def _pg_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_progress_ins AFTER INSERT ON {table} "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION progress_mark_new()",
        f"CREATE TRIGGER {table}_progress_upd AFTER UPDATE ON {table} "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION progress_mark_both()",
        f"CREATE TRIGGER {table}_progress_del AFTER DELETE ON {table} "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION progress_mark_old()",
    ]


_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')"


def _sqlite_triggers(table: str) -> list[str]:
    def insert(row: str) -> str:
        return (
            "INSERT INTO progress_mark (school_id, marked_at) "
            f"VALUES ({row}.school, {_SQLITE_NOW});"
        )

    return [
        f"CREATE TRIGGER {table}_progress_ins AFTER INSERT ON {table} BEGIN {insert('NEW')} END",
        f"CREATE TRIGGER {table}_progress_upd AFTER UPDATE ON {table} BEGIN {insert('NEW')} "
        f"INSERT INTO progress_mark (school_id, marked_at) SELECT OLD.school, {_SQLITE_NOW} "
        "WHERE OLD.school IS NOT NEW.school; END",
        f"CREATE TRIGGER {table}_progress_del AFTER DELETE ON {table} BEGIN {insert('OLD')} END",
    ]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create() -> None:
        db = engine_finder()
        assert db is not None
        for name, statement in INDEXES.items():
            sql = "CREATE " + statement.replace("{}", f"INDEX {name}")
            await db.run_querystring(QueryString(sql))
        postgres = isinstance(db, PostgresEngine)
        if postgres:
            for function in PG_FUNCTIONS:
                await db.run_querystring(QueryString(function))
        for table in TABLES:
            for statement in _pg_triggers(table) if postgres else _sqlite_triggers(table):
                await db.run_querystring(QueryString(statement))

    async def drop() -> None:
        db = engine_finder()
        assert db is not None
        postgres = isinstance(db, PostgresEngine)
        for table in TABLES:
            for event in ("ins", "upd", "del"):
                on = f" ON {table}" if postgres else ""
                await db.run_querystring(
                    QueryString(f"DROP TRIGGER IF EXISTS {table}_progress_{event}{on}")
                )
        if postgres:
            for name in ("new", "old", "both"):
                await db.run_querystring(QueryString(f"DROP FUNCTION progress_mark_{name}()"))
        for name in INDEXES:
            await db.run_querystring(QueryString(f"DROP INDEX {name}"))

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
