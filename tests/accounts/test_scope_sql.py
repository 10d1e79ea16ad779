"""The scope rule as SQL text (for the hand-written hot reads) keeps exactly the rows that
`scoped` keeps, for every kind of scope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.accounts.roles import Role
from backend.accounts.scope import Scope, in_scope_sql, scoped
from backend.accounts.tables import Account
from backend.config import Settings
from backend.db import fetch_rows
from backend.records.tables import GuardianLink, Student
from tests.factories import build_world, make_students


@pytest.mark.parametrize("role", list(Role))
async def test_the_sql_scope_keeps_the_rows_scoped_keeps(settings: Settings, role: Role) -> None:
    world = await build_world(settings)
    students = []
    for key in ("A1", "A2", "B1", "C1", "D1"):
        students += await make_students(world, key, 2, start=10 * len(students) + 1)
    now = datetime.now(UTC)
    parent = world.accounts[Role.parent]
    for student, status in ((students[0], "confirmed"), (students[2], "pending")):
        await GuardianLink.insert(
            GuardianLink(account=parent, student=student, status=status, created_at=now)
        )
    account = await Account.select().where(Account.id == world.accounts[role]).first()
    assert account is not None
    scope = Scope.of_account(account)

    expected = {r["id"] for r in await scoped(Student.select(Student.id), scope, Student)}
    sql, args = in_scope_sql(scope, "s", student="id")
    found = {r["id"] for r in await fetch_rows(f"SELECT s.id FROM student s WHERE {sql}", *args)}

    assert found == expected
    if role is Role.sysadmin:  # no standing access: only under a support grant
        assert not expected, "a sysadmin without a support grant sees no student"
    else:
        assert expected, "every other role of the world sees some students"
