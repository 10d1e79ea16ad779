"""HTTP for accounts: login and tokens, who am I, the organisation tree, staff accounts."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from backend.accounts import admin, auth_service, org
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.accounts.roles import ROLE_LABEL, Role
from backend.accounts.schemas import (
    AccountCreate,
    AccountRead,
    ClassRead,
    LoginRequest,
    Me,
    PasswordChange,
    RefreshRequest,
    RegionRead,
    SchoolRead,
    ScopeRead,
    TokenPair,
)
from backend.accounts.second_factor_schemas import SecondFactorChallenge
from backend.accounts.tables import AccountStatus
from backend.deps import (
    ActorDep,
    IdFilter,
    PrincipalDep,
    RedisDep,
    SettingsDep,
    SmsDep,
)
from backend.http import allowed
from backend.openapi import (
    BY_ID,
    JSON_BODY,
    QUERY,
    REDIS,
    SIGNED_IN,
    SIGNED_IN_ANY_PASSWORD,
    STAFF,
    errors,
)
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/login",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Log in with phone and password",
        operation_id="login",
        responses=errors(
            JSON_BODY,
            REDIS,
            {
                401: "invalid_credentials sms_code_required sms_code_invalid",
                403: "account_sealed account_disabled account_closed",
                409: "sms_failed",
                429: "too_many_attempts",
            },
        ),
    )
    async def login(
        self,
        data: JSONBody[LoginRequest],
        settings: SettingsDep,
        redis: RedisDep,
        sms: SmsDep,
        actor: ActorDep,
    ) -> TokenPair | SecondFactorChallenge:
        """**Who may call**: anyone (staff and parents alike).

        Checks the phone and password and answers an access token (short-lived, for
        `Authorization: Bearer`) and a refresh token. Registrars and every role above them
        (when the second factor is required) get a `SecondFactorChallenge` instead
        (`second_factor_required: true`, a `ticket`, no tokens): `step: verify`, send the
        code to `POST /auth/second-factor/verify`; `step: enrol`, set a factor up first
        (docs/api.md, "Signing in with a second factor"). While the account or the address is
        under attack the answer is 401 `sms_code_required` and an SMS code is sent: send the
        same request again with `sms_code`. `password_change_required: true` means every other
        call answers 403 until `POST /auth/password`.

        **Errors**: `invalid_credentials` (401) wrong phone or password (the same answer for
        both); `sms_code_required`, `sms_code_invalid` (401) send (again) with the SMS code;
        `account_sealed`, `account_disabled` (403); `sms_failed` (409) the SMS could not be
        sent; `too_many_attempts` (429, `Retry-After`); `validation_error` (400);
        `service_unavailable` (503); `account_closed` (403) a campaign account whose campaign
        ended."""
        return await auth_service.login(
            settings, redis, sms, actor, data.phone, data.password, data.sms_code
        )

    @post(
        "/refresh",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Trade a refresh token for a new token pair",
        operation_id="refreshTokens",
        responses=errors(JSON_BODY, REDIS, {401: "invalid_token refresh_token_reused"}),
    )
    async def refresh(
        self,
        data: JSONBody[RefreshRequest],
        settings: SettingsDep,
        redis: RedisDep,
        actor: ActorDep,
    ) -> TokenPair:
        """**Who may call**: anyone holding a refresh token (no access token needed).

        Answers a new access and refresh token; the old refresh token is spent (sent again
        within a few seconds, as by a retry, it answers the same new pair). Call it when an
        answer is 401 `token_expired`.

        **Errors**: `invalid_token` (401) unknown, expired or revoked refresh token, or the
        account was sealed or disabled: log in again; `refresh_token_reused` (401) a spent
        token was replayed, so every session of the account is ended; `validation_error`
        (400); `service_unavailable` (503)."""
        return await auth_service.refresh(settings, redis, actor, data.refresh_token)

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        allow_expired_password=True,
        summary="End this session",
        operation_id="logout",
        responses=errors(SIGNED_IN_ANY_PASSWORD),
    )
    async def logout(self, settings: SettingsDep, principal: PrincipalDep, actor: ActorDep) -> None:
        """**Who may call**: any signed-in account, even with an expired password.

        Revokes the session's refresh tokens; the access token runs out by itself.

        **Errors**: `unauthorized`, `invalid_token`, `token_expired` (401)."""
        await auth_service.logout(settings, principal, actor)

    @post(
        "/password",
        status_code=HTTP_204_NO_CONTENT,
        allow_expired_password=True,
        summary="Change my password",
        operation_id="changePassword",
        responses=errors(
            SIGNED_IN_ANY_PASSWORD,
            JSON_BODY,
            {400: "wrong_password password_reused weak_password"},
        ),
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> None:
        """**Who may call**: any signed-in account, even with an expired or initial password
        (this is how `password_change_required` is cleared).

        **Errors**: `wrong_password` (400) the old password is wrong; `password_reused`,
        `weak_password` (400) with `field_errors.new_password`; `validation_error` (400);
        `unauthorized`, `invalid_token`, `token_expired` (401)."""
        await auth_service.change_password(
            settings, principal, actor, data.old_password, data.new_password
        )


@get(
    "/me",
    tags=["auth"],
    allow_expired_password=True,
    summary="Read my account and scope",
    operation_id="getMe",
    responses=errors(SIGNED_IN_ANY_PASSWORD),
)
async def me(request: Request[Principal, Any, Any]) -> Me:
    """**Who may call**: any signed-in account, even with an expired password.

    The caller's account (phone masked), role and scope (the region, school or class it
    sees), and whether the password must be changed first.

    **Errors**: `unauthorized`, `invalid_token`, `token_expired`, `account_inactive` (401)."""
    user = request.user
    return Me(
        id=user.account_id,
        name=user.name,
        phone=user.phone,
        role=user.role,
        role_label=ROLE_LABEL[user.role],
        scope=ScopeRead(
            user.scope.kind,
            user.scope.region_code,
            user.scope.school_id,
            user.scope.class_id,
        ),
        password_change_required=user.password_change_required,
    )


class OrgController(Controller):
    path = "/org"
    tags = ["organisation"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/regions",
        summary="List regions in my scope",
        operation_id="listRegions",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_regions(
        self, principal: PrincipalDep, parent_code: FromQuery[str | None] = None
    ) -> list[RegionRead]:
        """**Who may call**: staff (any role but parent).

        The regions (province, city, county) inside the caller's scope; `parent_code` lists
        the children of one region.

        **Errors**: `forbidden` (403) a parent; `validation_error` (400)."""
        return await org.list_regions(principal.scope, parent_code)

    @get(
        "/regions/{region_code:str}",
        summary="Get a region",
        operation_id="getRegion",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_region(
        self, region_code: FromPath[str], principal: PrincipalDep, actor: ActorDep
    ) -> RegionRead:
        """One region by its 6-digit GB/T 2260 code (`330106`).

        **Who may call**: staff whose scope holds the region (or lies inside it).

        **Errors**: `not_found` (404) for a region missing or outside the caller's scope."""
        return await org.get_region(actor, principal.scope, region_code)

    @get(
        "/schools",
        summary="List schools in my scope",
        operation_id="listSchools",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_schools(
        self, principal: PrincipalDep, page: PageNumber = 1, page_size: PageSize = DEFAULT_PAGE_SIZE
    ) -> Page[SchoolRead]:
        """**Who may call**: staff (any role but parent).

        The schools inside the caller's scope, a page at a time.

        **Errors**: `forbidden` (403) a parent; `validation_error` (400) page out of range."""
        return await org.list_schools(principal.scope, page, page_size)

    @get(
        "/schools/{school_id:int}",
        summary="Read a school",
        operation_id="getSchool",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_school(
        self, school_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> SchoolRead:
        """**Who may call**: staff whose scope holds the school.

        **Errors**: `not_found` (404) no such school, or outside the caller's scope (the same
        answer, audited); `forbidden` (403) a parent."""
        return await org.get_school(actor, principal.scope, school_id)

    @get(
        "/classes",
        summary="List classes in my scope",
        operation_id="listClasses",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_classes(
        self,
        principal: PrincipalDep,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        school_id: IdFilter = None,
    ) -> Page[ClassRead]:
        """**Who may call**: staff (any role but parent).

        The classes inside the caller's scope, with their homeroom teachers; `school_id`
        narrows to one school.

        **Errors**: `forbidden` (403) a parent; `validation_error` (400)."""
        return await org.list_classes(principal.scope, school_id, page, page_size)

    @get(
        "/classes/{class_id:int}",
        summary="Read a class",
        operation_id="getClass",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_class(
        self, class_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ClassRead:
        """**Who may call**: staff whose scope holds the class.

        **Errors**: `not_found` (404) no such class, or outside the caller's scope (the same
        answer, audited); `forbidden` (403) a parent."""
        return await org.get_class(actor, principal.scope, class_id)


class AccountController(Controller):
    path = "/accounts"
    tags = ["accounts"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List accounts in my scope",
        operation_id="listAccounts",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_accounts(
        self,
        principal: PrincipalDep,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        role: FromQuery[Role | None] = None,
        status: FromQuery[AccountStatus | None] = None,
        name: FromQuery[str | None] = None,
    ) -> Page[AccountRead]:
        """**Who may call**: staff (any role but parent).

        Accounts inside the caller's scope (parents of its children included), a parent's
        phone masked (a staff account's phone is its work number, shown to the staff over
        it), a page at a time; `role`, `status` and `name` (a part of it) narrow the list.

        **Errors**: `forbidden` (403) a parent; `validation_error` (400) page out of range,
        or a `role` or `status` outside the listed values."""
        return await admin.list_accounts(
            principal, page, page_size, role=role, status=status, name=name
        )

    @post(
        "/",
        summary="Create a staff account",
        operation_id="createAccount",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            {
                400: "class_required school_required region_required weak_password",
                403: "rank_too_high",
                404: "not_found",
                409: "phone_taken",
            },
        ),
    )
    async def create_account(
        self,
        data: JSONBody[AccountCreate],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> AccountRead:
        """**Who may call**: an account admin (a registrar, a county, city or province
        admin, a sysadmin; not a school leader) for a staff role of a lower rank.

        Creates a staff account inside the caller's scope, of a lower rank than the caller's,
        with an initial password it must change at first login.

        **Errors**: `rank_too_high` (403) the role is not below the caller's; `forbidden`
        (403); `class_required`, `school_required`, `region_required` (400) the role's scope
        is missing; `weak_password` (400); `not_found` (404) the named class, school or region
        is missing or outside the caller's scope; `phone_taken` (409); `validation_error`
        (400)."""
        return await admin.create_account(settings, principal, actor, data)

    @get(
        "/{account_id:int}",
        summary="Read an account",
        operation_id="getAccount",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_account(
        self, account_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> AccountRead:
        """**Who may call**: staff whose scope holds the account.

        **Errors**: `not_found` (404) no such account, or outside the caller's scope (the
        same answer, audited); `forbidden` (403) a parent."""
        return await admin.get_account(principal, actor, account_id)

    @post(
        "/{account_id:int}/seal",
        status_code=HTTP_200_OK,
        summary="Seal a staff account",
        operation_id="sealAccount",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "rank_too_high", 409: "invalid_status"}),
    )
    async def seal(
        self, account_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> AccountRead:
        """An active staff account is sealed: it cannot log in until unsealed (audited).

        **Who may call**: an account admin above the account (in scope, higher rank).

        **Errors**: `forbidden`, `rank_too_high` (403); `not_found` (404) for an account
        missing or outside the caller's scope; `invalid_status` (409) when the account's
        state does not allow it."""
        return await admin.change_status(principal, actor, account_id, "seal")

    @post(
        "/{account_id:int}/unseal",
        status_code=HTTP_200_OK,
        summary="Unseal a staff account",
        operation_id="unsealAccount",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "rank_too_high", 409: "invalid_status"}),
    )
    async def unseal(
        self, account_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> AccountRead:
        """A sealed staff account is active again (audited).

        **Who may call**: an account admin above the account (in scope, higher rank).

        **Errors**: `forbidden`, `rank_too_high` (403); `not_found` (404) for an account
        missing or outside the caller's scope; `invalid_status` (409) when the account's
        state does not allow it."""
        return await admin.change_status(principal, actor, account_id, "unseal")

    @post(
        "/{account_id:int}/disable",
        status_code=HTTP_200_OK,
        summary="Disable an account",
        operation_id="disableAccount",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "rank_too_high", 409: "invalid_status"}),
    )
    async def disable(
        self, account_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> AccountRead:
        """An account (staff, or a parent of a child in scope) is disabled: it cannot log in
        (audited).

        **Who may call**: an account admin above the account (in scope, higher rank).

        **Errors**: `forbidden`, `rank_too_high` (403); `not_found` (404) for an account
        missing or outside the caller's scope; `invalid_status` (409) when the account's
        state does not allow it."""
        return await admin.change_status(principal, actor, account_id, "disable")

    @post(
        "/{account_id:int}/enable",
        status_code=HTTP_200_OK,
        summary="Enable an account",
        operation_id="enableAccount",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "rank_too_high", 409: "invalid_status"}),
    )
    async def enable(
        self, account_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> AccountRead:
        """A disabled account is active again (audited).

        **Who may call**: an account admin above the account (in scope, higher rank).

        **Errors**: `forbidden`, `rank_too_high` (403); `not_found` (404) for an account
        missing or outside the caller's scope; `invalid_status` (409) when the account's
        state does not allow it."""
        return await admin.change_status(principal, actor, account_id, "enable")


ROUTES: list[Any] = [AuthController, me, OrgController, AccountController]
