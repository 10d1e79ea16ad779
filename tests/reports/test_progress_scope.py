"""Who reads which progress: each role its own node by default and any node inside its scope;
a node outside answers 404 like a missing one (and the attempt is audited), a parent 403."""

from __future__ import annotations

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from tests.factories import open_campaign
from tests.records.requests import audit_rows
from tests.reports.progress_world import ProgressWorld, build, read, refresh


@pytest.fixture
async def pw(settings: Settings) -> ProgressWorld:
    world = await build(settings)
    await refresh()
    return world


# (role, what it reads by default: level and key)
OWN = [
    (Role.teacher, "class", "A1"),
    (Role.registrar, "school", "A"),
    (Role.school_leader, "school", "A"),
    (Role.county_reviewer, "county", "330106"),
    (Role.city_admin, "city", "330100"),
    (Role.province_admin, "province", "330000"),
    (Role.sysadmin, "province", "330000"),  # the nation's: the campaign's own region
]


@pytest.mark.parametrize(("role", "level", "key"), OWN)
async def test_each_role_reads_its_own_node_by_default(
    client: httpx.AsyncClient, pw: ProgressWorld, role: Role, level: str, key: str
) -> None:
    response = await read(client, pw, role)
    assert response.status_code == 200, response.text
    node = response.json()["node"]
    assert node["level"] == level
    if level == "class":
        assert node["class_id"] == pw.world.classes[key]
    elif level == "school":
        assert node["school_id"] == pw.world.schools[key]
    else:
        assert node["region_code"] == key


# (role, a node outside its scope)
OUTSIDE = [
    (Role.county_reviewer, {"region_code": "330108"}, "region", "330108"),  # another county
    (Role.county_reviewer, {"region_code": "330000"}, "region", "330000"),  # its province
    (Role.county_reviewer, {"region_code": "330100"}, "region", "330100"),  # its city
    (Role.county_reviewer, {"school_id": "B"}, "school", "B"),
    (Role.city_admin, {"region_code": "330200"}, "region", "330200"),
    (Role.city_admin, {"school_id": "C"}, "school", "C"),
    (Role.registrar, {"school_id": "B"}, "school", "B"),
    (Role.registrar, {"class_id": "B1"}, "school_class", "B1"),
    (Role.teacher, {"class_id": "A2"}, "school_class", "A2"),
    (Role.teacher, {"school_id": "A"}, "school", "A"),
]


@pytest.mark.parametrize(("role", "params", "entity", "key"), OUTSIDE)
async def test_a_node_outside_the_scope_answers_404_and_is_audited(
    client: httpx.AsyncClient,
    pw: ProgressWorld,
    role: Role,
    params: dict[str, str],
    entity: str,
    key: str,
) -> None:
    resolved = {
        name: (
            pw.world.schools[value]
            if name == "school_id"
            else pw.world.classes[value]
            if name == "class_id"
            else value
        )
        for name, value in params.items()
    }
    response = await read(client, pw, role, **resolved)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    entity_id = next(iter(resolved.values()))
    assert await audit_rows("access_denied", entity, entity_id)


async def test_a_school_or_class_sees_no_regions_totals_even_its_own_county(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    for role in (Role.registrar, Role.school_leader, Role.teacher):
        response = await read(client, pw, role, region_code="330106")
        assert response.status_code == 404, (role, response.text)


async def test_inside_the_scope_every_level_down_is_readable(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    reads = [
        (Role.province_admin, {"region_code": "330200"}),
        (Role.city_admin, {"region_code": "330106"}),
        (Role.county_reviewer, {"school_id": pw.world.schools["A"]}),
        (Role.county_reviewer, {"class_id": pw.world.classes["A2"]}),
        (Role.registrar, {"class_id": pw.world.classes["A2"]}),
    ]
    for role, params in reads:
        response = await read(client, pw, role, **params)
        assert response.status_code == 200, (role, params, response.text)


async def test_a_parent_is_refused_and_so_is_a_campaign_of_another_province(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    parent = await read(client, pw, Role.parent)
    assert (parent.status_code, parent.json()["code"]) == (403, "progress_staff_only")
    jiangsu = await open_campaign("320000")
    response = await client.get(
        f"/campaigns/{jiangsu}/progress",
        headers=await pw.headers(client, Role.county_reviewer),
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert await audit_rows("access_denied", "campaign", jiangsu)
    # the nation reads 江苏's campaign, but not a 浙江 node under it
    sysadmin = await pw.headers(client, Role.sysadmin)
    ok = await client.get(f"/campaigns/{jiangsu}/progress", headers=sysadmin)
    assert ok.status_code == 200, ok.text
    assert ok.json()["node"]["region_code"] == "320000"
    crossed = await client.get(
        f"/campaigns/{jiangsu}/progress", params={"region_code": "330106"}, headers=sysadmin
    )
    assert crossed.status_code == 404


async def test_one_node_at_a_time(client: httpx.AsyncClient, pw: ProgressWorld) -> None:
    response = await read(
        client,
        pw,
        Role.sysadmin,
        region_code="330106",
        school_id=pw.world.schools["A"],
    )
    assert (response.status_code, response.json()["code"]) == (400, "one_node_only")
    bad = await read(client, pw, Role.sysadmin, region_code="33")
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_error")


async def test_the_paper_checklist_is_of_a_campaign_in_scope_and_the_callers_class(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    teacher = await pw.headers(client, Role.teacher)  # A1's teacher
    a1, a2 = pw.world.classes["A1"], pw.world.classes["A2"]
    own = await client.get(f"/campaigns/{pw.campaign}/classes/{a1}/paper-returns", headers=teacher)
    assert own.status_code == 200, own.text
    # another class of the same school: like a missing one, audited
    other = await client.get(
        f"/campaigns/{pw.campaign}/classes/{a2}/paper-returns", headers=teacher
    )
    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    assert await audit_rows("access_denied", "school_class", a2)
    # a campaign of another province, or none at all: no checklist (not an empty one)
    jiangsu = await open_campaign("320000")
    for campaign in (jiangsu, 2147483647):
        response = await client.get(
            f"/campaigns/{campaign}/classes/{a1}/paper-returns", headers=teacher
        )
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), campaign
    assert await audit_rows("access_denied", "campaign", jiangsu)
