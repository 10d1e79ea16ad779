"""The inbox over HTTP: one's own notifications newest first, the unread ones, the unread
count, marking read (one, all, all up to an id); another user's notification is not found;
"send me a test notification" lands in the inbox and is pushed at once, a few an hour."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import transaction
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.notify.service import TESTS_PER_HOUR
from backend.notify.tables import Notification
from backend.outbox import Outbox, OutboxEntry
from tests.factories import World, bearer, build_world, login


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


async def tell(app: Litestar, account_id: int, *titles: str) -> list[int]:
    ids = []
    for title in titles:
        async with transaction():
            ids += await notify(
                Outbox(app.state.arq),
                [account_id],
                Note(Category.request_decided, title, subject=("change_request", 5)),
            )
    return ids


async def signed_in(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def unread(client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    answer = await client.get("/notifications/unread-count", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["unread"]


async def test_my_inbox_lists_my_notifications_newest_first(
    app: Litestar, client: httpx.AsyncClient, world: World
) -> None:
    first, second, third = await tell(app, world.accounts[Role.parent], "一", "二", "三")
    await tell(app, world.accounts[Role.teacher], "别人的")
    parent = await signed_in(client, world, Role.parent)

    page = (await client.get("/notifications", params={"page_size": 2}, headers=parent)).json()

    assert page["total"] == 3
    assert [item["id"] for item in page["items"]] == [third, second]
    item = page["items"][0]
    assert item["title"] == "三"
    assert item["category"] == "request_decided"
    assert item["category_label"] == "更正申请处理结果"
    assert (item["subject_kind"], item["subject_id"]) == ("change_request", 5)
    assert item["read_at"] is None
    rest = await client.get("/notifications", params={"page": 2, "page_size": 2}, headers=parent)
    assert [i["id"] for i in rest.json()["items"]] == [first]


async def test_marking_read_one_and_all_and_the_unread_count(
    app: Litestar, client: httpx.AsyncClient, world: World
) -> None:
    first, second, third = await tell(app, world.accounts[Role.parent], "一", "二", "三")
    parent = await signed_in(client, world, Role.parent)
    assert await unread(client, parent) == 3

    marked = await client.post(f"/notifications/{second}/read", headers=parent)

    assert marked.status_code == 200, marked.text
    read_at = marked.json()["read_at"]
    assert read_at is not None
    again = await client.post(f"/notifications/{second}/read", headers=parent)
    assert again.json()["read_at"] == read_at  # the first reading is kept
    assert await unread(client, parent) == 2
    only_unread = await client.get("/notifications", params={"unread": "true"}, headers=parent)
    assert [i["id"] for i in only_unread.json()["items"]] == [third, first]

    up_to = await client.post("/notifications/read-all", params={"up_to": first}, headers=parent)
    assert up_to.json() == {"marked": 1}
    assert await unread(client, parent) == 1  # the third arrived after what the app showed
    everything = await client.post("/notifications/read-all", headers=parent)
    assert everything.json() == {"marked": 1}
    assert await unread(client, parent) == 0


async def test_another_users_notification_is_not_found(
    app: Litestar, client: httpx.AsyncClient, world: World
) -> None:
    [theirs] = await tell(app, world.accounts[Role.teacher], "老师的")
    parent = await signed_in(client, world, Role.parent)

    refused = await client.post(f"/notifications/{theirs}/read", headers=parent)
    marked_all = await client.post("/notifications/read-all", headers=parent)

    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"
    assert marked_all.json() == {"marked": 0}
    row = await Notification.select(Notification.read_at).where(Notification.id == theirs).first()
    assert row is not None
    assert row["read_at"] is None


async def test_the_inbox_needs_a_sign_in(client: httpx.AsyncClient) -> None:
    answer = await client.get("/notifications/unread-count")
    assert answer.status_code == 401


async def test_a_test_notification_is_in_my_inbox_and_pushed_at_once_a_few_an_hour(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await signed_in(client, world, Role.registrar)

    sent = await client.post("/notifications/test", headers=registrar)

    assert sent.status_code == 201, sent.text
    note = sent.json()
    assert note["category"] == "test"
    assert note["title"] == "测试通知"
    listed = (await client.get("/notifications", headers=registrar)).json()["items"]
    assert [i["id"] for i in listed] == [note["id"]]
    job = await OutboxEntry.select().where(OutboxEntry.job_id == f"push:{note['id']}").first()
    assert job is not None  # urgent: its push is asked for now, quiet hours or not
    for _ in range(TESTS_PER_HOUR - 1):
        assert (await client.post("/notifications/test", headers=registrar)).status_code == 201
    refused = await client.post("/notifications/test", headers=registrar)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_test_notifications"
    assert int(refused.headers["retry-after"]) > 0
    assert await unread(client, registrar) == TESTS_PER_HOUR
