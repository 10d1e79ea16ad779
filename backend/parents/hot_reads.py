"""A parent's three hot reads (`/my/children`, `/my/children/{id}`, `/uploads/{id}`), each one
database round trip: the caller's account and session are read in the statement of the read
(`http.read_as_caller`) instead of a query of their own before it, and checked the same way.

The read is built for the caller the token names, as a parent (the guardian scope of the
token's account id); its rows are used only once the account came back a parent. Any other
caller gets what the route answers it: `parents_only`, or for an upload the staff read with
its own scope (a second query) and its audit row.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from backend.accounts.principal import Principal
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import Scope
from backend.errors import Forbidden
from backend.http import actor_of, claims_of, read_as_caller
from backend.parents import states, uploads, views
from backend.parents.schemas import ChildStatus, UploadDetail
from backend.records import reads
from backend.records.schemas import StudentDetail

Connection = ASGIConnection[Any, Any, Any, Any]


def parents_only(role: Role) -> None:
    if role is not Role.parent:
        raise Forbidden("仅家长账号可用", code="parents_only")


def _is_guardian(principal: Principal) -> bool:
    return principal.scope.kind is ScopeKind.guardian


async def my_children(connection: Connection) -> list[ChildStatus]:
    account_id = claims_of(connection).account_id
    principal, rows = await read_as_caller(
        connection, states.CHILDREN_SQL, account_id, key="id", order_by=states.CHILDREN_ORDER
    )
    parents_only(principal.role)
    return views.children_statuses(await states.children_from(rows))


async def my_child(connection: Connection, student_id: int) -> StudentDetail:
    sql, scope_args = reads.student_sql(Scope.guardian(claims_of(connection).account_id))
    principal, rows = await read_as_caller(
        connection, sql, student_id, *scope_args, key="id", order_by=reads.STUDENT_ORDER
    )
    parents_only(principal.role)
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
