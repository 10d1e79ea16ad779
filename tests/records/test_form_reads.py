"""A printed form shows every value in full (the parent checks them on paper), so fetching
one — a page, or a class's PDF — is a reveal: registrars and up, audited. Before, a teacher
downloaded the class's forms and read every ID number, phone and address off them."""

from __future__ import annotations

import httpx
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from tests.factories import bearer, build_world, login, make_students, open_campaign, run_jobs


async def test_a_teacher_may_not_download_forms_and_a_registrars_download_is_audited(
    client: httpx.AsyncClient, app: Litestar, settings: Settings
) -> None:
    world = await build_world(settings)
    await make_students(world, "A1", 2)
    await open_campaign()
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    issued = await client.post(
        "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
    )
    batch = issued.json()
    await run_jobs(app, settings)
    form_id = batch["forms"][0]["form_id"]
    teacher = bearer(await login(client, world.phones[Role.teacher]))

    page = await client.get(f"/forms/{form_id}/png", headers=teacher)
    pdf = await client.get(f"/form-batches/{batch['id']}/pdf", headers=teacher)

    for refused in (page, pdf):
        assert refused.status_code == 403
        assert refused.json()["code"] == "reveal_forbidden"
        assert refused.json()["message"] == "只有学籍管理员及以上角色可以查看完整信息"
    assert await AuditLog.count().where(AuditLog.action == "read") == 0

    assert (await client.get(f"/forms/{form_id}/png", headers=registrar)).status_code == 200
    pdf = await client.get(f"/form-batches/{batch['id']}/pdf", headers=registrar)
    assert pdf.status_code == 200
    reads = await AuditLog.select().where(AuditLog.action == "read").order_by(AuditLog.id)
    assert [(r["actor_role"], r["entity"], r["entity_id"]) for r in reads] == [
        ("registrar", "issued_form", form_id),
        ("registrar", "form_batch", str(batch["id"])),
    ]
