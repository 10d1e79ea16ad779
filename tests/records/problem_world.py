"""A world for problem records: school A (the factories' world) and a second school A3 of
the same county with its own registrar, students with each local problem, and helpers to
act on a case and decide its review through the API."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from PIL import Image

from backend.accounts import org
from backend.accounts.roles import Role
from backend.accounts.tables import SchoolClass
from backend.config import Settings
from backend.db import transaction
from backend.records.ids import make_resident_id
from backend.records.service import RecordIn, write_records
from tests.factories import SYSTEM, World, bearer, build_world, login, make_account

A3_REGISTRAR = "13900000301"


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 180, 160)).save(out, "PNG")
    return out.getvalue()


PHOTO = photo()
# One valid evidence combination of each kind, and incomplete ones.
PROOF_AND_REGISTER = {"enrolment_proof": 1, "household_register": 1}
ID_CARD = {"id_scan": 1}
RECEIPT = {"registration_receipt": 1}


@dataclass
class ProblemWorld:
    world: World
    a3: int = 0
    a3_class: int = 0
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    serial: int = 0

    @property
    def a1(self) -> int:
        return self.world.classes["A1"]


async def build(settings: Settings) -> ProblemWorld:
    world = await build_world(settings)
    pw = ProblemWorld(world)
    pw.a3 = await org.create_school(SYSTEM, "2133010699", "学校A3", "330106")
    pw.a3_class = await org.create_class(SYSTEM, pw.a3, 1, "A3一班")
    await make_account(
        settings,
        Role.registrar,
        A3_REGISTRAR,
        name="A3学籍管理员",
        region_code="330106",
        school=pw.a3,
    )
    return pw


async def tokens(client: httpx.AsyncClient, pw: ProblemWorld, who: Role | str) -> dict[str, str]:
    key = str(who)
    if key not in pw.tokens:
        phone = A3_REGISTRAR if who == "a3_registrar" else pw.world.phones[Role(who)]
        pw.tokens[key] = bearer(await login(client, phone))
    return pw.tokens[key]


def fields_for(i: int, **overrides: str) -> dict[str, str]:
    born = date(2017, 1 + i % 12, 1 + i % 28)
    sex = "1" if i % 2 else "2"
    values = {
        "name": f"问题学生{i:02d}",
        "sex": sex,
        "birth_date": born.isoformat(),
        "ethnicity": "01",
        "nationality": "CN",
        "id_type": "1",
        "id_number": make_resident_id("330106", born, i, sex),
        "current_address": "浙江省杭州市西湖区文三路1号",
        "guardian1_name": f"家长{i:02d}",
        "guardian1_relation": "1",
        "guardian1_phone": f"1392222{i:04d}",
    }
    values.update(overrides)
    return values


def valid_id(values: dict[str, str], sequence: int) -> str:
    """Another valid ID number agreeing with the record's birth date and sex."""
    return make_resident_id(
        "330106", date.fromisoformat(values["birth_date"]), sequence, values["sex"]
    )


async def add_student(pw: ProblemWorld, values: dict[str, str], *, school: str = "A") -> int:
    """One record written as an import writes it (its problem flags recomputed)."""
    class_id = pw.a1 if school == "A" else pw.a3_class
    klass = await SchoolClass.select().where(SchoolClass.id == class_id).first()
    assert klass is not None
    pw.serial += 1
    record = RecordIn(
        f"J330106{pw.serial:010d}", klass["school"], klass["id"], klass["region_code"], values
    )
    async with transaction():
        summary = await write_records(SYSTEM, [record])
    return summary.student_ids[0]


async def case_of(
    client: httpx.AsyncClient, headers: dict[str, str], student: int, kind: str
) -> dict[str, Any]:
    listed = await client.get(
        "/problem-cases", params={"student_id": student, "kind": kind}, headers=headers
    )
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert len(items) == 1, items
    found = await client.get(f"/problem-cases/{items[0]['id']}", headers=headers)
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


async def act(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    case_id: int,
    action: str,
    evidence: dict[str, int] | None = None,
    **form: str,
) -> httpx.Response:
    files = [
        (kind, (f"{kind}{n}.png", PHOTO, "image/png"))
        for kind, count in (evidence or {}).items()
        for n in range(count)
    ]
    data = {"action": action, **form}
    if files:
        return await client.post(
            f"/problem-cases/{case_id}/actions", data=data, files=files, headers=headers
        )
    # no photo (a delete): still `multipart/form-data`, as a phone sends it
    boundary = "problemboundary"
    body = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in data.items()
        )
        + f"--{boundary}--\r\n"
    )
    return await client.post(
        f"/problem-cases/{case_id}/actions",
        content=body.encode(),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def current_step(case: dict[str, Any]) -> int:
    steps = [s for a in case["actions"] for s in a["steps"] if s["state"] == "current"]
    assert len(steps) == 1, case["actions"]
    return int(steps[0]["id"])


async def decide(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    step_id: int,
    decision: str,
    reason: str = "",
) -> httpx.Response:
    return await client.post(
        f"/review-steps/{step_id}/decision",
        json={"decision": decision, "reason": reason},
        headers=headers,
    )
