"""HTTP for accounts: login and tokens, who am I, the organisation tree, staff accounts."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from backend.accounts import admin, auth_service, org
from backend.accounts.principal import Principal
from backend.accounts.roles import ROLE_LABEL
from backend.accounts.schemas import (
    AccountCreate,
    AccountRead,
    ClassRead,
    LoginRequest,
    Me,
    Page,
    PasswordChange,
    RefreshRequest,
    RegionRead,
    SchoolRead,
    ScopeRead,
    TokenPair,
)
from backend.deps import (
    ActorDep,
    IdFilter,
    PageNumber,
    PageSize,
    PrincipalDep,
    RedisDep,
    SettingsDep,
    SmsDep,
)
from backend.http import requires_staff


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/login", exclude_from_auth=True, status_code=HTTP_200_OK)
    async def login(
        self,
        data: JSONBody[LoginRequest],
        settings: SettingsDep,
        redis: RedisDep,
        sms: SmsDep,
        actor: ActorDep,
    ) -> TokenPair:
        """Log in by phone number and password. Answered `sms_code_required` (while the
        account or the address is under attack), send it again with `sms_code` from the SMS."""
        return await auth_service.login(
            settings, redis, sms, actor, data.phone, data.password, data.sms_code
        )

    @post("/refresh", exclude_from_auth=True, status_code=HTTP_200_OK)
    async def refresh(
        self,
        data: JSONBody[RefreshRequest],
        settings: SettingsDep,
        redis: RedisDep,
        actor: ActorDep,
    ) -> TokenPair:
        """Trade a refresh token for a new pair; the old refresh token is spent (sent again
        within a few seconds, it answers the same new pair)."""
        return await auth_service.refresh(settings, redis, actor, data.refresh_token)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, allow_expired_password=True)
    async def logout(self, settings: SettingsDep, principal: PrincipalDep, actor: ActorDep) -> None:
        await auth_service.logout(settings, principal, actor)

    @post("/password", status_code=HTTP_204_NO_CONTENT, allow_expired_password=True)
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> None:
        await auth_service.change_password(
            settings, principal, actor, data.old_password, data.new_password
        )


@get("/me", tags=["auth"], allow_expired_password=True)
async def me(request: Request[Principal, Any, Any]) -> Me:
    """The caller's account and scope."""
    user = request.user
    return Me(
        id=user.account_id,
        name=user.name,
        phone=user.phone,
        role=user.role,
        role_label=ROLE_LABEL[user.role],
        scope=ScopeRead(
            user.scope.kind.value,
            user.scope.region_code,
            user.scope.school_id,
            user.scope.class_id,
        ),
        password_change_required=user.password_change_required,
    )


class OrgController(Controller):
    path = "/org"
    tags = ["organisation"]
    guards = [requires_staff]

    @get("/regions")
    async def list_regions(
        self, principal: PrincipalDep, parent_code: FromQuery[str | None] = None
    ) -> list[RegionRead]:
        return await org.list_regions(principal.scope, parent_code)

    @get("/regions/{region_code:str}", summary="Get a region", operation_id="getRegion")
    async def get_region(
        self, region_code: FromPath[str], principal: PrincipalDep, actor: ActorDep
    ) -> RegionRead:
        """One region by its 6-digit GB/T 2260 code (`330106`).

        **Who may call**: staff whose scope holds the region (or lies inside it).

        **Errors**: `not_found` (404) for a region missing or outside the caller's scope."""
        return await org.get_region(actor, principal.scope, region_code)

    @get("/schools")
    async def list_schools(
        self, principal: PrincipalDep, page: PageNumber = 1, page_size: PageSize = 50
    ) -> Page[SchoolRead]:
        return await org.list_schools(principal.scope, page, page_size)

    @get("/schools/{school_id:int}")
    async def get_school(
        self, school_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> SchoolRead:
        return await org.get_school(actor, principal.scope, school_id)

    @get("/classes")
    async def list_classes(
        self,
        principal: PrincipalDep,
        page: PageNumber = 1,
        page_size: PageSize = 50,
        school_id: IdFilter = None,
    ) -> Page[ClassRead]:
        return await org.list_classes(principal.scope, school_id, page, page_size)

    @get("/classes/{class_id:int}")
    async def get_class(
        self, class_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ClassRead:
        return await org.get_class(actor, principal.scope, class_id)


class AccountController(Controller):
    path = "/accounts"
    tags = ["accounts"]
    guards = [requires_staff]

    @get("/")
    async def list_accounts(
        self, principal: PrincipalDep, page: PageNumber = 1, page_size: PageSize = 50
    ) -> Page[AccountRead]:
        return await admin.list_accounts(principal, page, page_size)

    @post("/")
    async def create_account(
        self,
        data: JSONBody[AccountCreate],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> AccountRead:
        """Create a staff account inside the caller's scope, of a lower rank."""
        return await admin.create_account(settings, principal, actor, data)

    @get("/{account_id:int}")
    async def get_account(
        self, account_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> AccountRead:
        return await admin.get_account(principal, actor, account_id)

    @post(
        "/{account_id:int}/seal",
        status_code=HTTP_200_OK,
        summary="Seal a staff account",
        operation_id="sealAccount",
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
