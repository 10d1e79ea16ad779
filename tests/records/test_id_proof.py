"""Proof for children without a resident ID card, through the API with real role accounts: which
records need it, the registrar's upload (evidence photo rules), the record's read and the
counts showing what is missing; then an ID number arriving through the key-data chain, the J
registry number replaced by G + the number and kept in the record's history."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import School
from backend.config import Settings
from backend.db import transaction
from backend.records.ids import make_resident_id, registry_number_for
from backend.records.roll_tables import RegistryNumberChange
from backend.records.service import RecordIn, write_records
from backend.records.tables import Student
from tests.factories import SYSTEM, World, build_world, make_students, open_campaign
from tests.records.requests import as_role, audit_rows, decide, jpeg, multipart


async def add_child(world: World, name: str, id_type: str, id_number: str | None) -> int:
    school = await School.select().where(School.id == world.schools["A"]).first()
    assert school is not None
    fields = {
        "name": name,
        "sex": "1",
        "birth_date": "2018-03-05",
        "ethnicity": "01",
        "nationality": "CN",
        "id_type": id_type,
    }
    if id_number:
        fields["id_number"] = id_number
    number = registry_number_for(id_type, id_number, school["code"], name, "2018-03-05")
    record = RecordIn(number, school["id"], world.classes["A1"], "330106", fields)
    async with transaction():
        summary = await write_records(SYSTEM, [record])
    return summary.student_ids[0]


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 1)
    world.other_students = [
        await add_child(world, "无证学生", "9", None),
        await add_child(world, "护照学生", "6", "E12345678"),
    ]
    await open_campaign(corrections_open=True)
    return world


async def proof(client: httpx.AsyncClient, headers: dict[str, str], student: int) -> dict:
    response = await client.get(f"/students/{student}/id-proof", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], student: int, *kinds: str
) -> httpx.Response:
    photos = [(kind, jpeg(i)) for i, kind in enumerate(kinds)]
    return await client.post(
        f"/students/{student}/id-proof", files=multipart({}, photos), headers=headers
    )


async def key_change(
    client: httpx.AsyncClient, world: World, student: int, field_code: str, value: str
) -> None:
    """Entered by the registrar with the ID document, reviewed by the county."""
    registrar = await as_role(client, world, Role.registrar)
    body = {"student_id": student, "field_code": field_code, "new_value": value}
    body["reason"] = "已办理居民身份证"
    made = await client.post(
        "/change-requests", files=multipart(body, [("id_scan", jpeg(7))]), headers=registrar
    )
    assert made.status_code == 201, made.text
    assert made.json()["chain"] == "key_data"
    county = await as_role(client, world, Role.county_reviewer)
    done = await decide(client, county, made.json()["current_step"]["id"])
    assert done.status_code == 200, done.text


async def test_proof_uploaded_then_an_id_number_arrives_through_the_key_chain(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    teacher = await as_role(client, world, Role.teacher)
    county = await as_role(client, world, Role.county_reviewer)
    resident = world.students[0]
    no_id, passport = world.other_students

    # Which records need what.
    assert (await proof(client, registrar, resident))["needed"] == []
    assert [p["kind"] for p in (await proof(client, registrar, no_id))["needed"]] == [
        "enrolment_proof"
    ]
    assert [p["kind"] for p in (await proof(client, registrar, passport))["missing"]] == [
        "id_scan",
        "enrolment_proof",
    ]
    detail = (await client.get(f"/students/{no_id}", headers=registrar)).json()
    assert [(p["kind"], p["label"]) for p in detail["proof_missing"]] == [
        ("enrolment_proof", "无居民身份证件号学生的就读证明")
    ]
    counts = (await client.get("/id-proof-counts", headers=county)).json()
    assert counts == {"needing": 2, "missing": 2}

    # Only the registrar uploads, only what the record needs.
    refused = await upload(client, teacher, no_id, "enrolment_proof")
    assert (refused.status_code, refused.json()["code"]) == (403, "proof_registrar_only")
    refused = await upload(client, registrar, resident, "enrolment_proof")
    assert (refused.status_code, refused.json()["code"]) == (400, "proof_not_needed")
    refused = await upload(client, registrar, no_id, "id_scan")
    assert (refused.status_code, refused.json()["code"]) == (400, "proof_kind_not_needed")
    bad = await client.post(
        f"/students/{no_id}/id-proof",
        files=[("enrolment_proof", ("p.jpg", b"not a photo", "image/jpeg"))],
        headers=registrar,
    )
    assert bad.status_code == 400
    assert bad.json()["code"].startswith("photo_")

    response = await upload(client, registrar, no_id, "enrolment_proof")
    assert response.status_code == 201, response.text
    assert response.json()["missing"] == []
    photo = response.json()["photos"][0]
    served = await client.get(f"/evidence/{photo['id']}/photo", headers=registrar)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert (await client.get(f"/students/{no_id}", headers=registrar)).json()["proof_missing"] == []
    counts = (await client.get("/id-proof-counts", headers=county)).json()
    assert counts == {"needing": 2, "missing": 1}
    schools = (await client.get("/id-proof-counts/schools", headers=county)).json()["items"]
    assert [(s["school_name"], s["needing"], s["missing"]) for s in schools] == [("学校A", 2, 1)]

    # The child gets a resident ID card: two key-data changes reviewed by the county.
    old = await Student.select(Student.registry_number).where(Student.id == no_id).first()
    assert old is not None
    assert old["registry_number"].startswith("J")
    id_number = make_resident_id("330106", date(2018, 3, 5), 41, "1")
    await key_change(client, world, no_id, "id_number", id_number)
    still = await Student.select(Student.registry_number).where(Student.id == no_id).first()
    assert still == old  # another ID type with a number: the J number stays
    await key_change(client, world, no_id, "id_type", "1")

    now = await Student.select(Student.registry_number).where(Student.id == no_id).first()
    assert now == {"registry_number": "G" + id_number}
    history = await RegistryNumberChange.select().where(RegistryNumberChange.student == no_id)
    assert [(h["old_number"], h["new_number"]) for h in history] == [
        (old["registry_number"], "G" + id_number)
    ]
    assert history[0]["change_request"] is not None
    logged = await audit_rows("registry_number", "student", no_id)
    assert logged[0]["after"]["registry_number"] == "G" + id_number
    # a resident ID card with its number, a G registry number: no proof needed any more
    assert (await proof(client, registrar, no_id))["needed"] == []
    counts = (await client.get("/id-proof-counts", headers=county)).json()
    assert counts == {"needing": 1, "missing": 1}
