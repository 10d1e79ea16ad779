"""The shared HTTP client and the channels built on it from the settings: one
`httpx.AsyncClient` with HTTP/2 (APNs multiplexes every send on one connection; the others
get HTTP/2 where the gateway offers it), each channel off when its credentials are unset."""

from __future__ import annotations

import ssl

import certifi
import httpx

from backend.config import PushSettings
from backend.notify.channels.apns import ApnsChannel
from backend.notify.channels.base import Channel
from backend.notify.channels.fcm import FcmChannel
from backend.notify.channels.gateway import Unconfigured
from backend.notify.channels.jpush import JPushChannel
from backend.notify.channels.webhook import WebhookChannel
from backend.notify.channels.webpush import WebPushChannel

# Connections kept per host: APNs and FCM multiplex on few; keep room for bursts.
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def http_client(push: PushSettings) -> httpx.AsyncClient:
    """The one client the process shares (pushes, SMS). `push.ca_file` adds certificates to
    trust beside the usual ones (a gateway behind a private CA, the tests' local gateways)."""
    context = ssl.create_default_context(cafile=certifi.where())
    if push.ca_file:
        context.load_verify_locations(cafile=push.ca_file)
    return httpx.AsyncClient(http2=True, verify=context, timeout=10, limits=LIMITS)


def build_channels(push: PushSettings, http: httpx.AsyncClient) -> dict[str, Channel]:
    timeout = push.timeout_seconds
    channels: dict[str, Channel] = {
        "fcm": Unconfigured("fcm"),
        "apns": Unconfigured("apns"),
        "webpush": Unconfigured("webpush"),
        "jpush": Unconfigured("jpush"),
        # each device brings its secret; its host must be public unless settings allow it
        "webhook": WebhookChannel(http, timeout=timeout, private_hosts=push.push_private_hosts),
    }
    if push.fcm_service_account_file:
        channels["fcm"] = FcmChannel.from_file(
            http,
            push.fcm_service_account_file,
            base_url=push.fcm_base_url,
            token_url=push.fcm_token_url,
            timeout=timeout,
        )
    if push.apns_on and push.apns_key_file:
        channels["apns"] = ApnsChannel.from_file(
            http,
            push.apns_key_file,
            key_id=push.apns_key_id,
            team_id=push.apns_team_id,
            topic=push.apns_topic,
            base_url=push.apns_base_url,
            timeout=timeout,
        )
    if push.webpush_on and push.vapid_private_key_file:
        channels["webpush"] = WebPushChannel.from_file(
            http,
            push.vapid_private_key_file,
            subject=push.vapid_subject,
            timeout=timeout,
            private_hosts=push.push_private_hosts,
        )
    if push.jpush_on:
        channels["jpush"] = JPushChannel(
            http,
            app_key=push.jpush_app_key,
            master_secret=push.jpush_master_secret,
            base_url=push.jpush_base_url,
            timeout=timeout,
        )
    return channels
