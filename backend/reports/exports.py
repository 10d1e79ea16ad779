"""Exports: problem-record lists and progress tables (masked), and full student records under
a confirmed approval (`backend.reports.approvals`), as XLSX or CSV, within the caller's scope.

One way for every export, small or large (`docs/exports.md`):

- `start_export` checks who may, reads nothing outside the caller's scope, counts the rows,
  and writes an `export_job` row with the request's audit row. Up to `INLINE_ROWS` rows the
  file is made during the request and the answer is already `done`; above that the job
  (`run_export_job`, through the outbox after the commit) makes it, reporting its progress in
  Redis (`backend.progress`), and the phone polls `GET /exports/{id}`.
- Either way the file is stored (`backend.storage`, key `exports/<id>/<random>.<ext>`) and
  downloaded by its requester only, until `expires_at` (24 hours after it was made, and never
  past its approval's expiry); then the sweeper deletes it and the export is `expired`.
- Every file carries who exported it, when (China time), over which scope and how many rows
  (`exports_files.Header`); every export made is audited with its row count and the file's
  SHA-256, every download too.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from backend import progress
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import RULES, Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import ROLE_LABEL, Role, ScopeKind
from backend.accounts.scope import Scope, get_scoped, scoped
from backend.accounts.tables import Account, AccountStatus, School
from backend.db import json_value, transaction
from backend.errors import BadRequest, Conflict, DomainError, NotFound
from backend.outbox import Outbox
from backend.pages import Page, window
from backend.records.problem_tables import CaseKind, CaseState
from backend.reports import approvals
from backend.reports.exports_files import (
    CONTENT_TYPE,
    ExportTable,
    FileFormat,
    Header,
    Spool,
    write,
)
from backend.reports.exports_sources import (
    ProblemFilter,
    ProgressAsk,
    Sheet,
    problem_sheet,
    progress_sheet,
    region_label,
    scope_label,
    student_records_sheet,
)
from backend.reports.tables import (
    EXPORT_STATUS,
    ExportApproval,
    ExportJob,
    ExportKind,
    ExportStatus,
)
from backend.storage import Storage
from backend.workdays import CHINA

log = logging.getLogger("registry.exports")

# A job reads as its requester, who has no session there: the account as it stands now.
NO_SESSION = uuid.UUID(int=0)
INLINE_ROWS = 2000  # up to this many rows the file is made during the request
FILE_TTL = timedelta(hours=24)  # how long its requester may download a file
PROGRESS = "export"  # backend.progress kind


def _now() -> datetime:
    return datetime.now(UTC)


class NotReady(Conflict):
    code = "export_not_ready"
    message = "文件正在生成，请稍后再下载"


class ExportFailed(Conflict):
    code = "export_failed"
    message = "文件生成失败，请重新导出"


class FileExpired(Conflict):
    code = "export_expired"
    message = "导出文件已过期（生成后 24 小时内可下载），请重新导出"


@dataclass(frozen=True, slots=True)
class ExportAsk:
    kind: ExportKind
    file_format: FileFormat
    problem: ProblemFilter = field(default_factory=ProblemFilter)
    region_code: str | None = None
    approval_id: int | None = None
    campaign_id: int | None = None  # progress: the campaign, and the node (region, school, class)
    class_id: int | None = None

    def params(self) -> dict[str, Any]:
        """What the job needs to read the same rows again (ids and codes only)."""
        return {
            "problem_kind": self.problem.kind.value if self.problem.kind else None,
            "state": self.problem.state.value if self.problem.state else None,
            "open_only": self.problem.open_only,
            "school_id": self.problem.school_id,
            "region_code": self.region_code,
            "campaign_id": self.campaign_id,
            "class_id": self.class_id,
        }


def _problem_filter(params: dict[str, Any]) -> ProblemFilter:
    return ProblemFilter(
        kind=CaseKind(params["problem_kind"]) if params.get("problem_kind") else None,
        state=CaseState(params["state"]) if params.get("state") else None,
        open_only=bool(params.get("open_only")),
        school_id=params.get("school_id"),
    )


def _approval_note(approval: dict[str, Any]) -> str:
    return (
        f"依据批准文件 {approval['document_number']}（{approval['issuing_authority']}）导出，"
        "含未脱敏的学生个人信息，仅限批准用途使用，不得外传"
    )


def _sheet(
    kind: ExportKind,
    principal: Principal,
    actor: Actor,
    params: dict[str, Any],
    approval: dict[str, Any] | None,
) -> Sheet:
    if kind is ExportKind.problem_cases:
        return problem_sheet(principal.scope, _problem_filter(params))
    if kind is ExportKind.progress:
        if params.get("campaign_id") is None:
            raise BadRequest("导出进度表须指定核查工作（campaign_id）", code="campaign_required")
        return progress_sheet(
            principal,
            actor,
            ProgressAsk(
                params["campaign_id"],
                params.get("region_code"),
                params.get("school_id"),
                params.get("class_id"),
            ),
        )
    assert approval is not None
    return student_records_sheet(params["region_code"], _approval_note(approval))


async def start_export(
    principal: Principal,
    actor: Actor,
    redis: Redis,
    storage: Storage,
    outbox: Outbox,
    ask: ExportAsk,
) -> dict[str, Any]:
    approval: dict[str, Any] | None = None
    region = ask.region_code
    if ask.kind is ExportKind.student_records:
        approval, region = await approvals.in_force(
            principal, actor, ask.approval_id, ask.region_code
        )
    else:
        require(principal, Action.export_reports)
        if ask.problem.school_id is not None and ask.kind is ExportKind.problem_cases:
            school_id = ask.problem.school_id
            await get_scoped(
                actor, principal.scope, School, School.id == school_id, "school", school_id
            )
    params = {**ask.params(), "region_code": region}
    sheet = _sheet(ask.kind, principal, actor, params, approval)
    total = await sheet.count()  # a node outside the caller's scope answers 404 here
    if approval is not None:
        label = await region_label(region)
    else:
        label = await scope_label(_narrowed(principal.scope, ask))
    async with transaction():
        rows = await ExportJob.insert(
            ExportJob(
                account=principal.account_id,
                kind=ask.kind.value,
                format=ask.file_format.value,
                params=params,
                approval=approval["id"] if approval else None,
                status=ExportStatus.queued.value,
                scope_label=label[:200],
                created_at=_now(),
            )
        )
        export_id = int(rows[0]["id"])
        await audit.record(
            actor,
            "request",
            "export_job",
            export_id,
            after={
                "kind": ask.kind.value,
                "format": ask.file_format.value,
                "params": params,
                "approval": approval["id"] if approval else None,
                "rows_counted": total,
            },
        )
        if total > INLINE_ROWS:
            await outbox.job("run_export_job", export_id, job_id=f"export:{export_id}")
    if total <= INLINE_ROWS:
        await make_file(export_id, storage, redis, actor, (sheet, total))
    return await _row(export_id)


def _narrowed(scope: Scope, ask: ExportAsk) -> Scope:
    """What a masked export covers, for its header: the caller's scope, or the school (a
    problem list) or node (a progress table) it was narrowed to."""
    school_id = ask.problem.school_id
    if ask.kind is ExportKind.progress and ask.class_id is not None:
        return Scope(ScopeKind.school_class, class_id=ask.class_id)
    if school_id is not None:
        return Scope(ScopeKind.school, school_id=school_id)
    if ask.kind is ExportKind.progress and ask.region_code is not None:
        return Scope(ScopeKind.region, ask.region_code)
    return scope


async def _row(export_id: int) -> dict[str, Any]:
    row = await ExportJob.select().where(ExportJob.id == export_id).first()
    if row is None:
        raise NotFound()
    return row


class _Refused(Exception):
    """The export may no longer be made: the job ends `failed` with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _requester(row: dict[str, Any]) -> tuple[dict[str, Any], Principal]:
    """The requester as it stands now: an account since disabled, or whose role may no
    longer export this kind, gets no file."""
    account = await Account.select().where(Account.id == row["account"]).first()
    if account is None or account["status"] != AccountStatus.active.value:
        raise _Refused("导出人的账号已停用或封存")
    action = (
        Action.export_student_records
        if row["kind"] == ExportKind.student_records.value
        else Action.export_reports
    )
    if Role(account["role"]) not in RULES[action].roles:
        raise _Refused(RULES[action].refusal.message)
    principal = Principal(
        account_id=account["id"],
        role=Role(account["role"]),
        name=account["name"],
        phone=account["phone"],
        scope=Scope.of_account(account),
        session_id=NO_SESSION,
        password_change_required=False,
    )
    return account, principal


async def _approval(principal: Principal, approval_id: int) -> dict[str, Any] | None:
    """The export's approval if it still lies in its requester's scope as it stands now (an
    admin moved to another region exports and downloads nothing of the old one)."""
    query = ExportApproval.select().where(ExportApproval.id == approval_id)
    row: dict[str, Any] | None = await scoped(query, principal.scope, ExportApproval).first()
    return row


async def make_file(
    export_id: int,
    storage: Storage,
    redis: Redis,
    actor: Actor | None = None,
    counted: tuple[Sheet, int] | None = None,
) -> str:
    """Make an export's file: read its rows again in the requester's scope as it stands now,
    write the file, store it, mark the export done and audit it with its row count. Takes a
    queued export, or a running one again (its worker died); any other is left alone. The
    request that makes a small file passes the sheet it counted and its count (read once)."""
    row = await _row(export_id)
    if row["status"] not in (ExportStatus.queued.value, ExportStatus.running.value):
        return "skipped"
    if not await EXPORT_STATUS.move(export_id, ExportStatus.running):
        return "skipped"
    kind, file_format = ExportKind(row["kind"]), FileFormat(row["format"])
    params = json_value(row["params"]) or {}
    try:
        account, principal = await _requester(row)
        who = actor or principal.actor(None, f"export:{export_id}")
        approval = None
        if row["approval"] is not None:
            approval = await _approval(principal, row["approval"])
            if approval is None:
                raise _Refused("导出人的管辖范围已不含该批准文件的地区")
            refused = approvals.refusal_of(approval, account["id"], params["region_code"], _now())
            if refused is not None:
                raise _Refused(refused.message)
        if counted is None:
            sheet = _sheet(kind, principal, who, params, approval)
            total = await sheet.count()
        else:
            sheet, total = counted
    except (_Refused, DomainError) as exc:
        await fail(export_id, getattr(exc, "message", str(exc)))
        return "failed"
    await progress.report(redis, PROGRESS, export_id, phase="reading", done=0, total=total)
    spool = Spool()
    try:
        async for batch in sheet.batches():
            spool.add(batch)
            await progress.report(redis, PROGRESS, export_id, done=spool.count)
        await progress.report(redis, PROGRESS, export_id, phase="writing", done=spool.count)
        made = _now()
        header = Header(
            title=sheet.title,
            exported_by=account["name"],
            role_label=ROLE_LABEL[Role(account["role"])],
            exported_at=made,
            scope_label=row["scope_label"],
            row_count=spool.count,
            note=sheet.note,
        )
        data, digest = await asyncio.to_thread(_render, file_format, header, sheet, spool)
    finally:
        spool.close()
    key = f"exports/{export_id}/{secrets.token_hex(12)}.{file_format.value}"
    await storage.put(key, data, CONTENT_TYPE[file_format])
    expires = made + FILE_TTL
    if approval is not None and approval["expires_at"] is not None:
        expires = min(expires, approvals._aware(approval["expires_at"]))
    stamp = made.astimezone(CHINA).strftime("%Y%m%d-%H%M%S")  # as people read the time
    name = f"{sheet.file_stem}-{stamp}.{file_format.value}"
    async with transaction():
        moved = await EXPORT_STATUS.move(
            export_id,
            ExportStatus.done,
            sources=(ExportStatus.running,),
            values={
                ExportJob.row_count: spool.count,
                ExportJob.storage_key: key,
                ExportJob.file_name: name,
                ExportJob.sha256: digest,
                ExportJob.size: len(data),
                ExportJob.finished_at: made,
                ExportJob.expires_at: expires,
            },
        )
        if moved:
            await audit.record(
                who,
                "export",
                "export_job",
                export_id,
                after={
                    "kind": kind.value,
                    "format": file_format.value,
                    "rows": spool.count,
                    "scope": row["scope_label"],
                    "params": params,
                    "approval": row["approval"],
                    "sha256": digest,
                    "bytes": len(data),
                },
            )
    if not moved:
        await storage.delete(key)
        return "skipped"
    await progress.report(redis, PROGRESS, export_id, phase="done", done=spool.count)
    return "done"


def _render(
    file_format: FileFormat, header: Header, sheet: Sheet, spool: Spool
) -> tuple[bytes, str]:
    """The file and its SHA-256, off the event loop (a national list makes a large file)."""
    out = io.BytesIO()
    write(file_format, header, ExportTable(sheet.columns, spool.rows()), out)
    data = out.getvalue()
    return data, hashlib.sha256(data).hexdigest()


async def fail(export_id: int, message: str) -> None:
    await EXPORT_STATUS.move(
        export_id,
        ExportStatus.failed,
        values={ExportJob.message: message[:500], ExportJob.finished_at: _now()},
    )


async def _own(principal: Principal, actor: Actor, export_id: int) -> dict[str, Any]:
    """An export of the caller's own; another's answers like a missing one (audited)."""
    row = (
        await ExportJob.select()
        .where((ExportJob.id == export_id) & (ExportJob.account == principal.account_id))
        .first()
    )
    if row is not None:
        return row
    if await ExportJob.exists().where(ExportJob.id == export_id):
        await audit.record(actor, "access_denied", "export_job", export_id)
    raise NotFound()


async def get_export(
    principal: Principal, actor: Actor, redis: Redis, export_id: int
) -> tuple[dict[str, Any], dict[str, str]]:
    row = await _own(principal, actor, export_id)
    return row, await progress.read(redis, PROGRESS, export_id)


async def list_exports(principal: Principal, page: int, page_size: int) -> Page[dict[str, Any]]:
    mine = ExportJob.account == principal.account_id
    w = window(page, page_size)
    rows, total = await w.fetch(
        ExportJob.select().where(mine).order_by(ExportJob.id, ascending=False),
        ExportJob.count().where(mine),
    )
    return w.page(rows, total)


async def download(
    principal: Principal, actor: Actor, storage: Storage, export_id: int
) -> tuple[bytes, str, str]:
    """The file of one of the caller's own exports, before it expires; audited."""
    row = await _own(principal, actor, export_id)
    status = ExportStatus(row["status"])
    if status in (ExportStatus.queued, ExportStatus.running):
        raise NotReady()
    if status is ExportStatus.failed:
        raise ExportFailed(row["message"] or None)
    expires = row["expires_at"]
    if status is ExportStatus.expired or expires is None or _now() >= approvals._aware(expires):
        await audit.record(
            actor, "download_refused", "export_job", export_id, after={"code": FileExpired.code}
        )
        raise FileExpired()
    if row["approval"] is not None:
        approval = await _approval(principal, row["approval"])
        if approval is None:  # its region is no longer the caller's: as asking again answers
            await audit.record(actor, "access_denied", "export_job", export_id)
            raise NotFound()
        if approval["state"] != "confirmed":
            await audit.record(
                actor,
                "download_refused",
                "export_job",
                export_id,
                after={"code": "approval_revoked"},
            )
            raise approvals.Revoked()
    data = await storage.get(row["storage_key"])
    await audit.record(
        actor,
        "download",
        "export_job",
        export_id,
        after={"rows": row["row_count"], "sha256": row["sha256"]},
    )
    return data, CONTENT_TYPE[FileFormat(row["format"])], row["file_name"]


async def sweep(storage: Storage, queue: Any) -> dict[str, int]:
    """Every few minutes: delete the files past their time (the export becomes `expired`),
    and enqueue again the exports a lost enqueue or a dead worker left queued or running."""
    now = _now()
    expired = await ExportJob.select(ExportJob.id, ExportJob.storage_key).where(
        (ExportJob.status == ExportStatus.done.value) & (ExportJob.expires_at <= now)
    )
    for row in expired:
        if row["storage_key"]:
            try:
                await storage.delete(row["storage_key"])
            except OSError:
                log.warning("export %s: its file could not be deleted yet", row["id"])
                continue
        await EXPORT_STATUS.move(
            row["id"], ExportStatus.expired, values={ExportJob.storage_key: None}
        )
    stale = await ExportJob.select(ExportJob.id, ExportJob.created_at).where(
        ExportJob.status.is_in([ExportStatus.queued.value, ExportStatus.running.value])
        & (ExportJob.created_at < now - STALE_AFTER)
    )
    requeued = 0
    for row in stale:
        if approvals._aware(row["created_at"]) < now - GIVE_UP_AFTER:
            await fail(row["id"], "文件生成超时，请缩小范围（按区县或学校）或改用 CSV 后重新导出")
            continue
        # A fresh id per sweep: arq keeps a finished job's id for a while and would refuse it.
        at = int(now.timestamp()) // 60
        await queue.enqueue_job("run_export_job", row["id"], _job_id=f"export:{row['id']}:{at}")
        requeued += 1
    return {"expired": len(expired), "requeued": requeued}


# Longer than a job may run (exports_tasks.EXPORT_TIMEOUT): only a lost job is taken again.
STALE_AFTER = timedelta(minutes=35)
GIVE_UP_AFTER = timedelta(hours=3)  # a file that could not be made in this long never will
