"""Scopes: the one place that turns the caller into a query filter.

A scope is a region (and everything under it), a school, a class, the whole nation, or, for
a parent, their own children. A table declares once where it keeps what scopes filter on
(`register_scoped`); every read and write of a scoped row then goes through `scoped` (lists)
or `get_scoped` (one row): a row outside the scope answers exactly like a row that does not
exist, and the attempt is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from piccolo.columns import Column
from piccolo.columns.combination import Where
from piccolo.table import Table

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.roles import ScopeKind
from backend.errors import NotFound

T = TypeVar("T", bound=Table)


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    region_code: str | None = None
    school_id: int | None = None
    class_id: int | None = None
    account_id: int | None = None  # whose children, for a guardian scope

    @classmethod
    def of_account(cls, row: dict[str, Any]) -> Scope:
        """The scope of an account row (columns as in the `account` table)."""
        return cls(
            ScopeKind(row["scope_kind"]),
            row["region_code"],
            row["school"],
            row["school_class"],
            row["id"],
        )

    @classmethod
    def guardian(cls, account_id: int) -> Scope:
        """A parent's scope: the children of its confirmed links."""
        return cls(ScopeKind.guardian, account_id=account_id)

    @property
    def region_prefix(self) -> str:
        """110000 → '11' (a province), 110100 → '1101' (a city), 110105 → '110105'."""
        code = self.region_code or ""
        while code.endswith("00") and len(code) > 2:
            code = code[:-2]
        return code

    def covers_region(self, region_code: str) -> bool:
        if self.kind is ScopeKind.national:
            return True
        if self.kind is ScopeKind.region:
            return region_code.startswith(self.region_prefix)
        return False


@dataclass(frozen=True, slots=True)
class ScopedColumns:
    """Where a table keeps the three facts a scope filters on."""

    region: Column
    school: Column | None = None
    school_class: Column | None = None
    guardian: Callable[[int], Any] | None = None  # account id → the rows that are its children


def _never(table: type[Table]) -> Where:
    return table._meta.primary_key.is_null()


def in_scope(scope: Scope, table: type[Table], columns: ScopedColumns) -> Any:
    """The where-clause that keeps exactly the rows of `table` inside `scope`; None for all."""
    if scope.kind is ScopeKind.national:
        return None
    if scope.kind is ScopeKind.region:
        prefix = scope.region_prefix
        # Same-length digit strings compare alike in every collation: a btree range scan.
        return (columns.region >= prefix.ljust(6, "0")) & (columns.region <= prefix.ljust(6, "9"))
    if scope.kind is ScopeKind.school and columns.school is not None:
        return columns.school == scope.school_id
    if scope.kind is ScopeKind.school_class and columns.school_class is not None:
        return columns.school_class == scope.class_id
    if scope.kind is ScopeKind.guardian and columns.guardian and scope.account_id is not None:
        return columns.guardian(scope.account_id)
    return _never(table)


def in_scope_sql(scope: Scope, alias: str, student: str = "student") -> tuple[str, tuple[Any, ...]]:
    """`in_scope` as SQL text (`{}` placeholders) for a hand-written query over a table that
    keeps the usual columns `region_code`, `school`, `school_class` and a student id
    (`student`, or `id` for the student table itself) under `alias`. The same rule, tested
    against `scoped` for every kind (`tests/accounts/test_scope_sql.py`)."""
    if scope.kind is ScopeKind.national:
        return "1 = 1", ()
    if scope.kind is ScopeKind.region:
        prefix = scope.region_prefix
        return (
            f"{alias}.region_code >= {{}} AND {alias}.region_code <= {{}}",
            (prefix.ljust(6, "0"), prefix.ljust(6, "9")),
        )
    if scope.kind is ScopeKind.school:
        return f"{alias}.school = {{}}", (scope.school_id,)
    if scope.kind is ScopeKind.school_class:
        return f"{alias}.school_class = {{}}", (scope.class_id,)
    if scope.kind is ScopeKind.guardian and scope.account_id is not None:
        # records.service.confirmed_children: confirmed links only
        return (
            f"{alias}.{student} IN (SELECT student FROM guardian_link "
            "WHERE account = {} AND status = 'confirmed')",
            (scope.account_id,),
        )
    return "1 = 0", ()


SCOPED: dict[type[Table], ScopedColumns] = {}
# Rows a domain above puts in a scope besides the table's own columns: a parent's account
# lies in the scope of the schools of its children (see `records.service`).
RELATED: dict[type[Table], list[Callable[[Scope], Any]]] = {}


def register_scoped(table: type[Table], columns: ScopedColumns) -> None:
    SCOPED[table] = columns


def register_related(table: type[Table], related: Callable[[Scope], Any]) -> None:
    """`related(scope)`: a where-clause of more rows of `table` inside `scope`, or None."""
    RELATED.setdefault(table, []).append(related)


def scope_filter(scope: Scope, table: type[Table]) -> Any:
    where = in_scope(scope, table, SCOPED[table])
    if where is None:
        return None
    for related in RELATED.get(table, ()):
        more = related(scope)
        if more is not None:
            where = where | more
    return where


def scoped(query: Any, scope: Scope, table: type[Table]) -> Any:
    """`query` (a select or a count) narrowed to the rows of `table` inside `scope`."""
    where = scope_filter(scope, table)
    return query if where is None else query.where(where)


async def get_scoped(
    actor: Actor, scope: Scope, table: type[T], where: Any, entity: str, entity_id: object
) -> dict[str, Any]:
    """One row matching `where` inside the scope. A row that does not exist and a row outside
    the scope answer the same 404; the second is written to the audit log first."""
    row = await scoped(table.select().where(where), scope, table).first()
    if row is not None:
        return row  # type: ignore[no-any-return]
    if await table.exists().where(where):
        await audit.record(actor, "access_denied", entity, entity_id)
    raise NotFound()
