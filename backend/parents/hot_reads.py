"""The hot reads, each one database round trip: a parent's three (`/my/children`,
`/my/children/{id}`, `/uploads/{id}`) and a class's families (`/families`). The caller's
account and session are read in the statement of the read (`http.read_as_caller`) instead of
a query of their own before it, and checked the same way.

A parent's read is built for the caller the token names, as a parent (the guardian scope of
the token's account id); its rows are used only once the account came back a parent. Any
other caller gets what the route answers it: `parents_only`, or for an upload the staff read
with its own scope (a second query) and its audit row.

`/families` is built for the scope the account had at its last request here (`_scopes`); the
rows are used only if the same statement says the account still has that scope and a staff
role. Otherwise (a first request, a teacher moved to another class, `class_id` given) the
caller is checked on its own and the list read for the scope it has now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.connection import ASGIConnection

from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import STAFF_ROLES, ScopeKind
from backend.accounts.scope import Scope
from backend.errors import Unauthorized
from backend.http import actor_of, claims_of, load_caller, read_as_caller
from backend.pages import Page, window
from backend.parents import states, uploads, views
from backend.parents.schemas import ChildStatus, FamilyStatus, FormState, UploadDetail
from backend.records import reads
from backend.records.schemas import StudentDetail

Connection = ASGIConnection[Any, Any, Any, Any]


def parents_only(principal: Principal) -> None:
    require(principal, Action.use_parent_api)


def _is_guardian(principal: Principal) -> bool:
    return principal.scope.kind is ScopeKind.guardian


async def my_children(connection: Connection) -> list[ChildStatus]:
    account_id = claims_of(connection).account_id
    principal, rows = await read_as_caller(
        connection, states.CHILDREN_SQL, account_id, key="id", order_by=states.CHILDREN_ORDER
    )
    parents_only(principal)
    return views.children_statuses(await states.children_from(rows))


async def my_child(connection: Connection, student_id: int) -> StudentDetail:
    sql, scope_args = reads.student_sql(Scope.guardian(claims_of(connection).account_id))
    principal, rows = await read_as_caller(
        connection, sql, student_id, *scope_args, key="id", order_by=reads.STUDENT_ORDER
    )
    parents_only(principal)
    actor = actor_of(connection)
    if not _is_guardian(principal):  # a parent always is; never read past its own scope
        return await reads.get_student(principal, actor, student_id)
    return await reads.student_detail(principal, actor, student_id, rows)


async def upload(connection: Connection, upload_id: int) -> UploadDetail:
    sql, scope_args = uploads.detail_sql(Scope.guardian(claims_of(connection).account_id))
    principal, rows = await read_as_caller(connection, sql, upload_id, *scope_args, key="id")
    actor = actor_of(connection)
    if not _is_guardian(principal):  # staff: their own scope, and the read is audited
        return await uploads.upload_detail(principal, actor, upload_id)
    return await uploads.detail_of(principal, actor, upload_id, rows[0] if rows else None)


# The scope each staff account had at its last `/families` here: what its next page's
# statement is built for (and checked against).
_scopes: dict[int, Scope] = {}
_SCOPES_KEPT = 100_000


class _ScopeChanged(Exception):
    """The account is not what its page was built for: read it again for what it is."""


def _staff_only(principal: Principal) -> None:
    require(principal, Action.use_staff_api)
    if len(_scopes) >= _SCOPES_KEPT:
        _scopes.clear()
    _scopes[principal.account_id] = principal.scope


async def families(
    connection: Connection,
    class_id: int | None,
    status: FormState | None,
    page: int,
    page_size: int,
) -> Page[FamilyStatus]:
    w = window(page, page_size)
    page, size = w.number, w.size
    assumed = _scopes.get(claims_of(connection).account_id)
    if assumed is not None and class_id is None:

        async def first_fetch(sql: str, *args: Any) -> list[Mapping[str, Any]]:
            principal, rows = await read_as_caller(
                connection, sql, *args, key="id", order_by=states.FAMILIES_ORDER
            )
            if principal.scope != assumed or principal.role not in STAFF_ROLES:
                raise _ScopeChanged()
            return rows

        try:
            rows, total = await states.families_page(
                assumed, None, status, size, (page - 1) * size, first_fetch
            )
            if not isinstance(connection.scope.get("user"), Principal):
                raise Unauthorized()  # never: the page's first query checks the caller
            return views.families_of(rows, page, size, total)
        except _ScopeChanged:
            principal = connection.scope["user"]  # checked by `read_as_caller`
    else:
        principal = await load_caller(connection)
    _staff_only(principal)
    return await views.families(principal, actor_of(connection), class_id, status, page, size)
