"""Correction drafts move to `state` (draft, legible, illegible) with who decided and when,
and the `outdated_form` verdict splits in two (issue 9).

Runs after the migration that added `state`, `decided_by` and `decided_at`; its raw step runs
before the drops below (Piccolo runs a migration's raw steps first):

1. a draft the teacher confirmed (`legible_confirmed_at` set) becomes `legible`, with the
   confirming account and time as its decision; every other draft stays `draft`;
2. an upload whose check said `outdated_form` becomes `record_changed` if the record had
   changed since its form was printed (the report's `outdated` list is not empty), else
   `form_superseded` (the photo was of an earlier printing), in the report and the upload.
   Their stored messages are left as they were written.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine

ID = "2026-12-01T05:10:51:770118"
VERSION = "1.38.0"
DESCRIPTION = "correction_draft.state replaces status and legible_confirmed_*; outdated_form split"


async def _migrate_rows() -> None:
    engine = engine_finder()
    assert engine is not None
    await engine.run_ddl(
        "UPDATE correction_draft SET state = 'legible', decided_by = legible_confirmed_by, "
        "decided_at = legible_confirmed_at WHERE legible_confirmed_at IS NOT NULL"
    )
    empty = "outdated::text = '[]'" if isinstance(engine, PostgresEngine) else "outdated = '[]'"
    for verdict, condition in (("form_superseded", empty), ("record_changed", f"NOT ({empty})")):
        await engine.run_ddl(
            f"UPDATE upload SET status = '{verdict}' WHERE status = 'outdated_form' AND id IN "
            f"(SELECT upload FROM upload_check WHERE verdict = 'outdated_form' AND {condition})"
        )
        await engine.run_ddl(
            f"UPDATE upload_check SET verdict = '{verdict}' "
            f"WHERE verdict = 'outdated_form' AND {condition}"
        )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)
    manager.add_raw(_migrate_rows)

    manager.drop_column(
        table_class_name="CorrectionDraft",
        tablename="correction_draft",
        column_name="legible_confirmed_at",
        db_column_name="legible_confirmed_at",
        schema=None,
    )

    manager.drop_column(
        table_class_name="CorrectionDraft",
        tablename="correction_draft",
        column_name="legible_confirmed_by",
        db_column_name="legible_confirmed_by",
        schema=None,
    )

    manager.drop_column(
        table_class_name="CorrectionDraft",
        tablename="correction_draft",
        column_name="status",
        db_column_name="status",
        schema=None,
    )

    return manager
