"""One row per (campaign, region, level) in campaign_setting, and a word on existing campaigns.

Existing campaigns keep their region, window and switches: a county's or city's campaign made
before the province owned them still covers that region, and from now on the province changes
it. Campaigns that overlap one of a related region (accepted before overlaps were refused) are
kept as well, the most specific applying as before; this migration names each such pair in the
log so that the province closes or deletes one of them.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T05:17:29:000000"
VERSION = "1.38.0"
DESCRIPTION = "campaign_setting unique per level; name overlapping campaigns"

log = logging.getLogger("registry.migrate")

# Plain SQL that SQLite and PostgreSQL share (Piccolo's Unique constraint fails on SQLite).
INDEX = "CREATE UNIQUE INDEX campaign_setting_one_per_level ON campaign_setting "
INDEX += "(campaign, region_code, set_by)"


def _contains(outer: str, inner: str) -> bool:
    prefix = outer
    while prefix.endswith("00") and len(prefix) > 2:
        prefix = prefix[:-2]
    return inner.startswith(prefix)


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    related = _contains(a["region_code"], b["region_code"]) or _contains(
        b["region_code"], a["region_code"]
    )
    return related and a["starts_at"] < b["ends_at"] and b["starts_at"] < a["ends_at"]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create() -> None:
        db = engine_finder()
        await db.run_querystring(QueryString(INDEX))
        rows = await db.run_querystring(
            QueryString("SELECT id, region_code, starts_at, ends_at FROM campaign ORDER BY id")
        )
        for a, b in itertools.combinations(rows, 2):
            if _overlap(a, b):
                log.warning(
                    "campaigns %s (%s) and %s (%s) overlap in time: "
                    "the province should close or delete one",
                    a["id"],
                    a["region_code"],
                    b["id"],
                    b["region_code"],
                )

    async def drop() -> None:
        await engine_finder().run_querystring(
            QueryString("DROP INDEX campaign_setting_one_per_level")
        )

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
