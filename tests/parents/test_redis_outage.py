"""Redis killed with `kill -9` and started again while photos come in: the worker (a real
separate process, and the one inside the app) reconnects and says so, an upload made during
the outage is accepted and checked once Redis is back, endpoints that need Redis answer 503
with Retry-After, and nobody restarts the service or the worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from litestar import Litestar
from redis.asyncio import Redis

from backend.accounts.roles import Role
from backend.config import Settings
from backend.parents.tables import Upload, UploadCheck
from tests.factories import PASSWORD, World, login
from tests.parents.test_checks import (
    ROOT,
    parent,  # noqa: F401  (fixture)
    phone_photo,
    printed_page,
    registrar,
    world,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")

WAITING = ("uploaded", "checking")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedisServer:
    """A redis-server of this test's own, on a temp port; killed with SIGKILL, started again
    on the same port (empty: nothing is saved, as after a crash without persistence)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedisServer]:
    server = PrivateRedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.kill()
        server.process.wait(timeout=10)


@pytest.fixture
async def api_on_private_redis(
    app: Litestar, private_redis: PrivateRedisServer
) -> AsyncIterator[Litestar]:
    """The test app's Redis clients pointed at the private server for this test."""
    saved = app.state.redis, app.state.arq
    app.state.redis = Redis.from_url(private_redis.url)
    app.state.arq = await create_pool(RedisSettings.from_dsn(private_redis.url))
    try:
        yield app
    finally:
        await app.state.redis.aclose()
        await app.state.arq.aclose()
        app.state.redis, app.state.arq = saved


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], student_id: int, photo: bytes
) -> httpx.Response:
    return await client.post(
        f"/students/{student_id}/uploads", headers=headers, files={"file": ("form.jpg", photo)}
    )


async def wait_for_verdicts(upload_ids: list[int], seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = await Upload.select(Upload.id, Upload.status).where(Upload.id.is_in(upload_ids))
        if len(rows) == len(upload_ids) and all(r["status"] not in WAITING for r in rows):
            return
        time.sleep(0.2)  # noqa: ASYNC251
    tail = log.read_text()[-3000:]  # noqa: ASYNC240
    raise AssertionError(f"not every upload got a verdict: {rows}\n{tail}")


WORKER_COMMANDS = {
    "python -m backend.worker": [sys.executable, "-m", "backend.worker"],
    "arq backend.worker.WorkerSettings": [
        sys.executable,
        "-m",
        "arq",
        "backend.worker.WorkerSettings",
    ],
}


@pytest.mark.parametrize("command", list(WORKER_COMMANDS))
async def test_a_separate_worker_rides_out_a_redis_restart_and_checks_every_upload(
    client: httpx.AsyncClient,
    settings: Settings,
    world: World,  # noqa: F811
    parent: dict[str, str],  # noqa: F811
    private_redis: PrivateRedisServer,
    api_on_private_redis: Litestar,
    tmp_path: Path,
    command: str,
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[0])
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(  # noqa: ASYNC220
        WORKER_COMMANDS[command],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": private_redis.url},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        before = await upload(client, parent, world.students[0], phone_photo(page, 31))
        assert before.status_code == 201, before.text
        await wait_for_verdicts([before.json()["id"]], 120, log)

        private_redis.kill()
        time.sleep(0.5)  # noqa: ASYNC251  (the worker meets the dead server)
        during = await upload(client, parent, world.students[0], phone_photo(page, 32))
        # Accepted: the photo and its row are stored, its check waits for Redis.
        assert during.status_code == 201, during.text
        assert during.json()["status"] == "uploaded"
        refused = await client.post(
            "/auth/login", json={"phone": world.phones[Role.teacher], "password": "x"}
        )
        assert refused.status_code == 503
        assert refused.json()["code"] == "service_unavailable"
        assert refused.json()["message"] == "服务暂时不可用，请稍后再试"
        assert int(refused.headers["retry-after"]) > 0

        time.sleep(2)  # noqa: ASYNC251  (an outage of a few seconds)
        private_redis.start()  # same port, empty
        after = await upload(client, parent, world.students[0], phone_photo(page, 33))
        assert after.status_code == 201, after.text

        ids = [before.json()["id"], during.json()["id"], after.json()["id"]]
        await wait_for_verdicts(ids, 120, log)
        assert worker.poll() is None, "the worker process ended"
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    rows = await Upload.select(Upload.id, Upload.status).where(Upload.id.is_in(ids))
    assert {r["status"] for r in rows} == {"matches"}, rows
    for upload_id in ids:
        assert await UploadCheck.count().where(UploadCheck.upload == upload_id) == 1
    text = log.read_text()
    assert "worker lost Redis" in text, text[-3000:]
    assert "worker reconnected to Redis" in text, text[-3000:]
    # the project's INFO lines reach the log under either command (arq's sets up only its own)
    assert "INFO backend.ocr._ocr ocr: Tesseract through" in text, text[-3000:]


async def test_the_embedded_default_restarts_its_redis_and_its_worker_carries_on(
    client: httpx.AsyncClient,
    settings: Settings,
    world: World,  # noqa: F811
    parent: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    """`python app.py` with no Redis about: it starts its own on a unix socket and checks
    photos in-process. That Redis is killed; the app starts it again, its worker reconnects,
    and the upload made during the outage and the one after both get a verdict."""
    page = await printed_page(client, await registrar(client, world), world.students[0])
    port = free_port()
    env = {
        **os.environ,
        "RUN_WORKER_INLINE": "true",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "REDIS_PROBE_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    env.pop("REDIS_URL")
    log = tmp_path / "server.log"
    server = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)  # noqa: ASYNC251
            headers = {
                "Authorization": "Bearer "
                + (await login(http, world.phones[Role.parent]))["access_token"]
            }
            first = await upload(http, headers, world.students[0], phone_photo(page, 41))
            assert first.status_code == 201, first.text
            await wait_for_verdicts([first.json()["id"]], 120, log)

            (redis_child,) = [
                p for p in psutil.Process(server.pid).children() if "redis" in p.name()
            ]
            redis_child.send_signal(signal.SIGKILL)
            during = await upload(http, headers, world.students[0], phone_photo(page, 42))
            assert during.status_code == 201, during.text

            ids = [first.json()["id"], during.json()["id"]]
            await wait_for_verdicts(ids, 120, log)
            later = await upload(http, headers, world.students[0], phone_photo(page, 43))
            assert later.status_code == 201, later.text
            ids.append(later.json()["id"])
            await wait_for_verdicts(ids, 120, log)
            assert server.poll() is None
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    rows = await Upload.select(Upload.id, Upload.status).where(Upload.id.is_in(ids))
    assert {r["status"] for r in rows} == {"matches"}, rows
    text = log.read_text()
    assert "starting it again" in text, text[-3000:]
    # The verdicts above are the worker carrying on. Whether it noticed the outage depends on
    # where its poll was when Redis died (the client's own retry may ride it out); a worker
    # that did lose Redis must have come back.
    if "worker lost Redis" in text:
        assert "worker reconnected to Redis" in text, text[-3000:]


async def test_endpoints_that_need_redis_answer_503_with_retry_after(
    client: httpx.AsyncClient,
    world: World,  # noqa: F811
    private_redis: PrivateRedisServer,
    api_on_private_redis: Litestar,
) -> None:
    private_redis.kill()
    answers = [
        await client.post(
            "/auth/login", json={"phone": world.phones[Role.parent], "password": PASSWORD}
        ),
        await client.post(
            "/signup/start",
            json={
                "registration_code": "ABCD-EFGH",
                "birth_date": "20150101",
                "phone": "13912345678",
            },
        ),
    ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "service_unavailable"
        assert answer.json()["message"] == "服务暂时不可用，请稍后再试"
        assert answer.headers["retry-after"] == "15"
        assert answer.json()["request_id"]


async def test_a_worker_started_before_redis_waits_for_it(
    client: httpx.AsyncClient,
    world: World,  # noqa: F811
    parent: dict[str, str],  # noqa: F811
    private_redis: PrivateRedisServer,
    api_on_private_redis: Litestar,
    tmp_path: Path,
) -> None:
    """A deployment starts the worker first: it keeps trying instead of exiting."""
    page = await printed_page(client, await registrar(client, world), world.students[0])
    private_redis.kill()
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(  # noqa: ASYNC220
        WORKER_COMMANDS["arq backend.worker.WorkerSettings"],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": private_redis.url},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(8)  # noqa: ASYNC251  (longer than arq's own 5 connection retries)
        assert worker.poll() is None, log.read_text()[-3000:]
        private_redis.start()
        sent = await upload(client, parent, world.students[0], phone_photo(page, 51))
        assert sent.status_code == 201, sent.text
        await wait_for_verdicts([sent.json()["id"]], 120, log)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    row = await Upload.select(Upload.status).where(Upload.id == sent.json()["id"]).first()
    assert row == {"status": "matches"}
