"""A parent joins with the form's registration code, a second fact about the child and a
phone number confirmed by a one-time code. Sign-up only ever makes a new account: a phone
that already has one is told to log in and add the child from there (`links.link_child`).

Each guess at the one-time code is counted by one Redis operation before it is compared,
so however many guesses arrive at once, only `OTP_ATTEMPTS` are ever compared.
"""

from __future__ import annotations

import hashlib
import secrets

from redis.asyncio import Redis

from backend.accounts import audit
from backend.accounts.admin import insert_account
from backend.accounts.audit import Actor
from backend.accounts.auth_service import open_session
from backend.accounts.passwords import check_password_rules, hash_password
from backend.accounts.roles import Role
from backend.accounts.schemas import TokenPair
from backend.accounts.tables import Account, AccountStatus
from backend.config import Settings
from backend.db import transaction
from backend.errors import BadRequest, Conflict, TooManyAttempts
from backend.notify.sms import SmsError, SmsSender
from backend.parents import links
from backend.parents.schemas import ChildFact, SignupTicket
from backend.quota import Quota, take
from backend.records.ids import mask_phone

TICKET_SECONDS = 600
OTP_ATTEMPTS = 5
SMS_PER_PHONE_PER_HOUR = 5

# One atomic step per guess: count it on the ticket, and hand back what the guess may be
# compared with only while it is within the limit. Nothing for a missing (expired) ticket,
# so a late guess never re-creates one.
_COUNT_GUESS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n > tonumber(ARGV[1]) then return {n} end
return {n, redis.call('HGET', KEYS[1], 'otp'), redis.call('HGET', KEYS[1], 'form'),
        redis.call('HGET', KEYS[1], 'student'), redis.call('HGET', KEYS[1], 'phone')}
"""


class AccountExists(Conflict):
    code = "account_exists"
    message = "该手机号已注册家长账号，请直接登录，在“我的孩子”中用确认表上的注册码添加孩子"


def _otp_hash(ticket: str, code: str) -> str:
    return hashlib.sha256(f"{ticket}:{code}".encode()).hexdigest()


def _key(ticket: str) -> str:
    return f"signup:{ticket}"


async def start(
    redis: Redis, sms: SmsSender, actor: Actor, key: bytes, given: ChildFact, phone: str
) -> SignupTicket:
    form = await links.check_code(redis, actor, key, given, phone)
    sms_quota = Quota(f"signup-sms:{links.phone_key(phone)}", SMS_PER_PHONE_PER_HOUR, links.WINDOW)
    refused = await take(redis, [sms_quota])  # one atomic step: never a counter without expiry
    if refused is not None:
        raise TooManyAttempts("验证码发送过于频繁，请一小时后再试", retry_after=refused.retry_after)
    ticket = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(10**6):06d}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            _key(ticket),
            mapping={
                "form": form["id"],
                "student": form["student"],
                "phone": phone,
                "otp": _otp_hash(ticket, code),
                "attempts": 0,
            },
        )
        pipe.expire(_key(ticket), TICKET_SECONDS)
        await pipe.execute()
    try:
        await sms.send(phone, f"【学籍核查】您的验证码是 {code}，10 分钟内有效。请勿告诉他人。")
    except SmsError as exc:
        await redis.delete(_key(ticket))
        raise Conflict("短信发送失败，请稍后再试", code="sms_failed") from exc
    return SignupTicket(ticket=ticket, phone=mask_phone(phone) or "", expires_in=TICKET_SECONDS)


async def _check_code(redis: Redis, ticket: str, code: str) -> tuple[int, int, str]:
    """The ticket's form, student and phone if `code` is its one-time code; the guess is
    counted before it is compared, and the last allowed wrong guess burns the ticket."""
    counted = await redis.register_script(_COUNT_GUESS)(keys=[_key(ticket)], args=[OTP_ATTEMPTS])
    if counted is None:
        raise BadRequest("验证已过期，请重新开始注册", code="ticket_expired")
    if len(counted) == 1:
        raise TooManyAttempts("验证码错误次数过多，请重新开始注册", retry_after=60)
    attempts, otp, form, student, phone = counted
    if not secrets.compare_digest(otp.decode(), _otp_hash(ticket, code)):
        if attempts >= OTP_ATTEMPTS:
            raise TooManyAttempts("验证码错误次数过多，请重新开始注册", retry_after=60)
        raise BadRequest(
            "验证码不正确", code="otp_mismatch", field_errors={"sms_code": "验证码不正确"}
        )
    return int(form), int(student), phone.decode()


async def confirm(
    settings: Settings, redis: Redis, actor: Actor, ticket: str, code: str, password: str
) -> TokenPair:
    form_id, student_id, phone = await _check_code(redis, ticket, code)
    account = (
        await Account.select(Account.id, Account.role, Account.status)
        .where(Account.phone == phone)
        .first()
    )
    if account is not None:
        # Never a way into an account: whoever holds the code is sent to the login. A ticket
        # another request already spent (and made this account with) is simply expired.
        if not await redis.delete(_key(ticket)):
            raise BadRequest("验证已过期，请重新开始注册", code="ticket_expired")
        await audit.record(
            actor, "signup_refused", "account", account["id"], after={"reason": "account_exists"}
        )
        if account["role"] != Role.parent:
            raise Conflict("该手机号已用于工作人员账号，请换一个手机号", code="phone_taken")
        if account["status"] != AccountStatus.active:
            raise Conflict("该账号已被停用，请联系学校", code="account_inactive")
        raise AccountExists()
    check_password_rules(password, user_inputs=[phone], field="password")
    # The right code spends the ticket once: of two requests carrying it, one goes on.
    if not await redis.delete(_key(ticket)):
        raise BadRequest("验证已过期，请重新开始注册", code="ticket_expired")
    password_hash = await hash_password(settings, password)
    async with transaction():
        if await Account.exists().where(Account.phone == phone):
            raise AccountExists()
        account_id = await insert_account(
            Role.parent, phone, "家长", password_hash, must_change_password=False
        )
        actor = Actor(account_id, Role.parent.value, actor.client_addr, actor.request_id)
        await audit.record(
            actor, "signup", "account", account_id, after={"phone": mask_phone(phone)}
        )
        await links.attach(actor, account_id, phone, form_id, student_id)
        row = await Account.select().where(Account.id == account_id).first()
        assert row is not None
        return await open_session(settings, actor, row, "login")
