"""A typed client generated from the live schema completes the parent's journey.

The service runs on a real port (uvicorn, in this test's event loop) with a real arq worker;
its `/schema/openapi.json` is fetched over HTTP, openapi-python-client generates a package
from it, `mypy --strict` checks that package together with `journey.py`, and the journey runs
against the service using only the generated client: sign up with the printed code, log in,
list my children, upload the signed form's photo, poll for the verdict, read the child again.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from arq import create_pool
from arq.connections import RedisSettings
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.tables import GuardianLink, Student
from backend.worker import inline_worker
from tests.factories import World, bearer, build_world, login, make_students, open_campaign
from tests.parents.helpers import code_of, issue_forms, otp_from
from tests.parents.test_checks import phone_photo, printed_page

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
GENERATOR_CONFIG = """\
post_hooks: []
content_type_overrides:
  image/jpeg: application/octet-stream
  image/png: application/octet-stream
  application/pdf: application/octet-stream
"""


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 1)
    await open_campaign()
    await issue_forms(client, world)
    return world


@pytest.fixture
async def base_url(app: Litestar) -> AsyncIterator[str]:
    """The app on a real socket, in this loop (its pools live here); its lifespan is already
    running (the session's `app` fixture)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
async def worker(app: Litestar) -> AsyncIterator[None]:
    """A real arq worker checking photos as they arrive, as in production."""
    pool = await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))
    running = inline_worker(app.state.resources, pool, poll_delay=0.05)
    task = asyncio.create_task(running.async_run())
    yield
    await running.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run(*command: str | Path, cwd: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        *map(str, command),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{command[0]} failed:\n{text}"
    return text


async def generate_client(base_url: str, where: Path) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get("/schema/openapi.json")
    assert response.status_code == 200
    (where / "openapi.json").write_text(json.dumps(response.json()))
    (where / "config.yml").write_text(GENERATOR_CONFIG)
    output = await run(
        BIN / "openapi-python-client",
        "generate",
        "--path=openapi.json",
        "--meta=none",
        "--output-path=registry_client",
        "--config=config.yml",
        cwd=where,
    )
    # Every operation must make it into the client: a warning means one was skipped.
    assert "Warning" not in output, output
    shutil.copy(HERE / "journey.py", where / "journey.py")
    await run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--python-version=3.11",
        f"--cache-dir={where / '.mypy_cache'}",
        "registry_client",
        "journey.py",
        cwd=where,
    )


async def test_a_generated_client_completes_the_parents_journey(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    base_url: str,
    worker: None,
    tmp_path: Path,
) -> None:
    student_id = world.students[0]
    student = await Student.select(Student.fields).where(Student.id == student_id).first()
    assert student is not None
    fields: dict[str, Any] = (
        student["fields"] if isinstance(student["fields"], dict) else json.loads(student["fields"])
    )
    phone = fields["guardian1_phone"]
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    photo = phone_photo(await printed_page(client, registrar, student_id), seed=1)
    code = await code_of(settings, student_id)
    sms_log: list[tuple[str, str]] = app.state.sms.sent

    async def sms_code_for(to: str) -> str:
        return otp_from(sms_log, to)

    await generate_client(base_url, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        journey = importlib.import_module("journey")
        outcome = await journey.journey(
            base_url, code, fields["birth_date"], phone, "Parent2026pw", photo, sms_code_for
        )
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "journey" or m.startswith("registry_client")]:
            del sys.modules[name]

    assert outcome.student_id == student_id
    assert outcome.verdict.value == "matches", outcome.message
    assert outcome.message == "确认表与学籍信息一致，已签字，无需其他操作。谢谢！"
    assert outcome.form_status == "matches"
    assert outcome.record.id == student_id
    assert outcome.record.registry_number
    links = await GuardianLink.select().where(GuardianLink.student == student_id)
    assert [link["status"] for link in links] == ["confirmed"]
