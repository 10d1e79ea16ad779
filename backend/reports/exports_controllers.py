"""HTTP for exports (`/exports`) and the approvals that allow full student records to leave
(`/export-approvals`). Handlers only translate: the rules are in `backend.reports.exports` and
`backend.reports.approvals`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.permissions import Action
from backend.deps import ActorDep, OutboxDep, PrincipalDep, RedisDep, StorageDep
from backend.http import NO_STORE, allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, REDIS, SIGNED_IN, STAFF, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.reports import approvals, exports
from backend.reports.approvals import ApprovalIn, in_force_at
from backend.reports.exports_files import FileFormat
from backend.reports.exports_schemas import (
    APPROVAL_STATE_LABEL,
    EXPORT_STATUS_LABEL,
    ApprovalCreate,
    ApprovalRead,
    ExportCreate,
    ExportPhase,
    ExportRead,
)
from backend.reports.exports_sources import ProblemFilter
from backend.reports.tables import ApprovalState, ExportKind, ExportStatus


def export_read(row: dict[str, Any], reported: dict[str, str] | None = None) -> ExportRead:
    status = ExportStatus(row["status"])
    reported = reported or {}
    phase = reported.get("phase")
    return ExportRead(
        id=row["id"],
        kind=ExportKind(row["kind"]),
        format=FileFormat(row["format"]),
        status=status,
        status_label=EXPORT_STATUS_LABEL[status],
        phase=ExportPhase(phase) if phase else None,
        done=int(reported.get("done", row["row_count"])),
        total=int(reported.get("total", row["row_count"])),
        row_count=row["row_count"],
        scope_label=row["scope_label"],
        file_name=row["file_name"],
        size=row["size"],
        sha256=row["sha256"],
        message=row["message"],
        download_url=f"/exports/{row['id']}/file" if status is ExportStatus.done else None,
        approval_id=row["approval"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
    )


def approval_read(row: dict[str, Any]) -> ApprovalRead:
    state = ApprovalState(row["state"])
    return ApprovalRead(
        id=row["id"],
        document_number=row["document_number"],
        issuing_authority=row["issuing_authority"],
        region_code=row["region_code"],
        purpose=row["purpose"],
        state=state,
        state_label=APPROVAL_STATE_LABEL[state],
        in_force=in_force_at(row, approvals._now()),
        recorded_by_id=row["recorded_by"],
        recorded_by_name=row["recorded_by_name"],
        recorded_at=row["recorded_at"],
        confirmed_by_id=row["confirmed_by"],
        confirmed_by_name=row["confirmed_by_name"],
        confirmed_at=row["confirmed_at"],
        expires_at=row["expires_at"],
    )


_BULK_REFUSALS = (
    "export_admins_only export_needs_approval approval_not_yours export_outside_approval"
)


class ExportController(Controller):
    path = "/exports"
    tags = ["exports"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Export a list or table as XLSX or CSV",
        operation_id="createExport",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            REDIS,
            {
                403: f"export_forbidden {_BULK_REFUSALS}",
                404: "not_found",
                400: "campaign_required one_node_only",
                409: "approval_not_confirmed approval_revoked approval_expired",
            },
        ),
    )
    async def create(
        self,
        data: JSONBody[ExportCreate],
        principal: PrincipalDep,
        actor: ActorDep,
        redis: RedisDep,
        storage: StorageDep,
        outbox: OutboxDep,
    ) -> ExportRead:
        """Export, within the caller's scope, the problem-record list (`problem_cases`, with
        the list's filters), a campaign's progress table (`progress`: `campaign_id` and at
        most one of `region_code`, `school_id`, `class_id`; the node, then each child one
        level down) or, under a confirmed approval, full student records
        (`student_records`). Masked kinds show ID numbers, registry numbers and phones by the
        one masking rule; full records show every value. Each file starts with who exported
        it (name and role), when (China time), the scope and the row count (XLSX: also its
        document properties).

        Up to 2,000 rows the file is made during the request and the answer is `done` with
        its `download_url`; above that a job makes it (`queued`, then `running`: poll
        `GET /exports/{export_id}` for `done`/`total`). Either way only the caller may
        download it, for 24 hours (an approval's export: never past the approval's expiry).
        Audited: the request, the file made (with its row count), each download.

        **Who may call**: a registrar or above for masked lists; for `student_records` the
        admin (county level or above) who recorded the approval or the one who confirmed it.

        **Errors**: `export_forbidden` (403) a teacher; `export_admins_only` (403) full records
        asked by a school; `export_needs_approval` (403) full records without `approval_id`;
        `approval_not_yours` (403) not one of the approval's two admins;
        `export_outside_approval` (403) a `region_code` outside the approved region;
        `approval_not_confirmed`, `approval_revoked`, `approval_expired` (409) the approval is
        not in force (24 hours after its confirmation); `campaign_required` (400) a progress
        table without `campaign_id`; `one_node_only` (400) more than one of `region_code`,
        `school_id`, `class_id` for a progress table; `not_found` (404) a campaign, region,
        school, class or approval outside the caller's scope."""
        ask = exports.ExportAsk(
            kind=data.kind,
            file_format=data.format,
            problem=ProblemFilter(data.problem_kind, data.state, data.open_only, data.school_id),
            region_code=data.region_code,
            approval_id=data.approval_id,
            campaign_id=data.campaign_id,
            class_id=data.class_id,
        )
        row = await exports.start_export(principal, actor, redis, storage, outbox, ask)
        return export_read(row)

    @get(
        "/",
        summary="List one's own exports",
        operation_id="listExports",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_mine(
        self,
        principal: PrincipalDep,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[ExportRead]:
        """The caller's own exports, newest first: nobody sees another's.

        **Who may call**: staff.

        **Errors**: `validation_error` (400) for paging out of range."""
        found = await exports.list_exports(principal, page, page_size)
        return Page([export_read(r) for r in found.items], found.page, found.page_size, found.total)

    @get(
        "/{export_id:int}",
        summary="Show an export and its progress",
        operation_id="getExport",
        responses=errors(SIGNED_IN, STAFF, BY_ID, REDIS),
    )
    async def one(
        self, export_id: FromPath[int], principal: PrincipalDep, actor: ActorDep, redis: RedisDep
    ) -> ExportRead:
        """One of the caller's own exports: its status, the job's progress (`phase`, `done`
        of `total` rows) and, once `done`, its `download_url` until `expires_at`.

        **Who may call**: the export's requester only.

        **Errors**: `not_found` (404) no such export of the caller's (another's is audited)."""
        row, reported = await exports.get_export(principal, actor, redis, export_id)
        return export_read(row, reported)

    @get(
        "/{export_id:int}/file",
        media_type="application/octet-stream",
        summary="Download an export's file",
        operation_id="getExportFile",
        responses=errors(
            SIGNED_IN,
            STAFF,
            BY_ID,
            {409: "export_not_ready export_failed export_expired approval_revoked"},
        ),
    )
    async def file(
        self,
        export_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        """The XLSX or CSV file, as an attachment, never cached; audited.

        **Who may call**: the export's requester only, until its `expires_at`.

        **Errors**: `not_found` (404) no such export of the caller's (another's is audited),
        or its approval's region is no longer in the caller's scope; `export_not_ready` (409)
        still being made; `export_failed` (409); `export_expired` (409) past its 24 hours, or
        past its approval's expiry; `approval_revoked` (409)."""
        data, content_type, name = await exports.download(principal, actor, storage, export_id)
        return Response(
            data,
            media_type=content_type,
            status_code=HTTP_200_OK,
            headers={
                **NO_STORE,
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            },
        )


class ExportApprovalController(Controller):
    path = "/export-approvals"
    tags = ["exports"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Record an authorising document for a bulk export",
        operation_id="createExportApproval",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            {403: "export_admins_only approval_outside_scope", 404: "region_not_found"},
        ),
    )
    async def record(
        self, data: JSONBody[ApprovalCreate], principal: PrincipalDep, actor: ActorDep
    ) -> ApprovalRead:
        """Record the document that authorises a bulk export of full student records
        (regulation: 法律规定 or 经县级以上人民政府批准): its number, issuing authority and the
        region it covers, inside the caller's scope. It stays `pending` until a second admin
        confirms it. Audited.

        **Who may call**: an admin at county level or above.

        **Errors**: `export_admins_only` (403) a school or teacher; `approval_outside_scope`
        (403) a region outside the caller's; `region_not_found` (404) no such region."""
        row = await approvals.record_approval(
            principal,
            actor,
            ApprovalIn(
                data.document_number, data.issuing_authority, data.region_code, data.purpose
            ),
        )
        return approval_read(row)

    @post(
        "/{approval_id:int}/confirm",
        status_code=HTTP_200_OK,
        summary="Confirm an authorising document as a second admin",
        operation_id="confirmExportApproval",
        responses=errors(
            SIGNED_IN,
            STAFF,
            BY_ID,
            {
                403: "export_admins_only approval_same_admin approval_rank_too_low",
                409: "approval_not_pending",
            },
        ),
    )
    async def confirm(
        self, approval_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ApprovalRead:
        """A second admin confirms the document: exports of full records of its region (by
        the two admins) are allowed for 24 hours from now, then refused as expired. Audited.

        **Who may call**: an admin at county level or above, not the one who recorded it, of
        that admin's rank or above, whose scope holds the approved region.

        **Errors**: `approval_same_admin` (403) the recorder confirming its own;
        `approval_rank_too_low` (403) a lower rank than the recorder's; `export_admins_only`
        (403); `not_found` (404) outside the caller's scope; `approval_not_pending` (409)
        already confirmed or revoked."""
        return approval_read(await approvals.confirm_approval(principal, actor, approval_id))

    @post(
        "/{approval_id:int}/revoke",
        status_code=HTTP_200_OK,
        summary="Withdraw an authorising document",
        operation_id="revokeExportApproval",
        responses=errors(
            SIGNED_IN, STAFF, BY_ID, {403: "export_admins_only", 409: "approval_already_revoked"}
        ),
    )
    async def revoke(
        self, approval_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ApprovalRead:
        """Withdraw a pending or confirmed approval: from now on exports under it are refused
        and files made under it can no longer be downloaded. Audited.

        **Who may call**: an admin at county level or above whose scope holds its region.

        **Errors**: `export_admins_only` (403); `not_found` (404) outside the caller's scope;
        `approval_already_revoked` (409)."""
        return approval_read(await approvals.revoke_approval(principal, actor, approval_id))

    @get(
        "/",
        summary="List authorising documents in scope",
        operation_id="listExportApprovals",
        responses=errors(SIGNED_IN, STAFF, QUERY, {403: "export_admins_only"}),
    )
    async def list_approvals(
        self,
        principal: PrincipalDep,
        approval_state: Annotated[ApprovalState | None, QueryParameter(name="state")] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[ApprovalRead]:
        """The approvals whose region lies in the caller's scope, newest first; `in_force`
        says whether exports are allowed under one now.

        **Who may call**: an admin at county level or above.

        **Errors**: `export_admins_only` (403); `validation_error` (400) a `state` outside the
        listed values."""
        found = await approvals.list_approvals(principal, page, page_size, approval_state)
        return Page(
            [approval_read(r) for r in found.items], found.page, found.page_size, found.total
        )

    @get(
        "/{approval_id:int}",
        summary="Show an authorising document",
        operation_id="getExportApproval",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "export_admins_only"}),
    )
    async def one(
        self, approval_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ApprovalRead:
        """**Who may call**: an admin at county level or above whose scope holds its region.

        **Errors**: `export_admins_only` (403); `not_found` (404) outside the caller's scope
        (audited)."""
        return approval_read(await approvals.get_approval(principal, actor, approval_id))


ROUTES: list[Any] = [ExportController, ExportApprovalController]
