"""Every list answers one page at a time, the same way.

The query parameters (`PageNumber`, `PageSize`) refuse a page below 1 or a size outside
1..`MAX_PAGE_SIZE` with a 400 before any handler runs; a page past the last one is an empty
page with the true total. A service pages through `window(page, page_size)`:

    w = window(page, page_size)
    rows, total = await w.fetch(query, count_query)        # a Piccolo select and its count
    return w.page([read(row) for row in rows], total)

or, for hand-written SQL, passes `w.size` and `w.offset` to its query and builds the answer
with `w.page(items, total)` the same way. The window clamps what it is given, so a service
called with a page of 0 answers page 1, exactly as it says in the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
# Past this page the offset would leave the database's integer range; no list is that long.
MAX_PAGE = 100_000

PageNumber = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="1-based page")]
PageSize = Annotated[
    int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="Items per page (at most 200)")
]


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    page: int
    page_size: int
    total: int  # every item of the list, not only this page's


@dataclass(frozen=True, slots=True)
class Window:
    """One page of a list: its number and size, both within their limits."""

    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    async def fetch(self, query: Any, count_query: Any) -> tuple[list[dict[str, Any]], int]:
        """This page's rows of a Piccolo `select()` (ordered by the caller) and the count
        of all of them."""
        rows = await query.limit(self.size).offset(self.offset)
        return rows, int(await count_query)

    def page(self, items: list[T], total: int) -> Page[T]:
        return Page(items, self.number, self.size, total)


def window(page: int, page_size: int) -> Window:
    return Window(min(max(page, 1), MAX_PAGE), min(max(page_size, 1), MAX_PAGE_SIZE))
