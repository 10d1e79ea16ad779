"""The second factor's steps: enrolment and verification on a login's ticket, the account's
own status and recovery codes, and an admin's reset (docs/security.md, "Second factor").

Enrolment needs the phone on record as well as the password: an account without a factor
proves the phone with an SMS code (to enrol SMS, that code is the factor's first; to enrol an
authenticator app, it comes with the app's first code). Whoever learnt only a password
cannot put their own authenticator on someone else's account.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pyotp
import segno
from redis.asyncio import Redis

from backend.accounts import audit, second_factor, throttle
from backend.accounts.audit import Actor
from backend.accounts.auth_service import open_session, send_sms_code
from backend.accounts.passwords import verify_password
from backend.accounts.permissions import Action, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import Role
from backend.accounts.schemas import TokenPair
from backend.accounts.scope import get_scoped
from backend.accounts.second_factor import (
    AlreadyEnrolled,
    CodeInvalid,
    EnrolmentRequired,
    Method,
    Step,
    Ticket,
    TicketInvalid,
)
from backend.accounts.second_factor_schemas import (
    Enrolled,
    FactorStatus,
    RecoveryCodeList,
    SmsSent,
    TotpEnrolment,
)
from backend.accounts.session_hooks import sessions_ended
from backend.accounts.tables import Account, AccountStatus, AuthSession, RecoveryCode, SecondFactor
from backend.config import Settings
from backend.db import transaction
from backend.errors import BadRequest, Conflict
from backend.masking import mask_phone
from backend.notify.sms import SmsSender

SMS_TEXT = "【学籍核查】您的登录验证码是 {code}，{minutes} 分钟内有效。如非本人操作，请勿告诉他人。"


class MethodNotEnrolled(BadRequest):
    code = "second_factor_method"
    message = "该账号未设置此验证方式"


class SmsProofRequired(BadRequest):
    code = "sms_code_required"
    message = "设置验证器前请先填写发送到本账号手机的短信验证码"


async def _account(ticket: Ticket) -> dict[str, Any]:
    """The ticket's account, still active (else the ticket is no good)."""
    account = await Account.select().where(Account.id == ticket.account_id).first()
    if account is None or account["status"] != AccountStatus.active:
        raise TicketInvalid()
    return account


def _as(actor: Actor, account: dict[str, Any]) -> Actor:
    return Actor(account["id"], account["role"], actor.client_addr, actor.request_id)


def _sms_keys(account: dict[str, Any], client_addr: str | None) -> throttle.LoginKeys:
    """The login SMS's keys (so its hourly quotas per phone and address are shared), with a
    code of the factor's own."""
    keys = throttle.login_keys(account["phone"], client_addr)
    return dataclasses.replace(keys, code=f"2fa:sms-code:{account['id']}")


async def send_sms(
    settings: Settings, redis: Redis, sms: SmsSender, actor: Actor, ticket_text: str
) -> SmsSent:
    """An SMS code for this ticket's account: to enrol (either method needs one), or to sign
    in when SMS is its factor. A code still alive is not sent again."""
    ticket = await second_factor.open_ticket(redis, ticket_text)
    account = await _account(ticket)
    if ticket.step is Step.verify:
        factor = await _factor(account["id"])
        if factor["method"] != Method.sms:
            raise MethodNotEnrolled()
    keys = _sms_keys(account, actor.client_addr)
    if await send_sms_code(settings, redis, sms, keys, account["phone"], SMS_TEXT):
        await audit.record(_as(actor, account), "second_factor_sms_sent", "account", account["id"])
    return SmsSent(
        phone=mask_phone(account["phone"]) or "", expires_in=settings.login_sms_code_seconds
    )


async def start_totp(
    settings: Settings, redis: Redis, actor: Actor, ticket_text: str
) -> TotpEnrolment:
    """A new authenticator secret for an enrolling account, held in its ticket."""
    ticket = await second_factor.open_ticket(redis, ticket_text)
    if ticket.step is not Step.enrol:
        raise AlreadyEnrolled()
    account = await _account(ticket)
    secret = pyotp.random_base32()
    await second_factor.hold_secret(redis, ticket, secret)
    uri = second_factor.totp_uri(secret, account["phone"])
    return TotpEnrolment(
        secret=secret, otpauth_uri=uri, qr_svg=segno.make_qr(uri).svg_inline(scale=4)
    )


async def _factor(account_id: int) -> dict[str, Any]:
    factor = await SecondFactor.select().where(SecondFactor.account == account_id).first()
    if factor is None:  # reset since the ticket was issued
        raise TicketInvalid()
    return factor


async def _check_totp(settings: Settings, factor: dict[str, Any], code: str) -> bool:
    """Right, and of a later step than any code this account used before (then recorded)."""
    if factor["totp_secret"] is None:
        return False
    secret = second_factor.open_secret(settings, factor["totp_secret"])
    step = second_factor.matching_step(secret, code, datetime.now(UTC))
    if step is None:
        return False
    claimed = (
        await SecondFactor.update({SecondFactor.last_totp_step: step})
        .where(
            (SecondFactor.id == factor["id"])
            & (SecondFactor.last_totp_step.is_null() | (SecondFactor.last_totp_step < step))
        )
        .returning(SecondFactor.id)
    )
    return bool(claimed)


async def _use_recovery_code(settings: Settings, account_id: int, code: str) -> int | None:
    """Spend the code; the number left, or None if it is no unused code of this account."""
    used = (
        await RecoveryCode.update({RecoveryCode.used_at: datetime.now(UTC)})
        .where(
            (RecoveryCode.account == account_id)
            & (RecoveryCode.code_hash == second_factor.hash_recovery_code(settings, code))
            & RecoveryCode.used_at.is_null()
        )
        .returning(RecoveryCode.id)
    )
    if not used:
        return None
    return int(
        await RecoveryCode.count().where(
            (RecoveryCode.account == account_id) & RecoveryCode.used_at.is_null()
        )
    )


async def _failed(
    redis: Redis, actor: Actor, ticket: Ticket, account: dict[str, Any], method: Method
) -> CodeInvalid:
    await second_factor.ticket_failed(redis, ticket)
    await audit.record(
        _as(actor, account),
        "second_factor_failed",
        "account",
        account["id"],
        after={"method": method},
    )
    return CodeInvalid(field_errors={"code": CodeInvalid.message})


async def verify(
    settings: Settings, redis: Redis, actor: Actor, ticket_text: str, method: Method, code: str
) -> TokenPair:
    """The code of a `verify` ticket: right, the ticket is spent and the session opens."""
    ticket = await second_factor.open_ticket(redis, ticket_text)
    if ticket.step is not Step.verify:
        raise EnrolmentRequired()
    account = await _account(ticket)
    factor = await _factor(account["id"])
    if method is not Method.recovery and method != factor["method"]:
        raise MethodNotEnrolled()
    attempt = await second_factor.take_attempt(settings, redis, account["id"])
    actor = _as(actor, account)
    left: int | None = None
    right = False
    if method is Method.totp:
        right = await _check_totp(settings, factor, code)
    elif method is Method.sms:
        keys = _sms_keys(account, actor.client_addr)
        right = await throttle.use_sms_code(redis, settings, keys, account["phone"], code)
    async with transaction():
        if method is Method.recovery:
            # Spent with the ticket or not at all: of two codes sent at once on one ticket,
            # the one that loses the ticket stays good (its UPDATE rolls back).
            left = await _use_recovery_code(settings, account["id"], code)
            right = left is not None
        if right:
            await second_factor.spend_ticket(redis, ticket)
            if method is Method.recovery:
                await audit.record(
                    actor, "recovery_code_used", "account", account["id"], after={"left": left}
                )
            else:
                await audit.record(
                    actor,
                    "second_factor_verified",
                    "account",
                    account["id"],
                    after={"method": method},
                )
            pair = await open_session(settings, actor, account, "login")
    if not right:
        raise await _failed(redis, actor, ticket, account, method)
    await second_factor.attempt_succeeded(redis, attempt)
    return pair


async def _new_recovery_codes(settings: Settings, account_id: int) -> list[str]:
    """Replace the account's recovery codes (inside the caller's transaction)."""
    codes = second_factor.new_recovery_codes()
    await RecoveryCode.delete().where(RecoveryCode.account == account_id)
    await RecoveryCode.insert(
        *[
            RecoveryCode(
                account=account_id, code_hash=second_factor.hash_recovery_code(settings, c)
            )
            for c in codes
        ]
    )
    return codes


async def confirm(
    settings: Settings,
    redis: Redis,
    actor: Actor,
    ticket_text: str,
    method: Method,
    code: str,
    sms_code: str | None,
) -> Enrolled:
    """An enrolling account sets its factor with its first right code (and, for an
    authenticator, the SMS code that proves the phone); the session opens with the recovery
    codes, shown this once."""
    ticket = await second_factor.open_ticket(redis, ticket_text)
    if ticket.step is not Step.enrol:
        raise AlreadyEnrolled()
    if method is Method.recovery:
        raise MethodNotEnrolled()
    account = await _account(ticket)
    if method is Method.totp and ticket.pending_secret is None:
        raise Conflict("请先获取验证器密钥并扫码", code="second_factor_no_secret")
    if method is Method.totp and sms_code is None:
        raise SmsProofRequired(field_errors={"sms_code": SmsProofRequired.message})
    attempt = await second_factor.take_attempt(settings, redis, account["id"])
    actor = _as(actor, account)
    keys = _sms_keys(account, actor.client_addr)
    now = datetime.now(UTC)
    step: int | None = None
    if method is Method.totp:
        assert ticket.pending_secret is not None
        assert sms_code is not None
        step = second_factor.matching_step(ticket.pending_secret, code, now)
        right = step is not None and await throttle.use_sms_code(
            redis, settings, keys, account["phone"], sms_code
        )
    else:
        right = await throttle.use_sms_code(redis, settings, keys, account["phone"], code)
    if not right:
        raise await _failed(redis, actor, ticket, account, method)
    await second_factor.spend_ticket(redis, ticket)
    async with transaction():
        if await second_factor.has_factor(account["id"]):
            raise AlreadyEnrolled()
        await SecondFactor.insert(
            SecondFactor(
                account=account["id"],
                method=method.value,
                totp_secret=(
                    second_factor.seal_secret(settings, ticket.pending_secret)
                    if method is Method.totp and ticket.pending_secret
                    else None
                ),
                last_totp_step=step,
                enrolled_at=now,
            )
        )
        codes = await _new_recovery_codes(settings, account["id"])
        await audit.record(
            actor, "second_factor_enrolled", "account", account["id"], after={"method": method}
        )
        pair = await open_session(settings, actor, account, "login")
    await second_factor.attempt_succeeded(redis, attempt)
    return Enrolled(tokens=pair, recovery_codes=codes)


async def status(settings: Settings, account_id: int, role: Role) -> FactorStatus:
    factor = await SecondFactor.select().where(SecondFactor.account == account_id).first()
    left = await RecoveryCode.count().where(
        (RecoveryCode.account == account_id) & RecoveryCode.used_at.is_null()
    )
    return FactorStatus(
        required=second_factor.required(settings, role),
        method=factor["method"] if factor else None,
        enrolled_at=factor["enrolled_at"] if factor else None,
        recovery_codes_left=left,
    )


async def regenerate_recovery_codes(
    settings: Settings, redis: Redis, principal: Principal, actor: Actor, password: str
) -> RecoveryCodeList:
    """New recovery codes for the signed-in account (the old ones die); the password again,
    so an access token alone cannot mint a way back in."""
    if not await second_factor.has_factor(principal.account_id):
        raise EnrolmentRequired()
    attempt = await second_factor.take_attempt(settings, redis, principal.account_id)
    account = (
        await Account.select(Account.password_hash)
        .where(Account.id == principal.account_id)
        .first()
    )
    if account is None or not await verify_password(settings, account["password_hash"], password):
        await audit.record(actor, "recovery_codes_refused", "account", principal.account_id)
        raise BadRequest(
            "密码不正确", code="wrong_password", field_errors={"password": "密码不正确"}
        )
    async with transaction():
        codes = await _new_recovery_codes(settings, principal.account_id)
        await audit.record(actor, "recovery_codes_regenerated", "account", principal.account_id)
    await second_factor.attempt_succeeded(redis, attempt)
    return RecoveryCodeList(recovery_codes=codes)


async def reset(
    settings: Settings, principal: Principal, actor: Actor, account_id: int
) -> FactorStatus:
    """An admin above the account (in scope, higher rank) removes its lost factor and
    recovery codes and ends its sessions; its next sign-in must enrol again."""
    target = await get_scoped(
        actor, principal.scope, Account, Account.id == account_id, "account", account_id
    )
    role = Role(target["role"])
    require_over(principal, Action.reset_second_factor, role)
    now = datetime.now(UTC)
    async with transaction():
        removed = (
            await SecondFactor.delete()
            .where(SecondFactor.account == account_id)
            .returning(SecondFactor.method)
        )
        await RecoveryCode.delete().where(RecoveryCode.account == account_id)
        await AuthSession.update(
            {AuthSession.revoked_at: now, AuthSession.revoked_reason: "second_factor_reset"}
        ).where((AuthSession.account == account_id) & AuthSession.revoked_at.is_null())
        await sessions_ended(accounts=[account_id])
        await audit.record(
            actor,
            "second_factor_reset",
            "account",
            account_id,
            before={"method": removed[0]["method"] if removed else None},
        )
    return await status(settings, account_id, role)
