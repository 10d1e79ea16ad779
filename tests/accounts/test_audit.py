"""The audit log is a hash chain: `python -m backend audit verify` proves it intact and names
the first row that was edited."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backend.accounts import audit
from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from tests.factories import bearer, build_world, login

ROOT = Path(__file__).resolve().parents[2]


def verify_cli() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend", "audit", "verify"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def busy_log(client: httpx.AsyncClient, settings: Settings) -> None:
    world = await build_world(settings)
    for role in (Role.registrar, Role.city_admin, Role.teacher):
        headers = bearer(await login(client, world.phones[role]))
        await client.get(f"/org/schools/{world.schools['D']}", headers=headers)
    await client.post("/auth/login", json={"phone": "13599999999", "password": "wrong123"})


async def test_intact_log_verifies(busy_log: None) -> None:
    rows = await AuditLog.count()
    assert rows > 20

    result = verify_cli()

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{rows} rows verified" in result.stdout


async def test_an_edited_row_is_named(busy_log: None) -> None:
    victim = await AuditLog.select().where(AuditLog.action == "access_denied").first()
    assert victim is not None
    await AuditLog.update({AuditLog.after: '{"innocent":true}'}).where(AuditLog.id == victim["id"])

    result = verify_cli()

    assert result.returncode == 1
    assert f"row id={victim['id']} " in result.stdout
    assert "does not match its hash" in result.stdout


async def test_a_deleted_row_breaks_the_next_link(busy_log: None) -> None:
    rows = (
        await AuditLog.select()
        .where(AuditLog.chain == (await AuditLog.select(AuditLog.chain).first())["chain"])
        .order_by(AuditLog.seq)
    )  # type: ignore[index]
    assert len(rows) >= 3
    await AuditLog.delete().where(AuditLog.id == rows[1]["id"])

    result = await audit.verify()

    assert not result.ok
    assert result.broken_id == rows[2]["id"]


async def test_each_row_links_to_the_one_before(busy_log: None) -> None:
    rows = await AuditLog.select().order_by(AuditLog.chain).order_by(AuditLog.seq)
    links = 0
    for before, after in itertools.pairwise(rows):
        if before["chain"] == after["chain"]:
            assert after["prev_hash"] == before["hash"]
            assert after["seq"] == before["seq"] + 1
            links += 1
    assert links >= len(rows) - audit.CHAINS


async def test_concurrent_writers_never_fork_a_chain() -> None:
    actor = audit.Actor(account_id=42, role="registrar", client_addr="198.51.100.1")

    await asyncio.gather(*(audit.record(actor, "test", "thing", i) for i in range(25)))

    rows = await AuditLog.select(AuditLog.seq).where(AuditLog.actor_id == 42)
    assert sorted(r["seq"] for r in rows) == list(range(1, 26))
    assert (await audit.verify()).ok
