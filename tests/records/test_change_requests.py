"""Change requests on the staff side, end to end through the API with real role accounts:
both chains (the key-data one at county-, city- and province-administered schools), the
wrong reviewer refused, rejection and resubmission, the corrections switch, the ID scan a key
field needs, masking, a paper correction transcribed, evidence photos, and two reviewers
deciding the same step at the same moment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import is_postgres
from backend.parents.tables import CorrectionDraft, DraftState, Upload
from backend.records.review_tables import ChangeRequest, Evidence, ReviewStep
from backend.records.service import load_fields
from backend.records.tables import Campaign, Student
from backend.workdays import due_date
from tests.factories import World, add_direct_schools, build_world, make_students, open_campaign
from tests.records.requests import (
    as_role,
    as_staff,
    audit_rows,
    decide,
    jpeg,
    multipart,
)


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await add_direct_schools(world, settings)
    world.students = await make_students(world, "A1", 2)
    world.other_students = [
        *await make_students(world, "E1", 1, start=20),
        *await make_students(world, "F1", 1, start=30),
    ]
    await open_campaign(corrections_open=True)
    return world


async def fields_of(student_id: int) -> dict[str, str]:
    row = await Student.select(Student.fields).where(Student.id == student_id).first()
    assert row is not None
    return load_fields(row["fields"])


async def create(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    student_id: int,
    field_code: str,
    new_value: str,
    photos: list[tuple[str, bytes]] | tuple[()] = (),
    **extra: str,
) -> httpx.Response:
    body = {"student_id": student_id, "field_code": field_code, "new_value": new_value}
    body |= {"reason": "核对户口簿后更正", **extra}
    return await client.post("/change-requests", files=multipart(body, photos), headers=headers)


async def test_an_ordinary_change_is_entered_by_the_registrar_and_approved_by_a_leader(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    student = world.students[0]
    made = await create(client, registrar, student, "health", "2")
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["state"], body["state_label"], body["source"]) == (
        "in_review",
        "审核中",
        "registrar",
    )
    assert (body["chain"], body["chain_label"]) == ("ordinary", "学籍数据维护")
    assert (body["old_value"], body["new_value"], body["new_display"]) == (None, "2", "一般或较弱")
    assert [(s["kind"], s["state"]) for s in body["steps"]] == [
        ("enter", "approved"),
        ("approve", "current"),
    ]
    step = body["current_step"]
    assert (step["kind_label"], step["role"], step["role_label"]) == (
        "学校领导审核",
        "school_leader",
        "学校领导",
    )
    became = (
        await ReviewStep.select(ReviewStep.became_current_at)
        .where(ReviewStep.id == step["id"])
        .first()
    )
    assert became is not None
    assert step["due_on"] == due_date(became["became_current_at"]).isoformat()
    assert body["entered"] is True

    for role in (Role.teacher, Role.registrar, Role.county_reviewer):
        refused = await decide(client, await as_role(client, world, role), step["id"])
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["code"] == "not_your_step"
    assert "health" not in await fields_of(student)

    leader = await as_role(client, world, Role.school_leader)
    done = await decide(client, leader, step["id"])
    assert done.status_code == 200, done.text
    assert (await fields_of(student))["health"] == "2"
    read = await client.get(f"/change-requests/{body['id']}", headers=registrar)
    assert (read.json()["state"], read.json()["state_label"]) == ("applied", "已修改")
    assert read.json()["applied_at"] is not None
    assert len(await audit_rows("review_approve", "review_step", step["id"])) == 1
    updates = await audit_rows("update", "student", student)
    assert [u["after"] for u in updates] == [{"health": "2"}]


@pytest.mark.parametrize(
    ("school", "class_key", "decider", "others"),
    [
        ("A", "A1", Role.county_reviewer, (Role.city_admin, Role.province_admin)),
        ("E", "E1", Role.city_admin, (Role.county_reviewer, Role.province_admin)),
        ("F", "F1", Role.province_admin, (Role.county_reviewer, Role.city_admin)),
    ],
)
async def test_a_key_change_is_reviewed_by_the_authority_that_administers_the_school(
    client: httpx.AsyncClient,
    world: World,
    school: str,
    class_key: str,
    decider: Role,
    others: tuple[Role, ...],
) -> None:
    registrar = (
        await as_role(client, world, Role.registrar)
        if school == "A"
        else await as_staff(client, world, f"registrar_{school}")
    )
    student = {"A": world.students[0], "E": world.other_students[0], "F": world.other_students[1]}[
        school
    ]
    made = await create(client, registrar, student, "name", "王小明", [("id_scan", jpeg(1))])
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["chain"] == "key_data"
    assert [e["kind"] for e in body["evidence"]] == ["id_scan"]
    step = body["current_step"]
    assert (step["kind"], step["role"]) == ("review", decider.value)

    for role in others:
        refused = await decide(client, await as_role(client, world, role), step["id"])
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["code"] == "not_your_step"
    leader = (
        await as_role(client, world, Role.school_leader)
        if school == "A"
        else await as_staff(client, world, f"leader_{school}")
    )
    assert (await decide(client, leader, step["id"])).json()["code"] == "not_your_step"
    assert (await fields_of(student))["name"] != "王小明"

    done = await decide(client, await as_role(client, world, decider), step["id"])
    assert done.status_code == 200, done.text
    assert (await fields_of(student))["name"] == "王小明"
    row = await Student.select(Student.name).where(Student.id == student).first()
    assert row is not None
    assert row["name"] == "王小明"


async def test_a_key_change_without_the_id_scan_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    refused = await create(
        client,
        registrar,
        world.students[0],
        "birth_date",
        "2018-03-03",
        [("household_register", jpeg())],
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "evidence_required"
    assert "身份证件" in refused.json()["message"]
    assert await ChangeRequest.count() == 0
    assert await Evidence.count() == 0


async def test_sensitive_values_are_masked_in_every_answer(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    new_phone = "13912345678"
    made = await create(client, registrar, world.students[0], "guardian1_phone", new_phone)
    assert made.status_code == 201, made.text
    old_phone = (await fields_of(world.students[0]))["guardian1_phone"]
    for response in (
        made,
        await client.get(f"/change-requests/{made.json()['id']}", headers=registrar),
        await client.get("/change-requests", headers=registrar),
    ):
        assert new_phone not in response.text
        assert old_phone not in response.text
    assert made.json()["new_value"] == "139****5678"
    assert made.json()["masked"] is True


async def test_a_rejected_request_is_amended_and_resubmitted_by_its_author(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    leader = await as_role(client, world, Role.school_leader)
    student = world.students[0]
    made = (await create(client, registrar, student, "health", "3")).json()
    step = made["current_step"]
    reject = await decide(client, leader, step["id"], "reject")
    assert reject.status_code == 400
    assert reject.json()["code"] == "reason_required"
    assert (
        await decide(client, leader, step["id"], "reject", "体检报告写的是“健康”")
    ).status_code == 200

    read = (await client.get(f"/change-requests/{made['id']}", headers=registrar)).json()
    assert (read["state"], read["state_label"], read["current_step"]) == (
        "rejected",
        "未通过",
        None,
    )
    assert read["steps"][-1]["reason"] == "体检报告写的是“健康”"
    assert read["steps"][-1]["state_label"] == "不通过"

    # only the author amends it
    teacher = await as_role(client, world, Role.teacher)
    other = await client.post(
        f"/change-requests/{made['id']}/resubmit",
        files=multipart({"new_value": "2"}),
        headers=teacher,
    )
    assert other.status_code == 403
    assert other.json()["code"] == "not_your_request"

    again = await client.post(
        f"/change-requests/{made['id']}/resubmit",
        files=multipart({"new_value": "2", "reason": "按新的体检报告"}),
        headers=registrar,
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["state"], body["round"], body["reason"]) == ("in_review", 2, "按新的体检报告")
    assert [(s["round"], s["kind"], s["state"]) for s in body["steps"]] == [
        (1, "enter", "approved"),
        (1, "approve", "rejected"),
        (2, "enter", "approved"),
        (2, "approve", "current"),
    ]
    twice = await client.post(
        f"/change-requests/{made['id']}/resubmit", files=multipart({}), headers=registrar
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "not_resubmittable"
    assert (await decide(client, leader, body["current_step"]["id"])).status_code == 200
    assert (await fields_of(student))["health"] == "2"


async def test_outside_the_corrections_window_no_request_is_made(
    client: httpx.AsyncClient, world: World
) -> None:
    await Campaign.update({Campaign.corrections_open: False}).where(Campaign.id > 0)
    from backend.records import open_campaigns

    open_campaigns.forget()
    registrar = await as_role(client, world, Role.registrar)
    refused = await create(client, registrar, world.students[0], "health", "2")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "outside_window"
    assert refused.json()["message"] == "当前核查工作未开放录入更正信息"
    assert await ChangeRequest.count() == 0


async def test_who_may_enter_a_request_directly(client: httpx.AsyncClient, world: World) -> None:
    teacher = await as_role(client, world, Role.teacher)
    refused = await create(client, teacher, world.students[0], "health", "2")
    assert refused.status_code == 403
    assert refused.json()["code"] == "registrars_only"
    registrar_e = await as_staff(client, world, "registrar_E")
    outside = await create(client, registrar_e, world.students[0], "health", "2")
    assert outside.status_code == 404
    assert await audit_rows("access_denied", "student", world.students[0])
    bogus = await create(
        client,
        await as_role(client, world, Role.registrar),
        world.students[0],
        "health",
        "2",
        state="applied",
    )
    assert bogus.status_code == 400
    assert bogus.json()["field_errors"] == {"state": "不支持此字段"}
    unknown = await create(
        client, await as_role(client, world, Role.registrar), world.students[0], "shoe_size", "42"
    )
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_field"
    assert await ChangeRequest.count() == 0


async def test_lists_filter_by_state_student_class_and_field(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    await create(client, registrar, world.students[0], "health", "2")
    await create(client, registrar, world.students[1], "phone", "13900001111")
    listed = await client.get("/change-requests", headers=registrar)
    assert listed.json()["total"] == 2
    by_field = await client.get("/change-requests?field=health", headers=registrar)
    assert [r["student_id"] for r in by_field.json()["items"]] == [world.students[0]]
    by_student = await client.get(
        f"/change-requests?student_id={world.students[1]}", headers=registrar
    )
    assert [r["field"] for r in by_student.json()["items"]] == ["phone"]
    assert (await client.get("/change-requests?state=applied", headers=registrar)).json()[
        "total"
    ] == 0
    bad = await client.get("/change-requests?state=done", headers=registrar)
    assert bad.status_code == 400
    # a teacher sees the class's; the city-run school's registrar none of school A's
    teacher = await as_role(client, world, Role.teacher)
    assert (
        await client.get(f"/change-requests?class_id={world.classes['A1']}", headers=teacher)
    ).json()["total"] == 2
    registrar_e = await as_staff(client, world, "registrar_E")
    assert (await client.get("/change-requests", headers=registrar_e)).json()["total"] == 0
    # naming a class outside the scope is a 404, as a missing one
    elsewhere = await client.get(
        f"/change-requests?class_id={world.classes['A1']}", headers=registrar_e
    )
    assert elsewhere.status_code == 404
    assert await audit_rows("access_denied", "school_class", world.classes["A1"])


async def test_evidence_photos_are_served_in_scope_and_each_staff_read_audited(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    made = await create(
        client, registrar, world.students[0], "name", "李四", [("id_scan", jpeg(3))]
    )
    photo = made.json()["evidence"][0]
    got = await client.get(photo["url"], headers=await as_role(client, world, Role.county_reviewer))
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert got.content[:2] == b"\xff\xd8"
    assert len(await audit_rows("read", "evidence", photo["id"])) == 1
    outside = await client.get(photo["url"], headers=await as_staff(client, world, "registrar_F"))
    assert outside.status_code == 404
    assert await audit_rows("access_denied", "evidence", photo["id"])


async def test_an_unusable_photo_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    refused = await create(
        client, registrar, world.students[0], "name", "李四", [("id_scan", b"not a photo at all")]
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "photo_unsupported"
    assert await ChangeRequest.count() == 0
    assert await Evidence.count() == 0
    garbled = await client.post(
        "/change-requests",
        files=[("student_id", (None, "1")), ("new_value", (None, b"\xff\xfe"))],
        headers=registrar,
    )
    assert garbled.status_code == 400
    assert garbled.json()["code"] == "malformed_multipart"
    json_body = await client.post("/change-requests", json={"student_id": 1}, headers=registrar)
    assert json_body.status_code == 415
    assert json_body.json()["code"] == "multipart_expected"


async def legible_draft(
    world: World, field_code: str, state: DraftState = DraftState.legible
) -> int:
    student = world.students[0]
    now = datetime.now(UTC)
    campaign = await Campaign.select(Campaign.id).first()
    assert campaign is not None
    upload = await Upload.insert(
        Upload(
            student=student,
            campaign=campaign["id"],
            school=world.schools["A"],
            school_class=world.classes["A1"],
            region_code="330106",
            uploaded_by=world.accounts[Role.teacher],
            storage_key="photos/x.jpg",
            content_hash="0" * 64,
            width=10,
            height=10,
            status="corrections_written",
            created_at=now,
        )
    )
    draft = await CorrectionDraft.insert(
        CorrectionDraft(
            upload=upload[0]["id"],
            student=student,
            school=world.schools["A"],
            school_class=world.classes["A1"],
            region_code="330106",
            field_code=field_code,
            crop_key="crops/x.png",
            state=state.value,
            created_at=now,
        )
    )
    return int(draft[0]["id"])


async def test_a_legible_paper_correction_is_transcribed_once(
    client: httpx.AsyncClient, world: World
) -> None:
    draft = await legible_draft(world, "current_address")
    teacher = await as_role(client, world, Role.teacher)
    made = await client.post(
        f"/correction-drafts/{draft}/transcription",
        files=multipart({"new_value": "浙江省杭州市西湖区文三路2号"}),
        headers=teacher,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["source"], body["source_label"]) == ("transcribed", "纸质确认表上的更正")
    assert body["new_value"] == "浙江省杭州市****"
    # a teacher does not enter: the registrar does
    assert [(s["kind"], s["state"]) for s in body["steps"]] == [
        ("enter", "current"),
        ("approve", "waiting"),
    ]
    linked = (
        await CorrectionDraft.select(CorrectionDraft.change_request)
        .where(CorrectionDraft.id == draft)
        .first()
    )
    assert linked == {"change_request": body["id"]}
    again = await client.post(
        f"/correction-drafts/{draft}/transcription",
        files=multipart({"new_value": "浙江省杭州市西湖区文三路3号"}),
        headers=teacher,
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_transcribed"
    unread = await legible_draft(world, "phone", DraftState.draft)
    refused = await client.post(
        f"/correction-drafts/{unread}/transcription",
        files=multipart({"new_value": "13900001111"}),
        headers=teacher,
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "draft_not_legible"
    leader = await as_role(client, world, Role.school_leader)
    assert (
        await client.post(
            f"/correction-drafts/{draft}/transcription",
            files=multipart({"new_value": "x"}),
            headers=leader,
        )
    ).json()["code"] == "teachers_only"
    assert await ChangeRequest.count() == 1

    # the teacher may withdraw it until the registrar enters it
    registrar = await as_role(client, world, Role.registrar)
    assert (await decide(client, registrar, body["current_step"]["id"])).status_code == 200
    late = await client.post(f"/change-requests/{body['id']}/withdraw", headers=teacher)
    assert late.status_code == 409
    assert late.json()["code"] == "already_entered"


@pytest.mark.skipif(not is_postgres(), reason="concurrent transactions need PostgreSQL")
async def test_two_reviewers_deciding_one_step_at_once_one_wins(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    student = world.students[0]
    made = await create(client, registrar, student, "name", "赵六", [("id_scan", jpeg(5))])
    step = made.json()["current_step"]["id"]
    first = await as_role(client, world, Role.county_reviewer)
    second = await as_staff(client, world, "county_reviewer_2")

    answers = await asyncio.gather(decide(client, first, step), decide(client, second, step))

    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    lost = next(a for a in answers if a.status_code == 409)
    assert lost.json()["code"] == "step_already_decided"
    assert len(await audit_rows("review_approve", "review_step", step)) == 1
    assert len(await audit_rows("update", "student", student)) == 1
    assert (await fields_of(student))["name"] == "赵六"
    request = (
        await ChangeRequest.select(ChangeRequest.state)
        .where(ChangeRequest.id == made.json()["id"])
        .first()
    )
    assert request == {"state": "applied"}
