"""The second factor's parts that sign-in needs: who must have one, the challenge ticket,
the sealed TOTP secret, the recovery codes' hashes and the code checks.

Registrars and every staff role above them (`REQUIRED_ROLES`) confirm sign-in with a second
factor when `second_factor_required` is on: the password alone answers a
`SecondFactorChallenge` (a ticket, never tokens), and tokens are issued only once a code is
right (`second_factor_service.verify`, or `confirm` for an account enrolling). Teachers and
parents are exempt: a teacher sees one class, masked, and there are as many teachers as
classes; a parent sees only their own children.

- The ticket: 32 random bytes, kept in Redis under its SHA-256 (so Redis holds no ticket) for
  `second_factor_ticket_seconds`, bound to one account and one step (`verify` or `enrol`),
  spent by the first right code, dead after `TICKET_TRIES` wrong ones. A TOTP secret offered
  during enrolment waits in the ticket, sealed with a key derived from the ticket itself.
- TOTP (RFC 6238, 30 s, 6 digits, pyotp): a code of the step before, the current one or the
  next is accepted; the step accepted last is stored and a code of that step or an older one
  is refused (a replay), by one conditional UPDATE, so two requests racing with the same
  code cannot both win. The secret is stored sealed (AES-GCM) under `second_factor_key`.
- Recovery codes: `RECOVERY_CODES` codes of 10 characters from a 31-sign alphabet (≈ 49 bits
  each), kept as HMAC-SHA256 under `second_factor_key`, not argon2. A slow salted hash is for
  secrets a person chose; checking a code against argon2 hashes means one slow verification
  per stored code (ten of them: 1.7 s of CPU per attempt with the production parameters,
  measured on the 2-core development machine, against 15 µs for one HMAC — a lever for
  anyone with the password to load the service), while a keyed hash is looked up by equality
  in one query. The key lives outside the database, so a dump alone tests no guess; with the
  key too, one code still costs ≈ 2^48 HMACs on average. Online guessing is throttled with
  the other codes. Each code is spent by one conditional UPDATE.
- Wrong codes of one account, across tickets and methods, are a quota of `backend/quota.py`
  (`second_factor_max_failures` per `second_factor_failure_window_seconds`): taken before a
  code is checked and given back when it was right, so a burst is counted exactly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import Redis

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.roles import RANK, STAFF_ROLES, Role
from backend.accounts.second_factor_schemas import SecondFactorChallenge
from backend.accounts.tables import SecondFactor
from backend.accounts.tokens import open_with_token, seal_with_token
from backend.config import Settings
from backend.errors import Conflict, TooManyAttempts, Unauthorized
from backend.masking import mask_phone
from backend.quota import Quota, give_back, take

REQUIRED_ROLES = frozenset(role for role in STAFF_ROLES if RANK[role] >= RANK[Role.registrar])
TICKET_TRIES = 5
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # 31 signs, no i, l, o, 0, 1: read off paper
ISSUER = "学籍核查"


class Method(StrEnum):
    totp = "totp"
    sms = "sms"
    recovery = "recovery"


class Step(StrEnum):
    verify = "verify"  # the account has a factor: a code signs in
    enrol = "enrol"  # it has none: it sets one up, and only that


class TicketInvalid(Unauthorized):
    code = "second_factor_ticket_invalid"
    message = "登录验证已过期或无效，请重新输入手机号和密码登录"


class CodeInvalid(Unauthorized):
    code = "second_factor_code_invalid"
    message = "验证码不正确或已使用过，请输入最新的验证码"


class EnrolmentRequired(Conflict):
    code = "second_factor_enrolment_required"
    message = "该账号尚未设置第二重验证，请先完成设置"


class AlreadyEnrolled(Conflict):
    code = "second_factor_enrolled"
    message = "该账号已设置第二重验证，请直接输入验证码"


def required(settings: Settings, role: Role) -> bool:
    return settings.second_factor_required and role in REQUIRED_ROLES


async def has_factor(account_id: int) -> bool:
    return await SecondFactor.exists().where(SecondFactor.account == account_id)


# --- keys, sealing and hashing ---------------------------------------------------------------


def _key(settings: Settings, purpose: bytes) -> bytes:
    return hmac.new(settings.second_factor_key.encode(), purpose, hashlib.sha256).digest()


def seal_secret(settings: Settings, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(settings, b"totp-secret")).encrypt(nonce, secret.encode(), b"totp")
    return base64.b64encode(nonce + sealed).decode()


def open_secret(settings: Settings, sealed: str) -> str:
    raw = base64.b64decode(sealed)
    return AESGCM(_key(settings, b"totp-secret")).decrypt(raw[:12], raw[12:], b"totp").decode()


def normalise_recovery_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").lower()


def hash_recovery_code(settings: Settings, code: str) -> str:
    key = _key(settings, b"recovery-code")
    return hmac.new(key, normalise_recovery_code(code).encode(), hashlib.sha256).hexdigest()


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def totp_uri(secret: str, phone: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=mask_phone(phone), issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is, among the one before now, now's and the next."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


# --- the ticket ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ticket:
    text: str
    account_id: int
    step: Step
    pending_secret: str | None  # a TOTP secret offered during enrolment

    @property
    def key(self) -> str:
        return ticket_key(self.text)


def ticket_key(ticket: str) -> str:
    return "2fa:ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


async def issue_challenge(
    settings: Settings, redis: Redis, actor: Actor, account: dict[str, Any]
) -> SecondFactorChallenge:
    """The password was right: a ticket for the factor's step instead of tokens."""
    factor = (
        await SecondFactor.select(SecondFactor.method)
        .where(SecondFactor.account == account["id"])
        .first()
    )
    step = Step.verify if factor else Step.enrol
    ticket = secrets.token_urlsafe(32)
    key = ticket_key(ticket)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"account": account["id"], "step": step.value, "tries": 0})
        pipe.expire(key, settings.second_factor_ticket_seconds)
        await pipe.execute()
    await audit.record(
        actor, "second_factor_challenge", "account", account["id"], after={"step": step}
    )
    methods: list[Any] = (
        [factor["method"], Method.recovery.value]
        if factor
        else [Method.totp.value, Method.sms.value]
    )
    return SecondFactorChallenge(
        ticket=ticket,
        step=step.value,
        methods=methods,
        expires_in=settings.second_factor_ticket_seconds,
        phone=mask_phone(account["phone"]) or "",
    )


async def open_ticket(redis: Redis, ticket: str) -> Ticket:
    """The live ticket, or `TicketInvalid` (unknown, forged, expired, spent: one answer)."""
    fields = await redis.hgetall(ticket_key(ticket))  # type: ignore[misc]
    if not fields or b"account" not in fields:
        raise TicketInvalid()
    sealed = fields.get(b"totp")
    pending = open_with_token(ticket, base64.b64decode(sealed)) if sealed else None
    return Ticket(
        text=ticket,
        account_id=int(fields[b"account"]),
        step=Step(fields[b"step"].decode()),
        pending_secret=pending.decode() if pending else None,
    )


# Only a live ticket is written to: a ticket that expired meanwhile is not re-created
# (without an expiry). KEYS: the ticket; ARGV: the field, the value (HSET) or the tries that
# end it (HINCRBY). Answers the new count, or -1 when there is no ticket.
_HSET_LIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 0
"""
_FAIL_LIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if tries >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return tries
"""


async def hold_secret(redis: Redis, ticket: Ticket, secret: str) -> None:
    """Keep an offered TOTP secret in the ticket, sealed with the ticket, until confirmed."""
    sealed = base64.b64encode(seal_with_token(ticket.text, secret.encode())).decode()
    if int(await redis.eval(_HSET_LIVE, 1, ticket.key, "totp", sealed)) < 0:  # type: ignore[misc]
        raise TicketInvalid()


async def spend_ticket(redis: Redis, ticket: Ticket) -> None:
    """The code was right: the ticket is spent, and only one request may spend it."""
    if not await redis.delete(ticket.key):
        raise TicketInvalid()


async def ticket_failed(redis: Redis, ticket: Ticket) -> None:
    """One wrong code on this ticket; the `TICKET_TRIES`th ends it."""
    await redis.eval(_FAIL_LIVE, 1, ticket.key, str(TICKET_TRIES))  # type: ignore[misc]


# --- the per-account count of wrong codes ----------------------------------------------------


def failure_quota(settings: Settings, account_id: int) -> Quota:
    return Quota(
        f"2fa:failures:{account_id}",
        settings.second_factor_max_failures,
        settings.second_factor_failure_window_seconds,
    )


async def take_attempt(settings: Settings, redis: Redis, account_id: int) -> Quota:
    """Reserve one wrong code before checking one; 429 once the account has had its wrong
    codes for the window. Give it back (`attempt_succeeded`) when the code was right."""
    quota = failure_quota(settings, account_id)
    refused = await take(redis, [quota])
    if refused is not None:
        raise TooManyAttempts(
            f"验证码错误次数过多，请 {refused.retry_after} 秒后再试",
            retry_after=refused.retry_after,
        )
    return quota


async def attempt_succeeded(redis: Redis, quota: Quota) -> None:
    await give_back(redis, [quota])
