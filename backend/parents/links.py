"""Links between a parent's account and a child, made with the form's registration code.

Two ways in, one rule: a new account at sign-up (`signup.confirm`), or an account that has
signed in (`link_child`); sign-up never enters an existing account. Either way the code and
a second fact about the child are checked under the same throttles, a form's code serves at
most two guardians, and the link is

- `confirmed` when the account's phone (confirmed by SMS at sign-up) is one of the record's
  guardian phones;
- `pending` otherwise, until the class's homeroom teacher or the school's registrar confirms
  or rejects it (`decide`). A pending or rejected link shows the child in the parent's list
  without any of the record's data; only a confirmed link opens the record
  (`records.tables.confirmed_children`). A rejected link gives its code use back.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from backend import quota
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped, scoped
from backend.db import transaction
from backend.errors import BadRequest, Conflict, NotFound, TooManyAttempts
from backend.pages import Page, window
from backend.parents import views
from backend.parents.schemas import ChildFact, ChildLinked, ChildStatus, LinkRead
from backend.records.campaigns import active_campaign
from backend.records.ids import mask_phone
from backend.records.printing import code_hash, registration_code_of
from backend.records.service import load_fields
from backend.records.tables import LINK_STATUS, GuardianLink, IssuedForm, LinkStatus, Student

GUARDIANS_PER_FORM = 2
# Failed tries allowed per `WINDOW`, by client address, by phone and by registration code.
LIMITS = {"addr": 20, "phone": 10, "code": 5}


def phone_key(phone: str) -> str:
    """A phone as Redis keys name it: whoever lists the keys learns no numbers."""
    return hashlib.sha256(f"phone:{phone}".encode()).hexdigest()[:24]


WINDOW = 3600
# action → the status it sets; which it may leave is `LINK_STATUS`'s (pending only).
ACTION_STATUS = {"confirm": LinkStatus.confirmed, "reject": LinkStatus.rejected}


class CodeRefused(BadRequest):
    code = "signup_refused"
    message = "注册码或孩子信息不正确，请核对确认表后重试"


def _tries(keys: dict[str, str]) -> list[quota.Quota]:
    return [
        quota.Quota(f"signup-fail:{kind}:{value}", LIMITS[kind], WINDOW)
        for kind, value in keys.items()
    ]


async def _reserve(redis: Redis, keys: dict[str, str]) -> list[quota.Quota]:
    """Count this try on every throttle before the code is checked (`quota.take`, one atomic
    step), so tries sent at once cannot all pass a check made before any was counted. A try
    over a limit is refused and counts nothing; one that fails keeps its counts."""
    tries = _tries(keys)
    refused = await quota.take(redis, tries)
    if refused is not None:
        raise TooManyAttempts("尝试次数过多，请一小时后再试", retry_after=refused.retry_after)
    return tries


class OneFactRequired(BadRequest):
    code = "one_fact_required"
    message = "请填写孩子的出生日期或身份证件号后 6 位，二者只填一项"

    def __init__(self) -> None:
        message = type(self).message
        super().__init__(field_errors={"birth_date": message, "id_last6": message})


def _fact_matches(given: ChildFact, fields: dict[str, str]) -> bool:
    """The child's birth date (already read as ISO, `backend.dates`), or the last 6 characters
    of the child's ID number."""
    if given.birth_date is not None:
        return secrets.compare_digest(given.birth_date, fields.get("birth_date") or "")
    id_number = (fields.get("id_number") or "").upper()
    tail = (given.id_last6 or "").upper()
    return len(id_number) >= 6 and secrets.compare_digest(tail, id_number[-6:])


async def check_code(
    redis: Redis, actor: Actor, key: bytes, given: ChildFact, phone: str
) -> dict[str, Any]:
    """The issued form the code and fact open, throttled per address, phone and code
    (failures allowed per hour: `LIMITS`); a wrong code and a wrong fact answer alike, so
    the answer never tells which codes exist. The code may also be what the form's QR code
    holds (`registration_code_of`; `key` is the form token key)."""
    if (given.birth_date is None) == (given.id_last6 is None):
        raise OneFactRequired()
    digest = code_hash(registration_code_of(given.registration_code, key))
    keys = {"addr": actor.client_addr or "-", "phone": phone_key(phone), "code": digest[:16]}
    reserved = await _reserve(redis, keys)
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
    if form is None or student is None or not _fact_matches(given, load_fields(student["fields"])):
        await audit.record(
            actor,
            "signup_failed",
            "issued_form",
            form and form["id"],
            after={"phone": mask_phone(phone)},
        )
        raise CodeRefused()
    await quota.give_back(redis, reserved)  # a right code and fact is no failure
    campaign = await active_campaign(student["region_code"])
    if campaign is None or campaign["id"] != form["campaign"]:
        raise Conflict("该确认表所属的核查工作已结束，注册码已失效", code="code_expired")
    if form["registration_uses"] >= GUARDIANS_PER_FORM:
        raise Conflict("该注册码已被两位监护人使用", code="code_used_up")
    return form


async def _slot_and_status(student_id: int, phone: str) -> tuple[int, LinkStatus]:
    """The guardian on the record with this phone (confirmed at once), else the first slot
    not yet linked (pending: the class decides)."""
    student = await Student.select(Student.fields).where(Student.id == student_id).first()
    fields = load_fields(student["fields"]) if student else {}
    for slot in (1, 2):
        if fields.get(f"guardian{slot}_phone") == phone:
            return slot, LinkStatus.confirmed
    taken = {
        r["guardian_slot"]
        for r in await GuardianLink.select(GuardianLink.guardian_slot).where(
            GuardianLink.student == student_id
        )
    }
    return next((slot for slot in (1, 2) if slot not in taken), 2), LinkStatus.pending


async def attach(
    actor: Actor, account_id: int, phone: str, form_id: int, student_id: int
) -> LinkStatus:
    """Inside the caller's transaction: take one of the form's uses and link the account."""
    claimed = (
        await IssuedForm.update({IssuedForm.registration_uses: IssuedForm.registration_uses + 1})
        .where((IssuedForm.id == form_id) & (IssuedForm.registration_uses < GUARDIANS_PER_FORM))
        .returning(IssuedForm.id)
    )
    if not claimed:
        raise Conflict("该注册码已被两位监护人使用", code="code_used_up")
    # After the claim: on PostgreSQL a concurrent claimer of this form waits for our commit.
    existing = (
        await GuardianLink.select(GuardianLink.status)
        .where((GuardianLink.account == account_id) & (GuardianLink.student == student_id))
        .first()
    )
    if existing is not None and existing["status"] == LinkStatus.rejected:
        raise Conflict("学校已驳回您对该学生的绑定申请，如有疑问请联系班主任", code="link_rejected")
    if existing is not None:
        raise Conflict("您已绑定该学生，无需重复注册", code="already_linked")
    slot, status = await _slot_and_status(student_id, phone)
    await GuardianLink.insert(
        GuardianLink(
            account=account_id,
            student=student_id,
            guardian_slot=slot,
            status=status.value,
            form=form_id,
            created_at=datetime.now(UTC),
        )
    )
    await audit.record(
        actor,
        "link_child",
        "student",
        student_id,
        after={"form": form_id, "guardian_slot": slot, "status": status.value},
    )
    return status


LINKED_MESSAGES = {
    LinkStatus.confirmed: "已绑定孩子",
    LinkStatus.pending: "您的手机号不是学籍中登记的监护人电话，绑定申请已提交，请等待班主任确认",
}


async def link_child(
    redis: Redis, principal: Principal, actor: Actor, key: bytes, given: ChildFact
) -> ChildLinked:
    """A signed-in parent adds a child with its form's code and a second fact."""
    require(principal, Action.link_child)
    form = await check_code(redis, actor, key, given, principal.phone)
    async with transaction():
        status = await attach(
            actor, principal.account_id, principal.phone, form["id"], form["student"]
        )
    return ChildLinked(form["student"], status, LINKED_MESSAGES[status])


async def my_children(principal: Principal) -> list[ChildStatus]:
    """The confirmed children with their records' state, then the links waiting for the
    class (or refused by it): only the link's state, none of the record's data."""
    return await views.my_children(principal)


def _students_in_scope(principal: Principal) -> Any:
    return scoped(Student.select(Student.id), principal.scope, Student)


async def list_links(
    principal: Principal, status: LinkStatus | None, page: int, page_size: int
) -> Page[LinkRead]:
    """Links to children of the caller's class (teacher) or school (registrar)."""
    require(principal, Action.list_guardian_links)
    where: Any = GuardianLink.student.is_in(_students_in_scope(principal))
    if status is not None:
        where = where & (GuardianLink.status == status.value)
    query = _link_query().where(where).order_by(GuardianLink.id)
    w = window(page, page_size)
    rows, total = await w.fetch(query, GuardianLink.count().where(where))
    return w.page([_link_read(r) for r in rows], total)


def _link_query() -> Any:
    return GuardianLink.select(
        *GuardianLink.all_columns(),
        GuardianLink.student.name.as_alias("student_name"),
        GuardianLink.student.school_class.as_alias("class_id"),
        GuardianLink.account.phone.as_alias("phone"),
    )


def _link_read(row: dict[str, Any]) -> LinkRead:
    return LinkRead(
        id=row["id"],
        student_id=row["student"],
        student_name=row["student_name"],
        class_id=row["class_id"],
        phone=mask_phone(row["phone"]) or "",
        guardian_slot=row["guardian_slot"],
        status=row["status"],
        created_at=row["created_at"],
    )


async def decide(principal: Principal, actor: Actor, link_id: int, action: str) -> LinkRead:
    """The teacher or registrar confirms or rejects a pending link, in scope, audited; two
    deciders can never both decide the same link."""
    require(principal, Action.decide_guardian_link)
    to = ACTION_STATUS[action]
    link = await GuardianLink.select().where(GuardianLink.id == link_id).first()
    if link is None:
        raise NotFound()
    # Out of scope answers like a missing link, and the refusal is audited under the link.
    await get_scoped(
        actor,
        principal.scope,
        Student,
        Student.id == link["student"],
        "guardian_link",
        link_id,
    )
    async with transaction():
        if not await LINK_STATUS.move(link_id, to):
            raise Conflict(
                f"该绑定申请当前状态为 {link['status']}，不能执行此操作", code="invalid_status"
            )
        if to is LinkStatus.rejected and link["form"] is not None:
            await IssuedForm.update(
                {IssuedForm.registration_uses: IssuedForm.registration_uses - 1}
            ).where((IssuedForm.id == link["form"]) & (IssuedForm.registration_uses > 0))
        await audit.record(
            actor,
            f"{action}_link",
            "guardian_link",
            link_id,
            before={"status": link["status"]},
            after={"status": to.value, "student": link["student"], "account": link["account"]},
        )
    row = await _link_query().where(GuardianLink.id == link_id).first()
    return _link_read(row)
