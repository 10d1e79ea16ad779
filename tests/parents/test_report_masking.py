"""The photo check's report carries what was read off the photo: the child's and both
guardians' ID numbers and phones, the addresses. It goes through the one masking rule for the
teacher (whose read is audited, as any staff read of a record) and for the parent too."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.catalog import BY_CODE
from backend.records.ids import make_resident_id
from backend.records.service import load_fields
from backend.records.tables import GuardianLink, Student
from tests.factories import bearer, build_world, login, make_students, open_campaign
from tests.parents.helpers import issue_forms
from tests.parents.test_checks import phone_photo, printed_page, registrar, upload_and_check

SENSITIVE = [code for code, field in BY_CODE.items() if field.sensitive]


async def test_the_report_is_masked_for_the_teacher_and_the_parent(
    client: httpx.AsyncClient, app: Litestar, settings: Settings
) -> None:
    world = await build_world(settings)
    (student_id,) = await make_students(world, "A1", 1)
    row = await Student.select(Student.fields).where(Student.id == student_id).first()
    assert row is not None
    values = load_fields(row["fields"])
    values["guardian1_id_type"] = values["guardian2_id_type"] = "1"
    values["guardian1_id_number"] = make_resident_id("330106", datetime(1985, 4, 2), 11, "1")
    values["guardian2_id_number"] = make_resident_id("330106", datetime(1987, 9, 9), 12, "2")
    await Student.update({Student.fields: values}).where(Student.id == student_id)
    await open_campaign()
    await issue_forms(client, world)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=student_id,
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    parent = bearer(await login(client, world.phones[Role.parent]))
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    page = await printed_page(client, await registrar(client, world), student_id)
    photo = phone_photo(page, 7, corrections=("guardian1_phone",))

    report = await upload_and_check(client, app, settings, parent, student_id, photo)
    upload_id = report["upload"]["id"]
    as_teacher = await client.get(f"/uploads/{upload_id}", headers=teacher)
    as_parent = await client.get(f"/uploads/{upload_id}", headers=parent)

    assert as_teacher.status_code == as_parent.status_code == 200
    secrets = {code: values[code] for code in SENSITIVE if values.get(code)}
    assert len(secrets) == 8  # ID, phone, 2 addresses, both guardians' phones and ID numbers
    for response in (as_teacher, as_parent):
        fields = {f["field"]: f for f in response.json()["fields"]}
        read = [code for code in secrets if fields.get(code, {}).get("read")]
        assert len(read) >= 5, fields  # the reader did read them …
        for code, value in secrets.items():
            assert value not in response.text, code  # … and none comes back in full
        for code in read:
            assert fields[code]["masked"] is True
            assert "*" in fields[code]["read"]
        assert fields["name"]["read"] == values["name"]  # not sensitive: as read
        assert fields["name"]["masked"] is False
    # the teacher's read of the report is audited, like a read of the record
    reads = await AuditLog.select().where(
        (AuditLog.action == "read") & (AuditLog.entity == "upload")
    )
    assert [(r["actor_role"], r["entity_id"]) for r in reads] == [("teacher", str(upload_id))]
    # the crop of a handwritten phone is that phone in full: reading it is audited too
    drafts = (await client.get("/correction-drafts", headers=teacher)).json()["items"]
    assert [d["field"] for d in drafts] == ["guardian1_phone"]
    assert "*" in drafts[0]["printed_read"]  # the printed phone, as read, leaves masked
    crop = await client.get(drafts[0]["crop_url"], headers=teacher)
    assert crop.status_code == 200
    assert (
        await AuditLog.count().where(
            (AuditLog.action == "read")
            & (AuditLog.entity == "correction_draft")
            & (AuditLog.entity_id == str(drafts[0]["id"]))
        )
        == 1
    )
