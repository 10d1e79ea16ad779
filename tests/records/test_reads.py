"""Reads of student records: each role sees exactly its scope (counted against the demo
seed), sensitive values are masked, a reveal is allowed to registrars and up and audited."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.tables import GuardianLink, Student
from backend.seed import DEMO_PASSWORD, DemoLogin, seed_demo
from tests.factories import bearer, login

# The seed: school 1 has classes 1–3 (24 students each), school 2 classes 4–5; one county.
SEEN = {
    Role.teacher: 24,
    Role.registrar: 72,
    Role.school_leader: 72,
    Role.county_reviewer: 120,
    Role.city_admin: 120,
    Role.province_admin: 120,
    Role.sysadmin: 0,  # no student without a support grant (docs/security.md)
}


@pytest.fixture
async def logins(settings: Settings) -> dict[Role, DemoLogin]:
    return {login.role: login for login in await seed_demo(settings)}


async def as_role(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin], role: Role
) -> dict[str, str]:
    return bearer(await login(client, logins[role].phone, DEMO_PASSWORD))


@pytest.mark.parametrize("role", list(SEEN))
async def test_each_role_lists_exactly_its_students(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin], role: Role
) -> None:
    headers = await as_role(client, logins, role)

    first = await client.get("/students", headers=headers, params={"page_size": 200})

    assert first.status_code == 200
    body = first.json()
    assert body["total"] == SEEN[role]
    assert len(body["items"]) == SEEN[role]
    assert len({s["id"] for s in body["items"]}) == SEEN[role]


async def test_problem_records_are_found_by_kind(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    county = await as_role(client, logins, Role.county_reviewer)
    counts = {}
    for kind in ("id_invalid", "id_birth_mismatch", "id_sex_mismatch", "duplicate_id"):
        response = await client.get("/students", headers=county, params={"problem": kind})
        counts[kind] = response.json()["total"]
        assert all(kind in s["problems"] for s in response.json()["items"])
    assert counts == {
        "id_invalid": 2,
        "id_birth_mismatch": 2,
        "id_sex_mismatch": 2,
        "duplicate_id": 4,
    }
    registrar = await as_role(client, logins, Role.registrar)
    mine = await client.get("/students", headers=registrar, params={"problem": "duplicate_id"})
    assert mine.json()["total"] == 2  # the other holders are at the other school


async def test_search_by_name_registry_number_and_class(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    headers = await as_role(client, logins, Role.county_reviewer)
    some = (await client.get("/students", headers=headers, params={"page_size": 1})).json()
    target = some["items"][0]

    full = await Student.select(Student.registry_number).where(Student.id == target["id"]).first()
    assert full is not None
    assert "*" in target["registry_number"]  # a G-number carries the ID number: masked
    by_number = await client.get(
        "/students", headers=headers, params={"q": full["registry_number"]}
    )
    assert [s["id"] for s in by_number.json()["items"]] == [target["id"]]
    by_name = await client.get("/students", headers=headers, params={"q": target["name"][1:]})
    assert target["id"] in [s["id"] for s in by_name.json()["items"]]
    assert all(target["name"][1:] in s["name"] for s in by_name.json()["items"])
    by_class = await client.get("/students", headers=headers, params={"class_id": 4})
    assert by_class.json()["total"] == 24
    percent = await client.get("/students", headers=headers, params={"q": "%"})
    assert percent.json()["total"] == 0  # a wildcard is searched for, not obeyed


async def test_page_size_has_a_maximum(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    headers = await as_role(client, logins, Role.county_reviewer)
    response = await client.get("/students", headers=headers, params={"page_size": 201})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    page2 = await client.get("/students", headers=headers, params={"page_size": 50, "page": 3})
    assert len(page2.json()["items"]) == 20


async def test_values_are_masked_everywhere_and_the_read_is_audited(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    headers = await as_role(client, logins, Role.registrar)
    listed = (await client.get("/students", headers=headers)).json()["items"][0]
    assert "*" in listed["id_number"]

    detail = await client.get(f"/students/{listed['id']}", headers=headers)

    fields = {f["field"]: f for f in detail.json()["fields"]}
    assert fields["birth_date"]["field_label"] == "出生日期"
    assert "code" not in fields["birth_date"]
    for code in (
        "id_number",
        "phone",
        "guardian1_phone",
        "guardian1_id_number",
        "guardian2_phone",
        "guardian2_id_number",
    ):
        assert fields[code]["masked"] is True
        assert "*" in fields[code]["value"]
        assert "*" in fields[code]["display"]
    assert fields["sex"]["display"] in ("男", "女")
    stored = await Student.select(Student.id_number).where(Student.id == listed["id"]).first()
    assert stored is not None
    assert stored["id_number"] not in detail.text
    reads = await AuditLog.select().where(
        (AuditLog.action == "read") & (AuditLog.entity_id == str(listed["id"]))
    )
    assert len(reads) == 1


async def test_registrar_reveals_one_value_and_it_is_audited(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    headers = await as_role(client, logins, Role.registrar)
    student = await Student.select().where(Student.school == 1).first()
    assert student is not None

    revealed = await client.post(
        f"/students/{student['id']}/reveal", headers=headers, json={"field": "id_number"}
    )

    assert revealed.status_code == 200
    assert revealed.json() == {"field": "id_number", "value": student["id_number"]}
    audit = await AuditLog.select().where(AuditLog.action == "reveal").first()
    assert audit is not None
    assert audit["entity_id"] == str(student["id"])
    assert audit["after"] == '{"field":"id_number"}'


async def test_teacher_may_not_reveal_and_nobody_reveals_outside_scope(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    own = await Student.select(Student.id).where(Student.school_class == 1).first()
    other_school = await Student.select(Student.id).where(Student.school == 2).first()
    assert own is not None
    assert other_school is not None
    teacher = await as_role(client, logins, Role.teacher)
    registrar = await as_role(client, logins, Role.registrar)

    refused = await client.post(
        f"/students/{own['id']}/reveal", headers=teacher, json={"field": "id_number"}
    )
    outside = await client.post(
        f"/students/{other_school['id']}/reveal", headers=registrar, json={"field": "id_number"}
    )
    not_sensitive = await client.post(
        f"/students/{own['id']}/reveal", headers=registrar, json={"field": "name"}
    )

    assert refused.status_code == 403
    assert outside.status_code == 404
    assert not_sensitive.status_code == 400
    assert await AuditLog.count().where(AuditLog.action == "reveal") == 0


async def test_parent_sees_only_linked_children(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    parent = await as_role(client, logins, Role.parent)
    assert (await client.get("/my/children", headers=parent)).json() == []
    child, stranger = await Student.select(Student.id).limit(2)
    account = await login(client, logins[Role.parent].phone, DEMO_PASSWORD)
    me = (await client.get("/me", headers=bearer(account))).json()
    await GuardianLink.insert(
        GuardianLink(
            account=me["id"], student=child["id"], guardian_slot=1, created_at=datetime.now(UTC)
        )
    )

    children = (await client.get("/my/children", headers=parent)).json()
    assert [c["id"] for c in children] == [child["id"]]
    assert children[0]["form"]["status"] == "not_issued"  # the demo's check is open
    detail = await client.get(f"/my/children/{child['id']}", headers=parent)
    assert detail.status_code == 200
    assert "*" in {f["field"]: f for f in detail.json()["fields"]}["id_number"]["value"]
    other = await client.get(f"/my/children/{stranger['id']}", headers=parent)
    assert other.status_code == 404
    assert (
        await AuditLog.count().where(
            (AuditLog.action == "access_denied") & (AuditLog.entity_id == str(stranger["id"]))
        )
        == 1
    )
    staff_only = await client.get("/students", headers=parent)
    assert staff_only.status_code == 403


async def test_the_demo_county_can_start_the_journey_at_once(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    """The seed opens the province's check, so the registrar prints forms without a step
    before; the county reviewer sees the check but cannot open or change one."""
    registrar = await as_role(client, logins, Role.registrar)
    county = await as_role(client, logins, Role.county_reviewer)
    [first_class] = (await client.get("/org/classes", headers=registrar)).json()["items"][:1]

    issued = await client.post(
        "/form-batches", json={"class_id": first_class["id"]}, headers=registrar
    )
    [campaign] = (await client.get("/campaigns", headers=county)).json()

    assert issued.status_code == 202, issued.text
    assert campaign["region_code"] == "330000"
    assert campaign["effective"] == {
        **campaign["effective"],
        "region_code": "330106",
        "forms_open": True,
        "corrections_open": True,
        "open_now": True,
    }
