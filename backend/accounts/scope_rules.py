"""The rules of scope, pure: what a scope is, where each table keeps what scopes filter on,
which rows lie inside, and what a student's move does to each table's rows.

Every table that carries a region, school or class declares it in its own `tables.py`,
right under the class (`declare_scoped`), so whoever holds the table class holds its scope:
no service module has to be imported first (`tests/accounts/test_scoped_tables.py` walks
every table). The queries and the audited 404 are in `backend.accounts.scope`.

Region, school and class are copied into the rows a student's record brings about. When the
student moves to another class or school (`records.moves.move_student`), each table says
whether its rows follow the student (`OnMove.follows`: the new school now answers for them)
or are history (`OnMove.stays`: they record what the old school did, and stay with it); the
reason for each is written beside its declaration and in docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from piccolo.columns import Column
from piccolo.table import Table

from backend.accounts.roles import Role, ScopeKind

# Regions (GB/T 2260): 330000 a province, 330100 a city, 330106 a county.


def region_prefix(region_code: str) -> str:
    """330000 → '33' (a province), 330100 → '3301' (a city), 330106 → '330106'."""
    code = region_code
    while code.endswith("00") and len(code) > 2:
        code = code[:-2]
    return code


def ancestors(region_code: str) -> list[str]:
    """A county's own code, its city's and its province's."""
    return sorted({region_code[:2] + "0000", region_code[:4] + "00", region_code})


def region_contains(outer: str, inner: str) -> bool:
    """Whether `inner` is `outer` or lies inside it."""
    return inner.startswith(region_prefix(outer))


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    region_code: str | None = None
    school_id: int | None = None
    class_id: int | None = None
    account_id: int | None = None  # whose children, for a guardian scope
    # A sysadmin's: the support grant this region scope comes from (None: no grant).
    grant_id: int | None = None
    # A sysadmin's: the scope its account holds, for the rows that configure the system and
    # describe its organisation (`ScopedColumns.personal` False) and nothing else.
    reach: Scope | None = None

    @classmethod
    def of_account(cls, row: dict[str, Any]) -> Scope:
        """The scope of an account row (columns as in the `account` table). A sysadmin's,
        outside a request (a job, the command line), reaches no person's data: a support
        grant is checked per request (`principal.principal_of`)."""
        own = cls(
            ScopeKind(row["scope_kind"]),
            row["region_code"],
            row["school"],
            row["school_class"],
            row["id"],
        )
        if row.get("role") == Role.sysadmin.value:
            return cls(ScopeKind.support, account_id=row["id"], reach=own)
        return own

    @classmethod
    def guardian(cls, account_id: int) -> Scope:
        """A parent's scope: the children of its confirmed links."""
        return cls(ScopeKind.guardian, account_id=account_id)

    @property
    def region_prefix(self) -> str:
        return region_prefix(self.region_code or "")

    def covers_region(self, region_code: str) -> bool:
        """Whether the whole of `region_code` lies inside this scope."""
        if self.kind is ScopeKind.national:
            return True
        if self.kind is ScopeKind.region:
            return region_code.startswith(self.region_prefix)
        return False

    def overlaps_region(self, region_code: str) -> bool:
        """`Reach.overlapping` for one region: it contains this scope's region or lies in it.
        Only campaigns overlap, and they are not a person's data: a sysadmin's own scope."""
        if self.reach is not None:
            return self.reach.overlaps_region(region_code)
        if self.kind is ScopeKind.national:
            return True
        if self.region_code is None:
            return False
        return self.covers_region(region_code) or region_code in ancestors(self.region_code)


class Reach(StrEnum):
    """Which rows of a table a region scope reaches."""

    inside = "inside"  # rows whose region lies inside the caller's (schools, records, …)
    # rows whose region contains the caller's or lies inside it: a campaign of the province
    # concerns each county in it, and a county sees the province's campaign
    overlapping = "overlapping"


class OnMove(StrEnum):
    """What a student's move to another class or school does to a row that belongs to them."""

    follows = "follows"  # the row takes the new region, school and class
    stays = "stays"  # history: the row keeps the school and class it was made at


@dataclass(frozen=True, slots=True)
class ScopedColumns:
    """Where a table keeps the facts a scope filters on, and what a move does to its rows."""

    region: Column
    school: Column | None = None
    school_class: Column | None = None
    guardian: Callable[[int], Any] | None = None  # account id → the rows that are its children
    reach: Reach = Reach.inside
    student: Column | None = None  # the student a row belongs to (the id, for the student)
    on_move: OnMove | None = None  # required when `student` is given
    # False: the rows configure the system or describe its organisation (regions, schools,
    # classes, accounts, campaigns, progress counts), not a student or a family: a sysadmin
    # reaches them with its account's own scope (`Scope.reach`), without a support grant.
    personal: bool = True


SCOPED: dict[type[Table], ScopedColumns] = {}
# Rows a domain above puts in a scope besides the table's own columns: a parent's account
# lies in the scope of the schools of its children (declared beside `GuardianLink`).
RELATED: dict[type[Table], list[Callable[[Scope], Any]]] = {}


class ScopeNotDeclared(LookupError):
    """A programming error: the table carries no scope declaration (see the module doc)."""


def declare_scoped(table: type[Table], columns: ScopedColumns) -> None:
    """Declare, in the table's own module, where `table` keeps its scope."""
    if (columns.student is None) != (columns.on_move is None):
        raise ValueError(f"{table.__name__}: a row of a student says what a move does to it")
    SCOPED[table] = columns


def declare_related(table: type[Table], related: Callable[[Scope], Any]) -> None:
    """`related(scope)`: a where-clause of more rows of `table` inside `scope`, or None."""
    RELATED.setdefault(table, []).append(related)


def national_arbiter(scope: Scope) -> bool:
    """A sysadmin whose account holds the nation: it arbitrates duplicates (教育部仲裁), so
    the cases and steps waiting for it are in its scope, grant or not."""
    return scope.reach is not None and scope.reach.kind is ScopeKind.national


def columns_of(table: type[Table]) -> ScopedColumns:
    try:
        return SCOPED[table]
    except KeyError:
        raise ScopeNotDeclared(f"{table.__name__} declares no scope in its tables.py") from None


def _never(table: type[Table]) -> Any:
    return table._meta.primary_key.is_null()


def _region_range(column: Column, prefix: str) -> Any:
    # Same-length digit strings compare alike in every collation: a btree range scan.
    return (column >= prefix.ljust(6, "0")) & (column <= prefix.ljust(6, "9"))


def _overlapping(scope: Scope, table: type[Table], columns: ScopedColumns) -> Any:
    if scope.region_code is None:
        return _never(table)
    above = columns.region.is_in(ancestors(scope.region_code))
    if scope.kind is ScopeKind.region:
        return _region_range(columns.region, scope.region_prefix) | above
    return above


def acting(scope: Scope, columns: ScopedColumns) -> Scope:
    """The scope that reads a table: a sysadmin's own (`Scope.reach`) for the rows that are
    not a person's, else the scope itself."""
    if scope.reach is not None and not columns.personal:
        return scope.reach
    return scope


def in_scope(scope: Scope, table: type[Table], columns: ScopedColumns) -> Any:
    """The where-clause that keeps exactly the rows of `table` inside `scope`; None for all."""
    scope = acting(scope, columns)
    if scope.kind is ScopeKind.national:
        return None
    if columns.reach is Reach.overlapping:
        return _overlapping(scope, table, columns)
    if scope.kind is ScopeKind.region:
        return _region_range(columns.region, scope.region_prefix)
    if scope.kind is ScopeKind.school and columns.school is not None:
        return columns.school == scope.school_id
    if scope.kind is ScopeKind.school_class and columns.school_class is not None:
        return columns.school_class == scope.class_id
    if scope.kind is ScopeKind.guardian and columns.guardian and scope.account_id is not None:
        return columns.guardian(scope.account_id)
    return _never(table)


def scope_filter(scope: Scope, table: type[Table]) -> Any:
    """The rows of `table` inside `scope`, its related rows included; None for all."""
    columns = columns_of(table)
    scope = acting(scope, columns)
    where = in_scope(scope, table, columns)
    if where is None:
        return None
    for related in RELATED.get(table, ()):
        more = related(scope)
        if more is not None:
            where = where | more
    return where
