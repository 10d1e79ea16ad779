"""Transfers (转学) through HTTP, each step by its real role account: within a county, across
counties of a province, across provinces; a refusal at each step; a send-back and
resubmission; two reviewers at once; the record moved once, and who sees what before and
after; one open change per record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.parents.tables import Upload, UploadStatus
from backend.records.tables import Student
from backend.transfers.tables import StatusChange
from tests.factories import World, open_campaign
from tests.records.requests import audit_rows, jpeg
from tests.transfers.world import (
    as_role,
    as_staff,
    decide,
    read,
    start_transfer,
    student,
    transfer_world,
)


@pytest.fixture
async def world(settings: Settings) -> World:
    return await transfer_world(settings)


# Where the student goes → the span, and who holds each step after the start, in order.
CHAINS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "G1": (
        "county",
        [
            ("release", "registrar", "学校A 学籍管理员"),
            ("review_out", "county_reviewer", "西湖区 县级学籍主管部门"),
        ],
    ),
    "B1": (
        "province",
        [
            ("release", "registrar", "学校A 学籍管理员"),
            ("review_out", "county_reviewer", "西湖区 县级学籍主管部门"),
            ("review_in", "county_reviewer", "滨江区 县级学籍主管部门"),
        ],
    ),
    "D1": (
        "country",
        [
            ("release", "registrar", "学校A 学籍管理员"),
            ("review_out", "county_reviewer", "西湖区 县级学籍主管部门"),
            ("review_in", "county_reviewer", "玄武区 县级学籍主管部门"),
        ],
    ),
}
RECEIVING = {"G1": "G", "B1": "B", "D1": "D"}
REVIEW_IN = {"B": "county_330108", "D": "county_320102"}  # the receiving county's reviewer


async def headers_for(
    client: httpx.AsyncClient, world: World, step_kind: str, key: str
) -> dict[str, str]:
    """The real account holding a step of a transfer from A to school `key`."""
    if step_kind == "release":
        return await as_role(client, world, Role.registrar)
    if step_kind == "review_out":
        return await as_role(client, world, Role.county_reviewer)
    return await as_staff(client, world, REVIEW_IN[key])


@pytest.mark.parametrize("to_class", ["G1", "B1", "D1"])
async def test_a_transfer_runs_its_chain_and_moves_the_record_once(
    client: httpx.AsyncClient, world: World, to_class: str
) -> None:
    key = RECEIVING[to_class]
    receiving = await as_staff(client, world, f"registrar_{key}")
    sending = await as_role(client, world, Role.registrar)
    child = world.students[0]
    # Before: the receiving school cannot read the child's record
    assert (await client.get(f"/students/{child}", headers=receiving)).status_code == 404

    started = await start_transfer(client, receiving, child, world.classes[to_class])
    assert started.status_code == 201, started.text
    body = started.json()
    span, chain = CHAINS[to_class]
    assert body["span"] == span
    assert body["kind_label"] == "转学"
    assert [s["kind"] for s in body["steps"]] == ["start"] + [k for k, _, _ in chain]
    assert body["steps"][0]["state"] == "approved"
    change_id = body["id"]
    assert (await student(child))["open_change"] == change_id

    for i, (step_kind, role, holder) in enumerate(chain):
        now = await read(client, sending, change_id)
        current = now["current_step"]
        assert (current["kind"], current["role"], current["holder"]) == (step_kind, role, holder)
        assert current["due_days"] == 10
        assert current["due_on"] is not None
        headers = await headers_for(client, world, step_kind, key)
        # someone else of the chain cannot decide it
        if step_kind != "release":
            wrong = await decide(client, sending, current["id"])
            assert wrong.status_code in (403, 404), wrong.text
        answer = await decide(client, headers, current["id"])
        assert answer.status_code == 200, answer.text
        if i < len(chain) - 1:
            assert (await student(child))["school"] == world.schools["A"]

    after = await student(child)
    assert (after["school"], after["school_class"]) == (
        world.schools[key],
        world.classes[to_class],
    )
    assert after["status"] == "enrolled"
    assert after["open_change"] is None
    moved = await audit_rows("move", "student", child)
    assert len(moved) == 1
    done = await read(client, receiving, change_id)
    assert done["state"] == "completed"
    assert done["completed_at"] is not None
    # After: the new school reads the record, the old one gets 404 on its current data but
    # keeps the history of the change it handled
    assert (await client.get(f"/students/{child}", headers=receiving)).status_code == 200
    assert (await client.get(f"/students/{child}", headers=sending)).status_code == 404
    assert (await read(client, sending, change_id))["state"] == "completed"
    assert await audit_rows("access_denied", "student", child)


@pytest.mark.parametrize("refusing", ["release", "review_out", "review_in"])
async def test_a_refusal_at_any_step_ends_it_with_its_reason_and_frees_the_record(
    client: httpx.AsyncClient, world: World, refusing: str
) -> None:
    receiving = await as_staff(client, world, "registrar_B")
    child = world.students[0]
    change_id = (await start_transfer(client, receiving, child, world.classes["B1"])).json()["id"]
    for step_kind, _, _ in CHAINS["B1"][1]:
        current = (await read(client, receiving, change_id))["current_step"]
        headers = await headers_for(client, world, step_kind, "B")
        if step_kind == refusing:
            refused = await decide(client, headers, current["id"], "reject", "转入学位已满")
            assert refused.status_code == 200, refused.text
            break
        assert (await decide(client, headers, current["id"])).status_code == 200
    body = await read(client, receiving, change_id)
    assert body["state"] == "refused"
    assert body["state_label"] == "未通过"
    assert body["refusal"] == "转入学位已满"
    assert body["current_step"] is None
    assert [s["state"] for s in body["steps"]].count("rejected") == 1
    row = await student(child)
    assert row["school"] == world.schools["A"]
    assert row["open_change"] is None
    assert await audit_rows("move", "student", child) == []
    # the record is free: another change may start
    again = await start_transfer(client, receiving, child, world.classes["B1"])
    assert again.status_code == 201, again.text


async def test_sent_back_the_starter_amends_and_resubmits_from_that_step(
    client: httpx.AsyncClient, world: World
) -> None:
    receiving = await as_staff(client, world, "registrar_G")
    county = await as_role(client, world, Role.county_reviewer)
    sending = await as_role(client, world, Role.registrar)
    child = world.students[1]
    change_id = (await start_transfer(client, receiving, child, world.classes["G1"])).json()["id"]
    release = (await read(client, sending, change_id))["current_step"]
    assert (await decide(client, sending, release["id"])).status_code == 200
    review = (await read(client, county, change_id))["current_step"]
    back = await decide(client, county, review["id"], "send_back", "请补充居住证明")
    assert back.status_code == 200, back.text
    body = await read(client, receiving, change_id)
    assert body["state"] == "returned"
    assert body["refusal"] == "请补充居住证明"
    assert (await student(child))["open_change"] == change_id  # still held

    # only the starter resubmits
    other = await client.post(
        f"/status-changes/{change_id}/resubmit",
        files=[("reason", (None, "x"))],
        headers=sending,
    )
    assert other.status_code == 403
    assert other.json()["code"] == "not_your_change"
    again = await client.post(
        f"/status-changes/{change_id}/resubmit",
        files=[("reason", (None, "随父母迁居，已补充居住证明"))],
        headers=receiving,
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["state"] == "in_review"
    assert body["round"] == 2
    assert body["current_step"]["kind"] == "review_out"  # the step that sent it back
    assert body["current_step"]["round"] == 2
    assert [s["kind"] for s in body["steps"] if s["round"] == 2] == ["review_out"]
    assert (await decide(client, county, body["current_step"]["id"])).status_code == 200
    assert (await student(child))["school"] == world.schools["G"]


async def test_two_reviewers_at_once_one_wins_and_the_record_moves_once(
    client: httpx.AsyncClient, world: World
) -> None:
    receiving = await as_staff(client, world, "registrar_G")
    sending = await as_role(client, world, Role.registrar)
    reviewers = [
        await as_role(client, world, Role.county_reviewer),
        await as_staff(client, world, "county_330106_2"),
    ]
    child = world.students[0]
    change_id = (await start_transfer(client, receiving, child, world.classes["G1"])).json()["id"]
    release = (await read(client, sending, change_id))["current_step"]
    assert (await decide(client, sending, release["id"])).status_code == 200
    review = (await read(client, sending, change_id))["current_step"]
    answers = await asyncio.gather(*(decide(client, h, review["id"]) for h in reviewers))
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["code"] == "step_already_decided"
    assert len(await audit_rows("move", "student", child)) == 1
    assert (await student(child))["school"] == world.schools["G"]


async def test_one_open_change_per_record(client: httpx.AsyncClient, world: World) -> None:
    receiving = await as_staff(client, world, "registrar_B")
    other_school = await as_staff(client, world, "registrar_D")
    sending = await as_role(client, world, Role.registrar)
    child = world.students[0]
    first = await start_transfer(client, receiving, child, world.classes["B1"])
    assert first.status_code == 201
    second = await start_transfer(client, other_school, child, world.classes["D1"])
    assert second.status_code == 409, second.text
    assert second.json()["code"] == "change_already_open"
    suspend = await client.post(
        "/status-changes",
        json={"kind": "suspend", "student_id": child, "reason": "因病休学"},
        headers=sending,
    )
    assert suspend.status_code == 409
    assert suspend.json()["code"] == "change_already_open"
    assert await StatusChange.count() == 1  # nothing of the refused starts was kept
    # withdrawn by its starter, the record is free again
    withdrawn = await client.post(
        f"/status-changes/{first.json()['id']}/withdraw", headers=receiving
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["state"] == "withdrawn"
    assert all(s["state"] != "current" for s in withdrawn.json()["steps"])
    assert (await student(child))["open_change"] is None
    assert (
        await start_transfer(client, other_school, child, world.classes["D1"])
    ).status_code == 201


async def test_a_wrong_name_or_own_school_finds_no_one_to_transfer(
    client: httpx.AsyncClient, world: World
) -> None:
    receiving = await as_staff(client, world, "registrar_B")
    row = await student(world.students[0])
    wrong = await client.post(
        "/status-changes/transfers",
        json={
            "registry_number": row["registry_number"],
            "student_name": "别人",
            "to_class_id": world.classes["B1"],
        },
        headers=receiving,
    )
    assert wrong.status_code == 404
    assert wrong.json()["code"] == "student_not_found"
    own = await start_transfer(
        client, await as_role(client, world, Role.registrar), world.students[0], world.classes["A2"]
    )
    assert own.status_code == 400
    assert own.json()["code"] == "same_school"
    other_class = await start_transfer(client, receiving, world.students[0], world.classes["D1"])
    assert other_class.status_code == 404  # a class outside the caller's school
    teacher = await start_transfer(
        client, await as_role(client, world, Role.teacher), world.students[0], world.classes["A1"]
    )
    assert teacher.status_code == 403
    assert teacher.json()["code"] == "status_change_registrar_only"
    assert await StatusChange.count() == 0
    assert await Student.count().where(Student.open_change.is_not_null()) == 0


async def test_each_side_lists_its_own(client: httpx.AsyncClient, world: World) -> None:
    receiving = await as_staff(client, world, "registrar_B")
    child = world.students[0]
    change_id = (await start_transfer(client, receiving, child, world.classes["B1"])).json()["id"]
    seen: dict[str, Any] = {}
    for name, headers in {
        "A": await as_role(client, world, Role.registrar),
        "B": receiving,
        "D": await as_staff(client, world, "registrar_D"),
        "county_B": await as_staff(client, world, "county_330108"),
        "county_C": await as_staff(client, world, "county_330203"),
    }.items():
        page = await client.get("/status-changes?kind=transfer", headers=headers)
        assert page.status_code == 200, page.text
        seen[name] = [item["id"] for item in page.json()["items"]]
    assert seen == {
        "A": [change_id],
        "B": [change_id],
        "D": [],
        "county_B": [change_id],
        "county_C": [],
    }
    outside = await client.get(
        f"/status-changes/{change_id}",
        headers=await as_staff(client, world, "registrar_D"),
    )
    assert outside.status_code == 404
    assert await audit_rows("access_denied", "status_change", change_id)


async def _upload(app: Litestar, world: World, student_id: int, key: str) -> int:
    row = await student(student_id)
    await app.state.storage.put(key, jpeg(7), "image/jpeg")
    rows = await Upload.insert(
        Upload(
            student=student_id,
            campaign=await open_campaign(),
            school=row["school"],
            school_class=row["school_class"],
            region_code=row["region_code"],
            uploaded_by=world.accounts[Role.parent],
            storage_key=key,
            content_hash="0" * 64,
            width=64,
            height=48,
            status=UploadStatus.matches.value,
            created_at=datetime.now(UTC),
        )
    ).returning(Upload.id)
    return int(rows[0]["id"])


async def test_the_old_school_keeps_its_archive_copy_of_the_form_photos(
    app: Litestar, client: httpx.AsyncClient, world: World
) -> None:
    child = world.students[0]
    before = await _upload(app, world, child, "photos/before.jpg")
    sending = await as_role(client, world, Role.registrar)
    county = await as_role(client, world, Role.county_reviewer)
    receiving = await as_staff(client, world, "registrar_G")
    change_id = (await start_transfer(client, receiving, child, world.classes["G1"])).json()["id"]
    for headers in (sending, county):
        step = (await read(client, headers, change_id))["current_step"]
        assert (await decide(client, headers, step["id"])).status_code == 200
    after = await _upload(app, world, child, "photos/after.jpg")

    # the archive copy of its time: readable by the old school and its county, by id, audited
    for headers in (sending, county):
        kept = await client.get(f"/uploads/{before}/photo", headers=headers)
        assert kept.status_code == 200, kept.text
    assert await audit_rows("read", "upload", before)
    assert (await client.get(f"/uploads/{before}/photo", headers=receiving)).status_code == 200
    # what the new school photographed since is not the old school's
    assert (await client.get(f"/uploads/{after}/photo", headers=sending)).status_code == 404
    assert (await client.get(f"/uploads/{after}/photo", headers=receiving)).status_code == 200
    # nor is its current data
    assert (await client.get(f"/students/{child}", headers=sending)).status_code == 404
    other_school = await as_staff(client, world, "registrar_B")
    assert (await client.get(f"/uploads/{before}/photo", headers=other_school)).status_code == 404
