"""Where a URL a user registered may point: a public address, never the service's own network.

A staff member registers a webhook URL, any user a Web Push subscription's endpoint, and the
worker POSTs to it: pointed at `127.0.0.1:6379`, `169.254.169.254` (a cloud's metadata
service) or a host inside the data centre, that would make the service a proxy into its own
network (SSRF). A URL whose host is an internal address or name is refused when it is
registered, and its host is resolved again before every send and refused unless every address
it resolves to is public (a name re-pointed after registration). `PUSH_PRIVATE_HOSTS=true`
lifts this (a school system on a private network, the tests' local gateways)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from backend.notify.channels.base import Outcome, SendResult

INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".lan", ".home.arpa")


def is_public_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_global
    except ValueError:
        return False


def is_internal_name(host: str) -> bool:
    """A host that is plainly internal as written: an internal address, `localhost`, a
    single-label name or an internal suffix (resolving it is the send's job)."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(INTERNAL_SUFFIXES)
    return not is_public_address(host)


async def resolves_to_public(host: str, port: int) -> bool | None:
    """True when every address `host` resolves to is public, False when one is not, None
    when it does not resolve now (try again later)."""
    host = host.strip("[]")
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None
    addresses = {info[4][0] for info in found}
    return bool(addresses) and all(is_public_address(str(address)) for address in addresses)


async def refused_unless_public(url: str) -> SendResult | None:
    """None when `url`'s host is public; else a `failed` result (an internal host, for
    good) or a `retry` (it does not resolve now)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_internal_name(host):
        return SendResult(Outcome.failed, detail="host is not public")
    public = await resolves_to_public(host, parts.port or 443)
    if public is None:
        return SendResult(Outcome.retry, detail="host does not resolve")
    if not public:
        return SendResult(Outcome.failed, detail="host is not public")
    return None
