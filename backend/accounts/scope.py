"""Scopes: the one place that turns the caller into a query filter.

A scope is a region (and everything under it), a school, a class, the whole nation, or, for
a parent, their own children. Each table declares where it keeps what scopes filter on in
its own `tables.py` (`scope_rules.declare_scoped`, with the rules themselves); every read
and write of a scoped row then goes through `scoped` (lists) or `get_scoped` (one row): a
row outside the scope answers exactly like a row that does not exist, and the attempt is
audited (`refusal_queue`: without making the caller wait for the audit chain).
"""

from __future__ import annotations

from typing import Any, TypeVar

from piccolo.table import Table

from backend.accounts.audit import Actor
from backend.accounts.refusal_queue import record_if_exists
from backend.accounts.roles import ScopeKind
from backend.accounts.scope_rules import Scope as Scope
from backend.accounts.scope_rules import scope_filter as scope_filter
from backend.errors import NotFound

T = TypeVar("T", bound=Table)


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
        # records.tables.confirmed_children: confirmed links only
        return (
            f"{alias}.{student} IN (SELECT student FROM guardian_link "
            "WHERE account = {} AND status = 'confirmed')",
            (scope.account_id,),
        )
    return "1 = 0", ()


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
    # Through the refusal queue: the caller is not kept waiting for the audit chain, and a
    # row outside the scope costs what a missing one does.
    await record_if_exists(actor, table, where, "access_denied", entity, entity_id)
    raise NotFound()
