"""The live stream, served by real API processes (uvicorn, as deployed) that share the test
database and Redis: a notification made through process A reaches a client of process B; a
reconnect with Last-Event-ID is replayed what it missed, once; a browser's ticket works once;
a client that goes leaves no subscription behind; open streams hold no database connection."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import transaction
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify, stream_channel
from backend.outbox import Outbox
from tests.factories import World, bearer, build_world, login

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # seconds: a bound so that a broken stream fails the test instead of hanging it


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]


def start_server(log: Path, **env: str) -> Server:
    """`uvicorn app:app` in a process of its own, on a socket bound here (no port race)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--fd", str(sock.fileno()), "--no-access-log"],
        cwd=ROOT,
        env={**os.environ, **env},
        pass_fds=[sock.fileno()],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    sock.close()
    return Server(f"http://127.0.0.1:{port}", process)


async def wait_until_up(server: Server) -> bool:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(int(WAIT * 10)):
            if server.process.poll() is not None:
                return False
            with suppress(httpx.TransportError):
                if (await http.get("/health")).status_code == 200:
                    return True
            await asyncio.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="module")
async def servers(app: Litestar, logs: Path) -> AsyncIterator[tuple[Server, Server]]:
    """Two API processes; B with a database pool of 2, to show open streams hold none, and
    checking its streams' sessions every second."""
    a = start_server(logs / "a.log")
    b = start_server(logs / "b.log", DB_POOL_SIZE="2", STREAM_SESSION_CHECK_SECONDS="1")
    try:
        up = await asyncio.gather(wait_until_up(a), wait_until_up(b))
        for server_up, log in zip(up, ("a.log", "b.log"), strict=True):
            assert server_up, (logs / log).read_text()[-3000:]
        yield a, b
    finally:
        for server in (a, b):
            server.process.terminate()
        for server in (a, b):
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


class Events:
    """The events and comments of one open `text/event-stream` response, as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self) -> dict[str, Any]:
        """The next event or comment: {"comment": ...} or {"id", "event", "data"}."""
        return await asyncio.wait_for(self._next(), WAIT)

    async def _next(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        async for line in self.lines:
            if line == "":
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                fields.setdefault("comment", value)
            elif name == "data":
                fields["data"] = json.loads(value)
            else:
                fields[name] = value
        raise AssertionError("the stream ended")

    async def notification(self) -> dict[str, Any]:
        """The next notification event, skipping comments (keep-alives)."""
        while "comment" in (event := await self.next()):
            pass
        assert event["event"] == "notification"
        assert int(event["id"]) == event["data"]["id"]
        return event["data"]  # type: ignore[no-any-return]


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[Events]:
    async with http.stream(
        "GET", "/notifications/stream", headers=headers or {}, params=params
    ) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = Events(response)
        assert (await events.next())["comment"] == "connected"  # subscribed: nothing missed
        yield events


@pytest.fixture
def clients(servers: tuple[Server, Server]) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    a, b = servers
    timeout = httpx.Timeout(WAIT)
    return (
        httpx.AsyncClient(base_url=a.url, timeout=timeout),
        httpx.AsyncClient(base_url=b.url, timeout=timeout),
    )


async def test_a_notification_made_through_one_process_reaches_a_stream_on_another(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], world: World
) -> None:
    a, b = clients
    async with a, b:
        parent = bearer(await login(a, world.phones[Role.parent]))
        async with open_stream(b, parent) as stream:
            sent = await a.post("/notifications/test", headers=parent)
            assert sent.status_code == 201, sent.text

            event = await stream.notification()

        assert event["id"] == sent.json()["id"]
        assert event["category"] == "test"
        assert event["category_label"] == "测试通知"
        assert event["title"] == "测试通知"


async def test_a_reconnect_is_replayed_what_it_missed_then_streams_on_once(
    app: Litestar, clients: tuple[httpx.AsyncClient, httpx.AsyncClient], world: World
) -> None:
    a, b = clients
    teacher = world.accounts[Role.teacher]
    outbox = Outbox(app.state.arq)
    ids = []
    for title in ("看过的", "错过的一", "错过的二"):
        async with transaction():
            ids += await notify(outbox, [teacher], Note(Category.thread_new, title))
    async with a, b:
        headers = bearer(await login(a, world.phones[Role.teacher]))
        async with open_stream(b, {**headers, "Last-Event-ID": str(ids[0])}) as stream:
            replayed = [await stream.notification(), await stream.notification()]
            sent = (await a.post("/notifications/test", headers=headers)).json()
            live = await stream.notification()

    assert [e["id"] for e in replayed] == ids[1:]
    assert [e["title"] for e in replayed] == ["错过的一", "错过的二"]
    assert live["id"] == sent["id"]  # and not the replayed ones a second time


async def test_a_browser_opens_the_stream_with_a_ticket_good_once(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], world: World
) -> None:
    a, b = clients
    async with a, b:
        parent = bearer(await login(a, world.phones[Role.parent]))
        ticket = await a.post("/notifications/stream-ticket", headers=parent)
        assert ticket.status_code == 201, ticket.text
        code = ticket.json()["ticket"]

        async with open_stream(b, ticket=code) as stream:
            sent = (await a.post("/notifications/test", headers=parent)).json()
            assert (await stream.notification())["id"] == sent["id"]

        again = await b.get("/notifications/stream", params={"ticket": code})
        nothing = await b.get("/notifications/stream")
        forged = await b.get("/notifications/stream", headers={"Authorization": "Bearer x.y.z"})
    assert (again.status_code, again.json()["code"]) == (401, "invalid_stream_ticket")
    assert nothing.status_code == 401
    assert forged.status_code == 401


async def test_a_client_that_goes_leaves_no_subscription_and_streams_hold_no_db_connection(
    app: Litestar, clients: tuple[httpx.AsyncClient, httpx.AsyncClient], world: World
) -> None:
    a, b = clients
    redis = app.state.redis
    channel = stream_channel(world.accounts[Role.registrar])
    async with a, b:
        headers = bearer(await login(a, world.phones[Role.registrar]))
        # Process B has a pool of 2 database connections: 4 open streams and a read beside them.
        async with (
            open_stream(b, headers),
            open_stream(b, headers),
            open_stream(b, headers),
            open_stream(b, headers),
        ):
            [(_, subscribers)] = await redis.pubsub_numsub(channel)
            assert subscribers == 4
            count = await b.get("/notifications/unread-count", headers=headers)
            assert count.status_code == 200, count.text
        for _ in range(int(WAIT * 10)):
            [(_, subscribers)] = await redis.pubsub_numsub(channel)
            if subscribers == 0:
                break
            await asyncio.sleep(0.1)
        assert subscribers == 0


async def test_a_stream_closes_when_its_session_ends_elsewhere(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], world: World
) -> None:
    """Signed out on process A, the stream open on B stops: a phone handed on, or a
    stolen token revoked, no longer receives the family's notifications."""
    a, b = clients
    async with a, b:
        tokens = await login(a, world.phones[Role.parent])
        headers = bearer(tokens)
        other = bearer(await login(a, world.phones[Role.parent]))  # a second session
        async with open_stream(b, headers) as stream, open_stream(b, other) as kept:
            out = await a.post("/auth/logout", headers=headers)
            assert out.status_code in (200, 204), out.text
            async with asyncio.timeout(WAIT):  # keep-alives alone would never end the loop
                while "comment" in (event := await stream.next()):
                    pass
            assert event["event"] == "session_ended"
            with pytest.raises(AssertionError, match="the stream ended"):
                await stream.next()

            sent = await a.post("/notifications/test", headers=other)
            assert (await kept.notification())["id"] == sent.json()["id"]  # the other lives on
