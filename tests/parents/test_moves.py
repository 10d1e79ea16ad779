"""A student moves to another school: the record, the family's photo and its corrections go
with the child to the new school; what the old school printed stays in its archive; the
parent still sees the child."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.errors import Conflict, NotFound
from backend.parents.tables import CorrectionDraft, Upload
from backend.records.moves import move_student
from backend.records.tables import FormBatch, IssuedForm, Student
from tests.factories import SYSTEM, World, bearer, login, make_account, make_students
from tests.parents.test_correction_drafts import written

__all__ = ["written"]


async def _staff(
    client: httpx.AsyncClient, settings: Settings, world: World, role: Role, phone: str
) -> dict[str, str]:
    scope: dict[str, Any] = {"region_code": "330108", "school": world.schools["B"]}
    if role is Role.teacher:
        scope["school_class"] = world.classes["B1"]
    await make_account(settings, role, phone, **scope)
    return bearer(await login(client, phone))


async def _status(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> int:
    return (await client.get(path, headers=headers)).status_code


async def test_the_new_school_sees_the_child_and_what_follows_the_old_only_its_history(
    client: httpx.AsyncClient,
    settings: Settings,
    world: World,
    parent: dict[str, str],
    written: dict[str, Any],
) -> None:
    child = world.students[0]
    upload = written["upload"]["id"]
    form = await IssuedForm.select().where(IssuedForm.student == child).first()
    batch = await FormBatch.select(FormBatch.id).first()
    assert form is not None
    assert batch is not None
    old_teacher = bearer(await login(client, world.phones[Role.teacher]))
    old_registrar = bearer(await login(client, world.phones[Role.registrar]))
    new_teacher = await _staff(client, settings, world, Role.teacher, "13900009001")
    new_registrar = await _staff(client, settings, world, Role.registrar, "13900009002")
    assert await _status(client, f"/students/{child}", new_teacher) == 404

    moved = await move_student(SYSTEM, child, world.classes["B1"])

    # what the child had (tables it had no row in follow with 0)
    followed = {table: n for table, n in moved.followed.items() if n}
    assert followed == {"student": 1, "upload": 1, "correction_draft": 2}
    assert moved.forms_superseded == 1
    # the new school answers for the record, the photo and the corrections written on it
    for headers in (new_teacher, new_registrar):
        assert await _status(client, f"/students/{child}", headers) == 200
        assert await _status(client, f"/uploads/{upload}", headers) == 200
    drafts = (await client.get("/correction-drafts", headers=new_teacher)).json()
    assert drafts["total"] == 2
    assert {d["class_id"] for d in drafts["items"]} == {world.classes["B1"]}
    # the old school no longer sees the child, nor the photo; its printing is its history
    for headers in (old_teacher, old_registrar):
        assert await _status(client, f"/students/{child}", headers) == 404
        assert await _status(client, f"/uploads/{upload}", headers) == 404
    assert (await client.get("/correction-drafts", headers=old_teacher)).json()["total"] == 0
    assert await _status(client, f"/form-batches/{batch['id']}", old_registrar) == 200
    assert await _status(client, f"/forms/{form['form_id']}/png", old_registrar) == 200
    assert await _status(client, f"/form-batches/{batch['id']}", new_registrar) == 404
    assert await _status(client, f"/forms/{form['form_id']}/png", new_registrar) == 404
    # the paper names the old school: superseded, the new school prints its own
    after = await IssuedForm.select().where(IssuedForm.id == form["id"]).first()
    assert after is not None
    assert after["superseded_at"] is not None
    assert after["school"] == world.schools["A"]
    # the parent still sees the child, and the photo
    children = (await client.get("/my/children", headers=parent)).json()
    assert child in {c["id"] for c in children}
    assert await _status(client, f"/my/children/{child}", parent) == 200
    assert await _status(client, f"/uploads/{upload}", parent) == 200
    # one audit row says where from and where to
    [row] = await AuditLog.select().where(
        (AuditLog.action == "move") & (AuditLog.entity == "student")
    )
    assert row["entity_id"] == str(child)


async def test_a_move_refused_changes_nothing(
    settings: Settings, world: World, written: dict[str, Any]
) -> None:
    child = world.students[0]
    # the new school already holds a record with the same registry number
    await make_students(world, "B1", 1)

    with pytest.raises(Conflict) as refused:
        await move_student(SYSTEM, child, world.classes["B1"])
    with pytest.raises(NotFound):
        await move_student(SYSTEM, child, 999_999)

    assert refused.value.code == "registry_number_taken"
    a = world.schools["A"]
    assert (await Student.select(Student.school).where(Student.id == child).first()) == {
        "school": a
    }
    assert {r["school"] for r in await Upload.select(Upload.school)} == {a}
    assert {r["school"] for r in await CorrectionDraft.select(CorrectionDraft.school)} == {a}
    assert await IssuedForm.count().where(IssuedForm.superseded_at.is_not_null()) == 0
    assert await AuditLog.count().where(AuditLog.action == "move") == 0


async def test_a_move_within_the_school_leaves_the_other_class_its_teacher(
    client: httpx.AsyncClient, settings: Settings, world: World, written: dict[str, Any]
) -> None:
    child = world.students[0]
    old_teacher = bearer(await login(client, world.phones[Role.teacher]))
    registrar = bearer(await login(client, world.phones[Role.registrar]))

    moved = await move_student(SYSTEM, child, world.classes["A2"])
    again = await move_student(SYSTEM, child, world.classes["A2"])

    assert moved.followed["correction_draft"] == 2
    assert again.followed == {}  # already there: nothing changes, nothing audited
    assert await AuditLog.count().where(AuditLog.action == "move") == 1
    assert await _status(client, f"/students/{child}", old_teacher) == 404
    assert await _status(client, f"/students/{child}", registrar) == 200
    drafts = (await client.get("/correction-drafts", headers=registrar)).json()["items"]
    assert {d["class_id"] for d in drafts} == {world.classes["A2"]}
