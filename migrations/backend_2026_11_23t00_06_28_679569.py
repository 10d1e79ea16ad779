from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-23T00:06:28:679569"
VERSION = "1.38.0"
DESCRIPTION = "audit chain order index"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="backend", description=DESCRIPTION
    )

    async def audit_chain_order() -> None:
        # One row per (chain, seq): a forked chain cannot be written, and each chain's
        # newest row is one index probe away. Plain SQL that SQLite and PostgreSQL share.
        await engine_finder().run_querystring(
            QueryString("CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain, seq)")
        )

    async def drop_audit_chain_order() -> None:
        await engine_finder().run_querystring(
            QueryString("DROP INDEX audit_log_chain_seq")
        )

    manager.add_raw(audit_chain_order)
    manager.add_raw_backwards(drop_audit_chain_order)

    return manager
