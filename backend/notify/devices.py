"""The devices a user's pushes go to: registered by a signed-in session, listed with their
tokens masked, removed by their owner, and removed with the session that registered them
(signing out, a password change, an account sealed or disabled: `accounts.session_hooks`).

A token is unique per channel (`token_hash`): registering it again, by anyone, moves it to
the new account and session (a phone changes hands, or a parent signs in as another)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.session_hooks import EndedSessions, on_sessions_ended
from backend.db import transaction
from backend.errors import BadRequest, NotFound
from backend.masking import mask_push_token
from backend.notify.channels.addresses import is_internal_name
from backend.notify.schemas import DeviceRead, DeviceWrite
from backend.notify.tables import ChannelName, Device

# A user with more devices than this loses the one least recently seen.
MAX_DEVICES = 20

_TOKEN_SHAPES = {
    ChannelName.fcm: re.compile(r"^[A-Za-z0-9_:\-]{20,4096}$"),
    ChannelName.apns: re.compile(r"^[0-9a-f]{64,200}$"),
    ChannelName.jpush: re.compile(r"^[0-9A-Za-z]{8,64}$"),
}
_TOKEN_WORDS = {
    ChannelName.fcm: "FCM 注册令牌格式不正确",
    ChannelName.apns: "APNs 设备令牌应为十六进制字符串",
    ChannelName.jpush: "极光推送注册 ID 格式不正确",
}


class InvalidDevice(BadRequest):
    code = "invalid_device"
    message = "设备信息不正确"


def token_hash(channel: ChannelName | str, token: str) -> str:
    return hashlib.sha256(f"{channel}\n{token}".encode()).hexdigest()


def _b64url(value: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _url(value: str, schemes: tuple[str, ...], field: str, words: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname or len(value) > 2048:
        raise InvalidDevice(words, field_errors={field: words})
    return value


def _public(url: str, private_hosts: bool) -> None:
    """A URL the worker will POST to must not point into the service's own network."""
    if not private_hosts and is_internal_name(urlsplit(url).hostname or ""):
        raise InvalidDevice(
            "地址不能指向内部网络（回环、私有或链路本地地址）",
            field_errors={"token": "请使用可公开访问的地址"},
        )


def _checked(data: DeviceWrite, private_hosts: bool) -> tuple[str, dict[str, str]]:
    """The token as stored and the keys beside it, or 400 saying what is wrong."""
    token = data.token.strip()
    if data.channel in _TOKEN_SHAPES:
        if data.channel is ChannelName.apns:
            token = token.lower()
        if not _TOKEN_SHAPES[data.channel].match(token):
            raise InvalidDevice(
                _TOKEN_WORDS[data.channel], field_errors={"token": _TOKEN_WORDS[data.channel]}
            )
        return token, {}
    if data.channel is ChannelName.webpush:
        _url(token, ("https",), "token", "Web Push 订阅地址（endpoint）应为 https 地址")
        _public(token, private_hosts)
        if data.keys is None:
            raise InvalidDevice(
                "Web Push 订阅缺少 keys（p256dh 和 auth）",
                field_errors={"keys": "请提供订阅的 p256dh 和 auth"},
            )
        point, auth = _b64url(data.keys.p256dh), _b64url(data.keys.auth)
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point or b"")
        except ValueError:
            raise InvalidDevice(
                "Web Push 订阅的 p256dh 不是有效的 P-256 公钥",
                field_errors={"keys.p256dh": "不是有效的 P-256 公钥"},
            ) from None
        if auth is None or len(auth) != 16:
            raise InvalidDevice(
                "Web Push 订阅的 auth 应为 16 字节（base64url）",
                field_errors={"keys.auth": "应为 16 字节（base64url）"},
            )
        return token, {"p256dh": data.keys.p256dh, "auth": data.keys.auth}
    _url(token, ("http", "https"), "token", "Webhook 地址应为 http 或 https 地址")
    _public(token, private_hosts)
    if data.secret is None:
        raise InvalidDevice(
            "Webhook 需要签名密钥（secret，至少 16 个字符）",
            field_errors={"secret": "请提供至少 16 个字符的签名密钥"},
        )
    return token, {"secret": data.secret}


def device_read(row: dict[str, Any], principal: Principal) -> DeviceRead:
    session = row["session"]
    return DeviceRead(
        id=row["id"],
        channel=ChannelName(row["channel"]),
        token=mask_push_token(row["token"]),
        app_version=row["app_version"],
        locale=row["locale"],
        this_session=session is not None and str(session) == str(principal.session_id),
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
    )


async def register(
    principal: Principal, actor: Actor, data: DeviceWrite, *, private_hosts: bool = False
) -> DeviceRead:
    """Register (or refresh, or take over) a device for the caller's session."""
    if data.channel is ChannelName.webhook:
        require(principal, Action.register_webhook)
    token, keys = _checked(data, private_hosts)
    now = datetime.now(UTC)
    row = Device(
        account=principal.account_id,
        session=principal.session_id,
        channel=data.channel.value,
        token=token,
        token_hash=token_hash(data.channel, token),
        keys=keys,
        app_version=data.app_version,
        locale=data.locale,
        created_at=now,
        last_seen_at=now,
    )
    async with transaction():
        [written] = (
            await Device.insert(row)
            .on_conflict(
                target=Device.token_hash,
                action="DO UPDATE",
                values=[
                    Device.account,
                    Device.session,
                    Device.keys,
                    Device.app_version,
                    Device.locale,
                    Device.last_seen_at,
                ],
            )
            .returning(Device.id)
        )
        await _keep_newest(principal.account_id)
        if data.channel is ChannelName.webhook:  # a school's system will receive its pushes
            await audit.record(
                actor,
                "register_webhook",
                "device",
                written["id"],
                after={"url": mask_push_token(token)},
            )
    found = await Device.select().where(Device.id == written["id"]).first()
    assert found is not None
    return device_read(found, principal)


async def _keep_newest(account_id: int) -> None:
    stale = (
        await Device.select(Device.id)
        .where(Device.account == account_id)
        .order_by(Device.last_seen_at, ascending=False)
        .order_by(Device.id, ascending=False)
        .limit(1000)  # SQLite takes an offset only with a limit
        .offset(MAX_DEVICES)
    )
    if stale:
        await Device.delete().where(Device.id.is_in([row["id"] for row in stale]))


async def list_mine(principal: Principal) -> list[DeviceRead]:
    rows = (
        await Device.select()
        .where(Device.account == principal.account_id)
        .order_by(Device.last_seen_at, ascending=False)
        .order_by(Device.id, ascending=False)
    )
    return [device_read(row, principal) for row in rows]


async def remove(principal: Principal, device_id: int) -> None:
    """Remove one of the caller's devices; another's is a 404, as a missing one."""
    removed = (
        await Device.delete()
        .where((Device.id == device_id) & (Device.account == principal.account_id))
        .returning(Device.id)
    )
    if not removed:
        raise NotFound("未找到该设备", code="not_found")


@on_sessions_ended
async def remove_devices_of(ended: EndedSessions) -> None:
    """The ended sessions' devices go with them: no push reaches a signed-out phone."""
    if ended.sessions:
        await Device.delete().where(Device.session.is_in(list(ended.sessions)))
    if ended.accounts:
        where: Any = Device.account.is_in(list(ended.accounts))
        if ended.kept is not None:
            where &= Device.session.is_null() | (Device.session != ended.kept)
        await Device.delete().where(where)
