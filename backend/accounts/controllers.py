"""HTTP for accounts: login and tokens, who am I, the organisation tree, staff accounts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from redis.asyncio import Redis

from backend.accounts import admin, auth_service, org
from backend.accounts.audit import Actor
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
from backend.config import Settings
from backend.http import requires_staff

PageNumber = Annotated[int, Parameter(ge=1, default=1)]
PageSize = Annotated[int, Parameter(ge=1, le=org.MAX_PAGE_SIZE, default=50)]


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/login", exclude_from_auth=True, status_code=HTTP_200_OK)
    async def login(
        self, data: LoginRequest, settings: Settings, redis: Redis, actor: Actor
    ) -> TokenPair:
        """Log in by phone number and password."""
        return await auth_service.login(settings, redis, actor, data.phone, data.password)

    @post("/refresh", exclude_from_auth=True, status_code=HTTP_200_OK)
    async def refresh(self, data: RefreshRequest, settings: Settings, actor: Actor) -> TokenPair:
        """Trade a refresh token for a new pair; the old refresh token is spent."""
        return await auth_service.refresh(settings, actor, data.refresh_token)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, allow_expired_password=True)
    async def logout(self, settings: Settings, principal: Principal, actor: Actor) -> None:
        await auth_service.logout(settings, principal, actor)

    @post("/password", status_code=HTTP_204_NO_CONTENT, allow_expired_password=True)
    async def change_password(
        self, data: PasswordChange, settings: Settings, principal: Principal, actor: Actor
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
        self, principal: Principal, parent_code: str | None = None
    ) -> list[RegionRead]:
        return await org.list_regions(principal.scope, parent_code)

    @get("/regions/{code:str}")
    async def get_region(self, code: str, principal: Principal, actor: Actor) -> RegionRead:
        return await org.get_region(actor, principal.scope, code)

    @get("/schools")
    async def list_schools(
        self, principal: Principal, page: PageNumber, page_size: PageSize
    ) -> Page[SchoolRead]:
        return await org.list_schools(principal.scope, page, page_size)

    @get("/schools/{school_id:int}")
    async def get_school(self, school_id: int, principal: Principal, actor: Actor) -> SchoolRead:
        return await org.get_school(actor, principal.scope, school_id)

    @get("/classes")
    async def list_classes(
        self,
        principal: Principal,
        page: PageNumber,
        page_size: PageSize,
        school_id: int | None = None,
    ) -> Page[ClassRead]:
        return await org.list_classes(principal.scope, school_id, page, page_size)

    @get("/classes/{class_id:int}")
    async def get_class(self, class_id: int, principal: Principal, actor: Actor) -> ClassRead:
        return await org.get_class(actor, principal.scope, class_id)


class AccountController(Controller):
    path = "/accounts"
    tags = ["accounts"]
    guards = [requires_staff]

    @get("/")
    async def list_accounts(
        self, principal: Principal, page: PageNumber, page_size: PageSize
    ) -> Page[AccountRead]:
        return await admin.list_accounts(principal, page, page_size)

    @post("/")
    async def create_account(
        self, data: AccountCreate, settings: Settings, principal: Principal, actor: Actor
    ) -> AccountRead:
        """Create a staff account inside the caller's scope, of a lower rank."""
        return await admin.create_account(settings, principal, actor, data)

    @get("/{account_id:int}")
    async def get_account(self, account_id: int, principal: Principal, actor: Actor) -> AccountRead:
        return await admin.get_account(principal, actor, account_id)

    @post("/{account_id:int}/{action:str}", status_code=HTTP_200_OK)
    async def change_status(
        self,
        account_id: int,
        action: Literal["seal", "unseal", "disable", "enable"],
        principal: Principal,
        actor: Actor,
    ) -> AccountRead:
        return await admin.change_status(principal, actor, account_id, action)


ROUTES: list[Any] = [AuthController, me, OrgController, AccountController]
