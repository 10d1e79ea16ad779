"""Who is calling: one query per request reads the account and its session together, so a
sealed or disabled account, or a logged-out session, stops at its next request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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

    def actor(self, client_addr: str | None, request_id: str | None) -> Actor:
        return Actor(self.account_id, self.role.value, client_addr, request_id)


class AccountInactive(Unauthorized):
    code = "account_inactive"
    message = "账号已被封存或停用，请联系上级管理员"


_PRINCIPAL_SQL = """
SELECT a.role, a.name, a.phone, a.status, a.scope_kind, a.region_code, a.school,
       a.school_class, a.password_changed_at, a.must_change_password, s.revoked_at
FROM account a JOIN auth_session s ON s.account = a.id
WHERE s.id = {} AND a.id = {}
"""


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


async def load_principal(settings: Settings, claims: AccessClaims) -> Principal:
    row = await fetch_row(_PRINCIPAL_SQL, str(claims.session_id), claims.account_id)
    if row is None or row["revoked_at"] is not None:
        raise InvalidToken()
    if row["status"] != AccountStatus.active:
        raise AccountInactive()
    role = Role(row["role"])
    return Principal(
        account_id=claims.account_id,
        role=role,
        name=row["name"],
        phone=row["phone"],
        scope=Scope(
            kind=ScopeKind(row["scope_kind"]),
            region_code=row["region_code"],
            school_id=row["school"],
            class_id=row["school_class"],
            account_id=claims.account_id,
        ),
        session_id=claims.session_id,
        password_change_required=password_change_required(
            settings,
            role,
            row["password_changed_at"],
            bool(row["must_change_password"]),
            datetime.now(UTC),
        ),
    )
