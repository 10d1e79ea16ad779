"""Apply Piccolo's migrations (the same as `piccolo migrations forwards backend`)."""

from __future__ import annotations

from piccolo.apps.migrations.commands.forwards import run_forwards


async def migrate() -> None:
    result = await run_forwards("backend")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")
