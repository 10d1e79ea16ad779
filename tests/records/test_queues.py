"""What waits on each reviewer (`GET /review-steps`), the badge's counts, and a school leader's
bulk approval of ordinary changes, through the API with real role accounts."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from backend.accounts import org
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import Administration, Role, ScopeKind
from backend.accounts.scope import Scope
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records import queues
from backend.records.change_requests import EvidenceIn, NewRequest, create_request
from backend.records.review_tables import (
    ChangeRequest,
    EvidenceKind,
    RequestSource,
    RequestState,
    ReviewStep,
    StepState,
    SubjectKind,
)
from backend.records.service import load_fields
from backend.records.tables import Student
from backend.workdays import china_today
from tests.factories import (
    SYSTEM,
    World,
    bearer,
    build_world,
    login,
    make_account,
    make_students,
    open_campaign,
)

ID_SCAN = EvidenceIn(EvidenceKind.id_scan, "evidence/id.jpg", "image/jpeg", 1000)
B_REGISTRAR = "13800009001"
B_REVIEWER = "13800009002"


@dataclass
class Queues:
    world: World
    a: list[int]  # students of class A1 (school A, county 330106)
    b: list[int]  # students of school B (county 330108, same city)
    city_run: list[int]  # a school in 330106 the city runs directly
    requests: dict[str, int]


def staff(world: World, role: Role, scope: Scope) -> Principal:
    return Principal(
        account_id=world.accounts[role],
        role=role,
        name=role.value,
        phone=world.phones[role],
        scope=scope,
        session_id=uuid.uuid4(),
        password_change_required=False,
    )


def school_scope(school_id: int, account_id: int) -> Scope:
    return Scope(ScopeKind.school, "330106", school_id, None, account_id)


async def ask(author: Principal, new: NewRequest) -> int:
    return await create_request(
        author, Actor(author.account_id, author.role.value, None, None), new
    )


@pytest.fixture
async def q(settings: Settings) -> Queues:
    world = await build_world(settings)
    a = await make_students(world, "A1", 4)
    b = await make_students(world, "B1", 2, start=20)
    city_school = await org.create_school(
        SYSTEM, "2133010699", "杭州市直属学校", "330106", administered_by=Administration.city
    )
    world.schools["E"] = city_school
    world.classes["E1"] = await org.create_class(SYSTEM, city_school, 1, "E1班")
    city_run = await make_students(world, "E1", 1, start=40)
    await make_account(
        settings, Role.registrar, B_REGISTRAR, region_code="330108", school=world.schools["B"]
    )
    await make_account(settings, Role.county_reviewer, B_REVIEWER, region_code="330108")
    await open_campaign(corrections_open=True)

    registrar = staff(
        world, Role.registrar, school_scope(world.schools["A"], world.accounts[Role.registrar])
    )
    parent = staff(world, Role.parent, Scope.guardian(world.accounts[Role.parent]))
    requests = {
        # registrar's own ordinary changes: entered at once, the school leader approves
        "health": await ask(
            registrar, NewRequest(a[0], "health", "2", "体检报告", RequestSource.registrar)
        ),
        "phone": await ask(
            registrar, NewRequest(a[1], "phone", "13912345678", "换号", RequestSource.registrar)
        ),
        # a key change: the county reviews it
        "name": await ask(
            registrar,
            NewRequest(a[2], "name", "王小明", "户口簿", RequestSource.registrar, [ID_SCAN]),
        ),
        # a parent's request: the class teacher checks it first
        "parent": await ask(
            parent, NewRequest(a[3], "health", "3", "医院证明", RequestSource.parent)
        ),
        # a re-import's key change at school A, and one at school B: their registrars enter it
        "import_a": await ask(
            registrar,
            NewRequest(
                a[3],
                "ethnicity",
                "02",
                "导入",
                RequestSource.import_file,
                author_takes_own_steps=False,
            ),
        ),
        "import_b": await ask(
            registrar,
            NewRequest(
                b[0],
                "ethnicity",
                "02",
                "导入",
                RequestSource.import_file,
                author_takes_own_steps=False,
            ),
        ),
        # school B's key change, entered by its registrar: county 330108 reviews it
        "name_b": await ask(
            staff(world, Role.registrar, school_scope(world.schools["B"], 0)),
            NewRequest(b[1], "name", "李四", "户口簿", RequestSource.registrar, [ID_SCAN]),
        ),
        # a key change at the city-run school: the city reviews it, not the county
        "city": await ask(
            staff(world, Role.registrar, school_scope(city_school, 0)),
            NewRequest(city_run[0], "name", "赵六", "户口簿", RequestSource.registrar, [ID_SCAN]),
        ),
    }
    return Queues(world, a, b, city_run, requests)


async def current_step(request_id: int) -> dict[str, Any]:
    row = (
        await ReviewStep.select()
        .where(
            (ReviewStep.subject_id == request_id)
            & (ReviewStep.subject_kind == SubjectKind.change_request.value)
            & (ReviewStep.state == StepState.current.value)
        )
        .first()
    )
    assert row is not None
    return dict(row)


async def queue_of(client: httpx.AsyncClient, phone: str, **params: Any) -> dict[str, Any]:
    answer = await client.get(
        "/review-steps", params=params, headers=bearer(await login(client, phone))
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def subjects(page: dict[str, Any]) -> list[int]:
    return [item["subject_id"] for item in page["items"]]


async def set_due(request_id: int, days_ago: int) -> None:
    step = await current_step(request_id)
    await ReviewStep.update({ReviewStep.due_on: china_today() - timedelta(days=days_ago)}).where(
        ReviewStep.id == step["id"]
    )


async def test_each_role_sees_exactly_the_steps_it_decides(
    client: httpx.AsyncClient, q: Queues
) -> None:
    world, r = q.world, q.requests
    assert subjects(await queue_of(client, world.phones[Role.school_leader])) == [
        r["health"],
        r["phone"],
    ]
    assert subjects(await queue_of(client, world.phones[Role.registrar])) == [r["import_a"]]
    assert subjects(await queue_of(client, B_REGISTRAR)) == [r["import_b"]]
    assert subjects(await queue_of(client, world.phones[Role.teacher])) == [r["parent"]]
    assert subjects(await queue_of(client, world.phones[Role.county_reviewer])) == [r["name"]]
    assert subjects(await queue_of(client, B_REVIEWER)) == [r["name_b"]]
    # the city runs school E: its key change waits on the city, not on the county
    assert subjects(await queue_of(client, world.phones[Role.city_admin])) == [r["city"]]
    assert subjects(await queue_of(client, world.phones[Role.province_admin])) == []
    assert subjects(await queue_of(client, world.phones[Role.sysadmin])) == []

    parent = await client.get(
        "/review-steps", headers=bearer(await login(client, world.phones[Role.parent]))
    )
    assert parent.status_code == 403


async def test_an_item_says_what_the_reviewer_decides_on(
    client: httpx.AsyncClient, q: Queues
) -> None:
    world = q.world
    page = await queue_of(client, world.phones[Role.school_leader])
    health, phone = page["items"]
    assert health["step_kind"] == "approve"
    assert health["role"] == "school_leader"
    assert health["student_id"] == q.a[0]
    assert health["student_name"] == "学生A101"
    assert health["school_name"] == "学校A"
    assert health["class_name"] == "A1班"
    assert health["in_bulk"] is True
    assert health["overdue"] is False
    assert health["days_overdue"] == 0
    summary = health["summary"]
    assert summary["title"] == "更正「健康状况」"
    assert summary["field"]["code"] == "health"
    assert summary["field"]["label"] == "健康状况"
    assert summary["field"]["new_value"] == "2"
    assert summary["field"]["masked"] is False
    assert summary["source"] == "registrar"
    assert summary["reason"] == "体检报告"
    assert summary["has_document"] is False
    # a phone is masked in the queue like everywhere else
    field = phone["summary"]["field"]
    assert field["masked"] is True
    assert field["new_value"] == "139****5678"
    assert "13912345678" not in str(page)

    key = (await queue_of(client, world.phones[Role.county_reviewer]))["items"][0]
    assert key["step_kind"] == "review"
    assert key["in_bulk"] is False
    assert key["summary"]["has_document"] is True
    assert key["summary"]["evidence"] == ["id_scan"]
    assert key["summary"]["field"]["old_value"] == "学生A103"
    assert key["summary"]["field"]["new_value"] == "王小明"


async def test_overdue_first_and_marked_with_working_days(
    client: httpx.AsyncClient, q: Queues
) -> None:
    world, r = q.world, q.requests
    await set_due(r["phone"], days_ago=30)
    page = await queue_of(client, world.phones[Role.school_leader])
    assert subjects(page) == [r["phone"], r["health"]]
    late, on_time = page["items"]
    assert late["overdue"] is True
    assert 15 <= late["days_overdue"] <= 23  # 30 days back, in working days
    assert on_time["overdue"] is False
    only_late = await queue_of(client, world.phones[Role.school_leader], overdue="true")
    assert subjects(only_late) == [r["phone"]]
    assert only_late["total"] == 1


async def test_pages_and_filters(client: httpx.AsyncClient, q: Queues) -> None:
    world, r = q.world, q.requests
    phone = world.phones[Role.school_leader]
    first = await queue_of(client, phone, page_size=1)
    assert (subjects(first), first["total"]) == ([r["health"]], 2)
    second = await queue_of(client, phone, page_size=1, page=2)
    assert (subjects(second), second["total"]) == ([r["phone"]], 2)
    past = await queue_of(client, phone, page_size=1, page=3)
    assert (subjects(past), past["total"]) == ([], 2)
    assert (await queue_of(client, phone, step_kind="review"))["total"] == 0
    assert (await queue_of(client, phone, subject_kind="problem_action"))["total"] == 0
    assert (await queue_of(client, phone, subject_kind="change_request"))["total"] == 2
    bad = await client.get(
        "/review-steps",
        params={"step_kind": "nonsense"},
        headers=bearer(await login(client, phone)),
    )
    assert bad.status_code == 400


async def test_a_kind_without_a_summary_is_listed_bare(
    client: httpx.AsyncClient, q: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(queues.SUMMARIES, SubjectKind.change_request)
    page = await queue_of(client, q.world.phones[Role.school_leader])
    assert [item["summary"] for item in page["items"]] == [None, None]
    assert page["items"][0]["student_name"] == "学生A101"


async def test_counts_for_the_badge(client: httpx.AsyncClient, q: Queues) -> None:
    world, r = q.world, q.requests
    await set_due(r["phone"], days_ago=3)
    await set_due(r["health"], days_ago=0)  # due today
    leader = bearer(await login(client, world.phones[Role.school_leader]))
    answer = await client.get("/review-steps/counts", headers=leader)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["waiting"], body["overdue"], body["due_soon"]) == (2, 1, 1)
    by_state = {row["state"]: row["count"] for row in body["requests"]}
    assert set(by_state) == {state.value for state in RequestState}
    # school A's requests: health, phone, name, parent, import_a
    assert by_state["in_review"] == 5
    county = bearer(await login(client, world.phones[Role.county_reviewer]))
    body = (await client.get("/review-steps/counts", headers=county)).json()
    assert (body["waiting"], body["overdue"], body["due_soon"]) == (1, 0, 0)


async def test_a_leader_approves_ordinary_changes_in_bulk_and_never_key_data(
    client: httpx.AsyncClient, q: Queues
) -> None:
    world, r = q.world, q.requests
    leader = bearer(await login(client, world.phones[Role.school_leader]))
    health = (await current_step(r["health"]))["id"]
    phone = (await current_step(r["phone"]))["id"]
    key = (await current_step(r["name"]))["id"]  # the county's review, in the leader's school
    other_school = (await current_step(r["import_b"]))["id"]
    # the phone change was approved a moment ago, one by one
    single = await client.post(
        f"/review-steps/{phone}/decision", json={"decision": "approve"}, headers=leader
    )
    assert single.status_code == 200, single.text
    audit_rows = await AuditLog.count()

    answer = await client.post(
        "/review-steps/bulk-approval",
        json={"step_ids": [health, phone, key, other_school, health]},
        headers=leader,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(i["step_id"], i["outcome"], i["code"]) for i in body["items"]] == [
        (health, "approved", None),
        (phone, "refused", "step_already_decided"),
        (key, "refused", "not_in_bulk"),
        (other_school, "refused", "not_found"),
    ]
    assert (body["approved"], body["refused"]) == (1, 3)
    assert all(i["message"] for i in body["items"] if i["outcome"] == "refused")

    # the approved change is applied; the key change still waits on the county
    student = await Student.select(Student.fields).where(Student.id == q.a[0]).first()
    assert student is not None
    assert load_fields(student["fields"])["health"] == "2"
    states = {
        row["id"]: row["state"]
        for row in await ChangeRequest.select(ChangeRequest.id, ChangeRequest.state)
    }
    assert states[r["health"]] == RequestState.applied.value
    assert states[r["phone"]] == RequestState.applied.value
    assert states[r["name"]] == RequestState.in_review.value
    assert (await current_step(r["name"]))["id"] == key
    # one decision audited, as made in bulk, and the refused look outside the scope
    decisions = await AuditLog.select().where(AuditLog.action == "review_approve")
    bulk = [row["entity_id"] for row in decisions if json.loads(row["after"])["in_bulk"]]
    assert bulk == [str(health)]
    assert await AuditLog.count() > audit_rows
    assert await AuditLog.exists().where(
        (AuditLog.action == "access_denied") & (AuditLog.entity_id == str(other_school))
    )
    assert subjects(await queue_of(client, world.phones[Role.school_leader])) == []


async def test_only_a_school_leader_approves_in_bulk(client: httpx.AsyncClient, q: Queues) -> None:
    world, r = q.world, q.requests
    step = (await current_step(r["parent"]))["id"]
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    refused = await client.post(
        "/review-steps/bulk-approval", json={"step_ids": [step]}, headers=teacher
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "leaders_only"
    assert (await current_step(r["parent"]))["id"] == step
    leader = bearer(await login(client, world.phones[Role.school_leader]))
    too_many = await client.post(
        "/review-steps/bulk-approval", json={"step_ids": list(range(1, 202))}, headers=leader
    )
    assert too_many.status_code == 400
    empty = await client.post("/review-steps/bulk-approval", json={"step_ids": []}, headers=leader)
    assert empty.status_code == 400
