"""Support grants: no standing god mode.

A sysadmin reads no student's or family's data by itself: its scope over them is empty
(`ScopeKind.support`); what configures the system (campaigns, field controls, accounts,
regions, schools, classes, progress counts) it reaches with its account's own scope, as
before. To look into a region's data it asks for a grant:

1. the sysadmin requests one: the region, the reason (what to look into, a ticket) and how
   long, 1 hour to 7 days (`request_grant`);
2. an admin of that region (county reviewer, city or province admin whose scope holds it: the
   role that administers accounts there) approves or refuses it (`decide`); approving one
   while the same sysadmin holds another in force is refused;
3. from the approval until `expires_at` the sysadmin's scope over data is that region's, for
   reading only (it imports, reveals, exports full records and decides nothing:
   `permissions.py`); every request it makes meanwhile is audited with the grant's id
   (`backend/http.py`);
4. it ends by itself: the principal's query reads the grant at every request and compares
   `expires_at` with the clock, so no job runs and no session keeps it past its time; the
   approver or any admin of the region may revoke it earlier (`revoke`), effective at the
   sysadmin's next request.

Every step, and every refusal of a grant outside one's region, is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped, scoped
from backend.accounts.support_tables import GRANT_STATUS, GrantStatus, SupportGrant
from backend.accounts.tables import Region
from backend.db import transaction
from backend.errors import Conflict
from backend.pages import Page, window

MIN_HOURS = 1
MAX_HOURS = 7 * 24


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class NotRequested(Conflict):
    code = "support_grant_decided"
    message = "该技术支持授权申请已处理，不能再次审批"


class AlreadyInForce(Conflict):
    code = "support_grant_in_force"
    message = "该系统管理员已有一项生效中的技术支持授权，请待其到期或撤销后再批准新的申请"


class NotInForce(Conflict):
    code = "support_grant_not_in_force"
    message = "该技术支持授权未生效或已到期，无需撤销"


@dataclass(frozen=True, slots=True)
class GrantIn:
    region_code: str
    reason: str
    hours: int


_COLUMNS: tuple[Any, ...] = (
    *SupportGrant.all_columns(),
    SupportGrant.requested_by.name.as_alias("requested_by_name"),
    SupportGrant.decided_by.name.as_alias("decided_by_name"),
    SupportGrant.revoked_by.name.as_alias("revoked_by_name"),
)


def in_force_at(row: dict[str, Any], now: datetime) -> bool:
    """Approved, not revoked, not run out: the sysadmin reads the region's data now."""
    expires = row["expires_at"]
    return bool(
        row["status"] == GrantStatus.approved.value
        and expires is not None
        and now < _aware(expires)
    )


async def _read(grant_id: int) -> dict[str, Any]:
    row = await SupportGrant.select(*_COLUMNS).where(SupportGrant.id == grant_id).first()
    assert row is not None
    return row


async def _scoped(principal: Principal, actor: Actor, grant_id: int) -> dict[str, Any]:
    return await get_scoped(
        actor, principal.scope, SupportGrant, SupportGrant.id == grant_id, "support_grant", grant_id
    )


async def request_grant(principal: Principal, actor: Actor, body: GrantIn) -> dict[str, Any]:
    """A sysadmin asks for read access to a region's data, for a reason and a time."""
    require(principal, Action.request_support_grant)
    await get_scoped(
        actor, principal.scope, Region, Region.code == body.region_code, "region", body.region_code
    )
    async with transaction():
        rows = await SupportGrant.insert(
            SupportGrant(
                requested_by=principal.account_id,
                region_code=body.region_code,
                reason=body.reason,
                hours=body.hours,
                status=GrantStatus.requested.value,
                requested_at=_now(),
            )
        )
        grant_id = int(rows[0]["id"])
        await audit.record(
            actor,
            "request",
            "support_grant",
            grant_id,
            after={"region_code": body.region_code, "reason": body.reason, "hours": body.hours},
        )
    return await _read(grant_id)


async def decide(
    principal: Principal, actor: Actor, grant_id: int, approve: bool, note: str
) -> dict[str, Any]:
    """An admin whose region holds the grant's approves it (in force from now for its
    hours) or refuses it. A grant outside the admin's region answers 404 (audited)."""
    require(principal, Action.decide_support_grant)
    row = await _scoped(principal, actor, grant_id)
    now = _now()
    to = GrantStatus.approved if approve else GrantStatus.refused
    values: dict[Any, Any] = {
        SupportGrant.decided_by: principal.account_id,
        SupportGrant.decided_at: now,
        SupportGrant.decision_note: note,
    }
    after: dict[str, Any] = {"status": to.value, "note": note}
    if approve:
        expires = now + timedelta(hours=int(row["hours"]))
        values[SupportGrant.expires_at] = expires
        after["expires_at"] = expires.isoformat()
    async with transaction():
        if approve and await _holds_one_in_force(row["requested_by"], now):
            raise AlreadyInForce()
        moved = await GRANT_STATUS.move(
            grant_id, to, sources=(GrantStatus.requested,), values=values
        )
        if moved:
            await audit.record(
                actor,
                "approve" if approve else "refuse",
                "support_grant",
                grant_id,
                before={"status": row["status"]},
                after=after,
            )
    if not moved:
        raise NotRequested()
    return await _read(grant_id)


async def _holds_one_in_force(account_id: int, now: datetime) -> bool:
    return bool(
        await SupportGrant.exists().where(
            (SupportGrant.requested_by == account_id)
            & (SupportGrant.status == GrantStatus.approved.value)
            & (SupportGrant.expires_at > now)
        )
    )


async def revoke(principal: Principal, actor: Actor, grant_id: int) -> dict[str, Any]:
    """The approver or any admin whose region holds the grant ends it before it runs out:
    from the sysadmin's next request on, its scope over data is empty again."""
    require(principal, Action.decide_support_grant)
    row = await _scoped(principal, actor, grant_id)
    now = _now()
    async with transaction():
        moved = await GRANT_STATUS.move(
            grant_id,
            GrantStatus.revoked,
            sources=(GrantStatus.approved,),
            where=SupportGrant.expires_at > now,
            values={SupportGrant.revoked_by: principal.account_id, SupportGrant.revoked_at: now},
        )
        if moved:
            await audit.record(
                actor,
                "revoke",
                "support_grant",
                grant_id,
                before={"status": row["status"]},
                after={"status": GrantStatus.revoked.value},
            )
    if not moved:
        raise NotInForce()
    return await _read(grant_id)


async def get_grant(principal: Principal, actor: Actor, grant_id: int) -> dict[str, Any]:
    require(principal, Action.list_support_grants)
    await _scoped(principal, actor, grant_id)
    return await _read(grant_id)


async def list_grants(
    principal: Principal, page: int, page_size: int, status: GrantStatus | None
) -> Page[dict[str, Any]]:
    """Newest first: a sysadmin sees every grant, an admin those of its region."""
    require(principal, Action.list_support_grants)
    query = scoped(SupportGrant.select(*_COLUMNS), principal.scope, SupportGrant)
    count = scoped(SupportGrant.count(), principal.scope, SupportGrant)
    if status is not None:
        query = query.where(SupportGrant.status == status.value)
        count = count.where(SupportGrant.status == status.value)
    w = window(page, page_size)
    rows, total = await w.fetch(query.order_by(SupportGrant.id, ascending=False), count)
    return w.page(rows, total)


async def audit_request(principal: Principal, actor: Actor, method: str, path: str) -> None:
    """One audit row for a request made under a grant: which grant, what was asked (the
    path's ids, never its query string, which may hold a name or an ID number)."""
    if principal.scope.grant_id is None:
        return
    await audit.record(
        actor,
        "support_read",
        "support_grant",
        principal.scope.grant_id,
        after={"method": method, "path": path, "region_code": principal.scope.region_code},
    )
