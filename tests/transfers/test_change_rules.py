"""What a province asks for with a status change, and who may repeat a grade.

- The documents: a parent reads the list before applying (the receiving school's province's,
  by how far the transfer goes), an application or a registrar's start without one of them
  is refused naming it, and the province admin changes the list.
- A repeat (留级/降级) in compulsory education is for special-education students only (a
  disability on the record, or a special-education school); senior high follows the
  province's rule, by default allowed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.accounts import org
from backend.accounts.roles import Role
from backend.accounts.tables import SchoolKind
from backend.config import Settings
from backend.records.review_tables import Evidence
from backend.transfers.tables import StatusChange
from tests.factories import SYSTEM, World, bearer, login, make_account, make_students
from tests.records.requests import audit_rows, jpeg, multipart
from tests.transfers.world import as_role, as_staff, special_education, student, transfer_world


@pytest.fixture
async def world(settings: Settings) -> World:
    return await transfer_world(settings)


async def apply(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    child: int,
    fields: dict[str, object],
    photos: list[tuple[str, bytes]] | tuple[()] = (),
) -> httpx.Response:
    return await client.post(
        f"/my/children/{child}/status-changes", files=multipart(fields, photos), headers=headers
    )


async def asked(
    client: httpx.AsyncClient, headers: dict[str, str], child: int, **params: object
) -> httpx.Response:
    return await client.get(
        f"/my/children/{child}/status-changes/documents", params=params, headers=headers
    )


def codes(body: dict[str, Any]) -> list[str]:
    return [d["code"] for d in body["documents"]]


async def set_documents(
    client: httpx.AsyncClient, headers: dict[str, str], province: str, **body: object
) -> httpx.Response:
    return await client.put(f"/provinces/{province}/change-documents", json=body, headers=headers)


# ---- documents --------------------------------------------------------------------------


async def test_a_parent_reads_what_to_attach_before_applying(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]  # at school A, 杭州 西湖区

    within = await asked(client, parent, child, kind="transfer", to_school_id=world.schools["B"])
    assert within.status_code == 200, within.text
    body = within.json()
    assert (body["province_code"], body["span"], body["span_label"]) == (
        "330000",
        "province",
        "省内跨县转学",
    )
    assert codes(body) == ["transfer_application", "residence"]
    assert body["set_by_province"] is False
    residence = body["documents"][1]
    assert residence["label"].startswith("户籍或居住证明")
    assert residence["parts"] == ["household_register", "residence_proof"]

    # across provinces: the receiving school's province asks, the simplified 一网通办 set
    across = (
        await asked(client, parent, child, kind="transfer", to_school_id=world.schools["D"])
    ).json()
    assert (across["province_code"], across["span"]) == ("320000", "country")
    assert codes(across) == ["residence"]

    suspend = (await asked(client, parent, child, kind="suspend")).json()
    assert (suspend["kind_label"], codes(suspend)) == ("休学", [])

    cancel = await asked(client, parent, child, kind="cancel")
    assert (cancel.status_code, cancel.json()["code"]) == (400, "kind_not_for_parents")
    no_school = await asked(client, parent, child, kind="transfer")
    assert (no_school.status_code, no_school.json()["code"]) == (400, "to_school_required")
    nowhere = await asked(client, parent, child, kind="transfer", to_school_id=999999)
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "school_not_found")
    not_mine = await asked(client, parent, world.students[1], kind="suspend")
    assert not_mine.status_code == 404


async def test_an_application_without_a_document_is_refused_naming_it(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]
    fields = {"kind": "transfer", "to_school_id": world.schools["B"], "reason": "随父母迁居"}

    short = await apply(client, parent, child, fields, [("household_register", jpeg(1))])

    assert short.status_code == 400, short.text
    body = short.json()
    assert body["code"] == "documents_missing"
    assert "转学申请表" in body["message"]
    assert set(body["field_errors"]) == {"transfer_application"}
    assert await StatusChange.count() == 0
    assert await Evidence.count() == 0  # nothing of a refused application is kept
    assert (await student(child))["open_change"] is None

    # a residence permit instead of the household register will do
    whole = await apply(
        client,
        parent,
        child,
        fields,
        [("residence_proof", jpeg(2)), ("transfer_application", jpeg(3))],
    )
    assert whole.status_code == 201, whole.text
    assert sorted(e["kind"] for e in whole.json()["evidence"]) == [
        "residence_proof",
        "transfer_application",
    ]


async def test_the_receiving_schools_province_sets_the_list(
    client: httpx.AsyncClient, world: World
) -> None:
    zhejiang = await as_role(client, world, Role.province_admin)
    nation = await as_role(client, world, Role.sysadmin)
    parent = await as_role(client, world, Role.parent)
    child = world.students[0]

    mine = await set_documents(
        client, zhejiang, "330000", kind="transfer", span="country", documents=["residence"] * 2
    )
    assert mine.status_code == 200, mine.text
    assert (codes(mine.json()), mine.json()["set_by_province"]) == (["residence"], False)
    set_ = await set_documents(
        client,
        zhejiang,
        "330000",
        kind="transfer",
        span="country",
        documents=["residence", "enrolment_proof"],
    )
    assert set_.json()["set_by_province"] is True
    *_, row = await audit_rows(
        "set_change_documents", "change_documents", "330000:transfer:country"
    )
    assert row["after"] == {"documents": ["residence", "enrolment_proof"]}

    # 浙江's list is for transfers into 浙江: the child going to 江苏 follows 江苏's
    to_d = {"kind": "transfer", "to_school_id": world.schools["D"]}
    assert codes((await asked(client, parent, child, **to_d)).json()) == ["residence"]
    jiangsu = await set_documents(
        client,
        nation,
        "320000",
        kind="transfer",
        span="country",
        documents=["residence", "id_document"],
    )
    assert jiangsu.status_code == 200, jiangsu.text
    now = (await asked(client, parent, child, **to_d)).json()
    assert (codes(now), now["set_by_province"]) == (["residence", "id_document"], True)
    refused = await apply(
        client,
        parent,
        child,
        {**to_d, "reason": "随父母迁居南京"},
        [("household_register", jpeg(1))],
    )
    assert refused.json()["code"] == "documents_missing"
    assert set(refused.json()["field_errors"]) == {"id_document"}

    # the province's staff read the whole list; a transfer needs its span, nothing else has one
    county = await as_role(client, world, Role.county_reviewer)
    listed = await client.get("/provinces/330000/change-documents", headers=county)
    assert listed.status_code == 200
    entries = {(e["kind"], e["span"]): codes(e) for e in listed.json()}
    assert entries[("transfer", "country")] == ["residence", "enrolment_proof"]
    assert entries[("transfer", "county")] == ["transfer_application", "residence"]
    assert entries[("suspend", None)] == []
    other = await client.get("/provinces/320000/change-documents", headers=county)
    assert other.status_code == 404
    for body in ({"kind": "transfer"}, {"kind": "suspend", "span": "county"}):
        wrong = await set_documents(client, zhejiang, "330000", documents=[], **body)
        assert (wrong.status_code, wrong.json()["code"]) == (400, "span_mismatch")
    unknown = await set_documents(
        client, zhejiang, "330000", kind="suspend", documents=["birth_certificate"]
    )
    assert unknown.status_code == 400
    not_a_province = await set_documents(client, zhejiang, "330100", kind="suspend", documents=[])
    assert not_a_province.json()["code"] == "not_a_province"

    # the defaults, in any order, are the defaults again: the province's own list is gone
    for span, documents in (
        ("county", ["residence", "transfer_application"]),
        ("country", ["residence"]),
    ):
        back = await set_documents(
            client, zhejiang, "330000", kind="transfer", span=span, documents=documents
        )
        assert back.json()["set_by_province"] is False
    listed = await client.get("/provinces/330000/change-documents", headers=county)
    assert not any(e["set_by_province"] for e in listed.json())
    assert [codes(e) for e in listed.json() if e["span"] == "county"] == [
        ["transfer_application", "residence"]
    ]


async def test_a_suspension_asks_what_the_province_set_of_parent_and_registrar(
    client: httpx.AsyncClient, world: World
) -> None:
    zhejiang = await as_role(client, world, Role.province_admin)
    parent = await as_role(client, world, Role.parent)
    registrar = await as_role(client, world, Role.registrar)
    set_ = await set_documents(
        client, zhejiang, "330000", kind="suspend", documents=["medical_certificate"]
    )
    assert set_.status_code == 200, set_.text
    child = world.students[0]

    bare = await apply(client, parent, child, {"kind": "suspend", "reason": "因病休学"})
    assert bare.json()["code"] == "documents_missing"
    assert "医疗机构诊断证明" in bare.json()["message"]
    entered = await client.post(
        "/status-changes",
        json={"kind": "suspend", "student_id": world.students[1], "reason": "因病休学"},
        headers=registrar,
    )
    assert (entered.status_code, entered.json()["code"]) == (400, "documents_missing")

    applied = await apply(
        client,
        parent,
        child,
        {"kind": "suspend", "reason": "因病休学"},
        [("medical_certificate", jpeg(4))],
    )
    assert applied.status_code == 201, applied.text
    checked = await client.post(
        "/status-changes",
        json={
            "kind": "suspend",
            "student_id": world.students[1],
            "reason": "因病休学",
            "documents_checked": ["medical_certificate"],
        },
        headers=registrar,
    )
    assert checked.status_code == 201, checked.text


async def test_a_registrar_starts_a_transfer_only_with_the_documents_checked(
    client: httpx.AsyncClient, world: World
) -> None:
    receiving = await as_staff(client, world, "registrar_B")
    row = await student(world.students[1])
    start = {
        "registry_number": row["registry_number"],
        "student_name": row["name"],
        "to_class_id": world.classes["B1"],
        "reason": "随父母迁居",
    }

    bare = await client.post("/status-changes/transfers", json=start, headers=receiving)
    assert bare.status_code == 400, bare.text
    assert set(bare.json()["field_errors"]) == {"transfer_application", "residence"}
    assert (await student(world.students[1]))["open_change"] is None

    checked = await client.post(
        "/status-changes/transfers",
        json={**start, "documents_checked": ["residence", "transfer_application"]},
        headers=receiving,
    )
    assert checked.status_code == 201, checked.text


# ---- the school directory ---------------------------------------------------------------


async def directory(
    client: httpx.AsyncClient, headers: dict[str, str], **params: object
) -> httpx.Response:
    return await client.get("/school-directory", params=params, headers=headers)


async def test_a_parent_finds_the_school_to_apply_to(
    client: httpx.AsyncClient, world: World
) -> None:
    special = await org.create_school(
        SYSTEM, "2133010699", "西湖区启智学校", "330106", kind=SchoolKind.special
    )
    parent = await as_role(client, world, Role.parent)

    in_hangzhou = await directory(client, parent, region_code="330100")
    assert in_hangzhou.status_code == 200, in_hangzhou.text
    page = in_hangzhou.json()
    assert [s["name"] for s in page["items"]] == ["学校A", "学校G", "西湖区启智学校", "学校B"]
    assert page["total"] == 4

    by_name = (await directory(client, parent, name="启智")).json()
    assert by_name["items"] == [
        {
            "school_id": special,
            "name": "西湖区启智学校",
            "region_code": "330106",
            "region_name": "浙江省 杭州市 西湖区",
            "kind": "special",
            "kind_label": "特殊教育学校",
            "administered_by": "county",
            "administered_by_label": "县（区）属",
        }
    ]
    both = (await directory(client, parent, region_code="320000", name="学校")).json()
    assert [s["name"] for s in both["items"]] == ["学校D"]
    one = (await directory(client, parent, region_code="330000", page_size=2, page=3)).json()
    assert (len(one["items"]), one["total"]) == (1, 5)
    # a LIKE wildcard is a character, not "any name"
    assert (await directory(client, parent, name="%%")).json()["total"] == 0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "search_too_broad"),
        ({"name": " 学 "}, "name_too_short"),
        ({"region_code": "33"}, "validation_error"),
        ({"name": "学" * 51}, "validation_error"),
        ({"region_code": "330000", "page_size": 500}, "validation_error"),
        ({"region_code": "330000", "page": 0}, "validation_error"),
    ],
)
async def test_the_directory_refuses_silly_searches(
    client: httpx.AsyncClient, world: World, params: dict[str, object], code: str
) -> None:
    parent = await as_role(client, world, Role.parent)
    answer = await directory(client, parent, **params)
    assert (answer.status_code, answer.json()["code"]) == (400, code)


# ---- repeating a grade ------------------------------------------------------------------


async def enter_repeat(
    client: httpx.AsyncClient, headers: dict[str, str], student_id: int, class_id: int
) -> httpx.Response:
    return await client.post(
        "/status-changes",
        json={"kind": "repeat", "student_id": student_id, "to_class_id": class_id},
        headers=headers,
    )


async def test_an_ordinary_student_may_not_repeat_in_compulsory_education(
    client: httpx.AsyncClient, world: World
) -> None:
    second_grade = world.other_students[0]  # class A3, grade 2 of school A
    registrar = await as_role(client, world, Role.registrar)

    refused = await enter_repeat(client, registrar, second_grade, world.classes["A1"])

    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "repeat_not_allowed"
    assert "特殊教育" in refused.json()["message"]
    assert (await student(second_grade))["open_change"] is None
    parent = await as_role(client, world, Role.parent)
    applied = await apply(client, parent, world.students[0], {"kind": "repeat", "reason": "跟不上"})
    assert applied.json()["code"] == "repeat_not_allowed"

    # a record naming a disability (随班就读 or not): a special-education student may
    await special_education(second_grade)
    allowed = await enter_repeat(client, registrar, second_grade, world.classes["A1"])
    assert allowed.status_code == 201, allowed.text
    await special_education(world.students[0], disability="5")
    assert (
        await apply(client, parent, world.students[0], {"kind": "repeat", "reason": "降级就读"})
    ).status_code == 201
    await special_education(world.students[1], disability="0")  # 无残疾: ordinary
    ordinary = await enter_repeat(client, registrar, world.students[1], world.classes["A1"])
    assert ordinary.json()["code"] == "repeat_not_allowed"


async def _school_with_grades(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    key: str,
    kind: SchoolKind,
    grades: tuple[int, int],
    phone: str,
) -> dict[str, str]:
    """A school of `kind` in 西湖区 with a class of each grade (`{key}_hi`, `{key}_lo`), two
    students in the higher one, and its registrar's headers."""
    school = await org.create_school(
        SYSTEM, f"21330106{len(world.schools) + 50}", key, "330106", kind=kind
    )
    world.schools[key] = school
    world.classes[f"{key}_hi"] = await org.create_class(SYSTEM, school, grades[0], f"{key}高")
    world.classes[f"{key}_lo"] = await org.create_class(SYSTEM, school, grades[1], f"{key}低")
    await make_account(settings, Role.registrar, phone, region_code="330106", school=school)
    return bearer(await login(client, phone))


async def test_a_special_education_school_may_let_any_of_its_students_repeat(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    registrar = await _school_with_grades(
        client, world, settings, "启智学校", SchoolKind.special, (3, 2), "13611110001"
    )
    (pupil,) = await make_students(world, "启智学校_hi", 1, start=60)
    answer = await enter_repeat(client, registrar, pupil, world.classes["启智学校_lo"])
    assert answer.status_code == 201, answer.text


async def test_senior_high_follows_the_provinces_rule(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    registrar = await _school_with_grades(
        client, world, settings, "高级中学", SchoolKind.senior, (11, 10), "13611110002"
    )
    first, second = await make_students(world, "高级中学_hi", 2, start=70)
    lower = world.classes["高级中学_lo"]
    assert (await enter_repeat(client, registrar, first, lower)).status_code == 201

    zhejiang = await as_role(client, world, Role.province_admin)
    rule = await client.get("/provinces/330000/repeat-rule", headers=zhejiang)
    assert rule.json() == {
        "province_code": "330000",
        "senior_high": "allowed",
        "senior_high_label": "高中阶段学生可以留级",
        "set_by_province": False,
    }
    set_ = await client.put(
        "/provinces/330000/repeat-rule", json={"senior_high": "special_only"}, headers=zhejiang
    )
    assert set_.status_code == 200, set_.text
    assert set_.json()["set_by_province"] is True
    assert await audit_rows("set_repeat_rule", "repeat_rule", "330000")

    refused = await enter_repeat(client, registrar, second, lower)
    assert (refused.status_code, refused.json()["code"]) == (400, "repeat_not_allowed")
    assert "本省高中阶段" in refused.json()["message"]
    await special_education(second)
    assert (await enter_repeat(client, registrar, second, lower)).status_code == 201
