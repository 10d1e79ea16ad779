"""Conversations end to end through the API with real role accounts: a parent's question
answered by the class teacher, passed up to the county and answered there (the parent never
reads the notes between the school and the county); unread counts; corrections as new
messages; scoping (another parent, another class's teacher: 404, audited); the parent's rate
limit; photos refused by the evidence rules; canned answers; and no personal data in any
notification."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from backend.accounts.roles import Role
from backend.config import Settings
from backend.messages.tables import Message, MessagePhoto, Thread
from backend.notify.tables import Notification
from backend.records.moves import move_student
from backend.records.tables import GuardianLink, Student
from backend.workdays import CHINA, add_working_days
from tests.factories import SYSTEM, World, bearer, build_world, login, make_account, make_students
from tests.records.requests import as_role, audit_rows, jpeg

QUESTION = "孩子的出生日期印错了，应该怎么改？"
OTHER_PARENT_PHONE = "13900009999"


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    world.other_students = await make_students(world, "A2", 1, start=10)
    now = datetime.now(UTC)
    await GuardianLink.insert(
        GuardianLink(account=world.accounts[Role.parent], student=world.students[0], created_at=now)
    )
    other = await make_account(settings, Role.parent, OTHER_PARENT_PHONE, name="另一位家长")
    world.staff["other_parent"] = (other, OTHER_PARENT_PHONE)
    await GuardianLink.insert(
        GuardianLink(account=other, student=world.students[1], created_at=now)
    )
    world.staff["teacher_A2"] = (
        await make_account(
            settings,
            Role.teacher,
            "13600000001",
            name="二班班主任",
            region_code="330106",
            school=world.schools["A"],
            school_class=world.classes["A2"],
        ),
        "13600000001",
    )
    return world


def parts(fields: dict[str, Any], photos: list[bytes] | tuple[()] = ()) -> list[Any]:
    out: list[Any] = [(name, (None, str(value))) for name, value in fields.items()]
    out += [("photo", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return out


async def ask(
    client: httpx.AsyncClient,
    parent: dict[str, str],
    about_id: int,
    body: str = QUESTION,
    photos: list[bytes] | tuple[()] = (),
    about_kind: str = "record",
) -> httpx.Response:
    return await client.post(
        "/my/threads",
        files=parts({"about_kind": about_kind, "about_id": about_id, "body": body}, photos),
        headers=parent,
    )


async def as_named(client: httpx.AsyncClient, world: World, name: str) -> dict[str, str]:
    return bearer(await login(client, world.staff[name][1]))


async def inbox(account_id: int) -> list[dict[str, Any]]:
    return (
        await Notification.select()
        .where(Notification.account == account_id)
        .order_by(Notification.id)
    )  # type: ignore[no-any-return]


def today() -> Any:
    return datetime.now(UTC).astimezone(CHINA).date()


async def test_a_question_answered_by_the_teacher_passed_up_and_answered_by_the_county(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    teacher = await as_role(client, world, Role.teacher)
    registrar = await as_role(client, world, Role.registrar)
    county = await as_role(client, world, Role.county_reviewer)

    asked = await ask(client, parent, world.students[0], photos=[jpeg(1)])
    assert asked.status_code == 201, asked.text
    thread = asked.json()
    thread_id = thread["id"]
    assert (thread["state"], thread["state_label"]) == ("open", "待答复")
    assert thread["due_on"] == add_working_days(today(), 3).isoformat()
    assert thread["messages"][0]["body"] == QUESTION
    assert len(thread["messages"][0]["photos"]) == 1

    # The class teacher and the registrar are told; the school leader and the county are not.
    for role in (Role.teacher, Role.registrar):
        notes = await inbox(world.accounts[role])
        assert [(n["category"], n["subject_kind"], n["subject_id"]) for n in notes] == [
            ("thread_new", "thread", thread_id)
        ]
    assert await inbox(world.accounts[Role.school_leader]) == []
    assert await inbox(world.accounts[Role.county_reviewer]) == []

    listed = (await client.get("/threads", headers=teacher)).json()
    assert [(t["id"], t["unread"]) for t in listed["items"]] == [(thread_id, 1)]
    photo_url = thread["messages"][0]["photos"][0]["url"]
    photo = await client.get(photo_url, headers=teacher)
    assert photo.status_code == 200
    assert photo.content[:2] == b"\xff\xd8"
    read = await client.get(f"/threads/{thread_id}", headers=teacher)
    assert read.json()["unread"] == 1  # what was unread when it was opened
    listed = (await client.get("/threads", headers=teacher)).json()
    assert listed["items"][0]["unread"] == 0  # read now; still unread for the registrar
    assert (await client.get("/threads", headers=registrar)).json()["items"][0]["unread"] == 1

    answered = await client.post(
        f"/threads/{thread_id}/messages",
        json={"body": "请带户口簿到学校，我们帮您提交更正申请。"},
        headers=teacher,
    )
    assert answered.status_code == 201, answered.text
    assert answered.json()["state"] == "answered"
    assert answered.json()["due_on"] is None
    notes = await inbox(world.accounts[Role.parent])
    assert [n["category"] for n in notes] == ["thread_answered"]
    mine = (await client.get("/my/threads", headers=parent)).json()
    assert [(t["id"], t["unread"], t["state"]) for t in mine["items"]] == [
        (thread_id, 1, "answered")
    ]

    passed = await client.post(
        f"/threads/{thread_id}/pass-up",
        json={"note": "户籍证明与学籍不一致，请县里指导"},
        headers=teacher,
    )
    assert passed.status_code == 200, passed.text
    assert passed.json()["passed_up"] is True
    assert passed.json()["authority_due_on"] == add_working_days(today(), 3).isoformat()
    assert [n["category"] for n in await inbox(world.accounts[Role.county_reviewer])] == [
        "thread_passed_up"
    ]
    again = await client.post(f"/threads/{thread_id}/pass-up", json={}, headers=registrar)
    assert (again.status_code, again.json()["code"]) == (409, "already_passed_up")

    # Another authority (the city above this county-run school) does not answer for it.
    city = await as_role(client, world, Role.city_admin)
    refused = await client.post(
        f"/threads/{thread_id}/messages", json={"body": "市里答复"}, headers=city
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_your_authority")

    county_list = (await client.get("/threads?passed_up=true", headers=county)).json()
    assert [t["id"] for t in county_list["items"]] == [thread_id]
    county_reply = await client.post(
        f"/threads/{thread_id}/messages",
        json={"body": "按户籍证明更正，学校提交即可。"},
        headers=county,
    )
    assert county_reply.status_code == 201, county_reply.text
    assert county_reply.json()["authority_answered"] is True
    sides = [(m["side"], m["for_parent"]) for m in county_reply.json()["messages"]]
    assert sides == [
        ("parent", True),
        ("school", True),
        ("school", False),
        ("authority", False),
    ]
    # The school's teacher and registrar hear the county's answer; the parent does not.
    assert [n["category"] for n in await inbox(world.accounts[Role.teacher])] == [
        "thread_new",
        "thread_answered",
    ]
    assert [n["category"] for n in await inbox(world.accounts[Role.parent])] == ["thread_answered"]
    seen = (await client.get(f"/my/threads/{thread_id}", headers=parent)).json()
    assert [m["side"] for m in seen["messages"]] == ["parent", "school"]

    # A correction is a new message naming the one it corrects; the question opens again.
    first = seen["messages"][0]["id"]
    corrected = await client.post(
        f"/my/threads/{thread_id}/messages",
        files=parts({"body": "更正：是出生月份印错了", "corrects": first}),
        headers=parent,
    )
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["state"] == "open"
    assert corrected.json()["messages"][-1]["corrects"] == first
    original = await Message.select(Message.body).where(Message.id == first).first()
    assert original == {"body": QUESTION}  # never edited
    wrong = await client.post(
        f"/my/threads/{thread_id}/messages",
        files=parts({"body": "更正", "corrects": seen["messages"][1]["id"]}),
        headers=parent,
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_correction")

    closed = await client.post(f"/threads/{thread_id}/close", headers=registrar)
    assert closed.json()["state"] == "closed"
    late = await client.post(f"/threads/{thread_id}/messages", json={"body": "x"}, headers=teacher)
    assert (late.status_code, late.json()["code"]) == (409, "thread_closed")

    await assert_no_personal_data(world)


async def assert_no_personal_data(world: World) -> None:
    """No name, ID number, phone or message text in any notification's title or body."""
    notes = await Notification.select(Notification.title, Notification.body)
    assert notes
    students = await Student.select(Student.name, Student.id_number, Student.fields)
    secrets = {QUESTION, *world.phones.values()}
    for student in students:
        secrets |= {student["name"], student["id_number"]}
        fields = student["fields"]
        if isinstance(fields, str):
            import json

            fields = json.loads(fields)
        secrets |= {v for k, v in fields.items() if "name" in k or "phone" in k}
    for note in notes:
        text = note["title"] + note["body"]
        assert not any(secret and secret in text for secret in secrets), note
        assert not any(ch.isdigit() for ch in text), note  # no ids, phones or numbers at all


async def test_only_participants_and_staff_in_scope_read_a_thread(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    asked = await ask(client, parent, world.students[0], photos=[jpeg(2)])
    thread_id = asked.json()["id"]
    photo_id = asked.json()["messages"][0]["photos"][0]["id"]
    other_parent = await as_named(client, world, "other_parent")
    other_teacher = await as_named(client, world, "teacher_A2")

    for headers, path in (
        (other_parent, f"/my/threads/{thread_id}"),
        (other_teacher, f"/threads/{thread_id}"),
    ):
        response = await client.get(path, headers=headers)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    for headers in (other_parent, other_teacher):
        response = await client.get(f"/thread-photos/{photo_id}", headers=headers)
        assert response.status_code == 404
    answer = await client.post(
        f"/threads/{thread_id}/messages", json={"body": "回复"}, headers=other_teacher
    )
    assert answer.status_code == 404
    assert (await client.get("/threads", headers=other_teacher)).json()["total"] == 0
    assert (await client.get("/my/threads", headers=other_parent)).json()["total"] == 0

    denied = await audit_rows("access_denied", "thread", thread_id)
    assert len(denied) == 3
    assert len(await audit_rows("access_denied", "thread_photo", photo_id)) == 2

    # Asking about a child who is not mine: 404, audited, nothing written.
    not_mine = await ask(client, other_parent, world.students[0])
    assert not_mine.status_code == 404
    assert await audit_rows("access_denied", "student", world.students[0])
    assert await Thread.count() == 1

    # The school leader reads (in scope) but does not answer; a teacher of another class
    # reaching it by a list cannot either.
    leader = await as_role(client, world, Role.school_leader)
    assert (await client.get(f"/threads/{thread_id}", headers=leader)).status_code == 200
    refused = await client.post(
        f"/threads/{thread_id}/messages", json={"body": "好"}, headers=leader
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "answerers_only")


async def test_a_parent_asks_at_most_five_questions_a_day(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    for i in range(5):
        response = await ask(client, parent, world.students[0], body=f"第{i + 1}个问题")
        assert response.status_code == 201, response.text
    refused = await ask(client, parent, world.students[0])
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_messages"
    assert "每日上限" in refused.json()["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 24 * 3600
    assert await Thread.count() == 5


async def test_photos_are_refused_like_evidence_photos(
    client: httpx.AsyncClient, world: World, redis: Redis
) -> None:
    parent = await as_role(client, world, Role.parent)
    not_an_image = await ask(client, parent, world.students[0], photos=[b"%PDF-1.4 not a photo"])
    assert not_an_image.status_code == 400
    assert not_an_image.json()["code"] == "photo_unsupported"
    assert "photo" in not_an_image.json()["field_errors"]
    four = await ask(client, parent, world.students[0], photos=[jpeg(i) for i in range(4)])
    assert (four.status_code, four.json()["code"]) == (400, "too_many_photos")
    empty = await ask(client, parent, world.students[0], body="  \n ")
    assert (empty.status_code, empty.json()["code"]) == (400, "empty_message")
    assert await Thread.count() == 0
    assert await MessagePhoto.count() == 0
    # A refused photo uses up none of the parent's limits.
    parent_id = world.accounts[Role.parent]
    assert await redis.get(f"thread-quota:{parent_id}:threads") is None
    assert await redis.get(f"thread-quota:{parent_id}:messages") is None


async def test_a_school_writes_its_canned_answers_once_and_a_teacher_picks_one(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    teacher = await as_role(client, world, Role.teacher)
    parent = await as_role(client, world, Role.parent)
    body = {"title": "如何更正出生日期", "body": "请携带户口簿原件到学校学籍管理员处办理。"}

    refused = await client.post("/canned-answers", json=body, headers=teacher)
    assert (refused.status_code, refused.json()["code"]) == (403, "registrars_only")
    created = await client.post("/canned-answers", json=body, headers=registrar)
    assert created.status_code == 201, created.text
    answer_id = created.json()["id"]
    changed = await client.put(
        f"/canned-answers/{answer_id}", json={**body, "title": "出生日期更正"}, headers=registrar
    )
    assert changed.json()["title"] == "出生日期更正"
    listed = (await client.get("/canned-answers", headers=teacher)).json()
    assert [a["title"] for a in listed["items"]] == ["出生日期更正"]

    thread_id = (await ask(client, parent, world.students[0])).json()["id"]
    picked = await client.post(
        f"/threads/{thread_id}/messages", json={"canned_answer_id": answer_id}, headers=teacher
    )
    assert picked.status_code == 201, picked.text
    assert picked.json()["messages"][-1]["body"] == body["body"]

    deleted = await client.delete(f"/canned-answers/{answer_id}", headers=registrar)
    assert deleted.status_code == 204
    assert (await client.get("/canned-answers", headers=teacher)).json()["total"] == 0
    # The message that used it keeps its text.
    seen = (await client.get(f"/my/threads/{thread_id}", headers=parent)).json()
    assert seen["messages"][-1]["body"] == body["body"]


async def test_lists_filter_by_state_overdue_and_passed_up_and_follow_a_move(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    teacher = await as_role(client, world, Role.teacher)
    late = (await ask(client, parent, world.students[0], body="第一个问题")).json()["id"]
    fresh = (await ask(client, parent, world.students[0], body="第二个问题")).json()["id"]
    await Thread.update({Thread.due_on: date(2026, 11, 2)}).where(Thread.id == late)
    passed = await client.post(f"/threads/{fresh}/pass-up", json={}, headers=teacher)
    assert passed.status_code == 200

    async def ids(query: str, headers: dict[str, str] = teacher) -> list[int]:
        response = await client.get(f"/threads?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return sorted(t["id"] for t in response.json()["items"])

    assert await ids("overdue=true") == [late]
    assert await ids("overdue=false") == [fresh]
    assert await ids("passed_up=true") == [fresh]
    assert await ids("passed_up=false") == [late]
    assert await ids("state=open") == sorted([late, fresh])
    assert await ids("state=closed") == []
    assert await ids(f"class_id={world.classes['A2']}") == []
    bad = await client.get("/threads?state=pending", headers=teacher)
    assert bad.status_code == 400

    # The child moves to school B: the new school's staff hold the threads, the old class's
    # teacher no longer reads them; the parent still does.
    await move_student(SYSTEM, world.students[0], world.classes["B1"])
    assert await ids("") == []
    assert (await client.get(f"/threads/{late}", headers=teacher)).status_code == 404
    rows = await Thread.select(Thread.school).where(Thread.id.is_in([late, fresh]))
    assert {r["school"] for r in rows} == {world.schools["B"]}
    mine = (await client.get("/my/threads", headers=parent)).json()
    assert mine["total"] == 2


async def test_a_parent_sends_at_most_twenty_messages_an_hour(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    thread_id = (await ask(client, parent, world.students[0])).json()["id"]
    for i in range(19):  # the question was the first of the hour's 20
        response = await client.post(
            f"/my/threads/{thread_id}/messages", files=parts({"body": f"补充{i}"}), headers=parent
        )
        assert response.status_code == 201, response.text
    refused = await client.post(
        f"/my/threads/{thread_id}/messages", files=parts({"body": "再补充"}), headers=parent
    )
    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_messages")
    assert "每小时最多发送 20 条消息" in refused.json()["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert await Message.count() == 20
    # Closing needs no message: the parent closes it, and a new message would reopen it.
    closed = await client.post(f"/my/threads/{thread_id}/close", headers=parent)
    assert closed.json()["state"] == "closed"
    again = await client.post(f"/my/threads/{thread_id}/close", headers=parent)
    assert (again.status_code, again.json()["code"]) == (409, "thread_closed")
