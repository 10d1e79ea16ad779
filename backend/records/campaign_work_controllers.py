"""HTTP for a campaign's people and progress at the school level: its campaign accounts
(数据质量核查专用账号) and the schools that have not started it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from backend.accounts.permissions import Action
from backend.deps import ActorDep, PrincipalDep, SettingsDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, SIGNED_IN, STAFF, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.records import campaign_accounts, not_started
from backend.records.campaign_account_schemas import CampaignAccountCreate, CampaignAccountRead
from backend.records.not_started_schemas import SchoolsNotStarted

RegionFilter = Annotated[
    str | None,
    QueryParameter(pattern=r"^\d{6}$", description="a region (GB/T 2260) in the caller's scope"),
]


class CampaignAccountController(Controller):
    path = "/campaign-accounts"
    tags = ["campaigns"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/",
        summary="Create a campaign account",
        operation_id="createCampaignAccount",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            {
                400: "place_required county_required weak_password",
                403: "campaign_accounts_forbidden rank_too_high",
                404: "not_found",
                409: "campaign_not_here campaign_ended phone_taken",
            },
        ),
    )
    async def create(
        self,
        data: JSONBody[CampaignAccountCreate],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> CampaignAccountRead:
        """**Who may call**: a county reviewer, a city or province admin, a sysadmin, inside
        its scope.

        A campaign account (数据质量核查专用账号) for a school (`school_id`: a registrar of
        the school) or a county (`region_code`: a county reviewer), bound to the campaign: it
        signs in like any account (its initial password must be changed first) and is closed
        for good, its sessions ended, when the campaign ends for its county (closed early,
        deleted, or its window passed). Audited.

        **Errors**: `campaign_accounts_forbidden` (403) below a county; `rank_too_high` (403)
        a county reviewer making a county's account; `place_required`, `county_required`
        (400) not exactly one school or county; `weak_password` (400); `not_found` (404) the
        campaign, school or county missing or outside the caller's scope; `campaign_not_here`
        (409) the campaign does not cover the place; `campaign_ended` (409) it is over there;
        `phone_taken` (409); `validation_error` (400)."""
        return await campaign_accounts.create(settings, principal, actor, data)

    @get(
        "/{account_id:int}",
        summary="Read a campaign account",
        operation_id="getCampaignAccount",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_one(
        self, account_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> CampaignAccountRead:
        """**Who may call**: staff whose scope holds the account's school or county.

        **Errors**: `not_found` (404) no such campaign account in the caller's scope
        (audited); `forbidden` (403) a parent."""
        return await campaign_accounts.get(principal, actor, account_id)


class CampaignWorkController(Controller):
    path = "/campaigns/{campaign_id:int}"
    tags = ["campaigns"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/accounts",
        summary="List a campaign's accounts",
        operation_id="listCampaignAccounts",
        responses=errors(SIGNED_IN, STAFF, QUERY, BY_ID),
    )
    async def list_accounts(
        self,
        campaign_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[CampaignAccountRead]:
        """**Who may call**: staff whose scope the campaign covers.

        The campaign's accounts inside the caller's scope, open and closed (with when and
        why), a page at a time.

        **Errors**: `not_found` (404) no such campaign in the caller's scope;
        `validation_error` (400) page out of range."""
        return await campaign_accounts.list_for_campaign(
            principal, actor, campaign_id, page, page_size
        )

    @get(
        "/schools-not-started",
        summary="List the schools that have not started a campaign",
        operation_id="listSchoolsNotStarted",
        responses=errors(
            SIGNED_IN,
            STAFF,
            QUERY,
            BY_ID,
            {403: "progress_authorities_only", 409: "campaign_not_here"},
        ),
    )
    async def not_started(
        self,
        campaign_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        region_code: FromQuery[RegionFilter] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> SchoolsNotStarted:
        """**Who may call**: a county reviewer, a city or province admin, a sysadmin.

        The schools of `region_code` (default: the caller's own region; a province, city or
        county in the caller's scope) that the campaign covers and that have not started it —
        no confirmation form of the campaign issued for any of their classes — with their
        classes, enrolled students and the window that applies to them; and the region's
        counts of schools and of schools started.

        **Errors**: `progress_authorities_only` (403) a school's staff; `not_found` (404) the
        campaign or region missing or outside the caller's scope (audited);
        `campaign_not_here` (409) the campaign does not cover the region; `validation_error`
        (400)."""
        return await not_started.schools_not_started(
            principal, actor, campaign_id, region_code, page, page_size
        )


ROUTES: list[Any] = [CampaignAccountController, CampaignWorkController]
