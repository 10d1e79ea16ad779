"""The binding of a campaign account (数据质量核查专用账号) to its campaign and its school or
county: notice 001 gives each county and school extra accounts for the check, "closed
automatically when the check ends". The account itself is an ordinary `account` row (a
registrar for a school, a county reviewer for a county) whose status becomes `closed`."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.scope_rules import ScopedColumns, declare_scoped
from backend.accounts.tables import Account, School
from backend.records.tables import Campaign


class CampaignAccount(Table, tablename="campaign_account"):
    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, unique=True, on_delete=OnDelete.cascade)
    # A deleted (mistaken) campaign closes its accounts first, then takes their bindings.
    campaign = ForeignKey(references=Campaign, index=True, on_delete=OnDelete.cascade)
    region_code = Varchar(length=6, index=True)  # the county (a school's county)
    school = ForeignKey(
        references=School, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )  # None: a county's account
    created_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    created_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None, index=True)
    closed_reason = Varchar(length=20, null=True, default=None)  # ClosedReason


declare_scoped(
    CampaignAccount,
    ScopedColumns(
        region=CampaignAccount.region_code, school=CampaignAccount.school, personal=False
    ),
)
