"""Every list pages the same way: a page below 1 or a size outside 1..200 is refused with the
same 400, and a page past the last one is an empty page that still tells the true total. The
lists are found in the API's own schema (every GET with a `page` parameter), so a new list is
walked without being named here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.pages import MAX_PAGE, MAX_PAGE_SIZE, Window, window
from backend.records.tables import GuardianLink
from tests.factories import World, bearer, build_world, login, make_students

# Who lists each path: the lists a registrar may read, the accounts and the support grants
# for the sysadmin, the export approvals for the province.
CALLERS = {
    "/accounts": Role.sysadmin,
    "/my/change-requests": Role.parent,
    "/my/threads": Role.parent,
    "/my/status-changes": Role.parent,
    "/school-directory": Role.parent,
    "/export-approvals": Role.province_admin,
    "/support-grants": Role.sysadmin,
}


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 3)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    return world


async def _paged_lists(client: httpx.AsyncClient) -> list[str]:
    schema = (await client.get("/schema/openapi.json")).json()
    return sorted(
        path
        for path, operations in schema["paths"].items()
        # lists under an id (a campaign's progress by school) are walked by their own tests
        if "{" not in path
        and any(p["name"] == "page" for p in operations.get("get", {}).get("parameters", []))
    )


async def test_every_list_refuses_a_page_below_one_and_answers_past_the_end_alike(
    client: httpx.AsyncClient, world: World
) -> None:
    paths = await _paged_lists(client)
    # The lists of today; a new one joins the walk by itself.
    assert {
        "/students",
        "/org/schools",
        "/org/classes",
        "/accounts",
        "/families",
        "/guardian-links",
        "/correction-drafts",
    } <= set(paths), paths
    tokens = {
        role: bearer(await login(client, world.phones[role]))
        for role in set(CALLERS.values()) | {Role.registrar}
    }
    # a list that needs a filter gets one
    required = {
        "/push-attempts": {"account_id": world.accounts[Role.registrar]},
        "/school-directory": {"region_code": "330000"},
    }
    for path in paths:
        headers = tokens[CALLERS.get(path, Role.registrar)]
        extra = required.get(path, {})

        first = await client.get(path, headers=headers, params={**extra, "page": 1, "page_size": 1})
        assert first.status_code == 200, (path, first.text)
        total = first.json()["total"]
        assert first.json()["page"] == 1
        assert first.json()["page_size"] == 1
        assert len(first.json()["items"]) == min(total, 1), path

        for params in (
            {"page": 0},
            {"page": -1},
            {"page": MAX_PAGE + 1},
            {"page_size": 0},
            {"page_size": -5},
            {"page_size": MAX_PAGE_SIZE + 1},
        ):
            refused = await client.get(path, headers=headers, params={**extra, **params})
            assert refused.status_code == 400, (path, params, refused.text)
            assert refused.json()["code"] == "validation_error", (path, params)

        past = total + 2
        beyond = await client.get(
            path, headers=headers, params={**extra, "page": past, "page_size": 1}
        )
        assert beyond.status_code == 200, (path, beyond.text)
        assert beyond.json() == {"items": [], "page": past, "page_size": 1, "total": total}, path

        last = await client.get(
            path, headers=headers, params={**extra, "page": MAX_PAGE, "page_size": 200}
        )
        assert last.status_code == 200, (path, last.text)
        assert last.json()["items"] == []
        assert last.json()["total"] == total, path


@pytest.mark.parametrize(
    ("page", "page_size", "expected"),
    [
        (1, 50, Window(1, 50)),
        (0, 50, Window(1, 50)),
        (-3, 0, Window(1, 1)),
        (2, 10_000, Window(2, MAX_PAGE_SIZE)),
        (10**12, 1, Window(MAX_PAGE, 1)),
    ],
)
def test_a_service_called_outside_the_limits_answers_the_page_it_says(
    page: int, page_size: int, expected: Window
) -> None:
    w = window(page, page_size)
    assert w == expected
    answer: Any = w.page([], 0)
    assert (answer.page, answer.page_size) == (expected.number, expected.size)
    assert w.offset == (expected.number - 1) * expected.size
