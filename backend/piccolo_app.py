"""The one Piccolo app: every table of every domain, migrations in the top-level folder."""

from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

APP_CONFIG = AppConfig(
    app_name="backend",
    migrations_folder_path=str(MIGRATIONS),
    table_classes=table_finder(
        modules=[
            "backend.accounts.tables",
            "backend.accounts.refusal_queue",
            "backend.accounts.support_tables",
            "backend.records.tables",
            "backend.records.review_tables",
            "backend.records.problem_tables",
            "backend.records.roll_tables",
            "backend.records.campaign_account_tables",
            "backend.parents.tables",
            "backend.parents.archive_tables",
            "backend.notify.tables",
            "backend.messages.tables",
            "backend.outbox",
            "backend.reports.tables",
            "backend.records.progress_marks",
            "backend.reports.progress_tables",
            "backend.transfers.tables",
        ],
        exclude_imported=True,
    ),
    migration_dependencies=[],
    commands=[],
)
