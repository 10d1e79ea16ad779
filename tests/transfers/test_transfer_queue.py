"""A transfer waiting on its approver in "what waits on me" (`GET /review-steps`), beside the
corrections: shown to the receiving school's registrar with what is decided on (kind, from
school → to school, span, the reason masked), counted on the badge, and to no one else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.queue_schemas import QueuedChangeKind
from backend.transfers.tables import ChangeKind
from tests.factories import World, bearer, build_world, login, make_account, make_students
from tests.transfers.seed import Step, add_change

REGISTRAR_B = "13600000009"


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await make_account(
        settings,
        Role.registrar,
        REGISTRAR_B,
        name="registrar_B",
        region_code="330108",
        school=world.schools["B"],
    )
    # A parent applied at A to move their child from B: the start is A's registrar's
    (student,) = await make_students(world, "B1", 1, start=40)
    world.students = [student]
    await add_change(
        kind="transfer",
        student=student,
        applicant=world.accounts[Role.registrar],
        to_school=world.schools["A"],
        to_class=world.classes["A1"],
        span="province",
        state="applied",
        reason="随父母工作调动，联系电话 13812345678",
        steps=(
            Step("start", True, "registrar", became=datetime.now(UTC)),
            Step("release", False, "registrar"),
            Step("review_out", False, "county_reviewer", "330108"),
            Step("review_in", True, "county_reviewer", "330106"),
        ),
    )
    return world


async def queue(client: httpx.AsyncClient, phone: str) -> tuple[dict[str, Any], dict[str, Any]]:
    headers = bearer(await login(client, phone))
    page = await client.get("/review-steps", headers=headers)
    counts = await client.get("/review-steps/counts", headers=headers)
    assert page.status_code == 200, page.text
    assert counts.status_code == 200, counts.text
    return page.json(), counts.json()


async def test_the_receiving_registrar_sees_what_to_decide(
    client: httpx.AsyncClient, world: World
) -> None:
    page, counts = await queue(client, world.phones[Role.registrar])
    assert (page["total"], counts["waiting"]) == (1, 1)
    (item,) = page["items"]
    assert (item["subject_kind"], item["step_kind"], item["student_id"]) == (
        "status_change",
        "start",
        world.students[0],
    )
    assert item["school_name"] == "学校A"  # the receiving side's step, filed there
    summary = item["summary"]
    assert summary["title"] == "转学：学校B → 学校A（省内跨县转学）"
    assert summary["reason"] == "随父母工作调动，联系电话 138****5678"
    assert summary["change"] == {
        "kind": "transfer",
        "kind_label": "转学",
        "from_school_name": "学校B",
        "to_school_name": "学校A",
        "span": "province",
        "span_label": "省内跨县转学",
    }


@pytest.mark.parametrize("who", ["registrar_B", "county_reviewer", "school_leader", "city_admin"])
async def test_no_one_else_sees_it(client: httpx.AsyncClient, world: World, who: str) -> None:
    phone = REGISTRAR_B if who == "registrar_B" else world.phones[Role(who)]
    page, counts = await queue(client, phone)
    assert page["total"] == 0
    assert counts["waiting"] == 0


def test_the_queue_knows_every_kind_of_status_change() -> None:
    assert [kind.value for kind in QueuedChangeKind] == [kind.value for kind in ChangeKind]
