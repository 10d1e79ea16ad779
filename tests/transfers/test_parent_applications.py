"""A parent applies on the phone and follows it there: which step, who holds it, the due date,
the reason if refused; a push on each decision carrying no name; the receiving school reads
the documents and takes the application up by choosing the class."""

from __future__ import annotations

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.notify.tables import Notification
from backend.records.review_tables import Evidence
from backend.transfers.tables import StatusChange
from backend.workdays import add_working_days, china_today
from tests.factories import World
from tests.records.requests import audit_rows, jpeg, multipart
from tests.transfers.world import as_role, as_staff, decide, read, student, transfer_world

# What a transfer within the province asks for when the province set nothing.
DOCUMENTS = [("transfer_application", jpeg(8)), ("residence_proof", jpeg(9))]


@pytest.fixture
async def world(settings: Settings) -> World:
    return await transfer_world(settings)


async def apply(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    student_id: int,
    fields: dict[str, object],
    photos: list[tuple[str, bytes]] | tuple[()] = (),
) -> httpx.Response:
    return await client.post(
        f"/my/children/{student_id}/status-changes",
        files=multipart(fields, photos),
        headers=headers,
    )


async def parent_notes(world: World) -> list[dict[str, object]]:
    rows = await Notification.select().where(
        (Notification.account == world.accounts[Role.parent])
        & (Notification.category == "status_change_decided")
    )
    return list(rows)


async def test_a_parent_applies_for_a_transfer_and_follows_it_to_the_end(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    applied = await apply(
        client,
        parent,
        child,
        {"kind": "transfer", "to_school_id": world.schools["B"], "reason": "随父母迁居滨江区"},
        [("household_register", jpeg(1)), ("transfer_application", jpeg(2))],
    )
    assert applied.status_code == 201, applied.text
    body = applied.json()
    change_id = body["id"]
    assert body["span"] == "province"
    assert body["span_label"] == "省内跨县转学"
    assert body["mine"] is True
    current = body["current_step"]
    assert current["kind"] == "start"
    assert current["kind_label"] == "转入学校启动转学"
    assert current["holder"] == "学校B 学籍管理员"
    assert current["due_on"] == add_working_days(china_today(), 10).isoformat()
    assert current["overdue"] is False
    assert len(body["evidence"]) == 2
    assert (await student(child))["open_change"] == change_id

    # The receiving school reads the documents, chooses the class, approves its step
    receiving = await as_staff(client, world, "registrar_B")
    evidence_id = body["evidence"][0]["id"]
    photo = await client.get(f"/evidence/{evidence_id}/photo", headers=receiving)
    assert photo.status_code == 200
    outsider = await client.get(
        f"/evidence/{evidence_id}/photo", headers=await as_staff(client, world, "registrar_D")
    )
    assert outsider.status_code == 404
    listed = await client.get("/review-steps", headers=receiving)
    assert [item["step_id"] for item in listed.json()["items"]] == [current["id"]]
    summary = listed.json()["items"][0]["summary"]
    assert summary["title"] == "转学：学校A → 学校B（省内跨县转学）"
    assert summary["evidence"] == ["household_register", "transfer_application"]
    early = await decide(client, receiving, current["id"])
    assert early.status_code == 400
    assert early.json()["code"] == "target_class_required"
    chosen = await client.post(
        f"/status-changes/{change_id}/class",
        json={"class_id": world.classes["B1"]},
        headers=receiving,
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["to_class_id"] == world.classes["B1"]
    assert (await decide(client, receiving, current["id"])).status_code == 200

    mine = await client.get(f"/my/status-changes/{change_id}", headers=parent)
    assert mine.status_code == 200
    now = mine.json()["current_step"]
    assert (now["kind"], now["holder"]) == ("release", "学校A 学籍管理员")
    assert len(await parent_notes(world)) == 1  # told of the first decision

    steps = [
        ("release", await as_role(client, world, Role.registrar)),
        ("review_out", await as_role(client, world, Role.county_reviewer)),
        ("review_in", await as_staff(client, world, "county_330108")),
    ]
    for kind, headers in steps:
        step = (await read(client, headers, change_id))["current_step"]
        assert step["kind"] == kind
        assert (await decide(client, headers, step["id"])).status_code == 200
    row = await student(child)
    assert (row["school"], row["school_class"]) == (world.schools["B"], world.classes["B1"])
    listed_mine = await client.get("/my/status-changes", headers=parent)
    assert [(c["id"], c["state_label"]) for c in listed_mine.json()["items"]] == [
        (change_id, "已办结")
    ]
    notes = await parent_notes(world)
    assert len(notes) == 4  # one per decision
    assert notes[-1]["title"] == "转学申请已办结"
    name = row["name"]
    for note in notes:
        assert name not in f"{note['title']}{note['body']}"
    # the documents moved with the record; the receiving school still reads them
    assert (
        await client.get(f"/evidence/{evidence_id}/photo", headers=receiving)
    ).status_code == 200


async def test_a_refused_application_shows_the_reason_to_the_parent(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    change_id = (
        await apply(
            client,
            parent,
            child,
            {"kind": "transfer", "to_school_id": world.schools["G"], "reason": "就近入学"},
            DOCUMENTS,
        )
    ).json()["id"]
    receiving = await as_staff(client, world, "registrar_G")
    step = (await read(client, receiving, change_id))["current_step"]
    refused = await decide(client, receiving, step["id"], "reject", "本校该年级学位已满")
    assert refused.status_code == 200, refused.text
    mine = (await client.get(f"/my/status-changes/{change_id}", headers=parent)).json()
    assert mine["state_label"] == "未通过"
    assert mine["refusal"] == "本校该年级学位已满"
    assert mine["steps"][0]["reason"] == "本校该年级学位已满"
    assert (await student(child))["open_change"] is None
    notes = await parent_notes(world)
    assert [n["title"] for n in notes] == ["转学申请未通过"]
    assert "学位" not in str(notes[0]["body"])  # the reason is read in the app, not pushed


async def test_sent_back_the_parent_adds_a_document_and_resubmits(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    change_id = (
        await apply(
            client,
            parent,
            child,
            {"kind": "transfer", "to_school_id": world.schools["G"], "reason": "就近入学"},
            DOCUMENTS,
        )
    ).json()["id"]
    receiving = await as_staff(client, world, "registrar_G")
    step = (await read(client, receiving, change_id))["current_step"]
    back = await decide(client, receiving, step["id"], "send_back", "请上传户口簿")
    assert back.status_code == 200
    again = await client.post(
        f"/my/status-changes/{change_id}/resubmit",
        files=multipart({}, [("household_register", jpeg(3))]),
        headers=parent,
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["round"] == 2
    assert body["current_step"]["kind"] == "start"
    assert body["current_step"]["holder"] == "学校G 学籍管理员"
    assert len(body["evidence"]) == len(DOCUMENTS) + 1
    assert await audit_rows("resubmit", "status_change", change_id)


async def test_what_a_parent_may_not_apply_for(client: httpx.AsyncClient, world: World) -> None:
    parent = await as_role(client, world, Role.parent)
    child, not_mine = world.students[0], world.students[1]
    cancel = await apply(client, parent, child, {"kind": "cancel", "reason": "x"})
    assert cancel.status_code == 400
    assert cancel.json()["code"] == "kind_not_for_parents"
    other = await apply(client, parent, not_mine, {"kind": "suspend", "reason": "因病"})
    assert other.status_code == 404
    no_school = await apply(client, parent, child, {"kind": "transfer", "reason": "x"})
    assert no_school.json()["code"] == "to_school_required"
    smuggled = await apply(
        client,
        parent,
        child,
        {
            "kind": "transfer",
            "to_school_id": world.schools["B"],
            "reason": "x",
            "state": "completed",
        },
    )
    assert smuggled.status_code == 403
    assert smuggled.json()["code"] == "parent_field_forbidden"
    assert await StatusChange.count() == 0
    assert await Evidence.count() == 0
    staff = await client.post(
        f"/my/children/{child}/status-changes",
        files=multipart({"kind": "suspend"}),
        headers=await as_role(client, world, Role.registrar),
    )
    assert staff.status_code == 403


async def test_a_parent_withdraws_an_application(client: httpx.AsyncClient, world: World) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    change_id = (
        await apply(client, parent, child, {"kind": "suspend", "reason": "因病休学一学期"})
    ).json()["id"]
    body = (await client.get(f"/my/status-changes/{change_id}", headers=parent)).json()
    assert body["current_step"]["holder"] == "学校A 学籍管理员"
    registrar = await as_role(client, world, Role.registrar)
    not_theirs = await client.post(f"/status-changes/{change_id}/withdraw", headers=registrar)
    assert not_theirs.status_code == 403
    done = await client.post(f"/my/status-changes/{change_id}/withdraw", headers=parent)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "withdrawn"
    assert (await student(child))["open_change"] is None
    again = await client.post(f"/my/status-changes/{change_id}/withdraw", headers=parent)
    assert again.status_code == 409
    assert again.json()["code"] == "not_withdrawable"
    # the record is free: the school may enter a change now
    started = await client.post(
        "/status-changes",
        json={"kind": "suspend", "student_id": child, "reason": "因病休学"},
        headers=registrar,
    )
    assert started.status_code == 201, started.text
