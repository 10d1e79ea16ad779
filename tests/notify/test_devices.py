"""Devices: any signed-in user registers where their pushes go, sees them masked, removes
one; a token is one device per channel and moves to whoever registers it last; a device goes
with the session that registered it (sign-out, password change, account disabled)."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import replace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.notify.tables import Device
from tests.factories import PASSWORD, World, bearer, build_world, login

FCM_TOKEN = "fcm-token:" + "A1b2C3d4" * 8
APNS_TOKEN = "AB" * 32


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def web_push_keys() -> dict[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    return {"p256dh": b64url(point), "auth": b64url(secrets.token_bytes(16))}


async def signed_in(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def register(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> Any:
    return await client.post("/devices", json=body, headers=headers)


async def devices_of(account_id: int) -> list[dict[str, Any]]:
    return list(await Device.select().where(Device.account == account_id).order_by(Device.id))


async def test_a_parent_registers_a_phone_sees_it_masked_and_removes_it(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await signed_in(client, world, Role.parent)

    made = await register(
        client, parent, channel="fcm", token=FCM_TOKEN, app_version="2.3.1", locale="zh-CN"
    )

    assert made.status_code == 201, made.text
    device = made.json()
    assert device["channel"] == "fcm"
    assert device["token"] == "…" + FCM_TOKEN[-6:]  # never the whole token
    assert device["this_session"] is True
    assert device["app_version"] == "2.3.1"
    listed = (await client.get("/devices", headers=parent)).json()
    assert [d["id"] for d in listed] == [device["id"]]
    assert FCM_TOKEN not in str(listed)

    removed = await client.delete(f"/devices/{device['id']}", headers=parent)
    assert removed.status_code == 204
    assert await devices_of(world.accounts[Role.parent]) == []


async def test_registering_a_token_again_moves_it_to_the_new_user(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await signed_in(client, world, Role.parent)
    teacher = await signed_in(client, world, Role.teacher)
    first = (await register(client, parent, channel="apns", token=APNS_TOKEN)).json()

    again = await register(client, teacher, channel="apns", token=APNS_TOKEN.lower())

    assert again.status_code == 201, again.text
    assert again.json()["id"] == first["id"]  # one device per token and channel
    assert await devices_of(world.accounts[Role.parent]) == []
    [moved] = await devices_of(world.accounts[Role.teacher])
    assert moved["token"] == APNS_TOKEN.lower()
    assert (await client.get("/devices", headers=parent)).json() == []
    # the same token on another channel is another device
    jpush = await register(client, parent, channel="jpush", token="1a0018970a9b3c4d")
    assert jpush.status_code == 201


async def test_another_users_device_is_not_found(client: httpx.AsyncClient, world: World) -> None:
    parent = await signed_in(client, world, Role.parent)
    teacher = await signed_in(client, world, Role.teacher)
    device = (await register(client, parent, channel="fcm", token=FCM_TOKEN)).json()

    refused = await client.delete(f"/devices/{device['id']}", headers=teacher)

    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"
    assert len(await devices_of(world.accounts[Role.parent])) == 1


async def test_a_web_push_subscription_needs_an_https_endpoint_and_real_keys(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await signed_in(client, world, Role.parent)
    endpoint = "https://push.example.net/wpush/v2/gAAAAABk"
    keys = web_push_keys()

    made = await register(client, parent, channel="webpush", token=endpoint, keys=keys)

    assert made.status_code == 201, made.text
    assert made.json()["token"] == "https://push.example.net/…"
    [stored] = await devices_of(world.accounts[Role.parent])
    assert stored["keys"] in (keys, json.dumps(keys))
    not_a_point = {**keys, "p256dh": b64url(b"\x04" + b"\x01" * 64)}
    auth_too_long = {**keys, "auth": b64url(secrets.token_bytes(20))}
    for body, field in [
        ({"token": endpoint}, "keys"),
        ({"token": endpoint, "keys": not_a_point}, "keys.p256dh"),
        ({"token": endpoint, "keys": auth_too_long}, "keys.auth"),
        ({"token": "http://push.example.net/x", "keys": keys}, "token"),
    ]:
        refused = await register(client, parent, channel="webpush", **body)
        assert refused.status_code == 400, body
        assert refused.json()["code"] == "invalid_device"
        assert field in refused.json()["field_errors"]


async def test_only_staff_register_a_webhook_with_an_http_url_and_a_secret(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await signed_in(client, world, Role.parent)
    registrar = await signed_in(client, world, Role.registrar)
    webhook = {"channel": "webhook", "token": "https://school.example.cn/hooks/registry"}
    secret = "s3cret-" + "x" * 20

    by_parent = await register(client, parent, **webhook, secret=secret)
    no_secret = await register(client, registrar, **webhook)
    ftp = await register(client, registrar, channel="webhook", token="ftp://x.cn/", secret=secret)
    made = await register(client, registrar, **webhook, secret=secret)

    assert by_parent.status_code == 403
    assert by_parent.json()["code"] == "webhook_staff_only"
    assert (no_secret.status_code, no_secret.json()["code"]) == (400, "invalid_device")
    assert (ftp.status_code, ftp.json()["code"]) == (400, "invalid_device")
    assert made.status_code == 201, made.text
    assert secret not in made.text
    [stored] = await devices_of(world.accounts[Role.registrar])
    assert secret in str(stored["keys"])
    [audited] = await AuditLog.select().where(AuditLog.action == "register_webhook")
    assert audited["actor_id"] == world.accounts[Role.registrar]
    assert secret not in str(audited)


@pytest.mark.parametrize(
    ("channel", "token"),
    [("apns", "not-hex" * 10), ("fcm", "short"), ("jpush", "has spaces in it"), ("sms", "x" * 30)],
)
async def test_a_token_of_the_wrong_shape_is_refused(
    client: httpx.AsyncClient, world: World, channel: str, token: str
) -> None:
    parent = await signed_in(client, world, Role.parent)
    refused = await register(client, parent, channel=channel, token=token)
    assert refused.status_code == 400
    assert refused.json()["code"] in ("invalid_device", "validation_error")
    assert await devices_of(world.accounts[Role.parent]) == []


async def test_signing_out_removes_that_sessions_devices_only(
    client: httpx.AsyncClient, world: World
) -> None:
    phone = await signed_in(client, world, Role.parent)
    tablet = await signed_in(client, world, Role.parent)  # a second login of the same user
    await register(client, phone, channel="fcm", token=FCM_TOKEN)
    await register(client, tablet, channel="apns", token=APNS_TOKEN)

    out = await client.post("/auth/logout", headers=phone)

    assert out.status_code in (200, 204), out.text
    [left] = await devices_of(world.accounts[Role.parent])
    assert left["channel"] == "apns"
    assert [d["this_session"] for d in (await client.get("/devices", headers=tablet)).json()] == [
        True
    ]


async def test_a_password_change_removes_the_other_sessions_devices(
    client: httpx.AsyncClient, world: World
) -> None:
    here = await signed_in(client, world, Role.teacher)
    elsewhere = await signed_in(client, world, Role.teacher)
    await register(client, here, channel="fcm", token=FCM_TOKEN)
    await register(client, elsewhere, channel="apns", token=APNS_TOKEN)

    changed = await client.post(
        "/auth/password",
        json={"old_password": PASSWORD, "new_password": "Xin-mima-2026-abc"},
        headers=here,
    )

    assert changed.status_code in (200, 204), changed.text
    [left] = await devices_of(world.accounts[Role.teacher])
    assert left["channel"] == "fcm"  # the session that changed it keeps its phone


async def test_disabling_an_account_removes_all_its_devices(
    client: httpx.AsyncClient, world: World
) -> None:
    teacher = await signed_in(client, world, Role.teacher)
    registrar = await signed_in(client, world, Role.registrar)
    await register(client, teacher, channel="fcm", token=FCM_TOKEN)
    await register(client, registrar, channel="apns", token=APNS_TOKEN)

    disabled = await client.post(
        f"/accounts/{world.accounts[Role.teacher]}/disable", headers=registrar
    )

    assert disabled.status_code == 200, disabled.text
    assert await devices_of(world.accounts[Role.teacher]) == []
    assert len(await devices_of(world.accounts[Role.registrar])) == 1


async def test_sealing_unused_accounts_removes_their_devices(
    app: Litestar, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    from datetime import UTC, datetime, timedelta

    from backend.accounts.admin import seal_inactive_accounts

    teacher = await signed_in(client, world, Role.teacher)
    await register(client, teacher, channel="fcm", token=FCM_TOKEN)

    later = datetime.now(UTC) + timedelta(days=settings.seal_after_inactive_days + 1)
    assert await seal_inactive_accounts(settings, now=later) >= 1

    assert await devices_of(world.accounts[Role.teacher]) == []


async def test_a_user_keeps_the_newest_devices_only(
    client: httpx.AsyncClient, world: World
) -> None:
    from backend.notify.devices import MAX_DEVICES

    parent = await signed_in(client, world, Role.parent)
    tokens = [f"{FCM_TOKEN}-{n:02d}" for n in range(MAX_DEVICES + 1)]
    for token in tokens:
        assert (await register(client, parent, channel="fcm", token=token)).status_code == 201

    kept = [row["token"] for row in await devices_of(world.accounts[Role.parent])]
    assert kept == tokens[1:]  # the first registered made room for the last


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",  # the service's own Redis
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "https://10.0.0.5/hook",
        "http://[::1]:5432/",
        "https://localhost/hook",
        "https://db.internal/hook",
        "https://intranet/hook",
    ],
)
async def test_a_webhook_into_the_services_own_network_is_refused(
    client: httpx.AsyncClient, world: World, url: str
) -> None:
    registrar = await signed_in(client, world, Role.registrar)
    refused = await register(
        client, registrar, channel="webhook", token=url, secret="s3cret-" + "x" * 20
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_device"), refused.text
    assert "内部网络" in refused.json()["message"]
    assert await devices_of(world.accounts[Role.registrar]) == []


async def test_a_web_push_endpoint_into_the_services_own_network_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await signed_in(client, world, Role.parent)
    refused = await register(
        client,
        parent,
        channel="webpush",
        token="https://169.254.169.254/latest/meta-data/",
        keys=web_push_keys(),
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_device"), refused.text
    assert await devices_of(world.accounts[Role.parent]) == []


async def test_a_browser_gets_the_vapid_public_key_to_subscribe_with(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World, tmp_path: Any
) -> None:
    headers = bearer(await login(client, world.phones[Role.registrar]))
    off = await client.get("/devices/webpush-key", headers=headers)
    assert off.status_code == 404
    assert off.json()["code"] == "webpush_off"

    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "vapid.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    push = replace(
        settings.push, vapid_private_key_file=str(pem), vapid_subject="mailto:ops@example.cn"
    )
    app.state.settings = settings.with_(push=push)
    try:
        on = await client.get("/devices/webpush-key", headers=headers)
    finally:
        app.state.settings = settings
    assert on.status_code == 200, on.text
    assert on.json() == {
        "public_key": b64url(
            key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        )
    }
    assert (await client.get("/devices/webpush-key")).status_code == 401
