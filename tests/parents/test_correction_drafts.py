"""Corrections written on the paper form, one draft per field: each names its child, its
upload and its field; the teacher marks each legible or illegible, and an illegible one asks
the family, in Chinese, for a new photo."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.parents.tables import CorrectionDraft
from tests.factories import World, bearer, login, make_account
from tests.parents.test_checks import phone_photo, printed_page, registrar, upload_and_check

ILLEGIBLE = "老师看不清您填写的更正内容"


@pytest.fixture
async def teacher(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    return bearer(await login(client, world.phones[Role.teacher]))


@pytest.fixture
async def written(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> dict[str, Any]:
    """The first child's form, photographed with two corrections written on it."""
    page = await printed_page(client, await registrar(client, world), world.students[0])
    photo = phone_photo(page, 2, corrections=("current_address", "guardian1_phone"))
    result = await upload_and_check(client, app, settings, parent, world.students[0], photo)
    assert result["verdict"] == "corrections_written", result
    return result


async def test_each_draft_names_its_child_upload_field_and_state(
    client: httpx.AsyncClient, world: World, teacher: dict[str, str], written: dict[str, Any]
) -> None:
    response = await client.get("/correction-drafts", headers=teacher)

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    assert page["page"] == 1
    by_field = {d["field"]: d for d in page["items"]}
    assert set(by_field) == {"current_address", "guardian1_phone"}
    address = by_field["current_address"]
    assert address["student_id"] == world.students[0]
    assert address["upload_id"] == written["upload"]["id"]
    assert address["class_id"] == world.classes["A1"]
    assert address["field_label"] == "现住址"
    assert address["state"] == "draft"
    assert address["printed_read"]  # what the check read in the printed cell
    assert address["crop_url"] == f"/correction-drafts/{address['id']}/crop"
    phone = by_field["guardian1_phone"]
    assert "*" in phone["printed_read"]  # a phone leaves masked


async def test_drafts_are_paginated_and_filtered_by_state_and_class(
    client: httpx.AsyncClient, world: World, teacher: dict[str, str], written: dict[str, Any]
) -> None:
    first = (
        await client.get("/correction-drafts", headers=teacher, params={"page_size": 1})
    ).json()
    assert (len(first["items"]), first["total"]) == (1, 2)
    draft_id = first["items"][0]["id"]
    await client.post(f"/correction-drafts/{draft_id}/legible", headers=teacher)

    def ids(response: httpx.Response) -> list[int]:
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["items"]]

    legible = await client.get("/correction-drafts", headers=teacher, params={"state": "legible"})
    assert ids(legible) == [draft_id]
    waiting = await client.get("/correction-drafts", headers=teacher, params={"state": "draft"})
    assert draft_id not in ids(waiting)
    assert len(ids(waiting)) == 1
    other_class = {"class_id": world.classes["A2"]}
    registrar_headers = await registrar(client, world)
    assert (
        ids(await client.get("/correction-drafts", headers=registrar_headers, params=other_class))
        == []
    )
    bogus = await client.get("/correction-drafts", headers=teacher, params={"state": "bogus"})
    assert bogus.status_code == 400


async def test_a_legible_draft_is_marked_and_audited_one_by_one(
    client: httpx.AsyncClient, teacher: dict[str, str], written: dict[str, Any]
) -> None:
    drafts = (await client.get("/correction-drafts", headers=teacher)).json()["items"]
    first, second = drafts

    response = await client.post(f"/correction-drafts/{first['id']}/legible", headers=teacher)

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "legible"
    assert response.json()["decided_at"] is not None
    states = {
        r["id"]: r["state"]
        for r in await CorrectionDraft.select(CorrectionDraft.id, CorrectionDraft.state)
    }
    assert states == {first["id"]: "legible", second["id"]: "draft"}
    audit = await AuditLog.select().where(
        (AuditLog.action == "legible") & (AuditLog.entity == "correction_draft")
    )
    assert [a["entity_id"] for a in audit] == [str(first["id"])]
    # the same answer again (a phone retrying) changes nothing and is not written twice
    again = await client.post(f"/correction-drafts/{first['id']}/legible", headers=teacher)
    assert again.status_code == 200
    assert await AuditLog.count().where(AuditLog.action == "legible") == 1
    # a decided draft is not turned around
    turned = await client.post(f"/correction-drafts/{first['id']}/illegible", headers=teacher)
    assert turned.status_code == 409
    assert turned.json()["code"] == "draft_already_decided"
    assert "已" in turned.json()["message"]


async def test_an_illegible_draft_asks_the_family_for_a_new_photo(
    client: httpx.AsyncClient,
    world: World,
    parent: dict[str, str],
    teacher: dict[str, str],
    written: dict[str, Any],
) -> None:
    drafts = (await client.get("/correction-drafts", headers=teacher)).json()["items"]
    address = next(d for d in drafts if d["field"] == "current_address")

    response = await client.post(f"/correction-drafts/{address['id']}/illegible", headers=teacher)

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "illegible"
    children = (await client.get("/my/children", headers=parent)).json()
    form = next(c for c in children if c["id"] == world.students[0])["form"]
    assert form["status"] == "retake"
    assert ILLEGIBLE in form["message"]
    assert "现住址" in form["message"]
    families = (await client.get("/families", headers=teacher, params={"status": "retake"})).json()[
        "items"
    ]
    assert [f["student_id"] for f in families] == [world.students[0]]
    assert ILLEGIBLE in families[0]["form"]["message"]
    assert (
        await AuditLog.count().where(
            (AuditLog.action == "illegible") & (AuditLog.entity_id == str(address["id"]))
        )
        == 1
    )


async def test_only_the_class_staff_decide_a_draft(
    client: httpx.AsyncClient,
    settings: Settings,
    world: World,
    parent: dict[str, str],
    teacher: dict[str, str],
    written: dict[str, Any],
) -> None:
    draft = await CorrectionDraft.select(CorrectionDraft.id).first()
    assert draft is not None
    url = f"/correction-drafts/{draft['id']}/legible"

    as_parent = await client.post(url, headers=parent)
    assert as_parent.status_code == 403
    leader = bearer(await login(client, world.phones[Role.school_leader]))
    as_leader = await client.post(url, headers=leader)
    assert as_leader.status_code == 403
    assert as_leader.json()["code"] == "teachers_only"
    await make_account(
        settings,
        Role.teacher,
        "13800009999",
        region_code="330106",
        school=world.schools["A"],
        school_class=world.classes["A2"],
    )
    other_teacher = bearer(await login(client, "13800009999"))
    outside = await client.post(url, headers=other_teacher)
    assert outside.status_code == 404
    unknown = await client.post(f"/correction-drafts/{draft['id']}/smudged", headers=teacher)
    assert unknown.status_code in (400, 404)
    assert await CorrectionDraft.count().where(CorrectionDraft.state != "draft") == 0
    # the school's registrar may, as the class teacher may
    as_registrar = await client.post(url, headers=await registrar(client, world))
    assert as_registrar.status_code == 200
    assert as_registrar.json()["state"] == "legible"


async def test_the_upload_wide_legible_path_is_gone(
    client: httpx.AsyncClient, teacher: dict[str, str], written: dict[str, Any]
) -> None:
    response = await client.post(f"/uploads/{written['upload']['id']}/legible", headers=teacher)
    assert response.status_code in (404, 405)
