"""The audit log is a keyed hash chain, anchored outside the database: `python -m backend audit
verify` proves it intact and names the first row that was changed, inserted or removed — also
when whoever changed it recomputed the hashes, and when the newest rows were cut off."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts import audit, audit_verify
from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.storage import LocalStorage, make_storage
from tests.factories import bearer, build_world, job_ctx, login

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_anchor_yet(settings: Settings) -> None:
    """Tables are emptied between tests; the anchors (outside the database) must go too."""
    shutil.rmtree(settings.var_dir / "uploads" / "audit-anchors", ignore_errors=True)


@pytest.fixture
def storage(settings: Settings) -> LocalStorage:
    made = make_storage(settings)
    assert isinstance(made, LocalStorage)
    return made


def verify_cli() -> subprocess.CompletedProcess[str]:
    return cli("verify")


def cli(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend", "audit", command],
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
    assert "does not match its keyed hash" in result.stdout


async def test_a_deleted_row_breaks_the_next_link(busy_log: None) -> None:
    rows = (
        await AuditLog.select()
        .where(AuditLog.chain == (await AuditLog.select(AuditLog.chain).first())["chain"])
        .order_by(AuditLog.seq)
    )  # type: ignore[index]
    assert len(rows) >= 3
    await AuditLog.delete().where(AuditLog.id == rows[1]["id"])

    result = await audit_verify.verify()

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
    assert (await audit_verify.verify()).ok


# --- attacks by someone who can write to the database but does not hold the audit key -------


def sha256_of(row: dict[str, Any]) -> str:
    """What an attacker recomputes: the row's hash as the code computed it before keys."""
    at: datetime = row["at"]
    material = [
        row["chain"],
        row["seq"],
        row["prev_hash"],
        at.astimezone(UTC).isoformat(timespec="microseconds"),
        row["actor_id"],
        row["actor_role"],
        row["client_addr"],
        row["request_id"],
        row["action"],
        row["entity"],
        row["entity_id"],
        row["before"],
        row["after"],
    ]
    text = json.dumps(material, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def chain_rows(chain: int) -> list[dict[str, Any]]:
    return await AuditLog.select().where(AuditLog.chain == chain).order_by(AuditLog.seq)


async def longest_chain() -> int:
    rows = await AuditLog.select(AuditLog.chain)
    counts: dict[int, int] = {}
    for row in rows:
        counts[row["chain"]] = counts.get(row["chain"], 0) + 1
    return max(counts, key=lambda c: counts[c])


async def rewrite_chain_from(chain: int, seq: int) -> None:
    """Recompute prev_hash and hash of every row of `chain` from `seq` on, SHA-256 style."""
    rows = await chain_rows(chain)
    prev = next((r["hash"] for r in rows if r["seq"] == seq - 1), audit.GENESIS)
    for row in rows:
        if row["seq"] < seq:
            continue
        row["prev_hash"] = prev
        prev = sha256_of(row)
        await AuditLog.update({AuditLog.prev_hash: row["prev_hash"], AuditLog.hash: prev}).where(
            AuditLog.id == row["id"]
        )


async def test_rewriting_a_row_and_recomputing_the_hashes_is_caught(busy_log: None) -> None:
    chain = await longest_chain()
    rows = await chain_rows(chain)
    victim = rows[1]
    await AuditLog.update({AuditLog.after: '{"innocent":true}'}).where(AuditLog.id == victim["id"])
    await rewrite_chain_from(chain, victim["seq"])

    result = verify_cli()

    assert result.returncode == 1, result.stdout
    assert f"BROKEN at row id={victim['id']} (chain {chain}, seq {victim['seq']})" in result.stdout
    assert "does not match its keyed hash" in result.stdout


async def test_deleting_the_newest_rows_after_an_anchor_is_caught(busy_log: None) -> None:
    anchored = cli("anchor")
    assert anchored.returncode == 0, anchored.stdout + anchored.stderr
    chain = await longest_chain()
    rows = await chain_rows(chain)
    assert len(rows) >= 3
    await AuditLog.delete().where(AuditLog.id.is_in([rows[-1]["id"], rows[-2]["id"]]))

    result = verify_cli()

    assert result.returncode == 1, result.stdout
    last = rows[-3]["seq"]
    assert f"missing tail: chain {chain} ends at seq {last}, but the anchor of" in result.stdout, (
        result.stdout
    )
    assert f"rows {last + 1}..{last + 2} were removed" in result.stdout


async def test_cutting_the_tail_and_writing_on_is_caught(busy_log: None) -> None:
    """Rows written after the cut take the removed rows' seq numbers, with valid keyed hashes:
    the anchor still tells them apart."""
    assert cli("anchor").returncode == 0
    chain = await longest_chain()
    rows = await chain_rows(chain)
    await AuditLog.delete().where(AuditLog.id == rows[-1]["id"])
    writer = rows[-1]
    actor = audit.Actor(writer["actor_id"], writer["actor_role"], writer["client_addr"])
    assert audit.chain_of(actor) == chain
    await audit.record(actor, "read", "school", 1)

    result = await audit_verify.verify(make_storage_for_test())

    assert not result.ok
    assert result.broken_chain == chain
    assert result.broken_seq == rows[-1]["seq"]
    assert "differs from the anchor" in (result.reason or "")


def make_storage_for_test() -> Any:
    from backend.config import get_settings

    return make_storage(get_settings())


async def test_anchoring_never_blesses_a_cut_chain(
    app: Litestar, busy_log: None, storage: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    from backend.worker import CRON_JOBS, anchor_audit_job

    assert any(job.coroutine is anchor_audit_job for job in CRON_JOBS)
    first = await audit_verify.anchor(storage)
    chain = await longest_chain()
    rows = await chain_rows(chain)
    await AuditLog.delete().where(AuditLog.id == rows[-1]["id"])

    with caplog.at_level(logging.ERROR, logger="registry.audit"):
        anchored = await anchor_audit_job(job_ctx(app, storage=storage))
    by_hand = cli("anchor")

    assert anchored == 0
    assert f"chain {chain} no longer holds seq {rows[-1]['seq']}" in caplog.text
    assert by_hand.returncode == 1
    assert "NOT ANCHORED" in by_hand.stdout
    latest = await audit_verify.latest_anchor(storage)
    assert latest == first  # the anchor that proves the cut is still the latest
    assert not (await audit_verify.verify(storage)).ok


async def test_an_inserted_row_is_caught(busy_log: None) -> None:
    chain = await longest_chain()
    rows = await chain_rows(chain)
    after = rows[1]
    # Make room after `after`, insert a forged row there, and recompute the rest.
    for row in reversed(rows[2:]):
        await AuditLog.update({AuditLog.seq: row["seq"] + 1}).where(AuditLog.id == row["id"])
    forged = {**after, "seq": after["seq"] + 1, "action": "reveal", "entity_id": "1"}
    forged.pop("id")
    inserted = (await AuditLog.insert(AuditLog(**forged)))[0]["id"]
    await rewrite_chain_from(chain, after["seq"] + 1)

    result = verify_cli()

    assert result.returncode == 1, result.stdout
    assert f"BROKEN at row id={inserted} (chain {chain}, seq {after['seq'] + 1})" in result.stdout


async def test_an_appended_row_is_caught(busy_log: None) -> None:
    chain = await longest_chain()
    last = (await chain_rows(chain))[-1]
    forged = {**last, "seq": last["seq"] + 1, "prev_hash": last["hash"], "action": "reveal"}
    forged.pop("id")
    forged["hash"] = sha256_of(forged)
    inserted = (await AuditLog.insert(AuditLog(**forged)))[0]["id"]

    result = verify_cli()

    assert result.returncode == 1
    assert f"BROKEN at row id={inserted} " in result.stdout


async def test_an_untouched_log_verifies_against_its_anchor(
    busy_log: None, client: httpx.AsyncClient, storage: LocalStorage
) -> None:
    anchored = cli("anchor")
    assert anchored.returncode == 0, anchored.stdout + anchored.stderr
    # Life goes on after the anchor: more rows, a second anchor that extends the first.
    await client.post("/auth/login", json={"phone": "13599999998", "password": "wrong123"})
    second = await audit_verify.anchor(storage)

    result = verify_cli()

    assert result.returncode == 0, result.stdout
    rows = await AuditLog.count()
    assert f"{rows} rows verified with the audit key" in result.stdout
    assert f"every chain reaches the anchor of {second.at.isoformat(timespec='seconds')}" in (
        result.stdout
    )
    history = list((storage.root / "audit-anchors").rglob("*.json"))
    assert len(history) == 3  # two in the history, and latest.json


async def test_the_anchor_is_signed_and_logged(
    busy_log: None, storage: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="registry.audit"):
        signed = await audit_verify.anchor(storage)
    assert signed.mac in caplog.text  # the log is a second, independent copy
    assert signed.heads == await audit_verify.heads()
    # An attacker lowers the anchored head to match the cut: the signature no longer fits.
    chain = await longest_chain()
    raw = json.loads(await storage.get(audit_verify.ANCHOR_LATEST))
    raw["heads"][str(chain)][0] -= 1
    await storage.put(audit_verify.ANCHOR_LATEST, json.dumps(raw).encode(), "application/json")

    result = verify_cli()

    assert result.returncode == 1
    assert "signature does not match" in result.stdout


async def test_keys_rotate_by_key_id() -> None:
    old = audit.Keys({"k1": "a" * 32}, "k1")
    both = audit.Keys({"k2": "b" * 32, "k1": "a" * 32}, "k2")
    new_only = audit.Keys({"k2": "b" * 32}, "k2")
    actor = audit.Actor(account_id=7, role="registrar")
    await audit.record_many(actor, [audit.Entry("read", "school", 1)], keys=old)
    await audit.record_many(actor, [audit.Entry("read", "school", 2)], keys=both)

    assert [r["key_id"] for r in await chain_rows(audit.chain_of(actor))] == ["k1", "k2"]
    assert (await audit_verify.verify(keys=both)).ok
    refused = await audit_verify.verify(keys=new_only)
    assert refused.broken_seq == 1
    assert "key id 'k1', which is not held" in (refused.reason or "")
    # A guessed key is no key: the whole chain fails under it.
    assert not (
        await audit_verify.verify(keys=audit.Keys({"k1": "c" * 32, "k2": "b" * 32}, "k2"))
    ).ok


async def test_the_keying_migration_rechains_legacy_rows_and_says_what_it_found() -> None:
    """Rows written before keys (plain SHA-256, no key id) are re-chained under the key; the
    migration notes in each chain whether the old chain verified."""
    import importlib

    migration = importlib.import_module("migrations.backend_2026_12_01t02_40_00_000000")
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    for chain, count in ((0, 3), (5, 2)):
        prev = audit.GENESIS
        for seq in range(1, count + 1):
            row: dict[str, Any] = {
                "chain": chain,
                "seq": seq,
                "prev_hash": prev,
                "at": at,
                "actor_id": 3,
                "actor_role": "registrar",
                "client_addr": "198.51.100.4",
                "request_id": f"legacy{seq:04d}",
                "action": "read",
                "entity": "school",
                "entity_id": str(seq),
                "before": None,
                "after": None,
                "key_id": None,
            }
            row["hash"] = prev = sha256_of(row)
            await AuditLog.insert(AuditLog(**row))
    tampered = (await chain_rows(5))[0]
    await AuditLog.update({AuditLog.entity_id: "99"}).where(AuditLog.id == tampered["id"])
    before = await audit_verify.verify()
    assert before.reason == "row is not keyed (written by code older than the audit key)"

    from backend.db import transaction

    async with transaction():  # as the migration runner does
        await migration._rechain()

    assert (await audit_verify.verify()).ok
    markers = {
        r["chain"]: r for r in await AuditLog.select().where(AuditLog.action == "audit_rekeyed")
    }
    assert json.loads(markers[0]["after"])["rows"] == 3
    assert json.loads(markers[0]["before"]) == {"hash": "sha256", "legacy_broken_at_id": None}
    assert json.loads(markers[5]["before"])["legacy_broken_at_id"] == tampered["id"]
    assert markers[5]["seq"] == 3


def test_audit_key_setting() -> None:
    from backend.config import settings_from_env

    env = {"VAR_DIR": os.environ["VAR_DIR"], "JWT_KEYS": "k:" + "j" * 32}
    rotated = settings_from_env({**env, "AUDIT_KEY": f"a2:{'x' * 32},a1:{'y' * 32}"})
    assert rotated.audit_active_kid == "a2"
    assert dict(rotated.audit_keys) == {"a2": "x" * 32, "a1": "y" * 32}
    default = settings_from_env(env)
    assert default.audit_active_kid == "local1"
    assert (Path(os.environ["VAR_DIR"]) / "audit-dev.key").exists()
    for bad in ("just-a-secret-without-an-id-0123456789", "a1:short"):
        with pytest.raises(ValueError, match="AUDIT_KEY"):
            settings_from_env({**env, "AUDIT_KEY": bad})


async def test_an_unreadable_anchor_store_fails_verification() -> None:
    """No anchor yet (S3 says NoSuchKey) is not an error; an unreachable store is: verify must
    not pass because it could not look."""

    class ClientError(Exception):  # the shape of botocore's
        def __init__(self, code: str) -> None:
            super().__init__(code)
            self.response = {"Error": {"Code": code}}

    class Store:
        def __init__(self, error: Exception) -> None:
            self.error = error

        async def get(self, key: str) -> bytes:
            raise self.error

    assert await audit_verify.latest_anchor(Store(ClientError("NoSuchKey"))) is None  # type: ignore[arg-type]
    with pytest.raises(audit_verify.AnchorError, match="cannot be read"):
        await audit_verify.verify(Store(ClientError("AccessDenied")))  # type: ignore[arg-type]
    with pytest.raises(audit_verify.AnchorError, match="cannot be read"):
        await audit_verify.verify(Store(ConnectionRefusedError()))  # type: ignore[arg-type]
