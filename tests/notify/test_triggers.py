"""What families are told as things of theirs are decided, in the transaction that decides
them: the photo check's verdict (at once, even at night), a decision on their correction
(applied, rejected, sent back), to the parent who asked or, for a request transcribed from
their paper form, to the child's confirmed guardians; never the reason, a name or a value."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import Scope
from backend.config import Settings
from backend.notify.tables import Notification
from backend.parents.tables import Upload
from backend.records.change_requests import NewRequest, create_request
from backend.records.review_tables import RequestSource
from backend.records.tables import GuardianLink, LinkStatus
from tests.factories import World, build_world, make_account, make_students, open_campaign
from tests.parents.helpers import issue_forms
from tests.parents.test_checks import phone_photo, printed_page, upload_and_check
from tests.records.requests import as_role, decide

NEW_ADDRESS = "浙江省杭州市西湖区文三路8号3幢502室"
REASON = "地址与户口簿不符，请补充户口簿首页，联系电话13912345678"


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign(corrections_open=True)
    await issue_forms(client, world)
    now = datetime.now(UTC)
    await GuardianLink.insert(
        GuardianLink(account=world.accounts[Role.parent], student=world.students[0], created_at=now)
    )
    return world


async def told(account_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await Notification.select()
        .where(Notification.account == account_id)
        .order_by(Notification.id)
    )
    return rows


def no_personal_data(rows: list[dict[str, Any]]) -> None:
    text = " ".join(row["title"] + row["body"] for row in rows)
    for secret in ("文三路", "户口簿", "139", "学生", "parent"):
        assert secret not in text


async def ask(client: httpx.AsyncClient, world: World, parent: dict[str, str]) -> int:
    made = await client.post(
        f"/my/children/{world.students[0]}/change-requests",
        files=[
            ("field_code", (None, "current_address")),
            ("new_value", (None, NEW_ADDRESS)),
            ("reason", (None, "搬家了")),
        ],
        headers=parent,
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def current_step_id(request_id: int) -> int:
    from backend.records.review_tables import ReviewStep

    row = (
        await ReviewStep.select(ReviewStep.id)
        .where((ReviewStep.subject_id == request_id) & (ReviewStep.state == "current"))
        .first()
    )
    assert row is not None
    return int(row["id"])


async def test_a_parent_is_told_when_their_request_is_applied_not_before(
    client: httpx.AsyncClient, world: World
) -> None:
    parent_id = world.accounts[Role.parent]
    parent = await as_role(client, world, Role.parent)
    request_id = await ask(client, world, parent)
    for role in (Role.teacher, Role.registrar):
        done = await decide(
            client, await as_role(client, world, role), await current_step_id(request_id)
        )
        assert done.status_code == 200, done.text
        assert await told(parent_id) == []  # a step passed is not news yet
    done = await decide(
        client, await as_role(client, world, Role.school_leader), await current_step_id(request_id)
    )
    assert done.status_code == 200, done.text
    [note] = await told(parent_id)
    assert (note["category"], note["title"]) == ("request_decided", "您的更正申请已通过")
    assert (note["subject_kind"], note["subject_id"]) == ("change_request", request_id)
    assert note["push_at"] is not None
    no_personal_data([note])


async def test_sent_back_the_parent_is_told_without_the_reason(
    client: httpx.AsyncClient, world: World
) -> None:
    parent_id = world.accounts[Role.parent]
    request_id = await ask(client, world, await as_role(client, world, Role.parent))
    teacher = await as_role(client, world, Role.teacher)
    done = await decide(client, teacher, await current_step_id(request_id), "send_back", REASON)
    assert done.status_code == 200, done.text
    [note] = await told(parent_id)
    assert note["title"] == "您的更正申请需要补充材料或确认"
    assert REASON not in note["body"]
    no_personal_data([note])
    # The parent can read why in the app.
    read = await client.get(
        f"/my/change-requests/{request_id}", headers=await as_role(client, world, Role.parent)
    )
    assert REASON in read.text


def _registrar(world: World) -> Principal:
    return Principal(
        account_id=world.accounts[Role.registrar],
        role=Role.registrar,
        name="registrar",
        phone=world.phones[Role.registrar],
        scope=Scope(
            kind=ScopeKind.school,
            region_code="330106",
            school_id=world.schools["A"],
            class_id=None,
            account_id=world.accounts[Role.registrar],
        ),
        session_id=uuid.uuid4(),
        password_change_required=False,
    )


async def test_a_transcribed_request_rejected_tells_the_confirmed_guardians(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    child = world.students[0]
    second = await make_account(settings, Role.parent, "13500000001", name="第二监护人")
    pending = await make_account(settings, Role.parent, "13500000002", name="未确认")
    now = datetime.now(UTC)
    await GuardianLink.insert(
        GuardianLink(account=second, student=child, guardian_slot=2, created_at=now),
        GuardianLink(
            account=pending,
            student=child,
            guardian_slot=2,
            status=LinkStatus.pending.value,
            created_at=now,
        ),
    )
    author = _registrar(world)
    request_id = await create_request(
        author,
        Actor(author.account_id, "registrar", None, None),
        NewRequest(
            child, "current_address", NEW_ADDRESS, "家长纸质表更正", RequestSource.transcribed
        ),
    )
    leader = await as_role(client, world, Role.school_leader)
    done = await decide(client, leader, await current_step_id(request_id), "reject", REASON)
    assert done.status_code == 200, done.text
    rows = await Notification.select().order_by(Notification.account)
    assert [row["account"] for row in rows] == sorted([world.accounts[Role.parent], second])
    assert {row["title"] for row in rows} == {"您的更正申请未通过"}
    no_personal_data(rows)


async def test_the_verdict_reaches_the_parent_who_uploaded_at_once(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    parent_id = world.accounts[Role.parent]
    parent = await as_role(client, world, Role.parent)
    page = await printed_page(
        client, await as_role(client, world, Role.registrar), world.students[0]
    )
    result = await upload_and_check(
        client, app, settings, parent, world.students[0], phone_photo(page, 1)
    )
    assert result["verdict"] == "matches", result
    [note] = await told(parent_id)
    assert (note["category"], note["title"]) == ("verdict", "确认表核对结果：一致")
    upload = await Upload.select(Upload.id).first()
    assert upload is not None
    assert (note["subject_kind"], note["subject_id"]) == ("upload", upload["id"])
    assert note["push_at"] == note["created_at"]  # urgent: not held for quiet hours
    no_personal_data([note])
