"""Every table that carries a region, school or class declares its scope with the table, so
no query over it can fail for want of a service module imported first."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from piccolo.columns import Column
from piccolo.table import Table

from backend.accounts.roles import Role
from backend.accounts.scope import Scope, scoped
from backend.accounts.scope_rules import SCOPED, OnMove
from backend.accounts.tables import Account
from backend.config import Settings
from backend.piccolo_app import APP_CONFIG
from backend.records.tables import Campaign
from tests.factories import build_world

ROOT = Path(__file__).resolve().parents[2]
SCOPE_COLUMNS = {"region_code": "region", "school": "school", "school_class": "school_class"}
TABLES = sorted(APP_CONFIG.table_classes, key=lambda t: t._meta.tablename)


def _names(table: type[Table]) -> set[str]:
    return {column._meta.name for column in table._meta.columns}


def _same(declared: Column | None, table: type[Table], name: str) -> bool:
    return declared is not None and declared._meta.table is table and declared._meta.name == name


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t._meta.tablename)
def test_every_table_with_a_region_school_or_class_declares_it(table: type[Table]) -> None:
    carried = _names(table) & SCOPE_COLUMNS.keys()
    if not carried:
        return
    assert table in SCOPED, f"{table.__name__} carries {carried} but declares no scope"
    columns = SCOPED[table]
    for name in carried:
        declared = getattr(columns, SCOPE_COLUMNS[name])
        assert _same(declared, table, name), f"{table.__name__}.{name} is not declared"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t._meta.tablename)
def test_every_scoped_row_of_a_student_says_what_a_move_does_to_it(table: type[Table]) -> None:
    columns = SCOPED.get(table)
    if columns is None or not ({"student", "registry_number"} & _names(table)):
        return
    assert columns.on_move in set(OnMove), f"{table.__name__}: follows or stays?"


def test_a_table_brings_its_scope_however_little_was_imported() -> None:
    """Only the tables module imported (no service): every scoped table still filters."""
    code = """
from backend.parents.tables import CorrectionDraft, Upload
from backend.records.tables import Campaign, FormBatch, ImportJob, IssuedForm, Student
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import Scope, scope_filter
scope = Scope(ScopeKind.school, "330106", 1)
for table in (CorrectionDraft, Upload, Campaign, FormBatch, ImportJob, IssuedForm, Student):
    assert scope_filter(scope, table) is not None, table
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr


@pytest.mark.parametrize("role", list(Role))
async def test_a_campaign_reaches_the_regions_it_contains_or_lies_in(
    settings: Settings, role: Role
) -> None:
    """Campaigns and their settings are read in SQL (`scoped`) and, for settings already
    loaded, in Python (`Scope.overlaps_region`): one rule, the same answer."""
    world = await build_world(settings)
    now = datetime.now(UTC)
    for code in ("330000", "330100", "330106", "330108", "320000", "320102"):
        await Campaign.insert(
            Campaign(
                region_code=code,
                name=code,
                starts_at=now,
                ends_at=now + timedelta(days=1),
                created_by=world.accounts[Role.sysadmin],
                created_at=now,
            )
        )
    account = await Account.select().where(Account.id == world.accounts[role]).first()
    assert account is not None
    scope = Scope.of_account(account)

    in_sql = {r["region_code"] for r in await scoped(Campaign.select(), scope, Campaign)}
    in_python = {
        r["region_code"] for r in await Campaign.select() if scope.overlaps_region(r["region_code"])
    }

    assert in_sql == in_python
    expected = {
        Role.parent: set(),
        Role.teacher: {"330000", "330100", "330106"},
        Role.registrar: {"330000", "330100", "330106"},
        Role.school_leader: {"330000", "330100", "330106"},
        Role.county_reviewer: {"330000", "330100", "330106"},
        Role.city_admin: {"330000", "330100", "330106", "330108"},
        Role.province_admin: {"330000", "330100", "330106", "330108"},
        Role.sysadmin: {"330000", "330100", "330106", "330108", "320000", "320102"},
    }
    assert in_sql == expected[role]
