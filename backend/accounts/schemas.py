"""Request and response bodies of the accounts domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from backend.accounts.roles import Administration, RegionLevel, Role, ScopeKind
from backend.accounts.tables import AccountStatus

Phone = Annotated[
    str,
    msgspec.Meta(
        min_length=5,
        max_length=20,
        pattern=r"^\+?\d+$",
        description="Mobile number, digits only",
        examples=["13800138000"],
    ),
]
RegionCode = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{6}$",
        description="Six-digit administrative division code (GB/T 2260)",
        examples=["330106"],
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
# Row ids are PostgreSQL `serial` (int4): a larger number can name no row, and would make the
# driver fail, so it never gets past the schema.
DB_ID_MAX = 2**31 - 1
DbId = Annotated[int, msgspec.Meta(ge=1, le=DB_ID_MAX)]


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone
    password: Password
    # Only when the last answer was `sms_code_required`: the code from the SMS.
    sms_code: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^\d{6}$",
                description="The 6 digits from the SMS, only after `sms_code_required`",
                examples=["123456"],
            ),
        ]
        | None
    ) = None


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    password_change_required: bool
    token_type: Literal["Bearer"] = "Bearer"


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    old_password: Password
    new_password: Password


class ScopeRead(msgspec.Struct):
    kind: ScopeKind
    region_code: str | None
    school_id: int | None
    class_id: int | None


class Me(msgspec.Struct):
    id: int
    name: str
    phone: str
    role: Role
    role_label: str
    scope: ScopeRead
    password_change_required: bool


class AccountRead(msgspec.Struct):
    id: int
    name: str
    phone: str
    role: Role
    status: AccountStatus
    scope: ScopeRead
    created_at: datetime
    last_active_at: datetime


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    role: Role
    initial_password: Password
    region_code: RegionCode | None = None
    school_id: DbId | None = None
    class_id: DbId | None = None


class RegionRead(msgspec.Struct):
    region_code: str  # GB/T 2260, 6 digits
    name: str
    level: RegionLevel
    parent_code: str | None


class SchoolRead(msgspec.Struct):
    id: int
    school_code: str  # the school's identifier in the registry
    name: str
    region_code: str
    # who reviews its key-data changes: the county, or the city / province running it directly
    administered_by: Administration
    administering_region_code: str


class ClassRead(msgspec.Struct):
    id: int
    school_id: int
    grade: int
    name: str
    homeroom_teachers: list[str]
