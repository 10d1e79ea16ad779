"""HTTP for support grants (`/support-grants`): a sysadmin's time-boxed read access to one
region's data, approved by an admin of that region. Handlers only translate: the rules are
in `backend.accounts.support`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts import support
from backend.accounts.permissions import Action
from backend.accounts.support import GrantIn, in_force_at
from backend.accounts.support_schemas import (
    GRANT_STATUS_LABEL,
    GrantCreate,
    GrantDecision,
    GrantRead,
)
from backend.accounts.support_tables import GrantStatus
from backend.deps import ActorDep, PrincipalDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, SIGNED_IN, STAFF, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize


def grant_read(row: dict[str, Any]) -> GrantRead:
    status = GrantStatus(row["status"])
    return GrantRead(
        id=row["id"],
        region_code=row["region_code"],
        reason=row["reason"],
        hours=row["hours"],
        status=status,
        status_label=GRANT_STATUS_LABEL[status],
        in_force=in_force_at(row, support._now()),
        requested_by_id=row["requested_by"],
        requested_by_name=row["requested_by_name"],
        requested_at=row["requested_at"],
        decided_by_id=row["decided_by"],
        decided_by_name=row["decided_by_name"],
        decided_at=row["decided_at"],
        decision_note=row["decision_note"],
        expires_at=row["expires_at"],
        revoked_by_id=row["revoked_by"],
        revoked_by_name=row["revoked_by_name"],
        revoked_at=row["revoked_at"],
    )


_DECIDERS = {403: "support_region_admins_only"}


class SupportGrantController(Controller):
    path = "/support-grants"
    tags = ["accounts"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Request read access to a region's data (sysadmin)",
        operation_id="requestSupportGrant",
        responses=errors(SIGNED_IN, STAFF, JSON_BODY, BY_ID, {403: "support_sysadmin_only"}),
    )
    async def request_grant(
        self, data: JSONBody[GrantCreate], principal: PrincipalDep, actor: ActorDep
    ) -> GrantRead:
        """Ask an admin of a region for read access to its students' data, for a reason and
        from 1 hour to 7 days. A sysadmin reads no student's or family's data otherwise. The
        grant is `requested` until an admin of the region approves or refuses it. Audited.

        **Who may call**: a sysadmin.

        **Errors**: `support_sysadmin_only` (403) any other role; `not_found` (404) no such
        region (or one outside a regional sysadmin's own); `validation_error` (400) a reason
        too short or hours outside 1–168."""
        body = GrantIn(data.region_code, data.reason, data.hours)
        return grant_read(await support.request_grant(principal, actor, body))

    @get(
        "/",
        summary="List support grants",
        operation_id="listSupportGrants",
        responses=errors(SIGNED_IN, STAFF, QUERY, _DECIDERS),
    )
    async def list_grants(
        self,
        principal: PrincipalDep,
        grant_status: Annotated[GrantStatus | None, QueryParameter(name="status")] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[GrantRead]:
        """Support grants, newest first: a sysadmin sees every one, an admin those whose
        region lies in its own. `in_force` says whether the sysadmin reads the region's data
        now (approved, not revoked, before `expires_at`).

        **Who may call**: a sysadmin; a county reviewer, city or province admin.

        **Errors**: `support_region_admins_only` (403) a school's staff;
        `validation_error` (400) paging out of range or an unknown status."""
        found = await support.list_grants(principal, page, page_size, grant_status)
        return Page([grant_read(r) for r in found.items], found.page, found.page_size, found.total)

    @get(
        "/{grant_id:int}",
        summary="Show a support grant",
        operation_id="getSupportGrant",
        responses=errors(SIGNED_IN, STAFF, BY_ID, _DECIDERS),
    )
    async def one(
        self, grant_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> GrantRead:
        """One support grant.

        **Who may call**: a sysadmin; an admin whose region holds the grant's.

        **Errors**: `support_region_admins_only` (403) a school's staff; `not_found` (404)
        no such grant in the caller's scope (audited)."""
        return grant_read(await support.get_grant(principal, actor, grant_id))

    @post(
        "/{grant_id:int}/approve",
        status_code=HTTP_200_OK,
        summary="Approve a support grant",
        operation_id="approveSupportGrant",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            _DECIDERS,
            {409: "support_grant_decided support_grant_in_force"},
        ),
    )
    async def approve(
        self,
        grant_id: FromPath[int],
        data: JSONBody[GrantDecision],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> GrantRead:
        """Approve a requested grant: from now until `expires_at` (now + its hours) the
        sysadmin reads, masked and read-only, the data of the grant's region, and every
        request it makes is audited with the grant's id. Audited.

        **Who may call**: a county reviewer, city or province admin whose region holds the
        grant's.

        **Errors**: `support_region_admins_only` (403) any other role; `not_found` (404) a
        grant outside the caller's region (audited); `support_grant_decided` (409) already
        approved, refused or revoked; `support_grant_in_force` (409) the sysadmin holds
        another grant in force."""
        row = await support.decide(principal, actor, grant_id, True, data.note)
        return grant_read(row)

    @post(
        "/{grant_id:int}/refuse",
        status_code=HTTP_200_OK,
        summary="Refuse a support grant",
        operation_id="refuseSupportGrant",
        responses=errors(
            SIGNED_IN, STAFF, JSON_BODY, BY_ID, _DECIDERS, {409: "support_grant_decided"}
        ),
    )
    async def refuse(
        self,
        grant_id: FromPath[int],
        data: JSONBody[GrantDecision],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> GrantRead:
        """Refuse a requested grant, with a note for the sysadmin. Audited.

        **Who may call**: a county reviewer, city or province admin whose region holds the
        grant's.

        **Errors**: `support_region_admins_only` (403) any other role; `not_found` (404) a
        grant outside the caller's region (audited); `support_grant_decided` (409) already
        decided."""
        row = await support.decide(principal, actor, grant_id, False, data.note)
        return grant_read(row)

    @post(
        "/{grant_id:int}/revoke",
        status_code=HTTP_200_OK,
        summary="Revoke a support grant before it runs out",
        operation_id="revokeSupportGrant",
        responses=errors(SIGNED_IN, STAFF, BY_ID, _DECIDERS, {409: "support_grant_not_in_force"}),
    )
    async def revoke(
        self, grant_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> GrantRead:
        """End a grant in force now: from the sysadmin's next request on it reads no data of
        the region again. Audited.

        **Who may call**: the admin who approved it, or any county reviewer, city or province
        admin whose region holds the grant's.

        **Errors**: `support_region_admins_only` (403) any other role; `not_found` (404) a
        grant outside the caller's region (audited); `support_grant_not_in_force` (409) not
        approved, already revoked or run out."""
        return grant_read(await support.revoke(principal, actor, grant_id))


ROUTES: list[Any] = [SupportGrantController]
