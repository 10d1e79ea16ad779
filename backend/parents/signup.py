"""A parent joins with the form's registration code, a second fact about the child and a
phone number confirmed by a one-time code; a second child's code links a second child.

Guessing is throttled per client address, per phone and per code; a wrong code and a wrong
fact answer alike, so the answer never tells which codes exist.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from backend.accounts import audit
from backend.accounts.admin import insert_account
from backend.accounts.audit import Actor
from backend.accounts.auth_service import open_session
from backend.accounts.passwords import check_password_rules, hash_password
from backend.accounts.roles import AccountStatus, Role
from backend.accounts.schemas import TokenPair
from backend.accounts.tables import Account
from backend.config import Settings
from backend.db import transaction
from backend.errors import BadRequest, Conflict, TooManyAttempts
from backend.notify.sms import SmsError, SmsSender
from backend.parents.schemas import SignupTicket
from backend.records.campaigns import active_campaign
from backend.records.ids import mask_phone
from backend.records.printing import code_hash
from backend.records.service import load_fields
from backend.records.tables import GuardianLink, IssuedForm, Student

TICKET_SECONDS = 600
OTP_ATTEMPTS = 5
GUARDIANS_PER_FORM = 2
# (key prefix, failures allowed, window seconds)
LIMITS = {"addr": 20, "phone": 10, "code": 5}
WINDOW = 3600
SMS_PER_PHONE_PER_HOUR = 5


class SignupRefused(BadRequest):
    code = "signup_refused"
    message = "注册码或孩子信息不正确，请核对确认表后重试"


async def _check_throttle(redis: Redis, keys: dict[str, str]) -> None:
    values = await redis.mget([f"signup-fail:{k}:{v}" for k, v in keys.items()])
    for (kind, _), value in zip(keys.items(), values, strict=True):
        if int(value or 0) >= LIMITS[kind]:
            raise TooManyAttempts("尝试次数过多，请一小时后再试", retry_after=WINDOW)


async def _count_failure(redis: Redis, keys: dict[str, str]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for kind, value in keys.items():
            key = f"signup-fail:{kind}:{value}"
            pipe.incr(key)
            pipe.expire(key, WINDOW, nx=True)
        await pipe.execute()


def _fact_matches(fact: str, fields: dict[str, str]) -> bool:
    """The child's birth date (2015-03-07 or 20150307), or the last 6 characters of the
    child's ID number."""
    fact = fact.strip().upper().replace("/", "-").replace(".", "-")
    digits = re.sub(r"\D", "", fact)
    birth = fields.get("birth_date", "")
    if birth and len(digits) == 8 and digits == birth.replace("-", ""):
        return True
    id_number = fields.get("id_number", "")
    return (
        len(fact) == 6
        and len(id_number) >= 6
        and secrets.compare_digest(fact, id_number[-6:].upper())
    )


def _otp_hash(ticket: str, code: str) -> str:
    return hashlib.sha256(f"{ticket}:{code}".encode()).hexdigest()


async def start(
    redis: Redis, sms: SmsSender, actor: Actor, registration_code: str, fact: str, phone: str
) -> SignupTicket:
    digest = code_hash(registration_code)
    keys = {"addr": actor.client_addr or "-", "phone": phone, "code": digest[:16]}
    await _check_throttle(redis, keys)
    form = (
        await IssuedForm.select()
        .where((IssuedForm.registration_code_hash == digest) & IssuedForm.superseded_at.is_null())
        .first()
    )
    student = None
    if form is not None:
        student = (
            await Student.select(Student.fields, Student.region_code)
            .where(Student.id == form["student"])
            .first()
        )
    if form is None or student is None or not _fact_matches(fact, load_fields(student["fields"])):
        await _count_failure(redis, keys)
        await audit.record(
            actor, "signup_failed", "issued_form", form and form["id"], after={"phone": phone}
        )
        raise SignupRefused()
    campaign = await active_campaign(student["region_code"])
    if campaign is None or campaign["id"] != form["campaign"]:
        raise Conflict("该确认表所属的核查工作已结束，注册码已失效", code="code_expired")
    if form["registration_uses"] >= GUARDIANS_PER_FORM:
        raise Conflict("该注册码已被两位监护人使用", code="code_used_up")
    sent = await redis.incr(f"signup-sms:{phone}")
    if sent == 1:
        await redis.expire(f"signup-sms:{phone}", WINDOW)
    if sent > SMS_PER_PHONE_PER_HOUR:
        raise TooManyAttempts("验证码发送过于频繁，请一小时后再试", retry_after=WINDOW)
    ticket = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(10**6):06d}"
    await redis.set(
        f"signup:{ticket}",
        json.dumps(
            {
                "form": form["id"],
                "student": form["student"],
                "phone": phone,
                "otp": _otp_hash(ticket, code),
                "attempts": 0,
            }
        ),
        ex=TICKET_SECONDS,
    )
    try:
        await sms.send(phone, f"【学籍核查】您的验证码是 {code}，10 分钟内有效。请勿告诉他人。")
    except SmsError as exc:
        await redis.delete(f"signup:{ticket}")
        raise Conflict("短信发送失败，请稍后再试", code="sms_failed") from exc
    return SignupTicket(ticket=ticket, phone=mask_phone(phone) or "", expires_in=TICKET_SECONDS)


async def confirm(
    settings: Settings, redis: Redis, actor: Actor, ticket: str, code: str, password: str | None
) -> TokenPair:
    raw = await redis.get(f"signup:{ticket}")
    if raw is None:
        raise BadRequest("验证已过期，请重新开始注册", code="ticket_expired")
    state: dict[str, Any] = json.loads(raw)
    if not secrets.compare_digest(state["otp"], _otp_hash(ticket, code)):
        state["attempts"] += 1
        if state["attempts"] >= OTP_ATTEMPTS:
            await redis.delete(f"signup:{ticket}")
            raise TooManyAttempts("验证码错误次数过多，请重新开始注册", retry_after=60)
        await redis.set(f"signup:{ticket}", json.dumps(state), keepttl=True)
        raise BadRequest("验证码不正确", code="otp_mismatch", field_errors={"code": "验证码不正确"})
    await redis.delete(f"signup:{ticket}")
    phone: str = state["phone"]
    account = await Account.select().where(Account.phone == phone).first()
    if account is None:
        if not password:
            raise BadRequest(
                "首次注册请设置登录密码",
                code="password_required",
                field_errors={"password": "请设置登录密码"},
            )
        check_password_rules(password)
        password_hash = await hash_password(settings, password)
    elif account["role"] != Role.parent:
        raise Conflict("该手机号已用于工作人员账号，请换一个手机号", code="phone_taken")
    elif account["status"] != AccountStatus.active:
        raise Conflict("该账号已被停用，请联系学校", code="account_inactive")
    now = datetime.now(UTC)
    async with transaction():
        claimed = (
            await IssuedForm.update(
                {IssuedForm.registration_uses: IssuedForm.registration_uses + 1}
            )
            .where(
                (IssuedForm.id == state["form"])
                & (IssuedForm.registration_uses < GUARDIANS_PER_FORM)
            )
            .returning(IssuedForm.id)
        )
        if not claimed:
            raise Conflict("该注册码已被两位监护人使用", code="code_used_up")
        if account is None:
            account_id = await insert_account(
                Role.parent, phone, "家长", password_hash, must_change_password=False
            )
            account = await Account.select().where(Account.id == account_id).first()
            assert account is not None
            actor = Actor(account["id"], Role.parent.value, actor.client_addr, actor.request_id)
            await audit.record(actor, "signup", "account", account["id"], after={"phone": phone})
        actor = Actor(account["id"], Role.parent.value, actor.client_addr, actor.request_id)
        if await GuardianLink.exists().where(
            (GuardianLink.account == account["id"]) & (GuardianLink.student == state["student"])
        ):
            raise Conflict("您已绑定该学生，无需重复注册", code="already_linked")
        slot = await _guardian_slot(state["student"], phone)
        await GuardianLink.insert(
            GuardianLink(
                account=account["id"], student=state["student"], guardian_slot=slot, created_at=now
            )
        )
        await audit.record(
            actor,
            "link_child",
            "student",
            state["student"],
            after={"form": state["form"], "guardian_slot": slot},
        )
        return await open_session(settings, actor, account, "login")


async def _guardian_slot(student_id: int, phone: str) -> int:
    """The guardian on the record with this phone, else the first slot not yet linked."""
    student = await Student.select(Student.fields).where(Student.id == student_id).first()
    fields = load_fields(student["fields"]) if student else {}
    for slot in (1, 2):
        if fields.get(f"guardian{slot}_phone") == phone:
            return slot
    taken = {
        r["guardian_slot"]
        for r in await GuardianLink.select(GuardianLink.guardian_slot).where(
            GuardianLink.student == student_id
        )
    }
    return next((slot for slot in (1, 2) if slot not in taken), 2)
