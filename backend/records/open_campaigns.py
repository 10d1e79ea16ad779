"""The campaign open for a region, remembered for a moment, for the reads that show a
family's state (`/my/children`, `/families`) on every request.

A campaign changes a few times a year, yet each of those reads needs the one open for every
student's region. `current(region)` asks `campaigns.active_campaign` (the one definition of
which campaign applies, whatever it grows into) at most once per region every `TTL` seconds
in a process, one question at a time however many requests wait for it, and never keeps a
campaign past its end. What acts on a campaign (an upload, printing forms, sign-up) asks
`active_campaign` itself. The campaign service calls `forget()` when it writes, so this
process sees its own changes at once; other processes see them within `TTL`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from backend.records import campaigns

TTL = 2.0  # seconds

_known: dict[str, tuple[float, dict[str, Any] | None]] = {}
_asking: dict[str, asyncio.Future[dict[str, Any] | None]] = {}


async def current(region_code: str) -> dict[str, Any] | None:
    """The campaign open now for the region (a row as `active_campaign` gives it: read it,
    never change it), or None."""
    known = _known.get(region_code)
    if known is not None and known[0] > time.monotonic():
        return known[1]
    asking = _asking.get(region_code)
    if asking is not None:
        return await asyncio.shield(asking)
    future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
    _asking[region_code] = future
    try:
        started = time.monotonic()
        campaign = await campaigns.active_campaign(region_code)
        expires = started + TTL
        if campaign is not None:
            left = (campaign["ends_at"] - datetime.now(UTC)).total_seconds()
            expires = min(expires, started + left)
        _known[region_code] = (expires, campaign)
        future.set_result(campaign)
        return campaign
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody waited
        raise
    finally:
        del _asking[region_code]


def forget() -> None:
    """Ask again next time (after a campaign was written)."""
    _known.clear()
