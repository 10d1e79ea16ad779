"""The totals of long review queues, kept for a moment in this process.

A county's queue can hold thousands of steps; counting them for every page cost PostgreSQL
more than reading the page (bench/reviews.py). A page's items are always read fresh; its
total may be up to `TTL` seconds old when another process changed the queue, and is
forgotten at once when this process opens, decides, cancels or re-seats a step."""

from __future__ import annotations

import time
from collections.abc import Hashable

TTL = 2.0
_totals: dict[Hashable, tuple[float, int]] = {}


def recall(key: Hashable) -> int | None:
    found = _totals.get(key)
    if found is None or found[0] < time.monotonic():
        return None
    return found[1]


def keep(key: Hashable, total: int) -> None:
    if len(_totals) > 10_000:
        _totals.clear()
    _totals[key] = (time.monotonic() + TTL, total)


def forget() -> None:
    """A step was opened, decided, cancelled or re-seated: every total may have changed."""
    _totals.clear()
