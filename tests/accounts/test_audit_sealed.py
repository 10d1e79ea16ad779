"""The audit log is no second copy of minors' data (backend/accounts/audit_seal.py): after a
whole journey — an import with guardians, a parent signing up and linking, a phone and an
address corrected and approved, a transfer whose reason carries a phone, refusals — no ID
number, phone or address the journey used is in any text column of `audit_log` or
`pending_refusal`; which fields changed stays readable; an investigator opens a row with
`python -m backend audit reveal` and finds an ID number's rows by keyed hash; the chain still
verifies; rows sealed under an older key still open once a newer key is active."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend import worker
from backend.accounts import audit, audit_verify, refusal_queue
from backend.accounts.audit_seal import Sealer
from backend.accounts.refusal_queue import PendingRefusal
from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.masking import is_sensitive_key
from backend.records.catalog import FIELDS
from backend.records.service import load_fields
from backend.records.tables import Student
from tests.factories import World, bearer, login, open_campaign, run_jobs
from tests.parents.helpers import code_of, issue_forms, otp_from
from tests.records.files import HEADERS, student_row, to_csv
from tests.records.requests import decide, multipart
from tests.transfers.world import as_role, as_staff, start_transfer, transfer_world

NEW_ADDRESS = "浙江省杭州市西湖区文三路88号5幢1201室"
NEW_PHONE = "13955556666"
REASON_PHONE = "13700009999"
GUARDIAN_ID = "330106198001011234"
TEXT_COLUMNS = ("before", "after", "entity_id", "request_id", "client_addr", "action", "entity")


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await transfer_world(settings)
    await open_campaign(corrections_open=True)
    return world


def sensitive_values(fields: dict[str, Any]) -> set[str]:
    return {str(v) for k, v in fields.items() if is_sensitive_key(k) and v}


async def every_sensitive_value() -> set[str]:
    values = {NEW_ADDRESS, NEW_PHONE, REASON_PHONE, GUARDIAN_ID}
    for row in await Student.select(Student.registry_number, Student.fields):
        values |= sensitive_values(load_fields(row["fields"]))
        values.add(row["registry_number"])
    return values


async def plaintext_in(table: type[Any], columns: tuple[str, ...], values: set[str]) -> list[str]:
    found = []
    for row in await table.select():
        for column in columns:
            text = str(row.get(column) or "")
            found += [f"{table.__name__}.{column} id={row['id']}: {v}" for v in values if v in text]
    return found


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend", "audit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def parent_signs_up(client: httpx.AsyncClient, app: Litestar, settings: Settings) -> Any:
    """A guardian signs up with the registration code of the second child's form."""
    child = (await Student.select(Student.id, Student.fields).order_by(Student.id))[1]
    fields = load_fields(child["fields"])
    phone = fields["guardian1_phone"]
    app.state.sms.sent.clear()
    started = await client.post(
        "/signup/start",
        json={
            "registration_code": await code_of(settings, child["id"]),
            "birth_date": fields["birth_date"],
            "phone": phone,
        },
    )
    assert started.status_code == 200, started.text
    confirmed = await client.post(
        "/signup/confirm",
        json={
            "ticket": started.json()["ticket"],
            "sms_code": otp_from(app.state.sms.sent, phone),
            "password": "Parent2026pw",
        },
    )
    assert confirmed.status_code == 200, confirmed.text
    return child["id"], bearer(confirmed.json())


async def correction_approved(
    client: httpx.AsyncClient, world: World, parent: dict[str, str], child: int, code: str, new: str
) -> None:
    made = await client.post(
        f"/my/children/{child}/change-requests",
        files=multipart({"field_code": code, "new_value": new, "reason": "信息有变"}),
        headers=parent,
    )
    assert made.status_code == 201, made.text
    for role in (Role.teacher, Role.registrar, Role.school_leader):
        mine = await client.get(f"/my/change-requests/{made.json()['id']}", headers=parent)
        step = mine.json()["current_step"]
        assert step["role"] == role.value, step
        done = await decide(client, await as_role(client, world, role), step["id"])
        assert done.status_code == 200, done.text


async def journey(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> tuple[int, int]:
    """Every step that writes audit rows; the corrected child and the transferred one."""
    registrar = await as_role(client, world, Role.registrar)
    rows = [student_row(i, 家庭成员1身份证件号=GUARDIAN_ID) for i in (41, 42)]
    started = await client.post(
        "/imports",
        headers=registrar,
        files={"file": ("学生.csv", to_csv(rows, [*HEADERS, "家庭成员1身份证件号"]))},
        data={"dry_run": "false"},
    )
    assert started.status_code == 202, started.text
    await run_jobs(app, settings)
    report = await client.get(f"/imports/{started.json()['id']}", headers=registrar)
    assert report.json()["status"] == "done", report.text

    await issue_forms(client, world)
    child, parent = await parent_signs_up(client, app, settings)
    await correction_approved(client, world, parent, child, "current_address", NEW_ADDRESS)
    await correction_approved(client, world, parent, child, "phone", NEW_PHONE)

    moved = world.students[2]
    receiving = await as_staff(client, world, "registrar_G")
    reason = f"随父母工作调动迁居，父亲电话 {REASON_PHONE}"
    transfer = await start_transfer(client, receiving, moved, world.classes["G1"], reason)
    assert transfer.status_code == 201, transfer.text
    for headers in (registrar, await as_role(client, world, Role.county_reviewer)):
        current = await client.get(f"/status-changes/{transfer.json()['id']}", headers=headers)
        step = current.json()["current_step"]
        assert (await decide(client, headers, step["id"])).status_code == 200

    # refused: another family's child (403 or an out-of-scope 404, both audited)
    refused = await client.get(f"/my/children/{world.other_students[0]}", headers=parent)
    assert refused.status_code in (403, 404)
    assert (await client.get("/accounts", headers=parent)).status_code == 403
    return child, moved


async def test_after_a_journey_the_audit_log_holds_no_plaintext_and_says_what_changed(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    child, _ = await journey(client, app, settings, world)
    values = await every_sensitive_value()
    assert len(values) > 20

    assert await plaintext_in(AuditLog, TEXT_COLUMNS, values) == []

    # which field changed is readable, and that it changed, without opening anything
    updates = (
        await AuditLog.select()
        .where(
            (AuditLog.action == "update")
            & (AuditLog.entity == "student")
            & (AuditLog.entity_id == str(child))
        )
        .order_by(AuditLog.id)
    )
    changed = [(json.loads(u["before"]), json.loads(u["after"])) for u in updates]
    assert {key for _, after in changed for key in after} >= {"current_address", "phone"}
    for before, after in changed:
        for key in after:
            assert set(after[key]) == {"h", "c"}
            assert before[key]["h"] != after[key]["h"]  # same key: equal hash, equal value

    # an investigator opens the row (the reveal audited with its reason) …
    address_row = next(u for u in updates if "current_address" in json.loads(u["after"]))
    shown = cli("reveal", str(address_row["id"]), "--reason", "家长投诉核查")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["after"]["current_address"] == NEW_ADDRESS
    [revealed] = await AuditLog.select().where(AuditLog.action == "reveal")
    assert (revealed["entity"], revealed["entity_id"]) == ("audit_log", str(address_row["id"]))
    assert "家长投诉核查" in revealed["after"]
    # … and finds every row of one ID number by its keyed hash, the registry number's too
    id_number = load_fields((await Student.select().where(Student.id == child))[0]["fields"])[
        "id_number"
    ]
    sealer = Sealer.of(settings)
    expected = [
        r["id"]
        for r in await AuditLog.select().order_by(AuditLog.id)
        if id_number
        in json.dumps(sealer.reveal(json.loads(r["after"] or "null")))
        + json.dumps(sealer.reveal(json.loads(r["before"] or "null")))
    ]
    assert len(expected) >= 1
    assert await audit.rows_mentioning(id_number) == expected
    found = cli("mentions", stdin=id_number + "\n")
    assert found.stdout.split() == [str(i) for i in expected], found.stderr
    assert await audit.rows_mentioning("110101199001011237") == []

    assert (await audit_verify.verify()).ok


async def test_deferred_refusals_wait_sealed_and_drain_into_a_chain_that_verifies(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusal_queue, "deferred", lambda: True)
    actor = audit.Actor(account_id=world.accounts[Role.parent], role="parent")
    await refusal_queue.record_refusal(
        actor,
        "forbidden",
        "student",
        1,
        after={"code": "x", "phone": "13912341234", "note": f"身份证 {GUARDIAN_ID}"},
    )
    parent = bearer(await login(client, world.phones[Role.parent]))
    assert (await client.get(f"/students/{world.students[1]}", headers=parent)).status_code in (
        403,
        404,
    )
    columns = ("after", "entity_id", "request_id", "client_addr")
    values = await every_sensitive_value() | {"13912341234"}
    assert await PendingRefusal.count() >= 1
    assert await plaintext_in(PendingRefusal, columns, values) == []

    assert await worker.drain_refusals_job({}) >= 1
    assert await plaintext_in(AuditLog, TEXT_COLUMNS, values) == []
    [row] = await AuditLog.select().where(
        (AuditLog.action == "forbidden") & (AuditLog.entity_id == "1")
    )
    opened = Sealer.of().reveal(json.loads(row["after"]))
    assert opened == {"code": "x", "phone": "13912341234", "note": f"身份证 {GUARDIAN_ID}"}
    assert (await audit_verify.verify()).ok


async def test_rows_sealed_under_an_older_key_still_open_after_rotation() -> None:
    key_a = Sealer.from_secrets({"ka": "a" * 32}, "ka")
    ring = Sealer.from_secrets({"kb": "b" * 32, "ka": "a" * 32}, "kb")
    actor = audit.Actor(account_id=7, role="registrar")
    phone = "13812345678"
    await audit.record_many(
        actor, [audit.Entry("update", "student", 1, None, {"phone": phone})], sealer=key_a
    )
    await audit.record_many(
        actor, [audit.Entry("update", "student", 2, None, {"phone": phone})], sealer=ring
    )
    rows = await AuditLog.select().order_by(AuditLog.id)
    sealed = [json.loads(r["after"])["phone"] for r in rows]
    assert [s["c"].split(":")[0] for s in sealed] == ["ka", "kb"]
    assert [ring.reveal(json.loads(r["after"])) for r in rows] == [{"phone": phone}] * 2
    assert await audit.rows_mentioning(phone, ring) == [r["id"] for r in rows]
    assert await audit.rows_mentioning(phone, key_a) == [rows[0]["id"]]
    assert (await audit_verify.verify()).ok


def test_every_sensitive_catalog_field_is_sealed_by_name() -> None:
    assert [f.code for f in FIELDS if f.sensitive and not is_sensitive_key(f.code)] == []
    assert not any(is_sensitive_key(f.code) for f in FIELDS if not f.sensitive)


def test_a_value_pattern_is_sealed_in_free_text_and_sealing_twice_changes_nothing() -> None:
    sealer = Sealer.from_secrets({"k1": "k" * 32}, "k1")
    data = {"reason": f"联系 139 1234 5678，证件 {GUARDIAN_ID}", "guardian2_id_number": "A1234567"}
    once = sealer.seal(data)
    text = json.dumps(once, ensure_ascii=False)
    assert "1234 5678" not in text
    assert GUARDIAN_ID not in text
    assert "A1234567" not in text
    assert once["reason"].startswith("联系 [sealed h=k1:")
    assert sealer.seal(once) == once
    assert sealer.reveal(once) == data
    assert sealer.seal({"n": 13912345678, "count": 42})["n"].startswith("[sealed h=k1:")
    digest = "ab" + "1" * 20 + "cd" * 21  # a SHA-256 in hex with a run of digits stays
    assert sealer.seal({"sha256": digest}) == {"sha256": digest}
    assert sealer.seal({"phone": None, "current_address": ""}) == {
        "phone": None,
        "current_address": "",
    }


def test_a_reveal_without_a_reason_is_refused() -> None:
    refused = cli("reveal", "1")
    assert refused.returncode == 2
    assert "--reason" in refused.stderr
