"""Tables of notifications: what each user was told (the inbox), the devices pushes go to,
every attempt to push, and each user's settings.

A notification holds no personal data: a title like 「有 3 条待审核」, a short body, and the
id of what it is about; the app fetches the rest after sign-in."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.tables import Account, AuthSession


class ChannelName(StrEnum):
    fcm = "fcm"  # Firebase Cloud Messaging HTTP v1 (Android, and iOS through Firebase)
    apns = "apns"  # Apple Push Notification service, token auth over HTTP/2
    webpush = "webpush"  # a browser's Web Push subscription (VAPID, aes128gcm)
    jpush = "jpush"  # JPush REST v3 (common on Chinese Android phones)
    webhook = "webhook"  # a school's own system: a signed JSON POST


class Notification(Table, tablename="notification"):
    """One thing one user was told. `dedupe_key` (unique) makes a reminder once per item,
    kind and person, ever: a second insert with the same key is no insert."""

    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, index=True, on_delete=OnDelete.cascade)
    category = Varchar(length=30)  # categories.Category
    title = Varchar(length=100)
    body = Varchar(length=200, default="")
    # What the app opens: a kind ("review_step", "change_request", "thread", "upload", …)
    # and an id, or nothing (a digest).
    subject_kind = Varchar(length=30, null=True, default=None)
    subject_id = Integer(null=True, default=None)
    dedupe_key = Varchar(length=200, null=True, default=None, unique=True)
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)
    # When its push may go (after quiet hours); None: no push (the category is turned off).
    push_at = Timestamptz(null=True, default=None)
    pushed_at = Timestamptz(null=True, default=None)  # the push job finished with it


class Device(Table, tablename="device"):
    """Where a user's pushes go: one token of one channel, bound to the session that
    registered it (signing out removes it). A token is unique per channel: registering it
    again, by anyone, moves it."""

    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, index=True, on_delete=OnDelete.cascade)
    session = ForeignKey(
        references=AuthSession, null=True, default=None, index=True, on_delete=OnDelete.cascade
    )
    channel = Varchar(length=10)  # ChannelName
    token = Text()  # a registration token, an APNs device token, a Web Push endpoint, a URL
    token_hash = Varchar(length=64, unique=True)  # sha256 of channel + token
    keys = JSON(default={})  # Web Push: p256dh and auth; webhook: its secret
    app_version = Varchar(length=30, default="")
    locale = Varchar(length=20, default="zh-CN")
    created_at = Timestamptz()
    last_seen_at = Timestamptz()


class AttemptOutcome(StrEnum):
    sent = "sent"  # the gateway accepted it
    retry = "retry"  # 429 or 5xx or a timeout: tried again later
    dead = "dead"  # the gateway says the token is gone: the device was removed
    failed = "failed"  # refused for good (a bad request), or out of tries


class PushAttempt(Table, tablename="push_attempt"):
    """Every attempt to push one notification to one device, so an admin can see why a push
    did not arrive."""

    id = Serial(primary_key=True)
    notification = ForeignKey(references=Notification, index=True, on_delete=OnDelete.cascade)
    device = ForeignKey(
        references=Device, null=True, default=None, index=True, on_delete=OnDelete.set_null
    )
    channel = Varchar(length=10)
    outcome = Varchar(length=10)  # AttemptOutcome
    http_status = SmallInt(null=True, default=None)
    latency_ms = Integer(default=0)
    detail = Varchar(length=200, default="")  # the gateway's reason, never the payload
    at = Timestamptz()


class Preference(Table, tablename="notification_preference"):
    """A user's settings: categories turned off (their pushes are not sent; the inbox still
    gets them) and their own quiet hours ("21:00", "07:30"; empty: the default)."""

    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, unique=True, on_delete=OnDelete.cascade)
    muted = JSON(default=[])  # category names
    quiet_start = Varchar(length=5, default="")
    quiet_end = Varchar(length=5, default="")
    quiet_enabled = Boolean(default=True)
    updated_at = Timestamptz()
