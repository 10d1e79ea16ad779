"""Status columns and their moves.

Every status column has a `StrEnum` beside its table and a `Lifecycle`: the moves the column
allows, as data. Every write of a status after the row's insert goes through
`Lifecycle.move`, one conditional UPDATE whose WHERE names the states the move may leave:

- a move the data does not allow (a programming error) raises `InvalidTransition` before
  anything is written;
- a row that is no longer in one of those states (another request or worker moved it first)
  is not written, and `move` answers False: the caller says what that means (a 409, a job
  that skips).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

from piccolo.columns import Column
from piccolo.custom_types import Combinable

log = logging.getLogger("registry.statuses")

S = TypeVar("S", bound=StrEnum)


class InvalidTransition(ValueError):
    """A write asked for a move its column's lifecycle does not allow."""


class Lifecycle(Generic[S]):
    """The allowed moves of one status column: state → the states it may become. A state
    that may be taken again (a lease taken over) lists itself."""

    every: dict[str, Lifecycle[Any]] = {}  # "table.column" → its lifecycle

    def __init__(self, column: Column, moves: Mapping[S, Collection[S]]) -> None:
        states = set(moves)
        for targets in moves.values():
            states |= set(targets)
        enum = type(next(iter(states)))
        if states != set(enum):
            raise ValueError(f"{column}: every state of {enum.__name__} must be listed")
        self.column = column
        self.table = column._meta.table
        self.moves: Mapping[S, frozenset[S]] = {s: frozenset(t) for s, t in moves.items()}
        self.states: type[S] = enum
        Lifecycle.every[self.name] = self

    @property
    def name(self) -> str:
        return f"{self.table._meta.tablename}.{self.column._meta.name}"

    def allows(self, source: S, to: S) -> bool:
        return to in self.moves.get(source, frozenset())

    def sources(self, to: S) -> frozenset[S]:
        """The states from which `to` may be reached."""
        return frozenset(s for s, targets in self.moves.items() if to in targets)

    def check(self, sources: Iterable[S], to: S) -> frozenset[S]:
        sources = frozenset(sources)
        wrong = sorted(s.value for s in sources if not self.allows(s, to))
        if wrong or not sources:
            message = f"{self.name}: no move from {wrong or 'nothing'} to {to.value}"
            log.error("refused status write: %s", message)
            raise InvalidTransition(message)
        return sources

    async def move(
        self,
        row_id: int,
        to: S,
        *,
        sources: Iterable[S] | None = None,
        where: Combinable | None = None,
        values: Mapping[Column | str, Any] | None = None,
    ) -> bool:
        """Move one row to `to` from `sources` (default: every state allowed to reach it),
        only while `where` holds, writing `values` with it. True when the row moved."""
        key: Combinable = self.table._meta.primary_key == row_id
        condition = key if where is None else key & where
        return bool(await self.move_all(to, condition, sources=sources, values=values))

    async def move_all(
        self,
        to: S,
        where: Combinable,
        *,
        sources: Iterable[S] | None = None,
        values: Mapping[Column | str, Any] | None = None,
    ) -> list[int]:
        """Move every row where `where` holds and whose state is one of `sources` to `to`;
        the ids of the rows moved."""
        allowed = self.check(self.sources(to) if sources is None else sources, to)
        condition = where & self.column.is_in(sorted(s.value for s in allowed))
        changes: dict[Column | str, Any] = {self.column: to.value}
        changes.update(values or {})
        primary_key = self.table._meta.primary_key
        moved = await self.table.update(changes).where(condition).returning(primary_key)
        return [row[primary_key._meta.name] for row in moved]
