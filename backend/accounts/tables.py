"""Tables of the accounts domain.

Every scoped row carries `region_code`: the 6-digit code of the most specific region it
sits under (a school's county, a city admin's city). Region scopes filter on it by range,
so one btree index serves nation, province, city and county alike.
"""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.roles import Administration
from backend.accounts.scope_rules import ScopedColumns, declare_scoped
from backend.statuses import Lifecycle


class Region(Table, tablename="region"):
    id = Serial(primary_key=True)
    code = Varchar(length=6, unique=True, index=True)
    name = Varchar(length=64)
    level = Varchar(length=10)  # RegionLevel
    parent_code = Varchar(length=6, null=True, default=None, index=True)


declare_scoped(Region, ScopedColumns(region=Region.code, personal=False))


class SchoolKind(StrEnum):
    """学校类型: which stages a school teaches, and whether it is a special-education school
    (特殊教育学校, where a repeat in compulsory education is allowed: docs/transfers.md)."""

    unknown = "unknown"  # not said yet
    primary = "primary"  # 小学
    junior = "junior"  # 初级中学
    senior = "senior"  # 高级中学
    nine_year = "nine_year"  # 九年一贯制学校
    complete = "complete"  # 完全中学
    twelve_year = "twelve_year"  # 十二年一贯制学校
    special = "special"  # 特殊教育学校


SCHOOL_KIND_LABEL = {
    SchoolKind.unknown: "未登记",
    SchoolKind.primary: "小学",
    SchoolKind.junior: "初级中学",
    SchoolKind.senior: "高级中学",
    SchoolKind.nine_year: "九年一贯制学校",
    SchoolKind.complete: "完全中学",
    SchoolKind.twelve_year: "十二年一贯制学校",
    SchoolKind.special: "特殊教育学校",
}


class School(Table, tablename="school"):
    id = Serial(primary_key=True)
    code = Varchar(length=10, unique=True)
    name = Varchar(length=100)
    region_code = Varchar(length=6, index=True)  # the county
    # Administration: the county, or the city / province that runs the school directly
    administered_by = Varchar(length=10, default=Administration.county.value)
    kind = Varchar(length=12, default=SchoolKind.unknown.value)  # SchoolKind


declare_scoped(School, ScopedColumns(region=School.region_code, school=School.id, personal=False))


class SchoolClass(Table, tablename="school_class"):
    id = Serial(primary_key=True)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    grade = SmallInt()  # 1–12: 小学一年级 … 高中三年级
    name = Varchar(length=50)


class AccountStatus(StrEnum):
    """An account's standing (`ACCOUNT_STATUS`); only `active` signs in."""

    active = "active"
    sealed = "sealed"  # unused too long; an admin of a higher scope unseals
    disabled = "disabled"
    closed = "closed"  # a campaign account (核查专用账号) whose campaign ended: for good


declare_scoped(
    SchoolClass,
    ScopedColumns(
        region=SchoolClass.region_code,
        school=SchoolClass.school,
        school_class=SchoolClass.id,
        personal=False,
    ),
)


class Account(Table, tablename="account"):
    id = Serial(primary_key=True)
    phone = Varchar(length=20, unique=True)
    name = Varchar(length=50)
    role = Varchar(length=20)  # Role
    status = Varchar(length=10, default=AccountStatus.active.value)
    password_hash = Text()
    password_changed_at = Timestamptz()
    must_change_password = Boolean(default=False)
    scope_kind = Varchar(length=10)  # ScopeKind
    region_code = Varchar(length=6, null=True, default=None, index=True)
    school = ForeignKey(
        references=School, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )
    school_class = ForeignKey(
        references=SchoolClass, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )
    created_at = Timestamptz()
    last_active_at = Timestamptz()


ACCOUNT_STATUS = Lifecycle(
    Account.status,
    {
        AccountStatus.active: {AccountStatus.sealed, AccountStatus.disabled, AccountStatus.closed},
        AccountStatus.sealed: {AccountStatus.active, AccountStatus.disabled, AccountStatus.closed},
        AccountStatus.disabled: {AccountStatus.active, AccountStatus.closed},
        AccountStatus.closed: (),
    },
)


# A staff account's scope is where it works; a parent's account is also in the scope of its
# children's schools (declared beside `GuardianLink`, which knows the children). Accounts
# are administered by a sysadmin without a support grant (`personal=False`): it creates the
# province admins, and a staff account is not a student's data.
declare_scoped(
    Account,
    ScopedColumns(
        region=Account.region_code,
        school=Account.school,
        school_class=Account.school_class,
        personal=False,
    ),
)


class AuthSession(Table, tablename="auth_session"):
    """One refresh-token family: a login and every rotation that followed it."""

    id = UUID(primary_key=True)
    account = ForeignKey(references=Account, index=True)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    revoked_reason = Varchar(length=30, null=True, default=None)


class RefreshToken(Table, tablename="refresh_token"):
    id = Serial(primary_key=True)
    session = ForeignKey(references=AuthSession, index=True)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class AuditLog(Table, tablename="audit_log"):
    """Append-only. Rows form `audit.CHAINS` chains (so writers of different chains never
    wait on each other); `seq` orders a chain, `hash` is the HMAC-SHA256, under the key named
    by `key_id`, of the row and the hash of the row before it."""

    id = BigSerial(primary_key=True)
    chain = SmallInt(index=True)
    seq = Integer()
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)
    at = Timestamptz()
    actor_id = Integer(null=True, default=None)
    actor_role = Varchar(length=20, null=True, default=None)
    client_addr = Varchar(length=64, null=True, default=None)
    request_id = Varchar(length=64, null=True, default=None)
    action = Varchar(length=40)
    entity = Varchar(length=40)
    entity_id = Varchar(length=64, null=True, default=None, index=True)
    before = Text(null=True, default=None)  # canonical JSON
    after = Text(null=True, default=None)
    key_id = Varchar(length=16, null=True, default=None)  # None: not yet keyed (legacy)


class SecondFactor(Table, tablename="second_factor"):
    """A staff account's confirmed second factor, one per account (docs/security.md, "Second
    factor"). Written only once its first code was right; an admin's reset deletes it."""

    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, unique=True, on_delete=OnDelete.cascade)
    method = Varchar(length=10)  # second_factor.Method: totp or sms
    totp_secret = Text(null=True, default=None)  # sealed under SECOND_FACTOR_KEY (AES-GCM)
    # The time step of the last TOTP code accepted: that code, and any older, is refused.
    last_totp_step = BigInt(null=True, default=None)
    enrolled_at = Timestamptz()


class RecoveryCode(Table, tablename="recovery_code"):
    """One-time codes for a lost phone, kept as a keyed hash; each is spent once."""

    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, index=True, on_delete=OnDelete.cascade)
    code_hash = Varchar(length=64)
    used_at = Timestamptz(null=True, default=None)
