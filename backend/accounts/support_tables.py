"""The support grant table: a sysadmin's time-boxed, reasoned, approved access to one
region's data (backend/accounts/support.py)."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import ForeignKey, Serial, SmallInt, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.scope_rules import ScopedColumns, declare_scoped
from backend.accounts.tables import Account
from backend.statuses import Lifecycle


class GrantStatus(StrEnum):
    """A support grant (`GRANT_STATUS`). Expiry is a time, not a state: an approved grant
    gives access until `expires_at`, checked at every request."""

    requested = "requested"  # asked by a sysadmin; an admin of the region decides
    approved = "approved"  # in force until expires_at
    refused = "refused"  # by an admin of the region
    revoked = "revoked"  # ended early by the approver or any admin of the region


class SupportGrant(Table, tablename="support_grant"):
    id = Serial(primary_key=True)
    requested_by = ForeignKey(references=Account, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)  # the region whose data it opens
    reason = Text()  # why: the problem to look into, a ticket number
    hours = SmallInt()  # how long, from the approval: 1 … 168
    status = Varchar(length=10, default=GrantStatus.requested.value, index=True)
    requested_at = Timestamptz()
    decided_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    decided_at = Timestamptz(null=True, default=None)
    decision_note = Text(default="")
    expires_at = Timestamptz(null=True, default=None)  # decided_at + hours, once approved
    revoked_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    revoked_at = Timestamptz(null=True, default=None)


GRANT_STATUS = Lifecycle(
    SupportGrant.status,
    {
        GrantStatus.requested: {GrantStatus.approved, GrantStatus.refused},
        GrantStatus.approved: {GrantStatus.revoked},
        GrantStatus.refused: (),
        GrantStatus.revoked: (),
    },
)

# A grant is seen by the admins whose region holds its region, and by every sysadmin (a
# grant is not a person's data: `personal=False` lets a sysadmin's own scope read it).
declare_scoped(SupportGrant, ScopedColumns(region=SupportGrant.region_code, personal=False))
