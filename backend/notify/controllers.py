"""HTTP for one's own notifications: the inbox, the live stream, devices and settings. Every
signed-in user (parents and staff alike) reaches only their own."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from redis.asyncio import Redis

from backend.accounts.permissions import Action, require
from backend.accounts.principal import AccountInactive, load_principal
from backend.accounts.schemas import DB_ID_MAX
from backend.accounts.tokens import AccessClaims, AccessTokenVerifier, InvalidToken
from backend.deps import ActorDep, IdFilter, OutboxDep, PrincipalDep, RedisDep, SettingsDep
from backend.errors import Forbidden, Unauthorized
from backend.http import allowed
from backend.notify import devices, preferences, service, stream, webpush_key
from backend.notify.schemas import (
    DeviceRead,
    DeviceWrite,
    MarkedRead,
    NotificationRead,
    SettingsRead,
    SettingsWrite,
    StreamTicket,
    UnreadCount,
    WebPushKeyRead,
)
from backend.openapi import BY_ID, JSON_BODY, QUERY, REDIS, SIGNED_IN, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize

NotificationId = Annotated[
    int | None,
    QueryParameter(
        name="up_to", ge=1, le=DB_ID_MAX, required=False, description="Mark those up to this id"
    ),
]
StreamTicketQuery = Annotated[
    str | None,
    QueryParameter(
        name="ticket",
        max_length=100,
        required=False,
        description="From `POST /notifications/stream-ticket` (for `EventSource`)",
    ),
]
LastEventHeader = Annotated[
    str | None,
    HeaderParameter(name="last-event-id", required=False, description="The last id received"),
]


class NotificationController(Controller):
    path = "/notifications"
    tags = ["notifications"]
    guards = [allowed(Action.use_notifications)]

    @get(
        "/",
        summary="List my notifications",
        operation_id="listNotifications",
        responses=errors(SIGNED_IN, QUERY),
    )
    async def list_notifications(
        self,
        principal: PrincipalDep,
        unread: FromQuery[bool] = False,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[NotificationRead]:
        """The caller's inbox, newest first; `unread=true` for the unread ones only. Titles
        and bodies carry no personal data: `subject_kind` and `subject_id` name what to open.

        **Who may call**: any signed-in user, for their own notifications.

        **Errors**: `validation_error` (400) for a page out of range."""
        return await service.list_mine(
            principal, unread_only=unread, page=page, page_size=page_size
        )

    @get(
        "/unread-count",
        summary="Count my unread notifications",
        operation_id="countUnreadNotifications",
        responses=errors(SIGNED_IN),
    )
    async def unread_count(self, principal: PrincipalDep) -> UnreadCount:
        """The badge: how many of the caller's notifications are unread. Cheap enough to poll
        (one index range); an open app may rather listen to `GET /notifications/stream`.

        **Who may call**: any signed-in user.

        **Errors**: none beyond signing in."""
        return await service.unread_count(principal)

    @post(
        "/{notification_id:int}/read",
        status_code=HTTP_200_OK,
        summary="Mark a notification read",
        operation_id="markNotificationRead",
        responses=errors(SIGNED_IN, BY_ID),
    )
    async def mark_read(
        self, notification_id: FromPath[int], principal: PrincipalDep
    ) -> NotificationRead:
        """Mark one of the caller's notifications read (again: no change, its first
        `read_at` kept).

        **Who may call**: the notification's recipient.

        **Errors**: `not_found` (404) for a missing id or another user's notification."""
        return await service.mark_read(principal, notification_id)

    @post(
        "/read-all",
        status_code=HTTP_200_OK,
        summary="Mark all my notifications read",
        operation_id="markAllNotificationsRead",
        responses=errors(SIGNED_IN, QUERY),
    )
    async def mark_all_read(
        self, principal: PrincipalDep, up_to: NotificationId = None
    ) -> MarkedRead:
        """Mark every unread notification of the caller read, or, with `up_to`, those whose
        id is at most `up_to` (the newest the app has shown: one that arrived meanwhile
        stays unread). Answers how many were marked.

        **Who may call**: any signed-in user.

        **Errors**: `validation_error` (400) for an `up_to` below 1."""
        return await service.mark_all_read(principal, up_to)

    @post(
        "/test",
        status_code=HTTP_201_CREATED,
        summary="Send me a test notification",
        operation_id="sendTestNotification",
        responses=errors(SIGNED_IN, REDIS, {429: "too_many_test_notifications"}),
    )
    async def send_test(
        self, principal: PrincipalDep, redis: RedisDep, outbox: OutboxDep
    ) -> NotificationRead:
        """Send the caller a test notification (category `test`): it lands in the inbox,
        reaches the open live streams and is pushed at once to every device of the caller,
        quiet hours or not: "do pushes reach this phone?". At most 5 an hour.

        **Who may call**: any signed-in user, to themselves.

        **Errors**: `too_many_test_notifications` (429, with `Retry-After`)."""
        return await service.send_test(principal, redis, outbox)

    @post(
        "/stream-ticket",
        status_code=HTTP_201_CREATED,
        summary="Get a ticket to open the live stream",
        operation_id="createStreamTicket",
        responses=errors(SIGNED_IN, REDIS),
    )
    async def stream_ticket(self, principal: PrincipalDep, redis: RedisDep) -> StreamTicket:
        """For a browser's `EventSource`, which cannot send an `Authorization` header: a
        ticket for `GET /notifications/stream?ticket=...`, good once, within 60 seconds.
        It stands for the caller's session: signing out ends what it opens at the next
        reconnect.

        **Who may call**: any signed-in user.

        **Errors**: none beyond signing in."""
        ticket = await stream.issue_ticket(redis, principal)
        return StreamTicket(ticket=ticket, expires_in=stream.TICKET_SECONDS)


class NotificationStreamController(Controller):
    """Outside the bearer middleware and its guards: a browser's `EventSource` sends no
    header, so the handler checks the header or the ticket itself, then the same rules."""

    path = "/notifications"
    tags = ["notifications"]

    @get(
        "/stream",
        summary="Stream my new notifications (server-sent events)",
        operation_id="streamNotifications",
        exclude_from_auth=True,  # the bearer header, or a ticket: checked below
        responses=errors(SIGNED_IN, QUERY, REDIS, {401: "invalid_stream_ticket"}),
    )
    async def stream(
        self,
        request: Request[Any, Any, Any],
        settings: SettingsDep,
        redis: RedisDep,
        ticket: StreamTicketQuery = None,
        last_event_id: IdFilter = None,
        last_event_header: LastEventHeader = None,
    ) -> ServerSentEvent:
        """`text/event-stream` of the caller's new notifications while the connection is
        open: each an event `notification` whose `id` is the notification's id and whose
        `data` is its JSON (`id`, `category`, `category_label`, `title`, `body`,
        `subject_kind`, `subject_id`, `created_at`); a comment every 15 seconds keeps it
        open. Reconnecting with `Last-Event-ID` (the header `EventSource` sends) or
        `last_event_id` replays, oldest first, up to 100 notifications made since that id.
        Works behind several API processes (Redis pub/sub). When the session ends (signed
        out, password changed elsewhere, account sealed or disabled) the stream sends an event
        `session_ended` within 30 seconds (`STREAM_SESSION_CHECK_SECONDS`) and closes: sign in
        again before reconnecting.

        Authenticate with `Authorization: Bearer <access_token>`, or, from a browser's
        `EventSource`, with `?ticket=` from `POST /notifications/stream-ticket`.

        **Who may call**: any signed-in user, for their own notifications.

        **Errors**: the signing-in errors, answered before the stream opens; 401
        `invalid_stream_ticket` for a ticket used before, expired or unknown."""
        claims = await self._claims(request, redis, ticket)
        principal = await load_principal(settings, claims)
        if principal.password_change_required:
            raise Forbidden("密码已过期或为初始密码，请先修改密码", code="password_change_required")
        require(principal, Action.use_notifications)
        since = last_event_id
        header = (last_event_header or "").strip()
        if since is None and header.isdigit() and int(header) <= DB_ID_MAX:
            since = int(header)

        async def signed_in() -> bool:
            try:
                await load_principal(settings, claims)
            except (InvalidToken, AccountInactive):
                return False
            return True

        return ServerSentEvent(
            stream.events(
                redis, principal.account_id, since, signed_in, settings.stream_session_check_seconds
            ),
            headers={"X-Accel-Buffering": "no"},  # nginx: pass each event on at once
        )

    @staticmethod
    async def _claims(
        request: Request[Any, Any, Any], redis: Redis, ticket: str | None
    ) -> AccessClaims:
        """Whose stream: the bearer token's session, or the ticket's (spent by this)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            verifier: AccessTokenVerifier = request.app.state.verifier
            return verifier.verify(token.strip())
        if ticket:
            return await stream.redeem_ticket(redis, ticket)
        raise Unauthorized()


class DeviceController(Controller):
    path = "/devices"
    tags = ["notifications"]
    guards = [allowed(Action.use_notifications)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Register a device for pushes",
        operation_id="registerDevice",
        responses=errors(SIGNED_IN, JSON_BODY, {400: "invalid_device", 403: "webhook_staff_only"}),
    )
    async def register(
        self,
        data: JSONBody[DeviceWrite],
        principal: PrincipalDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> DeviceRead:
        """Register where the caller's pushes go, bound to this session (signing out, a
        password change or an account sealed or disabled removes it). `channel`: `fcm`,
        `apns` (hex device token), `jpush` (registration id), `webpush` (`token` is the
        subscription's https `endpoint`, `keys` its `p256dh` and `auth`) or `webhook`
        (staff: an http(s) URL and the `secret` its HMAC-SHA256 signature uses). A token
        already registered, by anyone, moves to the caller and this session (refreshing
        its app version and locale). A user keeps at most 20 devices: the one least
        recently registered goes.

        **Who may call**: any signed-in user; a webhook, staff only.

        **Errors**: `invalid_device` (400) for a token of the wrong shape, a Web Push
        subscription without valid keys, a URL that is not http(s), a webhook without its
        secret, a webhook or Web Push endpoint pointing at an internal address (loopback,
        private, link-local, `localhost`; unless `PUSH_PRIVATE_HOSTS`);
        `webhook_staff_only` (403) for a parent's webhook."""
        return await devices.register(
            principal, actor, data, private_hosts=settings.push.push_private_hosts
        )

    @get(
        "/webpush-key",
        summary="Get the key a browser subscribes to Web Push with",
        operation_id="getWebPushKey",
        responses=errors(SIGNED_IN, {404: "webpush_off"}),
    )
    async def webpush_key(self, settings: SettingsDep) -> WebPushKeyRead:
        """The VAPID public key to pass as `applicationServerKey` to the browser's
        `PushManager.subscribe`; the subscription it gives is then registered with
        `POST /devices` (`channel` `webpush`).

        **Who may call**: any signed-in user.

        **Errors**: `webpush_off` (404) when this service sends no Web Push (no VAPID key
        configured)."""
        return WebPushKeyRead(webpush_key.public_key(settings.push))

    @get(
        "/",
        summary="List my devices",
        operation_id="listMyDevices",
        responses=errors(SIGNED_IN),
    )
    async def list_devices(self, principal: PrincipalDep) -> list[DeviceRead]:
        """The caller's devices, most recently registered first, each token masked (its
        end, or a URL's host); `this_session` marks those this login registered.

        **Who may call**: any signed-in user.

        **Errors**: none beyond signing in."""
        return await devices.list_mine(principal)

    @delete(
        "/{device_id:int}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove one of my devices",
        operation_id="removeDevice",
        responses=errors(SIGNED_IN, BY_ID),
    )
    async def remove(self, device_id: FromPath[int], principal: PrincipalDep) -> None:
        """Stop pushing to one of the caller's devices.

        **Who may call**: the device's owner.

        **Errors**: `not_found` (404) for a missing id or another user's device."""
        await devices.remove(principal, device_id)


class NotificationSettingsController(Controller):
    path = "/notification-settings"
    tags = ["notifications"]
    guards = [allowed(Action.use_notifications)]

    @get(
        "/",
        summary="Read my notification settings",
        operation_id="getNotificationSettings",
        responses=errors(SIGNED_IN),
    )
    async def read(self, principal: PrincipalDep) -> SettingsRead:
        """Every category with its Chinese label, whether the caller turned its pushes off
        (`muted`; the inbox still gets them), whether it may be turned off, whether it is
        urgent (pushed even in quiet hours); and the quiet hours (China time, default
        21:00–07:30, on).

        **Who may call**: any signed-in user.

        **Errors**: none beyond signing in."""
        return await preferences.read(principal)

    @put(
        "/",
        summary="Change my notification settings",
        operation_id="putNotificationSettings",
        responses=errors(
            SIGNED_IN, JSON_BODY, {400: "category_cannot_be_muted invalid_quiet_hours"}
        ),
    )
    async def write(self, data: JSONBody[SettingsWrite], principal: PrincipalDep) -> SettingsRead:
        """Replace the caller's settings: `muted`, every category whose pushes are off, and
        `quiet_hours` (`enabled`, `start`, `end` as "HH:MM", China time; a window may cross
        midnight). Non-urgent pushes made in quiet hours wait until they end.

        **Who may call**: any signed-in user.

        **Errors**: `category_cannot_be_muted` (400) for a category that may not be turned
        off (one's own overdue steps, the test notification); `invalid_quiet_hours` (400)
        for a window that starts when it ends; `validation_error` (400) for an unknown
        category or a time not "HH:MM"."""
        return await preferences.write(principal, data)


ROUTES: list[Any] = [
    NotificationController,
    NotificationStreamController,
    DeviceController,
    NotificationSettingsController,
]
