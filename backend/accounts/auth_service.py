"""Login, token refresh with rotation and reuse detection, logout and password change.

Services never commit on their own behalf beyond the transaction they open, and never know
HTTP: they take what they need and raise `DomainError`s.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from redis.asyncio import Redis

from backend.accounts import audit, second_factor, throttle
from backend.accounts.audit import Actor
from backend.accounts.passwords import (
    burn_password_check,
    check_password_rules,
    hash_password,
    hasher,
    verify_password,
)
from backend.accounts.principal import Principal, password_change_required
from backend.accounts.roles import Role
from backend.accounts.schemas import TokenPair
from backend.accounts.second_factor_schemas import SecondFactorChallenge
from backend.accounts.session_hooks import sessions_ended
from backend.accounts.tables import Account, AccountStatus, AuthSession, RefreshToken
from backend.accounts.tokens import (
    InvalidToken,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    open_with_token,
    seal_with_token,
)
from backend.config import Settings
from backend.db import transaction
from backend.errors import BadRequest, Conflict, Forbidden, Unauthorized
from backend.masking import mask_phone
from backend.notify.sms import SmsError, SmsSender

log = logging.getLogger("registry.auth")


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "手机号或密码错误"


class RefreshReused(Unauthorized):
    code = "refresh_token_reused"
    message = "登录凭证已被使用过，为安全起见该设备上的登录已全部失效，请重新登录"


INACTIVE_MESSAGES = {
    AccountStatus.sealed: ("account_sealed", "账号因长期未使用已被封存，请联系上级管理员解封"),
    AccountStatus.disabled: ("account_disabled", "账号已停用，请联系管理员"),
    AccountStatus.closed: ("account_closed", "该核查专用账号已随核查工作结束而关闭"),
}


async def _issue_pair(
    settings: Settings, account_id: int, session_id: uuid.UUID, change_required: bool
) -> TokenPair:
    token, token_hash = new_refresh_token()
    await RefreshToken.insert(
        RefreshToken(
            session=session_id,
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_seconds),
        )
    )
    return TokenPair(
        access_token=issue_access_token(settings, account_id, session_id),
        refresh_token=token,
        expires_in=settings.access_token_seconds,
        password_change_required=change_required,
    )


class SmsCodeRequired(Unauthorized):
    code = "sms_code_required"
    message = "检测到异常登录尝试，为保护账号安全，请填写发送到该手机号的短信验证码后重新登录"


class SmsCodeInvalid(Unauthorized):
    code = "sms_code_invalid"
    message = "短信验证码不正确或已失效，请填写最新收到的验证码"


LOGIN_SMS_TEXT = (
    "【学籍核查】您的登录验证码是 {code}，{minutes} 分钟内有效。"
    "为保护账号安全，本次登录需要验证码；如非本人操作，请勿告诉他人，并尽快修改密码。"
)


async def send_sms_code(
    settings: Settings,
    redis: Redis,
    sms: SmsSender,
    keys: throttle.LoginKeys,
    phone: str,
    text: str,
    *,
    deliver: bool = True,
) -> bool:
    """Issue a code under `keys` unless one is alive, and send it in `text` (`{code}`,
    `{minutes}`) unless `deliver` is false; True if an SMS went."""
    code = f"{secrets.randbelow(10**6):06d}"
    if not await throttle.issue_sms_code(redis, settings, keys, phone, code) or not deliver:
        return False
    minutes = max(settings.login_sms_code_seconds // 60, 1)
    try:
        await sms.send(phone, text.format(code=code, minutes=minutes))
    except SmsError as exc:
        await throttle.forget_sms_code(redis, keys)
        raise Conflict("短信发送失败，请稍后再试", code="sms_failed") from exc
    return True


async def _send_login_code(
    settings: Settings,
    redis: Redis,
    sms: SmsSender,
    keys: throttle.LoginKeys,
    phone: str,
    account: dict[str, Any] | None,
) -> None:
    """Send the account a login code unless one is alive. Unknown or inactive phones go
    through the same counting and get nothing, so the answer does not tell them apart."""
    active = account is not None and account["status"] == AccountStatus.active
    await send_sms_code(settings, redis, sms, keys, phone, LOGIN_SMS_TEXT, deliver=active)


async def login(
    settings: Settings,
    redis: Redis,
    sms: SmsSender,
    actor: Actor,
    phone: str,
    password: str,
    sms_code: str | None = None,
) -> TokenPair | SecondFactorChallenge:
    """Phone and password; while the address or the account is under attack, also the SMS
    code that this answers `sms_code_required` for (see `throttle`). An account that must
    confirm with a second factor gets a challenge, not tokens (`second_factor`)."""
    keys = throttle.login_keys(phone, actor.client_addr)
    needs_code = await throttle.begin_attempt(redis, settings, keys)
    account = await Account.select().where(Account.phone == phone).first()
    if needs_code:
        field = {"sms_code": "请填写短信验证码"}
        if sms_code is None:
            await _send_login_code(settings, redis, sms, keys, phone, account)
            await audit.record(actor, "login_sms_challenge", "account", account and account["id"])
            raise SmsCodeRequired(field_errors=field)
        if not await throttle.use_sms_code(redis, settings, keys, phone, sms_code):
            await _send_login_code(settings, redis, sms, keys, phone, account)
            await audit.record(actor, "login_sms_code_failed", "account", account and account["id"])
            raise SmsCodeInvalid(field_errors=field)
    if account is None:
        await burn_password_check(settings, password)
    if account is None or not await verify_password(settings, account["password_hash"], password):
        await audit.record(
            actor,
            "login_failed",
            "account",
            account and account["id"],
            after={"phone": mask_phone(phone)},
        )
        raise InvalidCredentials()
    actor = Actor(account["id"], account["role"], actor.client_addr, actor.request_id)
    await throttle.login_succeeded(redis, keys)
    status = AccountStatus(account["status"])
    if status is not AccountStatus.active:
        await audit.record(
            actor, "login_refused", "account", account["id"], after={"status": status.value}
        )
        code, message = INACTIVE_MESSAGES[status]
        raise Forbidden(message, code=code, audited=True)
    async with transaction():
        if hasher(settings).check_needs_rehash(account["password_hash"]):
            new_hash = await hash_password(settings, password)
            await Account.update({Account.password_hash: new_hash}).where(
                Account.id == account["id"]
            )
        if second_factor.required(settings, Role(account["role"])):
            return await second_factor.issue_challenge(settings, redis, actor, account)
        return await open_session(settings, actor, account, "login")


async def open_session(
    settings: Settings, actor: Actor, account: dict[str, Any], action: str
) -> TokenPair:
    """A new refresh-token family and its first pair; inside the caller's transaction."""
    now = datetime.now(UTC)
    async with transaction():
        session_id = uuid.uuid4()
        await AuthSession.insert(AuthSession(id=session_id, account=account["id"], created_at=now))
        await Account.update({Account.last_active_at: now}).where(Account.id == account["id"])
        await audit.record(actor, action, "account", account["id"])
        return await _issue_pair(
            settings,
            account["id"],
            session_id,
            password_change_required(
                settings,
                Role(account["role"]),
                account["password_changed_at"],
                account["must_change_password"],
                now,
            ),
        )


def _grace_key(token_hash: str) -> str:
    return f"refresh-grace:{token_hash}"


async def refresh(settings: Settings, redis: Redis, actor: Actor, refresh_token: str) -> TokenPair:
    """Rotate: the token is spent and a new pair issued. Presenting a spent token again is
    reuse and ends the whole family — unless it comes within `refresh_grace_seconds` of its
    rotation, when it answers the very pair that rotation issued (two requests in flight when
    a phone wakes up). That pair is written to Redis before the rotation commits, so a
    concurrent refresh that finds the token spent (it waited on the row lock) finds it."""
    now = datetime.now(UTC)
    token_hash = hash_refresh_token(refresh_token)
    found = (
        await RefreshToken.select(
            RefreshToken.id,
            RefreshToken.expires_at,
            RefreshToken.session.id.as_alias("session_id"),
            RefreshToken.session.revoked_at.as_alias("revoked_at"),
            RefreshToken.session.account.as_alias("account_id"),
        )
        .where(RefreshToken.token_hash == token_hash)
        .first()
    )
    if found is None or found["revoked_at"] is not None or found["expires_at"] <= now:
        raise InvalidToken()
    session_id = found["session_id"]
    if not isinstance(session_id, uuid.UUID):
        session_id = uuid.UUID(str(session_id))
    account = (
        await Account.select(
            Account.role, Account.status, Account.password_changed_at, Account.must_change_password
        )
        .where(Account.id == found["account_id"])
        .first()
    )
    if account is None or account["status"] != AccountStatus.active:
        raise InvalidToken()
    if second_factor.required(
        settings, Role(account["role"])
    ) and not await second_factor.has_factor(found["account_id"]):
        # A session opened before the factor was required (or before an admin reset it)
        # does not outlive it: sign in again, and enrol.
        raise InvalidToken()
    async with transaction():
        claimed = (
            await RefreshToken.update({RefreshToken.used_at: now})
            .where((RefreshToken.id == found["id"]) & RefreshToken.used_at.is_null())
            .returning(RefreshToken.id)
        )
        if claimed:
            await Account.update({Account.last_active_at: now}).where(
                Account.id == found["account_id"]
            )
            pair = await _issue_pair(
                settings,
                found["account_id"],
                session_id,
                password_change_required(
                    settings,
                    Role(account["role"]),
                    account["password_changed_at"],
                    account["must_change_password"],
                    now,
                ),
            )
            if settings.refresh_grace_seconds > 0:
                await redis.set(
                    _grace_key(token_hash),
                    seal_with_token(refresh_token, msgspec.json.encode(pair)),
                    ex=settings.refresh_grace_seconds,
                )
            # Every rotation leaves a line (ids only: never the phone or a token), so a stolen
            # refresh token's use shows up beside its owner's.
            log.info(
                "refresh rotated: account=%s session=%s request=%s",
                found["account_id"],
                session_id,
                actor.request_id,
            )
            return pair
    if settings.refresh_grace_seconds > 0:
        sealed = await redis.get(_grace_key(token_hash))
        opened = open_with_token(refresh_token, sealed) if sealed else None
        if opened is not None:
            return msgspec.json.decode(opened, type=TokenPair)
    async with transaction():
        await AuthSession.update(
            {AuthSession.revoked_at: now, AuthSession.revoked_reason: "refresh_reuse"}
        ).where(AuthSession.id == session_id)
        await sessions_ended([session_id])
        await audit.record(
            Actor(found["account_id"], None, actor.client_addr, actor.request_id),
            "refresh_reuse_revoked",
            "auth_session",
            session_id,
        )
    raise RefreshReused()


async def logout(settings: Settings, principal: Principal, actor: Actor) -> None:
    async with transaction():
        await AuthSession.update(
            {AuthSession.revoked_at: datetime.now(UTC), AuthSession.revoked_reason: "logout"}
        ).where(AuthSession.id == principal.session_id)
        await sessions_ended([principal.session_id])
        await audit.record(actor, "logout", "auth_session", principal.session_id)


async def change_password(
    settings: Settings, principal: Principal, actor: Actor, old: str, new: str
) -> None:
    account = (
        await Account.select(Account.password_hash, Account.phone, Account.name)
        .where(Account.id == principal.account_id)
        .first()
    )
    if account is None or not await verify_password(settings, account["password_hash"], old):
        raise BadRequest(
            "原密码不正确", code="wrong_password", field_errors={"old_password": "原密码不正确"}
        )
    check_password_rules(new, user_inputs=[account["phone"], account["name"]])
    if old == new:
        raise BadRequest(
            "新密码不能与原密码相同",
            code="password_reused",
            field_errors={"new_password": "新密码不能与原密码相同"},
        )
    new_hash = await hash_password(settings, new)
    now = datetime.now(UTC)
    async with transaction():
        await Account.update(
            {
                Account.password_hash: new_hash,
                Account.password_changed_at: now,
                Account.must_change_password: False,
            }
        ).where(Account.id == principal.account_id)
        # Every other login of this account ends: whoever knew the old password is out.
        await AuthSession.update(
            {AuthSession.revoked_at: now, AuthSession.revoked_reason: "password_changed"}
        ).where(
            (AuthSession.account == principal.account_id)
            & (AuthSession.id != principal.session_id)
            & AuthSession.revoked_at.is_null()
        )
        await sessions_ended(accounts=[principal.account_id], kept=principal.session_id)
        await audit.record(actor, "password_changed", "account", principal.account_id)
