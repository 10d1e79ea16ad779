"""The admin view of push attempts: why a notification did (not) reach a phone."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import QueryParameter

from backend.accounts.permissions import Action
from backend.accounts.schemas import DB_ID_MAX
from backend.deps import ActorDep, IdFilter, PrincipalDep
from backend.http import allowed
from backend.notify import attempts
from backend.notify.attempts import PushAttemptRead
from backend.openapi import QUERY, SIGNED_IN, STAFF, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize

AccountId = Annotated[int, QueryParameter(ge=1, le=DB_ID_MAX, description="whose pushes")]


class PushAttemptController(Controller):
    path = "/push-attempts"
    tags = ["notifications"]
    guards = [allowed(Action.read_push_attempts)]

    @get(
        "/",
        summary="List the attempts to push an account's notifications",
        operation_id="listPushAttempts",
        responses=errors(SIGNED_IN, STAFF, QUERY, {404: "not_found"}),
    )
    async def list_push_attempts(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        account_id: AccountId,
        notification_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[PushAttemptRead]:
        """**Who may call**: an account admin (a registrar, a county, city or province admin,
        a sysadmin) whose scope holds the account.

        Every try to push the account's notifications (or one of them, `notification_id`),
        newest first: channel, outcome (`sent`, `retry`, `dead` — the device was removed —,
        `failed`), the gateway's HTTP status and reason, the latency, and the device's token
        masked.

        **Errors**: `forbidden` (403) a caller who is not an account admin; `not_found`
        (404) no such account, or outside the caller's scope (the same answer, audited);
        `validation_error` (400) an id or page out of range."""
        return await attempts.list_attempts(
            principal, actor, account_id, notification_id, page, page_size
        )


ROUTES: list[Any] = [PushAttemptController]
