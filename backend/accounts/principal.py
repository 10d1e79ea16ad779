"""Who is calling: one query per request reads the account and its session together, so a
sealed or disabled account, or a logged-out session, stops at its next request.

A sysadmin's scope reads no student's or family's data (`ScopeKind.support`) unless the same
query finds an approved support grant of it that has not expired: then it is that region's
(`Scope.grant_id` says which grant). Nothing is cached, so a grant approved, revoked or run
out takes effect at the sysadmin's next request, whatever session it comes from."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.accounts.audit import Actor
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import Scope
from backend.accounts.tables import AccountStatus
from backend.accounts.tokens import AccessClaims, InvalidToken
from backend.config import Settings
from backend.db import fetch_row
from backend.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: int
    role: Role
    name: str
    phone: str
    scope: Scope
    session_id: uuid.UUID
    password_change_required: bool

    @property
    def reach(self) -> Scope:
        """The scope for what configures the system (campaigns, accounts, regions): a
        sysadmin's account's own, everyone else's one scope."""
        return self.scope.reach or self.scope

    def actor(self, client_addr: str | None, request_id: str | None) -> Actor:
        return Actor(self.account_id, self.role.value, client_addr, request_id)


class AccountInactive(Unauthorized):
    code = "account_inactive"
    message = "账号已被封存或停用，请联系上级管理员"


_PRINCIPAL_COLUMNS = """a.role AS p_role, a.name AS p_name, a.phone AS p_phone,
       a.status AS p_status, a.scope_kind AS p_scope_kind, a.region_code AS p_region_code,
       a.school AS p_school, a.school_class AS p_school_class,
       a.password_changed_at AS p_password_changed_at,
       a.must_change_password AS p_must_change_password, s.revoked_at AS p_revoked_at,
       g.id AS p_grant_id, g.region_code AS p_grant_region, g.expires_at AS p_grant_expires"""
# A sysadmin's approved grant that runs longest (approval refuses a second one while one is
# in force); whether it has run out is checked against the clock in `principal_of`. The CASE
# keeps everyone else from running the look-up: ≈ +60 µs a request otherwise (docs/security.md).
_PRINCIPAL_FROM = """FROM account a JOIN auth_session s ON s.account = a.id
LEFT JOIN support_grant g ON g.id = CASE WHEN a.role = 'sysadmin' THEN (
    SELECT sg.id FROM support_grant sg WHERE sg.requested_by = a.id AND sg.status = 'approved'
    ORDER BY sg.expires_at DESC LIMIT 1) END
WHERE s.id = {} AND a.id = {}"""
_PRINCIPAL_SQL = f"SELECT {_PRINCIPAL_COLUMNS}\n{_PRINCIPAL_FROM}"


def with_principal(read_sql: str, order_by: Sequence[str] = ()) -> str:
    """`read_sql` (`{}` placeholders) and the caller's account and session in one statement:
    `principal_args(claims)` then the read's arguments. Each row is a row of the read with the
    `p_*` columns beside it; one row whose read columns are all NULL when the read found
    nothing, none when the session or account does not exist. `order_by` orders the read's
    rows by those of its columns (a subquery's own ORDER BY is not kept)."""
    order = "ORDER BY " + ", ".join(f"r.{column}" for column in order_by) if order_by else ""
    return f"""SELECT p.*, r.* FROM ({_PRINCIPAL_SQL}) p
LEFT JOIN ({read_sql}) r ON TRUE
{order}"""


def principal_args(claims: AccessClaims) -> tuple[str, int]:
    return str(claims.session_id), claims.account_id


def password_change_required(
    settings: Settings, role: Role, changed_at: datetime, must_change: bool, now: datetime
) -> bool:
    if must_change:
        return True
    if role is Role.parent:
        return False
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    return now - changed_at > timedelta(days=settings.staff_password_max_age_days)


def principal_of(
    settings: Settings, claims: AccessClaims, row: Mapping[str, Any] | None
) -> Principal:
    """The principal from the `p_*` columns of its statement's row (None: no such session)."""
    if row is None or row["p_revoked_at"] is not None:
        raise InvalidToken()
    if row["p_status"] != AccountStatus.active:
        raise AccountInactive()
    role = Role(row["p_role"])
    scope = Scope(
        kind=ScopeKind(row["p_scope_kind"]),
        region_code=row["p_region_code"],
        school_id=row["p_school"],
        class_id=row["p_school_class"],
        account_id=claims.account_id,
    )
    now = datetime.now(UTC)
    if role is Role.sysadmin:
        scope = support_scope(
            scope, row["p_grant_id"], row["p_grant_region"], row["p_grant_expires"], now
        )
    return Principal(
        account_id=claims.account_id,
        role=role,
        name=row["p_name"],
        phone=row["p_phone"],
        scope=scope,
        session_id=claims.session_id,
        password_change_required=password_change_required(
            settings,
            role,
            row["p_password_changed_at"],
            bool(row["p_must_change_password"]),
            now,
        ),
    )


def support_scope(
    own: Scope,
    grant_id: int | None,
    region_code: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> Scope:
    """A sysadmin's scope: the region of its approved grant until `expires_at`, else no
    person's data; either way its account's own scope for what configures the system."""
    if grant_id is not None and region_code is not None and expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if now < expires_at:
            return Scope(
                ScopeKind.region,
                region_code,
                account_id=own.account_id,
                grant_id=grant_id,
                reach=own,
            )
    return Scope(ScopeKind.support, account_id=own.account_id, reach=own)


async def load_principal(settings: Settings, claims: AccessClaims) -> Principal:
    return principal_of(settings, claims, await fetch_row(_PRINCIPAL_SQL, *principal_args(claims)))


def account_principal(account: dict[str, Any]) -> Principal:
    """The principal of an account acting outside a request (an import job, the command
    line), from its `account` row: no session of its own."""
    return Principal(
        int(str(account["id"])),
        Role(str(account["role"])),
        str(account["name"]),
        str(account["phone"]),
        Scope.of_account(account),
        uuid.uuid4(),
        False,
    )
