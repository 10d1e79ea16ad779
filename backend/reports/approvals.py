"""Approvals for bulk exports of full student records (学生个人信息).

Regulation 002 lets personal data of students leave only as the law provides or with the
approval of a people's government at county level or above (经县级以上人民政府批准). So a bulk
export of full records is off until:

1. an admin at county level or above (county reviewer, city, province, national) records the
   authorising document: its number (文号), issuing authority (发文机关) and the region it
   covers, which must lie inside the admin's own scope (`record_approval`);
2. a second, different admin of that rank or above, whose scope holds that region, confirms
   it (`confirm_approval`): one conditional UPDATE from `pending`, so of two confirming at
   once one wins;
3. for 24 hours after the confirmation, either of those two admins may export full records of
   that region or of a region inside it (`in_force`); after that every export under it is
   refused as expired, and a file made under it can no longer be downloaded.

Every step, and every refusal, is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import RANK, Role
from backend.accounts.scope import get_scoped, scoped
from backend.accounts.scope_rules import region_contains
from backend.accounts.tables import Account, Region
from backend.db import transaction
from backend.errors import Conflict, DomainError, Forbidden, NotFound
from backend.pages import Page, window
from backend.reports.tables import APPROVAL_STATE, ApprovalState, ExportApproval

APPROVAL_HOURS = 24
APPROVAL_TTL = timedelta(hours=APPROVAL_HOURS)


def _now() -> datetime:
    return datetime.now(UTC)


class SameAdmin(Forbidden):
    code = "approval_same_admin"
    message = "批准文件须由另一位管理员确认，登记人不能自己确认"


class RankTooLow(Forbidden):
    code = "approval_rank_too_low"
    message = "确认人须与登记人同级或更高级别"


class NotPending(Conflict):
    code = "approval_not_pending"
    message = "该批准文件已确认或已撤销，不能再次确认"


class NeedsApproval(Forbidden):
    code = "export_needs_approval"
    message = (
        "导出学生完整信息须有经批准的文件：请由县级及以上管理员登记批准文件，并由另一位管理员确认"
    )


class NotConfirmed(Conflict):
    code = "approval_not_confirmed"
    message = "该批准文件尚未由另一位管理员确认，暂不能导出"


class Revoked(Conflict):
    code = "approval_revoked"
    message = "该批准文件已撤销，不能导出"


class Expired(Conflict):
    code = "approval_expired"
    message = "批准文件确认后 24 小时内有效，已过期；如需导出请重新登记并确认"


class NotYours(Forbidden):
    code = "approval_not_yours"
    message = "只有登记或确认该批准文件的管理员可以按此文件导出"


class OutsideApproval(Forbidden):
    code = "export_outside_approval"
    message = "导出范围超出批准文件的范围"


@dataclass(frozen=True, slots=True)
class ApprovalIn:
    document_number: str
    issuing_authority: str
    region_code: str
    purpose: str = ""


_COLUMNS: tuple[Any, ...] = (
    *ExportApproval.all_columns(),
    ExportApproval.recorded_by.name.as_alias("recorded_by_name"),
    ExportApproval.recorded_by.role.as_alias("recorded_by_role"),
    ExportApproval.confirmed_by.name.as_alias("confirmed_by_name"),
)


def in_force_at(row: dict[str, Any], now: datetime) -> bool:
    expires = row["expires_at"]
    return bool(
        row["state"] == ApprovalState.confirmed.value
        and expires is not None
        and now < _aware(expires)
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _read(approval_id: int) -> dict[str, Any]:
    row = await ExportApproval.select(*_COLUMNS).where(ExportApproval.id == approval_id).first()
    if row is None:
        raise NotFound()
    return row


async def record_approval(principal: Principal, actor: Actor, body: ApprovalIn) -> dict[str, Any]:
    """An admin records the authorising document for a region inside its own scope."""
    require_over(principal, Action.record_export_approval, body.region_code)
    if not await Region.exists().where(Region.code == body.region_code):
        raise NotFound("未找到该地区", code="region_not_found")
    async with transaction():
        rows = await ExportApproval.insert(
            ExportApproval(
                document_number=body.document_number,
                issuing_authority=body.issuing_authority,
                region_code=body.region_code,
                purpose=body.purpose,
                state=ApprovalState.pending.value,
                recorded_by=principal.account_id,
                recorded_at=_now(),
            )
        )
        approval_id = int(rows[0]["id"])
        await audit.record(
            actor,
            "record",
            "export_approval",
            approval_id,
            after={
                "document_number": body.document_number,
                "issuing_authority": body.issuing_authority,
                "region_code": body.region_code,
                "purpose": body.purpose,
            },
        )
    return await _read(approval_id)


async def confirm_approval(principal: Principal, actor: Actor, approval_id: int) -> dict[str, Any]:
    """A second admin, of the recorder's rank or above, whose scope holds the approved region,
    confirms it: exports under it are allowed for 24 hours from now."""
    require(principal, Action.confirm_export_approval)
    row = await get_scoped(
        actor,
        principal.scope,
        ExportApproval,
        ExportApproval.id == approval_id,
        "export_approval",
        approval_id,
    )
    if row["recorded_by"] == principal.account_id:
        raise SameAdmin()
    recorder = await Account.select(Account.role).where(Account.id == row["recorded_by"]).first()
    if recorder is not None and RANK[principal.role] < RANK[Role(recorder["role"])]:
        raise RankTooLow()
    now = _now()
    async with transaction():
        moved = await APPROVAL_STATE.move(
            approval_id,
            ApprovalState.confirmed,
            sources=(ApprovalState.pending,),
            values={
                ExportApproval.confirmed_by: principal.account_id,
                ExportApproval.confirmed_at: now,
                ExportApproval.expires_at: now + APPROVAL_TTL,
            },
        )
        if moved:
            await audit.record(
                actor,
                "confirm",
                "export_approval",
                approval_id,
                before={"state": row["state"]},
                after={"state": "confirmed", "expires_at": (now + APPROVAL_TTL).isoformat()},
            )
    if not moved:
        await _refused(actor, approval_id, NotPending())
    return await _read(approval_id)


async def revoke_approval(principal: Principal, actor: Actor, approval_id: int) -> dict[str, Any]:
    """Withdraw an approval (pending or in force): exports under it, and downloads of files
    made under it, are refused from now on. Any admin who may confirm it may withdraw it:
    stopping personal data from leaving needs no second person."""
    require(principal, Action.confirm_export_approval)
    row = await get_scoped(
        actor,
        principal.scope,
        ExportApproval,
        ExportApproval.id == approval_id,
        "export_approval",
        approval_id,
    )
    now = _now()
    async with transaction():
        moved = await APPROVAL_STATE.move(
            approval_id, ApprovalState.revoked, values={ExportApproval.revoked_at: now}
        )
        if moved:
            await audit.record(
                actor,
                "revoke",
                "export_approval",
                approval_id,
                before={"state": row["state"]},
                after={"state": "revoked"},
            )
    if not moved:
        raise Conflict("该批准文件已撤销", code="approval_already_revoked")
    return await _read(approval_id)


async def get_approval(principal: Principal, actor: Actor, approval_id: int) -> dict[str, Any]:
    require(principal, Action.record_export_approval)
    await get_scoped(
        actor,
        principal.scope,
        ExportApproval,
        ExportApproval.id == approval_id,
        "export_approval",
        approval_id,
    )
    return await _read(approval_id)


async def list_approvals(
    principal: Principal, page: int, page_size: int, state: ApprovalState | None
) -> Page[dict[str, Any]]:
    require(principal, Action.record_export_approval)
    query = scoped(ExportApproval.select(*_COLUMNS), principal.scope, ExportApproval)
    count = scoped(ExportApproval.count(), principal.scope, ExportApproval)
    if state is not None:
        query = query.where(ExportApproval.state == state.value)
        count = count.where(ExportApproval.state == state.value)
    w = window(page, page_size)
    rows, total = await w.fetch(query.order_by(ExportApproval.id, ascending=False), count)
    return w.page(rows, total)


async def _refused(actor: Actor, approval_id: int | None, error: DomainError) -> None:
    """Audit a refused export or confirmation (outside any transaction, so it stays), then
    raise it (a 403 marked audited, so the refusal hook does not write a second row)."""
    await audit.record(
        actor,
        "export_refused",
        "export_approval",
        approval_id,
        after={"code": error.code},
    )
    error.audited = True
    raise error


async def in_force(
    principal: Principal, actor: Actor, approval_id: int | None, region_code: str | None
) -> tuple[dict[str, Any], str]:
    """The approval a bulk export of full records runs under, and the region it exports
    (the approval's, or `region_code` inside it). Refused (audited): no approval named, one
    outside the caller's scope (404), not confirmed, revoked, expired, the caller not one of
    its two admins, or a region outside it."""
    require(principal, Action.export_student_records)
    if approval_id is None:
        await _refused(actor, None, NeedsApproval())
    assert approval_id is not None
    row = await get_scoped(
        actor,
        principal.scope,
        ExportApproval,
        ExportApproval.id == approval_id,
        "export_approval",
        approval_id,
    )
    region = region_code or row["region_code"]
    error = refusal_of(row, principal.account_id, region, _now())
    if error is not None:
        await _refused(actor, approval_id, error)
    return row, region


def refusal_of(
    row: dict[str, Any], account_id: int, region_code: str, now: datetime
) -> DomainError | None:
    """Why an export of `region_code` by `account_id` under approval `row` is refused now, or
    None: the one rule, used when the export is asked for, when its job runs and when its
    file is downloaded."""
    if row["state"] == ApprovalState.revoked.value:
        return Revoked()
    if row["state"] != ApprovalState.confirmed.value:
        return NotConfirmed()
    if not in_force_at(row, now):
        return Expired()
    if account_id not in (row["recorded_by"], row["confirmed_by"]):
        return NotYours()
    if not region_contains(row["region_code"], region_code):
        return OutsideApproval()
    return None
