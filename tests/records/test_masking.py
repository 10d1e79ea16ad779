"""What a teacher's class list shows together cannot rebuild an ID number.

The attack: a list shows each child's masked ID number beside the birth date and the sex, and
the school's region is known. The old mask (region + the last four) hid exactly the eight
birth-date digits, so a class list rebuilt 23 of 24 ID numbers. Here, for each child, every
ID number consistent with all that the teacher is shown (list, detail, problems) and with a
valid GB 11643 check digit is counted: there must be many."""

from __future__ import annotations

import itertools
import re
import string

import httpx
import pytest
from stdnum.cn import ric

from backend.accounts.roles import Role
from backend.accounts.tables import School
from backend.config import Settings
from backend.records.tables import Student
from backend.seed import DEMO_PASSWORD, DemoLogin, seed_demo
from tests.factories import bearer, login

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@pytest.fixture
async def logins(settings: Settings) -> dict[Role, DemoLogin]:
    return {login.role: login for login in await seed_demo(settings)}


def consistent_ids(masks: list[str], region: str, births: set[str], sex: str) -> set[str]:
    """Every valid 18-digit ID number that fits every mask shown, the region, one of the
    birth dates shown and the sex."""
    shown: dict[int, str] = {}
    for masked in masks:
        assert len(masked) == 18, masked
        for i, c in enumerate(masked):
            if c != "*" and shown.setdefault(i, c) != c:
                return set()
    found: set[str] = set()
    for born in births:
        known = region + born.replace("-", "")  # positions 0–13
        options: list[str] = []
        for i in range(18):
            if i in shown:
                options.append(shown[i])
            elif i < 14:
                options.append(known[i])
            elif i == 16:  # the sequence's last digit: odd for a boy
                options.append("13579" if sex == "男" else "02468")
            elif i == 17:
                options.append(string.digits + "X")
            else:
                options.append(string.digits)
        if any(i < 14 and shown.get(i, known[i]) != known[i] for i in range(14)):
            continue  # this birth date (or region) contradicts what the mask shows
        for chars in itertools.product(*options):
            number = "".join(chars)
            if ric.is_valid(number):
                found.add(number)
    return found


async def test_a_teachers_class_list_does_not_rebuild_id_numbers(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    teacher = bearer(await login(client, logins[Role.teacher].phone, DEMO_PASSWORD))
    listed = await client.get("/students", headers=teacher, params={"page_size": 200})
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 24
    school = await School.select(School.region_code).where(School.id == items[0]["school_id"])
    region = school[0]["region_code"]

    candidates: dict[int, set[str]] = {}
    for item in items:
        detail = (await client.get(f"/students/{item['id']}", headers=teacher)).json()
        fields = {f["field"]: f for f in detail["fields"]}
        if fields["id_type"]["value"] != "1":
            continue
        masks = [
            item["id_number"],
            fields["id_number"]["value"],
            fields["id_number"]["display"],
            *(n[1:] for n in (item["registry_number"], detail["registry_number"]) if n[0] == "G"),
        ]
        births = {item["birth_date"], fields["birth_date"]["value"]}
        for problem in detail["problems"]:  # "证件号出生日期 …，记录为 …" shows the ID's date
            births |= set(DATE.findall(problem["detail"]))
        sex = item["sex"]
        if "id_sex_mismatch" in item["problems"]:  # shown too: the ID says the other sex
            sex = "女" if sex == "男" else "男"
        candidates[item["id"]] = consistent_ids(masks, region, births, sex)

    assert len(candidates) == 24
    counts = {i: len(found) for i, found in candidates.items()}
    rebuilt = [i for i, n in counts.items() if n < 100]
    assert rebuilt == [], f"{len(rebuilt)} of 24 ID numbers narrowed to < 100: {counts}"
    # the enumeration is not vacuous: each valid stored number is among its candidates
    stored = await Student.select(Student.id, Student.id_number).where(
        Student.id.is_in(list(candidates))
    )
    valid = [row for row in stored if ric.is_valid(row["id_number"])]
    assert len(valid) >= 20
    assert all(row["id_number"] in candidates[row["id"]] for row in valid)


async def test_the_detail_masks_every_sensitive_field_and_addresses(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    teacher = bearer(await login(client, logins[Role.teacher].phone, DEMO_PASSWORD))
    item = (await client.get("/students", headers=teacher)).json()["items"][0]
    stored = await Student.select(Student.fields).where(Student.id == item["id"]).first()
    assert stored is not None

    detail = await client.get(f"/students/{item['id']}", headers=teacher)

    fields = {f["field"]: f for f in detail.json()["fields"]}
    from backend.records.service import load_fields

    values = load_fields(stored["fields"])
    for code in ("household_address", "current_address", "phone", "guardian1_id_number"):
        assert values.get(code), code
        assert values[code] not in detail.text, code
        assert fields[code]["masked"] is True
        assert "****" in fields[code]["value"], fields[code]
