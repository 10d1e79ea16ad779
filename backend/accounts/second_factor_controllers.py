"""HTTP for the second factor: a login's ticket traded for tokens (or used to enrol), the
account's own factor, and an admin's reset (docs/api.md, "Signing in with a second factor")."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from backend.accounts import second_factor_service as service
from backend.accounts.permissions import Action
from backend.accounts.schemas import TokenPair
from backend.accounts.second_factor import Method
from backend.accounts.second_factor_schemas import (
    ConfirmBody,
    Enrolled,
    FactorStatus,
    RecoveryCodeList,
    RegenerateBody,
    SmsSent,
    TicketBody,
    TotpEnrolment,
    VerifyBody,
)
from backend.deps import ActorDep, PrincipalDep, RedisDep, SettingsDep, SmsDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, REDIS, SIGNED_IN, STAFF, errors

TICKET = {401: "second_factor_ticket_invalid"}
CODE = {401: "second_factor_code_invalid", 429: "too_many_attempts"}


class SecondFactorLoginController(Controller):
    path = "/auth/second-factor"
    tags = ["auth"]

    @post(
        "/verify",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Finish a login with the second factor's code",
        operation_id="verifySecondFactor",
        responses=errors(
            JSON_BODY,
            REDIS,
            TICKET,
            CODE,
            {400: "second_factor_method", 409: "second_factor_enrolment_required"},
        ),
    )
    async def verify(
        self, data: JSONBody[VerifyBody], settings: SettingsDep, redis: RedisDep, actor: ActorDep
    ) -> TokenPair:
        """**Who may call**: anyone holding a login's `verify` ticket.

        `method` is the account's factor (`totp`: the authenticator app's 6 digits; `sms`:
        the code from `POST /auth/second-factor/sms`) or `recovery` (one of the recovery
        codes, each usable once). Right, the ticket is spent and the answer is the token pair
        the login would have given.

        **Errors**: `second_factor_code_invalid` (401) wrong, or already used (an
        authenticator code is good once); `second_factor_ticket_invalid` (401) the ticket is
        unknown, expired, spent or had 5 wrong codes: log in again;
        `second_factor_method` (400) the account has no such factor;
        `second_factor_enrolment_required` (409) an `enrol` ticket; `too_many_attempts`
        (429, `Retry-After`) too many wrong codes for this account; `validation_error` (400)."""
        return await service.verify(
            settings, redis, actor, data.ticket, Method(data.method), data.code
        )

    @post(
        "/sms",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Send the second factor's SMS code",
        operation_id="sendSecondFactorSms",
        responses=errors(
            JSON_BODY,
            REDIS,
            TICKET,
            {400: "second_factor_method", 409: "sms_failed", 429: "too_many_attempts"},
        ),
    )
    async def send_sms(
        self,
        data: JSONBody[TicketBody],
        settings: SettingsDep,
        redis: RedisDep,
        sms: SmsDep,
        actor: ActorDep,
    ) -> SmsSent:
        """**Who may call**: anyone holding a login's ticket: an `enrol` ticket (either way of
        enrolling needs the SMS code), or a `verify` ticket of an account whose factor is SMS.

        Sends a 6-digit code to the account's phone (the message carries nothing else); while
        a code is alive, asking again sends nothing and answers the same.

        **Errors**: `second_factor_ticket_invalid` (401); `second_factor_method` (400) the
        account's factor is an authenticator app; `sms_failed` (409); `too_many_attempts`
        (429) the phone's or address's SMS for the hour; `validation_error` (400)."""
        return await service.send_sms(settings, redis, sms, actor, data.ticket)

    @post(
        "/totp",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Start enrolling an authenticator app",
        operation_id="startTotpEnrolment",
        responses=errors(JSON_BODY, REDIS, TICKET, {409: "second_factor_enrolled"}),
    )
    async def start_totp(
        self, data: JSONBody[TicketBody], settings: SettingsDep, redis: RedisDep, actor: ActorDep
    ) -> TotpEnrolment:
        """**Who may call**: anyone holding a login's `enrol` ticket.

        A new secret for the authenticator app, as text, as an `otpauth://` URI and as a QR
        code (SVG). It counts only once `POST /auth/second-factor/confirm` gets the app's
        first code; asking again replaces it.

        **Errors**: `second_factor_ticket_invalid` (401); `second_factor_enrolled` (409) a
        `verify` ticket: the account has a factor; `validation_error` (400)."""
        return await service.start_totp(settings, redis, actor, data.ticket)

    @post(
        "/confirm",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Finish enrolling the second factor, and sign in",
        operation_id="confirmSecondFactor",
        responses=errors(
            JSON_BODY,
            REDIS,
            TICKET,
            CODE,
            {
                400: "second_factor_method sms_code_required",
                409: "second_factor_enrolled second_factor_no_secret",
            },
        ),
    )
    async def confirm(
        self, data: JSONBody[ConfirmBody], settings: SettingsDep, redis: RedisDep, actor: ActorDep
    ) -> Enrolled:
        """**Who may call**: anyone holding a login's `enrol` ticket.

        `method: totp`: `code` is the app's first code and `sms_code` the code sent by
        `POST /auth/second-factor/sms`; `method: sms`: `code` is the SMS code. The factor is
        set, the session opens, and the answer carries its tokens and 10 recovery codes,
        shown this once: the user writes them down.

        **Errors**: `second_factor_code_invalid` (401) a code is wrong;
        `second_factor_ticket_invalid` (401); `sms_code_required` (400) `totp` without the
        SMS code; `second_factor_no_secret` (409) `totp` before `POST
        /auth/second-factor/totp`; `second_factor_enrolled` (409); `too_many_attempts` (429);
        `validation_error` (400)."""
        return await service.confirm(
            settings, redis, actor, data.ticket, Method(data.method), data.code, data.sms_code
        )


class MySecondFactorController(Controller):
    path = "/me/second-factor"
    tags = ["auth"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="Read my second factor",
        operation_id="getMySecondFactor",
        responses=errors(SIGNED_IN, STAFF),
    )
    async def read(self, settings: SettingsDep, principal: PrincipalDep) -> FactorStatus:
        """**Who may call**: staff.

        Whether the account must have a second factor, which it has, since when, and how many
        recovery codes are left unused.

        **Errors**: `forbidden` (403) a parent."""
        return await service.status(settings, principal.account_id, principal.role)

    @post(
        "/recovery-codes",
        status_code=HTTP_200_OK,
        summary="Replace my recovery codes",
        operation_id="regenerateRecoveryCodes",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            REDIS,
            {
                400: "wrong_password",
                409: "second_factor_enrolment_required",
                429: "too_many_attempts",
            },
        ),
    )
    async def regenerate(
        self,
        data: JSONBody[RegenerateBody],
        settings: SettingsDep,
        redis: RedisDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> RecoveryCodeList:
        """**Who may call**: staff with a second factor, with their password again.

        Ten new recovery codes, shown this once; every earlier code stops working.

        **Errors**: `wrong_password` (400); `second_factor_enrolment_required` (409) the
        account has no factor; `too_many_attempts` (429) too many wrong passwords or codes;
        `forbidden` (403) a parent; `validation_error` (400)."""
        return await service.regenerate_recovery_codes(
            settings, redis, principal, actor, data.password
        )


class SecondFactorAdminController(Controller):
    path = "/accounts"
    tags = ["accounts"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/{account_id:int}/second-factor/reset",
        status_code=HTTP_200_OK,
        summary="Reset an account's lost second factor",
        operation_id="resetSecondFactor",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "rank_too_high"}),
    )
    async def reset(
        self,
        account_id: FromPath[int],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> FactorStatus:
        """**Who may call**: an account admin above the account (in scope, higher rank).

        Removes the account's second factor and recovery codes and ends all its sessions
        (audited); at its next sign-in the account must enrol again (with an SMS code to its
        phone on record). Resetting an account without a factor changes nothing but is
        audited too.

        **Errors**: `forbidden`, `rank_too_high` (403); `not_found` (404) for an account
        missing or outside the caller's scope (the same answer, audited)."""
        return await service.reset(settings, principal, actor, account_id)


ROUTES: list[Any] = [
    SecondFactorLoginController,
    MySecondFactorController,
    SecondFactorAdminController,
]
