"""HTTP for staff administration beyond create / seal / disable (`accounts.controllers`): an
admin resets a staff account's password."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from backend.accounts import admin
from backend.accounts.admin_schemas import PasswordResetRead, PasswordResetWrite
from backend.accounts.permissions import Action
from backend.deps import ActorDep, OutboxDep, PrincipalDep, SettingsDep
from backend.http import NO_STORE, allowed
from backend.openapi import BY_ID, JSON_BODY, SIGNED_IN, STAFF, errors


class StaffAdminController(Controller):
    path = "/accounts"
    tags = ["accounts"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/{account_id:int}/password-reset",
        status_code=HTTP_200_OK,
        summary="Reset a staff account's password",
        operation_id="resetAccountPassword",
        responses=errors(
            SIGNED_IN, STAFF, JSON_BODY, BY_ID, {403: "rank_too_high", 409: "invalid_status"}
        ),
    )
    async def reset_password(
        self,
        account_id: FromPath[int],
        data: JSONBody[PasswordResetWrite],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
    ) -> Response[PasswordResetRead]:
        """**Who may call**: an account admin above the account (in scope, higher rank): a
        registrar for its teachers, a county for its schools' staff, and so on.

        Gives the account a random temporary password. `delivery: show` answers it once, in
        this answer only (hand it over in person); `delivery: sms` sends it to the account's
        own phone and answers no password. Either way the account must set a new password at
        its next sign-in, every session of it ends at once, and the reset is audited (never
        the password). A sealed account stays sealed: unseal it as well.

        **Errors**: `forbidden` (403) not an account admin; `rank_too_high` (403) the account
        is not a staff account of a lower rank; `not_found` (404) no such account in the
        caller's scope (audited); `invalid_status` (409) a disabled or closed account;
        `validation_error` (400)."""
        result = await admin.reset_password(
            settings, principal, actor, outbox, account_id, data.delivery
        )
        return Response(result, headers=NO_STORE)


ROUTES: list[Any] = [StaffAdminController]
