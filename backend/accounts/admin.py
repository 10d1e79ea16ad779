"""Staff accounts: created, sealed, unsealed, disabled and enabled by an account admin of a
higher rank, only inside the admin's own scope; parents' accounts disabled and enabled by an
admin of a school of their children (or above); and the daily sealing of unused accounts."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.columns.combination import WhereRaw

from backend.accounts import audit
from backend.accounts.admin_schemas import PasswordResetRead, ResetDelivery
from backend.accounts.audit import Actor
from backend.accounts.org import region_level
from backend.accounts.passwords import check_password_rules, hash_password
from backend.accounts.permissions import Action, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import SCOPE_OF_ROLE, Role, ScopeKind
from backend.accounts.schemas import AccountCreate, AccountRead, ScopeRead
from backend.accounts.scope import get_scoped, scoped
from backend.accounts.session_hooks import sessions_ended
from backend.accounts.tables import (
    ACCOUNT_STATUS,
    Account,
    AccountStatus,
    AuthSession,
    Region,
    School,
    SchoolClass,
)
from backend.config import Settings
from backend.db import transaction
from backend.errors import BadRequest, Conflict, Forbidden
from backend.masking import mask_phone
from backend.outbox import Outbox
from backend.pages import Page, window

# A name filter's own % and _ are letters, not wildcards (as in `records.reads`).
LIKE_ESCAPE = str.maketrans({"%": r"\%", "_": r"\_", "\\": r"\\"})


def account_read(row: dict[str, Any]) -> AccountRead:
    """An account as staff see it: a parent's phone is a guardian's, masked like any other."""
    phone = row["phone"]
    if row["role"] == Role.parent:
        phone = mask_phone(phone) or ""
    return AccountRead(
        id=row["id"],
        name=row["name"],
        phone=phone,
        role=Role(row["role"]),
        status=row["status"],
        scope=ScopeRead(row["scope_kind"], row["region_code"], row["school"], row["school_class"]),
        created_at=row["created_at"],
        last_active_at=row["last_active_at"],
    )


async def _target_scope(principal: Principal, actor: Actor, data: AccountCreate) -> dict[str, Any]:
    """The scope columns of the new account, each checked to lie inside the admin's scope."""
    kind, level = SCOPE_OF_ROLE[data.role]
    if kind is ScopeKind.school_class:
        if data.class_id is None:
            raise BadRequest(
                "请指定班级",
                code="class_required",
                field_errors={"class_id": "班主任账号须指定班级"},
            )
        row = await get_scoped(
            actor,
            principal.scope,
            SchoolClass,
            SchoolClass.id == data.class_id,
            "school_class",
            data.class_id,
        )
        return {
            "region_code": row["region_code"],
            "school": row["school"],
            "school_class": row["id"],
        }
    if kind is ScopeKind.school:
        if data.school_id is None:
            raise BadRequest(
                "请指定学校", code="school_required", field_errors={"school_id": "该角色须指定学校"}
            )
        row = await get_scoped(
            actor, principal.scope, School, School.id == data.school_id, "school", data.school_id
        )
        return {"region_code": row["region_code"], "school": row["id"], "school_class": None}
    if kind is ScopeKind.region:
        code = data.region_code
        if code is None or region_level(code) is not level:
            raise BadRequest(
                "请指定与角色级别相符的行政区划",
                code="region_required",
                field_errors={"region_code": "行政区划级别与角色不符"},
            )
        await get_scoped(actor, principal.scope, Region, Region.code == code, "region", code)
        return {"region_code": code, "school": None, "school_class": None}
    raise Forbidden("不能创建该角色的账号", code="rank_too_high")


async def insert_account(
    role: Role,
    phone: str,
    name: str,
    password_hash: str,
    *,
    must_change_password: bool,
    **scope_columns: Any,
) -> int:
    """The one way an account row is made (admin, sign-up, seed, tests); the caller audits.
    A phone another account holds, even one committed a moment ago by a request racing this
    one, is a 409 `phone_taken` (not the unique index's error)."""
    now = datetime.now(UTC)
    rows = await Account.insert(
        Account(
            phone=phone,
            name=name,
            role=role.value,
            status=AccountStatus.active.value,
            password_hash=password_hash,
            password_changed_at=now,
            must_change_password=must_change_password,
            scope_kind=SCOPE_OF_ROLE[role][0].value,
            created_at=now,
            last_active_at=now,
            **scope_columns,
        )
    ).on_conflict(target=Account.phone, action="DO NOTHING")
    if not rows:
        raise Conflict(
            "该手机号已注册", code="phone_taken", field_errors={"phone": "该手机号已注册"}
        )
    return int(rows[0]["id"])


async def create_account(
    settings: Settings, principal: Principal, actor: Actor, data: AccountCreate
) -> AccountRead:
    require_over(principal, Action.create_account, data.role)
    check_password_rules(
        data.initial_password, user_inputs=[data.phone, data.name], field="initial_password"
    )
    scope_columns = await _target_scope(principal, actor, data)
    password_hash = await hash_password(settings, data.initial_password)
    async with transaction():
        account_id = await insert_account(
            data.role,
            data.phone,
            data.name,
            password_hash,
            must_change_password=True,
            **scope_columns,
        )
        after = {"phone": data.phone, "name": data.name, "role": data.role.value, **scope_columns}
        await audit.record(actor, "create", "account", account_id, after=after)
    return await get_account(principal, actor, account_id)


async def get_account(principal: Principal, actor: Actor, account_id: int) -> AccountRead:
    row = await get_scoped(
        actor, principal.scope, Account, Account.id == account_id, "account", account_id
    )
    return account_read(row)


async def list_accounts(
    principal: Principal,
    page: int,
    page_size: int,
    *,
    role: Role | None = None,
    status: AccountStatus | None = None,
    name: str | None = None,
) -> Page[AccountRead]:
    """Accounts in scope, narrowed by role, status and a part of the name."""
    query = scoped(Account.select(), principal.scope, Account).order_by(Account.id)
    count = scoped(Account.count(), principal.scope, Account)
    where: list[Any] = []
    if role is not None:
        where.append(Account.role == role.value)
    if status is not None:
        where.append(Account.status == status.value)
    if name and name.strip():
        pattern = f"%{name.strip().translate(LIKE_ESCAPE)}%"
        # ESCAPE named: SQLite's LIKE has no escape character of its own.
        where.append(WhereRaw("lower(account.name) LIKE lower({}) ESCAPE '\\'", pattern))
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    return w.page([account_read(r) for r in rows], total)


# action → (the status it requires, the status it sets)
TRANSITIONS = {
    "seal": ({AccountStatus.active}, AccountStatus.sealed),
    "unseal": ({AccountStatus.sealed}, AccountStatus.active),
    "disable": ({AccountStatus.active, AccountStatus.sealed}, AccountStatus.disabled),
    "enable": ({AccountStatus.disabled}, AccountStatus.active),
}
# A parent's account is disabled and enabled by an admin above of a school of its children
# (the scope rule puts it there); it is never sealed.
PARENT_ACTIONS = frozenset({"disable", "enable"})


async def change_status(
    principal: Principal, actor: Actor, account_id: int, action: str
) -> AccountRead:
    allowed_from, to = TRANSITIONS[action]
    target = await get_scoped(
        actor, principal.scope, Account, Account.id == account_id, "account", account_id
    )
    role = Role(target["role"])
    require_over(principal, Action.change_account_status, role)
    if role is Role.parent and action not in PARENT_ACTIONS:
        raise Conflict("家长账号只能停用或启用", code="invalid_status")
    changes: dict[Any, Any] = {}
    if to is AccountStatus.active:
        # A fresh start, or tomorrow's sealing job would seal it again at once.
        changes[Account.last_active_at] = datetime.now(UTC)
    async with transaction():
        if not await ACCOUNT_STATUS.move(account_id, to, sources=allowed_from, values=changes):
            raise Conflict(
                f"账号当前状态为 {target['status']}，不能执行此操作", code="invalid_status"
            )
        if to is not AccountStatus.active:
            # Sealed or disabled: its sessions end for good (revoked, not only refused while
            # the status lasts), so enabling it again revives no token issued before.
            await end_sessions([account_id], action)
        await audit.record(
            actor,
            action,
            "account",
            account_id,
            before={"status": target["status"]},
            after={"status": to.value},
        )
    return await get_account(principal, actor, account_id)


async def seal_inactive_accounts(settings: Settings, now: datetime | None = None) -> int:
    """Seal every active staff account unused for `seal_after_inactive_days`."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.seal_after_inactive_days)
    actor = Actor.system("seal_inactive_accounts")
    async with transaction():
        sealed = await ACCOUNT_STATUS.move_all(
            AccountStatus.sealed,
            (Account.role != Role.parent.value) & (Account.last_active_at < cutoff),
            sources=(AccountStatus.active,),
        )
        await end_sessions(sealed, "sealed_inactive", now)
        for account_id in sealed:
            await audit.record(
                actor,
                "seal",
                "account",
                account_id,
                before={"status": "active"},
                after={"status": "sealed", "reason": "inactive"},
            )
    return len(sealed)


# Letters and digits that cannot be misread on paper or a phone's screen (no 0/O, 1/l/I).
_TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
TEMPORARY_LENGTH = 12  # 55^12 ≈ 2^69: no guessing it, at any rate the login throttle allows

RESET_SMS_TEXT = (
    "【学籍核查】管理员已重置您的登录密码，临时密码：{password}。"
    "请尽快用它登录并按提示设置新密码；如非本人申请，请立即联系管理员。"
)


def temporary_password() -> str:
    """A random temporary password, with at least one letter and one digit."""
    while True:
        password = "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(TEMPORARY_LENGTH))
        if any(c.isdigit() for c in password) and any(c.isalpha() for c in password):
            return password


RESETTABLE = frozenset({AccountStatus.active, AccountStatus.sealed})


async def reset_password(
    settings: Settings,
    principal: Principal,
    actor: Actor,
    outbox: Outbox,
    account_id: int,
    delivery: ResetDelivery,
) -> PasswordResetRead:
    """An admin above a staff account (in scope, higher rank) gives it a temporary password:
    shown once in this answer, or sent by SMS to the account's phone. The account must
    change it at its next sign-in (`must_change_password`), every session of it ends, and
    the reset is audited (how it was delivered, never the password)."""
    target = await get_scoped(
        actor, principal.scope, Account, Account.id == account_id, "account", account_id
    )
    require_over(principal, Action.reset_password, Role(target["role"]))
    if target["status"] not in RESETTABLE:
        raise Conflict(
            f"账号当前状态为 {target['status']}，不能重置密码（停用或已关闭的账号请先启用）",
            code="invalid_status",
        )
    password = temporary_password()
    password_hash = await hash_password(settings, password)
    now = datetime.now(UTC)
    async with transaction():
        await Account.update(
            {
                Account.password_hash: password_hash,
                Account.password_changed_at: now,
                Account.must_change_password: True,
            }
        ).where(Account.id == account_id)
        ended = await end_sessions([account_id], "password_reset", now)
        if delivery is ResetDelivery.sms:
            await outbox.message(
                target["phone"],
                RESET_SMS_TEXT.format(password=password),
                key=f"password-reset:{account_id}:{secrets.token_hex(8)}",
            )
        await audit.record(
            actor,
            "reset_password",
            "account",
            account_id,
            after={"delivery": delivery.value, "sessions_ended": ended},
        )
    return PasswordResetRead(
        account_id=account_id,
        delivery=delivery,
        temporary_password=password if delivery is ResetDelivery.show else None,
        sessions_ended=ended,
    )


async def end_sessions(account_ids: Sequence[int], reason: str, now: datetime | None = None) -> int:
    """Revoke every live session of the accounts (their refresh tokens stop working; their
    access tokens are refused at their next request) and tell the hooks; inside the caller's
    transaction. Returns how many sessions ended."""
    if not account_ids:
        return 0
    now = now or datetime.now(UTC)
    revoked = (
        await AuthSession.update({AuthSession.revoked_at: now, AuthSession.revoked_reason: reason})
        .where(AuthSession.account.is_in(list(account_ids)) & AuthSession.revoked_at.is_null())
        .returning(AuthSession.id)
    )
    await sessions_ended(accounts=account_ids)
    return len(revoked)
