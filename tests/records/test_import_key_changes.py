"""A re-import never overwrites a key field (姓名, 性别, 出生日期, 民族, 身份证件号, …) of a
student already on the roll: each changed key field becomes a key-data change request that the
school's registrar enters (with the ID document) and the administering authority reviews.
Through the API, with real role accounts and a real arq worker."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.audit_seal import Sealer
from backend.accounts.principal import account_principal
from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog, School, SchoolClass
from backend.config import Settings
from backend.db import json_value
from backend.records.change_requests import EvidenceIn, attach_evidence
from backend.records.ids import make_resident_id
from backend.records.review_tables import (
    ChangeRequest,
    EvidenceKind,
    RequestState,
    ReviewStep,
    StepState,
)
from backend.records.reviews import place_of
from backend.records.service import load_fields
from backend.records.tables import Student
from tests.factories import World, bearer, build_world, login, make_account
from tests.records.files import HEADERS, student_row, to_csv
from tests.records.test_import import do_import

ROWS = [student_row(i) for i in range(1, 4)]
WITH_NUMBER = [*HEADERS, "学籍号"]


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


@pytest.fixture
async def registrar(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    return bearer(await login(client, world.phones[Role.registrar]))


async def record(registry_number: str) -> dict[str, Any]:
    row = await Student.select().where(Student.registry_number == registry_number).first()
    assert row is not None
    return {**row, "fields": load_fields(row["fields"])}


def number(row: dict[str, Any]) -> str:
    return "G" + str(row["身份证件号"])


async def steps_of(request_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await ReviewStep.select()
        .where(
            (ReviewStep.subject_kind == "change_request") & (ReviewStep.subject_id == request_id)
        )
        .order_by(ReviewStep.position)
    )
    return rows


async def decide(
    client: httpx.AsyncClient, headers: dict[str, str], step_id: int
) -> httpx.Response:
    return await client.post(
        f"/review-steps/{step_id}/decision", json={"decision": "approve"}, headers=headers
    )


async def test_a_changed_key_field_becomes_a_request_and_ordinary_fields_are_still_written(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    registrar: dict[str, str],
) -> None:
    await do_import(client, app, settings, registrar, to_csv(ROWS))
    first = await record(number(ROWS[0]))
    second = await record(number(ROWS[1]))
    changed = [
        # a key field (the name, the ethnicity) and an ordinary one (the address) of one child
        {**ROWS[0], "姓名": "王小明", "民族": "回族", "现住址": "浙江省杭州市西湖区新地址1号"},
        # a class move: an ordinary update, written as before
        {**ROWS[1], "班级": "二年级(2)班"},
        ROWS[2],
    ]

    report = await do_import(client, app, settings, registrar, to_csv(changed))

    assert report["status"] == "done", report
    summary = report["summary"]
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 2, 1)
    assert summary["key_changes"] == 2
    assert summary["key_change_requests_created"] == 2
    requests = await ChangeRequest.select().order_by(ChangeRequest.id)
    assert summary["key_change_rows"] == [
        {
            "row": 2,
            "student_id": first["id"],
            "fields": [
                {
                    "field": "name",
                    "label": "姓名",
                    "old_value": "学生001",
                    "new_value": "王小明",
                    "request": "created",
                    "request_id": requests[0]["id"],
                },
                {
                    "field": "ethnicity",
                    "label": "民族",
                    "old_value": "01",
                    "new_value": "03",
                    "request": "created",
                    "request_id": requests[1]["id"],
                },
            ],
        }
    ]
    # The record keeps its key fields; its ordinary field and the other child's class changed.
    now = await record(number(ROWS[0]))
    assert now["name"] == "学生001"
    assert now["fields"]["name"] == "学生001"
    assert now["fields"]["ethnicity"] == "01"
    assert now["fields"]["current_address"] == "浙江省杭州市西湖区新地址1号"
    moved = await record(number(ROWS[1]))
    assert moved["school_class"] != second["school_class"]
    klass = await SchoolClass.select().where(SchoolClass.id == moved["school_class"]).first()
    assert klass is not None
    assert klass["name"] == "二年级(2)班"
    # Only the ordinary change is in the student's audit row.
    update = (
        await AuditLog.select()
        .where((AuditLog.entity == "student") & (AuditLog.action == "update"))
        .order_by(AuditLog.id)
        .first()
    )
    assert update is not None
    written = Sealer.of().reveal(json.loads(update["after"]))  # the address sealed, opened
    assert "新地址" in written["current_address"]
    assert "王小明" not in str(written)
    # One request per field, waiting at the registrar's enter step, then the county's review.
    assert [
        (r["student"], r["field_code"], r["old_value"], r["new_value"], r["chain"])
        for r in requests
    ] == [
        (first["id"], "name", "学生001", "王小明", "key_data"),
        (first["id"], "ethnicity", "01", "03", "key_data"),
    ]
    for request in requests:
        assert request["state"] == RequestState.in_review.value
        assert request["source"] == "import"
        assert request["author"] == world.accounts[Role.registrar]
        assert request["entered_at"] is None
        assert "第 2 行" in request["reason"]
        steps = await steps_of(request["id"])
        assert [
            (s["kind"], s["state"], s["role"], s["seat_school"], s["seat_region"]) for s in steps
        ] == [
            ("enter", "current", "registrar", world.schools["A"], None),
            ("review", "waiting", "county_reviewer", None, "330106"),
        ]
        assert steps[0]["due_on"] is not None
        assert steps[0]["decided_by"] is None


async def test_the_request_is_entered_with_the_id_document_and_reviewed_by_the_county(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    registrar: dict[str, str],
) -> None:
    await do_import(client, app, settings, registrar, to_csv(ROWS[:1]))
    renamed = to_csv([{**ROWS[0], "姓名": "王小明"}])
    report = await do_import(client, app, settings, registrar, renamed)
    request_id = report["summary"]["key_change_rows"][0]["fields"][0]["request_id"]
    enter, review = await steps_of(request_id)

    # The registrar cannot enter it without the ID document.
    refused = await decide(client, registrar, enter["id"])
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "evidence_required"

    request = await ChangeRequest.select().where(ChangeRequest.id == request_id).first()
    assert request is not None
    # The registrar's ID scan (its upload is the change-request API's; stored here directly).
    account = await Account.select().where(Account.id == world.accounts[Role.registrar]).first()
    assert account is not None
    scan = EvidenceIn(EvidenceKind.id_scan, "evidence/test-id-scan.jpg", "image/jpeg", 12345)
    place = await place_of(request["student"])
    await attach_evidence(account_principal(account), place, request_id, [scan], datetime.now(UTC))
    entered = await decide(client, registrar, enter["id"])
    assert entered.status_code == 200, entered.text
    county = bearer(await login(client, world.phones[Role.county_reviewer]))
    reviewed = await decide(client, county, review["id"])
    assert reviewed.status_code == 200, reviewed.text

    assert (await record(number(ROWS[0])))["fields"]["name"] == "王小明"
    applied = await ChangeRequest.select().where(ChangeRequest.id == request_id).first()
    assert applied is not None
    assert applied["state"] == RequestState.applied.value
    # The same file again: the record already holds it, nothing to do.
    again = await do_import(client, app, settings, registrar, renamed)
    assert again["summary"]["unchanged"] == 1
    assert again["summary"]["key_changes"] == 0
    assert again["summary"]["key_change_rows"] == []
    assert await ChangeRequest.count() == 1


async def test_the_same_reimport_twice_makes_one_request(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    await do_import(client, app, settings, registrar, to_csv(ROWS))
    changed = to_csv([{**ROWS[0], "出生日期": "2018-02-03"}, *ROWS[1:]])

    first = await do_import(client, app, settings, registrar, changed)
    second = await do_import(client, app, settings, registrar, changed)

    assert first["summary"]["key_change_requests_created"] == 1
    request_id = first["summary"]["key_change_rows"][0]["fields"][0]["request_id"]
    assert second["summary"]["key_changes"] == 1
    assert second["summary"]["key_change_requests_created"] == 0
    [entry] = second["summary"]["key_change_rows"]
    assert entry["fields"] == [
        {
            "field": "birth_date",
            "label": "出生日期",
            "old_value": ROWS[0]["出生日期"],
            "new_value": "2018-02-03",
            "request": "already_waiting",
            "request_id": request_id,
        }
    ]
    assert await ChangeRequest.count() == 1
    assert await ReviewStep.count() == 2
    # Sent back to its author it is still open: a third run makes none either.
    await ChangeRequest.update({ChangeRequest.state: RequestState.returned.value}).where(
        ChangeRequest.id == request_id
    )
    third = await do_import(client, app, settings, registrar, changed)
    assert third["summary"]["key_change_rows"][0]["fields"][0]["request"] == "already_waiting"
    assert await ChangeRequest.count() == 1
    # Another new value is another request.
    other = to_csv([{**ROWS[0], "出生日期": "2018-02-04"}, *ROWS[1:]])
    fourth = await do_import(client, app, settings, registrar, other)
    assert fourth["summary"]["key_change_requests_created"] == 1
    assert await ChangeRequest.count() == 2


async def test_a_dry_run_reports_the_requests_it_would_make_and_makes_none(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    await do_import(client, app, settings, registrar, to_csv(ROWS))
    changed = to_csv([{**ROWS[0], "姓名": "王小明", "现住址": "浙江省杭州市西湖区新地址1号"}])
    before = await record(number(ROWS[0]))

    dry = await do_import(client, app, settings, registrar, changed, dry_run=True)

    assert dry["status"] == "done", dry
    assert dry["dry_run"] is True
    assert dry["summary"]["updated"] == 1
    assert dry["summary"]["key_changes"] == 1
    assert dry["summary"]["key_change_requests_created"] == 0
    assert dry["summary"]["key_change_rows"] == [
        {
            "row": 2,
            "student_id": before["id"],
            "fields": [
                {
                    "field": "name",
                    "label": "姓名",
                    "old_value": "学生001",
                    "new_value": "王小明",
                    "request": "would_create",
                    "request_id": None,
                }
            ],
        }
    ]
    assert await ChangeRequest.count() == 0
    assert await ReviewStep.count() == 0
    assert await record(number(ROWS[0])) == before

    # Once the real run made it, a dry run points at the request that waits.
    real = await do_import(client, app, settings, registrar, changed)
    request_id = real["summary"]["key_change_rows"][0]["fields"][0]["request_id"]
    again = await do_import(client, app, settings, registrar, changed, dry_run=True)
    assert again["summary"]["key_change_rows"][0]["fields"][0] == {
        "field": "name",
        "label": "姓名",
        "old_value": "学生001",
        "new_value": "王小明",
        "request": "already_waiting",
        "request_id": request_id,
    }
    assert await ChangeRequest.count() == 1


async def test_a_changed_id_number_is_requested_and_masked_in_the_report(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    # With the registry number in the file, a new ID number still finds the same student.
    enrolled = [{**ROWS[0], "学籍号": number(ROWS[0])}]
    await do_import(client, app, settings, registrar, to_csv(enrolled, WITH_NUMBER))
    old_id = str(ROWS[0]["身份证件号"])
    new_id = make_resident_id("330108", date(2018, 2, 2), 1, "1")  # same birth date and sex
    changed = [{**enrolled[0], "身份证件号": new_id}]

    report = await do_import(client, app, settings, registrar, to_csv(changed, WITH_NUMBER))

    assert report["status"] == "done", report
    [entry] = report["summary"]["key_change_rows"]
    assert entry["fields"][0]["field"] == "id_number"
    assert entry["fields"][0]["old_value"] == old_id[:6] + "*" * 12
    assert entry["fields"][0]["new_value"] == new_id[:6] + "*" * 12
    text = json.dumps(report, ensure_ascii=False)
    assert old_id not in text
    assert new_id not in text
    request = await ChangeRequest.select().first()
    assert request is not None
    assert (request["old_value"], request["new_value"]) == (old_id, new_id)
    stored = await record(number(ROWS[0]))
    assert stored["id_number"] == old_id
    assert stored["fields"]["id_number"] == old_id
    # The import's audit row counts them, without personal data.
    audited = await AuditLog.select().where(AuditLog.action == "import").order_by(AuditLog.id)
    after = json_value(audited[-1]["after"])
    assert after["key_changes"] == 1
    assert after["key_change_requests_created"] == 1
    assert new_id not in json.dumps(after)


async def test_new_students_are_created_with_every_field_as_before(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    await do_import(client, app, settings, registrar, to_csv(ROWS[:1]))
    new = student_row(7, 民族="回族", 身份证件类型="居民身份证")

    report = await do_import(client, app, settings, registrar, to_csv([ROWS[0], new]))

    assert report["summary"]["created"] == 1
    assert report["summary"]["unchanged"] == 1
    assert report["summary"]["key_changes"] == 0
    assert report["summary"]["key_change_rows"] == []
    created = await record(number(new))
    assert created["name"] == "学生007"
    assert created["fields"]["ethnicity"] == "03"
    assert created["fields"]["birth_date"] == new["出生日期"]
    assert await ChangeRequest.count() == 0


@pytest.mark.parametrize(
    ("importer", "administered_by", "reviewer", "seat_region"),
    [
        (Role.province_admin, "county", "county_reviewer", "330108"),
        (Role.city_admin, "city", "city_admin", "330100"),
    ],
)
async def test_an_authority_import_leaves_the_enter_step_to_the_schools_registrar(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    importer: Role,
    administered_by: str,
    reviewer: str,
    seat_region: str,
) -> None:
    """School B (滨江区) is administered by the county, or run directly by the city."""
    await School.update({School.administered_by: administered_by}).where(
        School.id == world.schools["B"]
    )
    headers = bearer(await login(client, world.phones[importer]))
    columns = [*HEADERS, "学校标识码"]
    row = {**ROWS[0], "学校标识码": "2133010801"}
    await do_import(client, app, settings, headers, to_csv([row], columns))

    report = await do_import(
        client, app, settings, headers, to_csv([{**row, "民族": "满族"}], columns)
    )

    assert report["summary"]["key_change_requests_created"] == 1, report
    request = await ChangeRequest.select().first()
    assert request is not None
    assert request["author"] == world.accounts[importer]
    assert request["school"] == world.schools["B"]
    steps = await steps_of(request["id"])
    assert [
        (s["kind"], s["state"], s["role"], s["seat_school"], s["seat_region"], s["decided_by"])
        for s in steps
    ] == [
        ("enter", StepState.current.value, "registrar", world.schools["B"], None, None),
        ("review", StepState.waiting.value, reviewer, None, seat_region, None),
    ]
    stored = await Student.select(Student.fields).where(Student.id == request["student"]).first()
    assert stored is not None
    assert load_fields(stored["fields"])["ethnicity"] == "01"


async def test_no_one_reviews_a_change_they_asked_for(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    """A county reviewer may import its county's records; the key change its import asks
    for is then reviewed by another reviewer of the county, never by itself."""
    county = bearer(await login(client, world.phones[Role.county_reviewer]))
    columns = [*HEADERS, "学校标识码"]
    row = {**ROWS[0], "学校标识码": "2133010600"}
    await do_import(client, app, settings, county, to_csv([row], columns))
    await do_import(client, app, settings, county, to_csv([{**row, "民族": "满族"}], columns))
    request = await ChangeRequest.select().first()
    assert request is not None
    assert request["author"] == world.accounts[Role.county_reviewer]
    enter, review = await steps_of(request["id"])
    account = await Account.select().where(Account.id == world.accounts[Role.registrar]).first()
    assert account is not None
    scan = EvidenceIn(EvidenceKind.id_scan, "evidence/test-id-scan.jpg", "image/jpeg", 12345)
    place = await place_of(request["student"])
    await attach_evidence(
        account_principal(account), place, request["id"], [scan], datetime.now(UTC)
    )
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    assert (await decide(client, registrar, enter["id"])).status_code == 200

    own = await decide(client, county, review["id"])

    assert own.status_code == 403, own.text
    assert own.json()["code"] == "own_request"
    assert (await steps_of(request["id"]))[1]["state"] == StepState.current.value
    colleague_phone = "13800009999"
    await make_account(
        settings, Role.county_reviewer, colleague_phone, name="同事", region_code="330106"
    )
    colleague = bearer(await login(client, colleague_phone))
    assert (await decide(client, colleague, review["id"])).status_code == 200
