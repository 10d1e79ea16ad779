"""HTTP for the read-rate watch: an admin lifts an account's throttle (`records.read_rate`)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK

from backend.accounts.permissions import Action
from backend.deps import ActorDep, PrincipalDep, RedisDep
from backend.http import allowed
from backend.openapi import BY_ID, SIGNED_IN, STAFF, errors
from backend.records import read_rate


class ThrottleLifted(msgspec.Struct):
    account_id: int
    was_throttled: bool  # false: the account was not throttled this hour; nothing changed


class ReadThrottleController(Controller):
    path = "/accounts/{account_id:int}/read-throttle"
    tags = ["accounts"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/lift",
        status_code=HTTP_200_OK,
        summary="Lift an account's read-rate throttle",
        operation_id="liftReadThrottle",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "rank_too_high"}),
    )
    async def lift(
        self, account_id: FromPath[int], principal: PrincipalDep, actor: ActorDep, redis: RedisDep
    ) -> ThrottleLifted:
        """**Who may call**: an account admin above the account (in scope, higher rank): the
        one a `read_rate_alert` told.

        Once the admin has checked that the account's work explains its reads, the account
        reads again at once, with a fresh allowance for the rest of the hour. Audited
        (`lift_read_throttle`).

        **Errors**: `forbidden`, `rank_too_high` (403); `not_found` (404) no such account in
        the caller's scope (audited)."""
        was = await read_rate.lift(redis, principal, actor, account_id)
        return ThrottleLifted(account_id=account_id, was_throttled=was)


ROUTES: list[Any] = [ReadThrottleController]
