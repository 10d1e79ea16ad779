"""What the notification endpoints take and answer: devices, the inbox, the stream ticket
and the settings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from backend.notify.categories import Category
from backend.notify.tables import ChannelName


class NotificationSubject(StrEnum):
    """What a notification opens in the app (with `subject_id`)."""

    review_step = "review_step"
    change_request = "change_request"
    thread = "thread"
    upload = "upload"
    student = "student"
    school_class = "class"  # a teacher's nudge opens the class page
    campaign = "campaign"
    problem_case = "problem_case"
    form_batch = "form_batch"


ClockTime = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description='China time, 24-hour "HH:MM"',
        examples=["21:00"],
    ),
]


class WebPushKeys(msgspec.Struct):
    """The keys of a browser's Web Push subscription (`PushSubscription.toJSON().keys`)."""

    p256dh: Annotated[
        str,
        msgspec.Meta(
            min_length=80,
            max_length=100,
            description="The subscription's P-256 public key, base64url",
        ),
    ]
    auth: Annotated[
        str,
        msgspec.Meta(
            min_length=16, max_length=30, description="Its 16-byte auth secret, base64url"
        ),
    ]


class DeviceWrite(msgspec.Struct):
    """A device to push to. `token`: the FCM registration token, the APNs device token (hex),
    the JPush registration id, the Web Push subscription's `endpoint` (with its `keys`), or
    the webhook's URL (staff only, with its `secret`)."""

    channel: ChannelName
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    keys: WebPushKeys | None = None
    secret: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=16,
                max_length=200,
                description="Webhook only: the key its HMAC-SHA256 signature is made with",
            ),
        ]
        | None
    ) = None
    app_version: Annotated[str, msgspec.Meta(max_length=30, examples=["2.3.1"])] = ""
    locale: Annotated[
        str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=20)
    ] = "zh-CN"


class WebPushKeyRead(msgspec.Struct):
    """What a browser passes as `applicationServerKey` to `PushManager.subscribe`."""

    public_key: Annotated[
        str, msgspec.Meta(description="The VAPID public key: uncompressed P-256, base64url")
    ]


class DeviceRead(msgspec.Struct):
    id: int
    channel: ChannelName
    token: str  # masked: the end of a token, or a URL's host
    app_version: str
    locale: str
    this_session: bool  # registered by the session making this request
    created_at: datetime
    last_seen_at: datetime


class NotificationRead(msgspec.Struct):
    id: int
    category: Category
    category_label: str  # Chinese
    title: str
    body: str
    subject_kind: NotificationSubject | None  # None: nothing to open (a digest)
    subject_id: int | None
    created_at: datetime
    read_at: datetime | None


class UnreadCount(msgspec.Struct):
    unread: int


class MarkedRead(msgspec.Struct):
    marked: int  # how many were unread and now are read


class StreamTicket(msgspec.Struct):
    ticket: str
    expires_in: int  # seconds


class CategorySetting(msgspec.Struct):
    category: Category
    label: str
    muted: bool
    may_turn_off: bool
    urgent: bool  # pushed at once, even in quiet hours


class QuietHoursSetting(msgspec.Struct):
    enabled: bool = True
    start: ClockTime = "21:00"
    end: ClockTime = "07:30"


class SettingsRead(msgspec.Struct):
    categories: list[CategorySetting]
    quiet_hours: QuietHoursSetting


class SettingsWrite(msgspec.Struct):
    muted: Annotated[list[Category], msgspec.Meta(max_length=50)]
    quiet_hours: QuietHoursSetting
