"""Each channel against its local gateway (tests/notify/gateways.py): the real auth is
checked on the other end, each failure comes back as the outcome the push job acts on, and
nothing but the title, body, ids and badge leaves the process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.config import PushSettings
from backend.notify.channels.base import Outcome, PushMessage, SendResult, Target
from backend.notify.channels.setup import build_channels, http_client
from tests.notify.gateways import Failure, Gateways, start_gateways

MESSAGE = PushMessage(
    "有 3 条待审核",
    "请在截止日前处理",
    {"notification_id": "41", "category": "review_digest"},
    badge=3,
)


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[Gateways]:
    async with start_gateways(tmp_path) as running:
        yield running


def _target(gateways: Gateways, channel: str, token: str = "tok") -> Target:
    if channel == "webpush":
        return gateways.webpush_subscription()
    if channel == "webhook":
        return gateways.webhook_target()
    return Target(f"{token}0123456789abcdef")


def _gateway_token(channel: str, target: Target) -> str:
    return target.token.rsplit("/", 1)[-1]


async def test_every_channel_delivers_with_the_auth_its_gateway_checks(
    gateways: Gateways,
) -> None:
    async with gateways.client_and_channels() as (_, channels):
        for channel in ("fcm", "apns", "webpush", "jpush", "webhook"):
            result = await channels[channel].send(_target(gateways, channel), MESSAGE)
            assert result.outcome is Outcome.sent, (channel, result)
    assert gateways.refused == []
    assert {name: len(items) for name, items in gateways.received.items()} == dict.fromkeys(
        ("fcm", "apns", "webpush", "jpush", "webhook"), 1
    )
    [apns] = gateways.received["apns"]
    assert apns.http_version == "2"
    assert apns.payload["aps"] == {
        "alert": {"title": "有 3 条待审核", "body": "请在截止日前处理"},
        "sound": "default",
        "badge": 3,
    }
    assert apns.headers["apns-collapse-id"] == "n41"
    [fcm] = gateways.received["fcm"]
    assert fcm.payload["notification"] == {"title": "有 3 条待审核", "body": "请在截止日前处理"}
    assert fcm.payload["data"] == {"notification_id": "41", "category": "review_digest"}
    [webpush] = gateways.received["webpush"]  # decrypted with the subscription's key
    assert webpush.payload == {
        "title": "有 3 条待审核",
        "body": "请在截止日前处理",
        "data": {"notification_id": "41", "category": "review_digest"},
        "badge": 3,
    }
    [jpush] = gateways.received["jpush"]
    assert jpush.payload["audience"] == {"registration_id": ["tok0123456789abcdef"]}
    [webhook] = gateways.received["webhook"]
    assert webhook.payload["data"]["notification_id"] == "41"


async def test_fcm_exchanges_its_key_once_for_many_sends(gateways: Gateways) -> None:
    async with gateways.client_and_channels() as (_, channels):
        results = await asyncio.gather(
            *(channels["fcm"].send(Target(f"device-{i}"), MESSAGE) for i in range(20))
        )
    assert {result.outcome for result in results} == {Outcome.sent}
    assert gateways.token_exchanges == 1


async def test_apns_multiplexes_concurrent_sends_on_one_http2_connection(
    gateways: Gateways,
) -> None:
    async with gateways.client_and_channels() as (_, channels):
        await channels["apns"].send(Target("warm-up-token"), MESSAGE)
        results = await asyncio.gather(
            *(channels["apns"].send(Target(f"device-{i}"), MESSAGE) for i in range(50))
        )
    assert {result.outcome for result in results} == {Outcome.sent}
    assert {item.client for item in gateways.received["apns"]} == {
        gateways.received["apns"][0].client
    }


async def test_a_wrong_key_is_refused_by_the_gateway_and_not_retried(
    gateways: Gateways,
) -> None:
    settings = gateways.settings(jpush_master_secret="not-the-secret")
    async with http_client(settings) as http:
        result = await build_channels(settings, http)["jpush"].send(Target("reg-1"), MESSAGE)
    assert result.outcome is Outcome.failed
    assert result.http_status == 401
    assert gateways.refused == [("jpush", "1004 authentication failed")]


@pytest.mark.parametrize("channel", ["fcm", "apns", "webpush", "jpush", "webhook"])
async def test_each_failure_comes_back_as_what_the_job_does_with_it(
    gateways: Gateways, channel: str
) -> None:
    async with gateways.client_and_channels(timeout_seconds=0.5) as (_, channels):
        target = _target(gateways, channel)
        token = _gateway_token(channel, target)
        gateways.fail(
            channel,
            token,
            Failure.rate_limited(7),
            Failure.error(),
            Failure.timeout(hold=1.5),
            Failure.dead(),
        )
        results: list[SendResult] = [
            await channels[channel].send(target, MESSAGE) for _ in range(5)
        ]
    limited, error, timeout, dead, then = results
    assert (limited.outcome, limited.http_status, limited.retry_after) == (Outcome.retry, 429, 7)
    assert (error.outcome, error.http_status) == (Outcome.retry, 500)
    assert (timeout.outcome, timeout.detail) == (Outcome.retry, "timeout")
    assert dead.outcome is Outcome.dead
    assert then.outcome is Outcome.sent  # the gateway's script ran out: accepted
    assert gateways.count(channel) == 1
    assert gateways.refused == []


async def test_a_channel_without_credentials_is_off() -> None:
    settings = PushSettings()  # the embedded default: no gateway configured
    async with http_client(settings) as http:
        channels = build_channels(settings, http)
        for channel in ("fcm", "apns", "webpush", "jpush"):
            result = await channels[channel].send(Target("t"), MESSAGE)
            assert (result.outcome, result.detail) == (Outcome.failed, "channel not configured")


@pytest.mark.parametrize("channel", ["webhook", "webpush"])
async def test_a_url_a_user_registered_is_never_sent_to_a_host_that_is_not_public(
    gateways: Gateways, channel: str
) -> None:
    """The gateways listen on 127.0.0.1: with private hosts not allowed (the production
    default), the host is resolved before the send and refused for good, nothing sent."""
    async with gateways.client_and_channels(push_private_hosts=False) as (_, channels):
        result = await channels[channel].send(_target(gateways, channel), MESSAGE)
    assert result.outcome is Outcome.failed
    assert result.detail == "host is not public"
    assert gateways.received[channel] == []
