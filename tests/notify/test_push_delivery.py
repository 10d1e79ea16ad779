"""The push job (backend/notify/push.py) against the local gateways: a notification reaches
every signed-in device of its recipient once, whatever the gateways answer; dead tokens are
removed, transient failures retried within bounds, every try recorded, and no payload carries
anything but the title, the short body, ids and the unread count."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuthSession
from backend.config import Settings
from backend.db import transaction
from backend.notify import push
from backend.notify.categories import Category
from backend.notify.channels.base import Channel, Target
from backend.notify.inbox import Note, notify
from backend.notify.tables import Device, Notification, PushAttempt
from backend.outbox import Outbox
from backend.worker import inline_worker, sweep_pushes
from tests.factories import World, bearer, build_world, due_only, job_ctx, login, make_account
from tests.notify.gateways import Failure, Gateways, start_gateways

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 China time: no quiet hours


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[Gateways]:
    async with start_gateways(tmp_path) as running:
        yield running


@pytest.fixture
async def channels(gateways: Gateways) -> AsyncIterator[dict[str, Channel]]:
    async with gateways.client_and_channels(timeout_seconds=0.5) as (_, built):
        yield built


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


async def _session(account_id: int, *, revoked: bool = False) -> uuid.UUID:
    session_id = uuid.uuid4()
    await AuthSession.insert(
        AuthSession(
            id=session_id,
            account=account_id,
            created_at=NOW,
            revoked_at=NOW if revoked else None,
        )
    )
    return session_id


async def _device(account_id: int, channel: str, target: Target, session: uuid.UUID | None) -> int:
    [row] = await Device.insert(
        Device(
            account=account_id,
            session=session,
            channel=channel,
            token=target.token,
            token_hash=hashlib.sha256(f"{channel}:{target.token}".encode()).hexdigest(),
            keys=dict(target.keys),
            created_at=NOW,
            last_seen_at=NOW,
        )
    ).returning(Device.id)
    return int(row["id"])


async def _every_channel(gateways: Gateways, account_id: int) -> dict[str, int]:
    """One device per channel on one signed-in session: channel → device id."""
    session = await _session(account_id)
    targets = {
        "fcm": Target("fcm-token-0123456789"),
        "apns": Target("a0b1c2d3e4f5" * 5),
        "webpush": gateways.webpush_subscription(),
        "jpush": Target("1a0018970aa1b2c3d4e"),
        "webhook": gateways.webhook_target(),
    }
    return {
        channel: await _device(account_id, channel, target, session)
        for channel, target in targets.items()
    }


async def _notification(app: Litestar, account_id: int, title: str = "有 3 条待审核") -> int:
    async with transaction():
        [written] = await notify(
            Outbox(app.state.arq),
            [account_id],
            Note(Category.step_due_soon, title, subject=("review_step", 17)),
            now=NOW,
        )
    return written


def _gateway_token(gateways: Gateways, channel: str, device_token: str) -> str:
    return device_token.rsplit("/", 1)[-1] if channel in ("webpush", "webhook") else device_token


async def _attempts(notification_id: int) -> list[dict[str, Any]]:
    return list(
        await PushAttempt.select()
        .where(PushAttempt.notification == notification_id)
        .order_by(PushAttempt.id)
    )


async def test_a_notification_reaches_every_signed_in_device_with_no_personal_data(
    app: Litestar, world: World, gateways: Gateways, channels: dict[str, Channel]
) -> None:
    registrar = world.accounts[Role.registrar]
    devices = await _every_channel(gateways, registrar)
    signed_out = await _session(registrar, revoked=True)
    await _device(registrar, "fcm", Target("token-of-a-signed-out-phone"), signed_out)
    await _device(world.accounts[Role.teacher], "fcm", Target("someone-elses-phone"), None)
    notification_id = await _notification(app, registrar)

    done = await push.deliver(channels, notification_id)

    assert (done.sent, done.retry_in) == (5, None)
    assert gateways.count() == 5  # not the signed-out phone, not another user's
    attempts = await _attempts(notification_id)
    assert sorted((a["channel"], a["outcome"], a["device"]) for a in attempts) == sorted(
        (channel, "sent", device) for channel, device in devices.items()
    )
    assert all(a["http_status"] in (200, 201) and a["latency_ms"] >= 0 for a in attempts)
    row = await Notification.select(Notification.pushed_at).where(
        Notification.id == notification_id
    )
    assert row[0]["pushed_at"] is not None

    # Nothing the gateways received names anyone: no name, phone or ID number of the
    # recipient, only the title, body, ids and the unread count.
    account = await Account.select().where(Account.id == registrar).first()
    assert account is not None
    everything = json.dumps(
        [item.payload for items in gateways.received.values() for item in items],
        ensure_ascii=False,
    )
    for personal in (account["name"], account["phone"]):
        assert personal
        assert personal not in everything
    [webpush] = gateways.received["webpush"]
    assert webpush.payload == {
        "title": "有 3 条待审核",
        "body": "",
        "data": {
            "notification_id": str(notification_id),
            "category": "step_due_soon",
            "subject_kind": "review_step",
            "subject_id": "17",
        },
        "badge": 1,
    }


async def test_a_retried_job_sends_only_to_the_devices_left_and_honours_retry_after(
    app: Litestar, world: World, gateways: Gateways, channels: dict[str, Channel]
) -> None:
    parent = world.accounts[Role.parent]
    devices = await _every_channel(gateways, parent)
    apns_token = (await Device.select(Device.token).where(Device.id == devices["apns"]))[0]
    gateways.fail("apns", apns_token["token"], Failure.rate_limited(7))
    notification_id = await _notification(app, parent)

    first = await push.deliver(channels, notification_id, job_try=1)
    assert (first.sent, first.retry, first.retry_in) == (4, 1, 7)  # the gateway's Retry-After
    second = await push.deliver(channels, notification_id, job_try=2)
    third = await push.deliver(channels, notification_id, job_try=3)  # a duplicate run

    assert (second.sent, second.retry_in) == (1, None)
    assert third == push.Delivery()  # pushed_at is set: nothing to do
    assert {name: len(items) for name, items in gateways.received.items()} == dict.fromkeys(
        devices, 1
    )  # never twice
    outcomes = [
        (a["channel"], a["outcome"], a["http_status"]) for a in await _attempts(notification_id)
    ]
    assert ("apns", "retry", 429) in outcomes
    assert outcomes.count(("apns", "sent", 200)) == 1


async def test_5xx_and_timeouts_back_off_and_stop_after_the_last_try(
    app: Litestar, world: World, gateways: Gateways, channels: dict[str, Channel]
) -> None:
    teacher = world.accounts[Role.teacher]
    session = await _session(teacher)
    await _device(teacher, "fcm", Target("flaky-fcm-token"), session)
    await _device(teacher, "jpush", Target("slow-jpush-id"), session)
    gateways.fail("fcm", "flaky-fcm-token", *[Failure.error()] * push.PUSH_TRIES)
    gateways.fail("jpush", "slow-jpush-id", Failure.timeout(hold=1.0))
    notification_id = await _notification(app, teacher)

    waits = []
    for job_try in range(1, push.PUSH_TRIES + 1):
        done = await push.deliver(channels, notification_id, job_try=job_try)
        waits.append(done.retry_in)

    assert waits == [push.backoff(n) for n in range(1, push.PUSH_TRIES)] + [None]
    assert waits[0] is not None
    assert waits[1] == 2 * waits[0]
    attempts = [(a["channel"], a["outcome"], a["detail"]) for a in await _attempts(notification_id)]
    assert ("jpush", "retry", "timeout") in attempts
    assert [a for a in attempts if a[0] == "jpush" and a[1] == "sent"] == [("jpush", "sent", "")]
    fcm = [a for a in attempts if a[0] == "fcm"]
    assert len(fcm) == push.PUSH_TRIES
    assert fcm[-1][1:] == ("failed", "out of tries: gateway error 500")
    row = await Notification.select(Notification.pushed_at).where(
        Notification.id == notification_id
    )
    assert row[0]["pushed_at"] is not None


async def test_dead_tokens_are_removed_on_every_channel(
    app: Litestar, world: World, gateways: Gateways, channels: dict[str, Channel]
) -> None:
    parent = world.accounts[Role.parent]
    devices = await _every_channel(gateways, parent)
    for row in await Device.select(Device.channel, Device.token):
        gateways.fail(
            row["channel"], _gateway_token(gateways, row["channel"], row["token"]), Failure.dead()
        )
    notification_id = await _notification(app, parent)

    done = await push.deliver(channels, notification_id)

    assert (done.dead, done.retry_in) == (5, None)
    assert await Device.count() == 0
    attempts = await _attempts(notification_id)
    assert sorted((a["channel"], a["outcome"]) for a in attempts) == sorted(
        (channel, "dead") for channel in devices
    )
    assert {a["http_status"] for a in attempts} == {404, 410, 400}  # FCM, APNs/Web Push/hook, JPush


async def test_the_worker_pushes_once_and_the_sweeper_finds_a_push_redis_lost(
    app: Litestar,
    world: World,
    settings: Settings,
    channels: dict[str, Channel],
    gateways: Gateways,
) -> None:
    registrar = world.accounts[Role.registrar]
    await _every_channel(gateways, registrar)
    await _notification(app, registrar)
    resources = dataclasses.replace(app.state.resources, channels=channels)

    async def run_worker() -> None:
        pool = await due_only(await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"])))
        worker = inline_worker(resources, pool, burst=True, poll_delay=0)
        await worker.main()
        await worker.close()

    await run_worker()
    assert gateways.count() == 5
    # arq still holds the job's result: the sweeper leaves it alone, and the job run again
    # would find pushed_at set.
    ctx = job_ctx(app, channels=channels)
    assert await sweep_pushes(ctx, 0) == 0

    # A push whose deferred job a restarted Redis lost: found again from the database.
    lost = await _notification(app, registrar, "有 1 条待办即将到期")
    await app.state.redis.flushdb()
    await Notification.update(
        {Notification.push_at: datetime.now(UTC) - timedelta(minutes=5)}
    ).where(Notification.id == lost)
    assert await sweep_pushes(ctx, 0) == 1
    assert await sweep_pushes(ctx, 0) == 0  # queued now: arq would refuse it again
    await run_worker()
    assert gateways.count() == 10
    assert {len(items) for items in gateways.received.values()} == {2}


async def test_an_account_admin_sees_why_a_push_did_not_arrive_tokens_masked(
    app: Litestar,
    world: World,
    settings: Settings,
    gateways: Gateways,
    channels: dict[str, Channel],
    client: httpx.AsyncClient,
) -> None:
    teacher = world.accounts[Role.teacher]
    session = await _session(teacher)
    await _device(teacher, "fcm", Target("fcm-token-of-the-teacher-0042"), session)
    await _device(teacher, "apns", Target("d" * 64), session)
    gateways.fail("apns", "d" * 64, Failure.dead())
    notification_id = await _notification(app, teacher)
    await push.deliver(channels, notification_id)

    registrar = bearer(await login(client, world.phones[Role.registrar]))
    response = await client.get("/push-attempts", params={"account_id": teacher}, headers=registrar)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert sorted((i["channel"], i["outcome"], i["http_code"], i["token"]) for i in items) == [
        ("apns", "dead", 410, None),  # the device is gone with its token
        ("fcm", "sent", 200, "…r-0042"),  # the one mask of push tokens,
    ]
    assert "fcm-token-of-the-teacher-0042" not in response.text

    own = bearer(await login(client, world.phones[Role.teacher]))
    refused = await client.get("/push-attempts", params={"account_id": teacher}, headers=own)
    assert refused.status_code == 403
    await make_account(
        settings, Role.registrar, "13900000099", region_code="330108", school=world.schools["B"]
    )
    elsewhere = bearer(await login(client, "13900000099"))
    hidden = await client.get("/push-attempts", params={"account_id": teacher}, headers=elsewhere)
    assert hidden.status_code == 404
