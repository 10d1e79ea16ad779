"""A parent's change requests, end to end through the API: typed for their own child only,
checked first by the class teacher, entered by the registrar, approved; sent back to the
parent and confirmed; withdrawn before it is entered (and refused after); every other field a
parent might set refused and audited; the state and history in Chinese; pending changes beside
the record's values; the form outdated once the change is applied."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.review_tables import ChangeRequest, Evidence
from backend.records.service import load_fields
from backend.records.tables import Campaign, GuardianLink, Student
from tests.factories import World, build_world, make_students, open_campaign
from tests.parents.helpers import issue_forms
from tests.records.requests import as_role, audit_rows, decide, jpeg, multipart

NEW_ADDRESS = "浙江省杭州市西湖区文三路8号3幢502室"


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign(corrections_open=True)
    await issue_forms(client, world)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    return world


async def ask(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    student_id: int,
    fields: dict[str, Any],
    photos: list[tuple[str, bytes]] | tuple[()] = (),
) -> httpx.Response:
    return await client.post(
        f"/my/children/{student_id}/change-requests",
        files=multipart(fields, photos),
        headers=headers,
    )


async def mine(
    client: httpx.AsyncClient, parent: dict[str, str], request_id: int
) -> dict[str, Any]:
    read = await client.get(f"/my/change-requests/{request_id}", headers=parent)
    assert read.status_code == 200, read.text
    return read.json()  # type: ignore[no-any-return]


async def pass_step(
    client: httpx.AsyncClient, world: World, parent: dict[str, str], request_id: int, role: Role
) -> None:
    step = (await mine(client, parent, request_id))["current_step"]
    assert step["role"] == role.value, step
    done = await decide(client, await as_role(client, world, role), step["id"])
    assert done.status_code == 200, done.text


async def address_of(student_id: int) -> str:
    row = await Student.select(Student.fields).where(Student.id == student_id).first()
    assert row is not None
    return load_fields(row["fields"])["current_address"]


async def test_a_parents_request_goes_teacher_registrar_leader_and_the_form_is_outdated(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    made = await ask(
        client,
        parent,
        child,
        {"field_code": "current_address", "new_value": NEW_ADDRESS, "reason": "搬家了"},
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["source"], body["source_label"], body["mine"]) == ("parent", "家长提交", True)
    assert NEW_ADDRESS not in made.text
    assert body["new_value"] == "浙江省杭州市****"
    assert [(s["kind_label"], s["state_label"]) for s in body["steps"]] == [
        ("班主任核对", "处理中"),
        ("学籍管理员录入", "待处理"),
        ("学校领导审核", "待处理"),
    ]

    # the record shows the change asked for beside the current value
    record = await client.get(f"/my/children/{child}", headers=parent)
    assert record.status_code == 200
    address = next(f for f in record.json()["fields"] if f["field"] == "current_address")
    assert address["pending"] == {
        "request_id": body["id"],
        "value": "浙江省杭州市****",
        "display": "浙江省杭州市****",
        "state": "in_review",
        "state_label": "审核中",
    }
    assert next(f for f in record.json()["fields"] if f["field"] == "name")["pending"] is None

    await pass_step(client, world, parent, body["id"], Role.teacher)
    await pass_step(client, world, parent, body["id"], Role.registrar)
    await pass_step(client, world, parent, body["id"], Role.school_leader)
    assert await address_of(child) == NEW_ADDRESS
    done = await mine(client, parent, body["id"])
    assert (done["state"], done["state_label"]) == ("applied", "已修改")
    assert [s["state_label"] for s in done["steps"]] == ["通过", "通过", "通过"]
    record = await client.get(f"/my/children/{child}", headers=parent)
    assert (
        next(f for f in record.json()["fields"] if f["field"] == "current_address")["pending"]
        is None
    )

    # the printed form no longer says what the record says
    children = await client.get("/my/children", headers=parent)
    form = next(c for c in children.json() if c["id"] == child)["form"]
    assert form["status"] == "form_outdated"
    assert "已过期" in form["message"]
    teacher = await as_role(client, world, Role.teacher)
    outdated = await client.get("/families?status=form_outdated", headers=teacher)
    assert [f["student_id"] for f in outdated.json()["items"]] == [child]
    others = await client.get("/families?status=not_uploaded", headers=teacher)
    assert [f["student_id"] for f in others.json()["items"]] == [world.students[1]]
    # printed again: the new form is current
    await issue_forms(client, world)
    children = await client.get("/my/children", headers=parent)
    assert next(c for c in children.json() if c["id"] == child)["form"]["status"] == "not_uploaded"


async def test_a_reviewer_in_doubt_sends_it_back_and_the_parent_confirms(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    made = await ask(
        client, parent, child, {"field_code": "current_address", "new_value": NEW_ADDRESS}
    )
    request_id = made.json()["id"]
    await pass_step(client, world, parent, request_id, Role.teacher)
    await pass_step(client, world, parent, request_id, Role.registrar)
    leader = await as_role(client, world, Role.school_leader)
    step = (await mine(client, parent, request_id))["current_step"]
    back = await decide(
        client, leader, step["id"], "send_back", "门牌号与户口簿不一致，请家长再次确认"
    )
    assert back.status_code == 200, back.text

    read = await mine(client, parent, request_id)
    assert read["state"] == "returned"
    assert read["state_label"].startswith("已退回")
    assert read["current_step"] is None
    sent = read["steps"][-1]
    assert (sent["kind_label"], sent["state_label"], sent["reason"]) == (
        "学校领导审核",
        "退回",
        "门牌号与户口簿不一致，请家长再次确认",
    )
    # entered by the school: no withdrawing now
    late = await client.post(f"/my/change-requests/{request_id}/withdraw", headers=parent)
    assert late.status_code == 409
    assert late.json()["code"] == "already_entered"

    confirmed = await client.post(f"/my/change-requests/{request_id}/confirm", headers=parent)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert (body["state"], body["round"]) == ("in_review", 2)
    # back to the step that sent it back, not through the teacher and the registrar again
    assert [(s["round"], s["kind"], s["state"]) for s in body["steps"] if s["round"] == 2] == [
        (2, "approve", "current")
    ]
    assert body["current_step"]["role"] == "school_leader"
    again = await client.post(f"/my/change-requests/{request_id}/confirm", headers=parent)
    assert again.status_code == 409
    assert again.json()["code"] == "not_resubmittable"
    assert (await decide(client, leader, body["current_step"]["id"])).status_code == 200
    assert await address_of(child) == NEW_ADDRESS
    assert await audit_rows("resubmit", "change_request", request_id)


async def test_a_parent_amends_a_request_sent_back_by_the_teacher(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    made = await ask(
        client, parent, world.students[0], {"field_code": "current_address", "new_value": "文三路"}
    )
    request_id = made.json()["id"]
    step = (await mine(client, parent, request_id))["current_step"]
    teacher = await as_role(client, world, Role.teacher)
    assert (
        await decide(client, teacher, step["id"], "send_back", "请写完整地址")
    ).status_code == 200
    amended = await client.post(
        f"/my/change-requests/{request_id}/resubmit",
        files=multipart({"new_value": NEW_ADDRESS}, [("household_register", jpeg(2))]),
        headers=parent,
    )
    assert amended.status_code == 200, amended.text
    body = amended.json()
    assert body["current_step"]["kind"] == "check"
    assert [e["kind_label"] for e in body["evidence"]] == ["户口簿"]
    row = (
        await ChangeRequest.select(ChangeRequest.new_value)
        .where(ChangeRequest.id == request_id)
        .first()
    )
    assert row == {"new_value": NEW_ADDRESS}
    # a parent's photo of the household register is theirs to see again
    photo = await client.get(body["evidence"][0]["url"], headers=parent)
    assert photo.status_code == 200
    assert photo.content[:2] == b"\xff\xd8"


async def test_a_parent_withdraws_until_the_request_is_entered(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    made = await ask(client, parent, world.students[0], {"field_code": "health", "new_value": "2"})
    request_id = made.json()["id"]
    check = made.json()["current_step"]["id"]
    gone = await client.post(f"/my/change-requests/{request_id}/withdraw", headers=parent)
    assert gone.status_code == 200, gone.text
    assert (gone.json()["state"], gone.json()["state_label"]) == ("withdrawn", "已撤回")
    assert {s["state"] for s in gone.json()["steps"]} == {"cancelled"}
    teacher = await as_role(client, world, Role.teacher)
    late = await decide(client, teacher, check)
    assert late.status_code == 409
    assert late.json()["code"] == "step_already_decided"
    again = await client.post(f"/my/change-requests/{request_id}/withdraw", headers=parent)
    assert again.status_code == 409
    assert again.json()["code"] == "not_withdrawable"
    assert len(await audit_rows("withdraw", "change_request", request_id)) == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"state": "applied"},
        {"status": "applied"},
        {"school_id": "1"},
        {"approver": "13800000003"},
    ],
)
async def test_a_parent_sets_nothing_but_field_value_reason_and_evidence(
    client: httpx.AsyncClient, world: World, extra: dict[str, str]
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    refused = await ask(client, parent, child, {"field_code": "health", "new_value": "2", **extra})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "parent_field_forbidden"
    assert set(refused.json()["field_errors"]) == set(extra)
    assert await ChangeRequest.count() == 0
    rows = await audit_rows("refused_fields", "change_request")
    assert [r["after"] for r in rows] == [
        {"student": child, "fields": sorted(extra), "code": "parent_field_forbidden"}
    ]
    assert rows[0]["actor_id"] == world.accounts[Role.parent]
    # one audit row for the attempt, not a second one from the 403 hook
    assert await audit_rows("forbidden", "change_request") == []


async def test_another_familys_child_is_not_found_and_the_attempt_audited(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    stranger = world.students[1]
    refused = await ask(client, parent, stranger, {"field_code": "health", "new_value": "2"})
    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"
    denied = await audit_rows("access_denied", "student", stranger)
    assert [r["actor_id"] for r in denied] == [world.accounts[Role.parent]]
    assert await ChangeRequest.count() == 0
    # the school's requests about that child stay out of sight
    registrar = await as_role(client, world, Role.registrar)
    school_made = await client.post(
        "/change-requests",
        files=multipart({"student_id": stranger, "field_code": "health", "new_value": "2"}),
        headers=registrar,
    )
    assert school_made.status_code == 201
    assert (await client.get("/my/change-requests", headers=parent)).json()["total"] == 0
    hidden = await client.get(f"/my/change-requests/{school_made.json()['id']}", headers=parent)
    assert hidden.status_code == 404
    staff = await client.get("/my/change-requests", headers=registrar)
    assert staff.status_code == 403
    assert staff.json()["code"] == "parents_only"


async def test_a_key_field_needs_the_id_scan_and_goes_to_the_county(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    fields = {"field_code": "name", "new_value": "王小丫", "reason": "改名"}
    missing = await ask(client, parent, child, fields)
    assert missing.status_code == 400
    assert missing.json()["code"] == "evidence_required"
    assert await ChangeRequest.count() == 0
    assert await Evidence.count() == 0
    made = await ask(client, parent, child, fields, [("id_scan", jpeg(1)), ("id_scan", jpeg(2))])
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    assert [e["kind"] for e in made.json()["evidence"]] == ["id_scan", "id_scan"]
    await pass_step(client, world, parent, request_id, Role.teacher)
    await pass_step(client, world, parent, request_id, Role.registrar)
    step = (await mine(client, parent, request_id))["current_step"]
    assert (step["kind_label"], step["role_label"]) == ("教育行政部门审核", "县级学籍主管部门")
    await pass_step(client, world, parent, request_id, Role.county_reviewer)
    row = await Student.select(Student.name).where(Student.id == child).first()
    assert row == {"name": "王小丫"}


async def test_outside_the_corrections_window_a_parent_is_told_so(
    client: httpx.AsyncClient, world: World
) -> None:
    await Campaign.update({Campaign.corrections_open: False}).where(Campaign.id > 0)
    from backend.records import open_campaigns

    open_campaigns.forget()
    parent = await as_role(client, world, Role.parent)
    refused = await ask(
        client, parent, world.students[0], {"field_code": "health", "new_value": "2"}
    )
    assert refused.status_code == 409
    assert (refused.json()["code"], refused.json()["message"]) == (
        "outside_window",
        "当前核查工作未开放录入更正信息",
    )
    assert await ChangeRequest.count() == 0
