"""The transfers bulletin (`GET /status-changes/bulletin`) against a seed whose figures are
counted by hand: five transfers in February 2027 and January 2027 over 浙江 (杭州's 西湖区 and
滨江区, 宁波's 海曙区) and one from 江苏, one of them left unhandled across the Spring Festival
and one completed late; and who may read which region's figures."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from backend.accounts import org
from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.transfers import bulletin
from backend.transfers.tables import StatusChange
from tests.factories import SYSTEM, World, bearer, build_world, login, make_students
from tests.transfers.seed import Step, add_change, at

FEBRUARY = {"from": "2027-02-01", "to": "2027-02-28"}
TODAY = date(2027, 3, 1)


def start(day: str) -> Step:
    """The receiving registrar started it and decided the first step at once."""
    return Step("start", True, "registrar", became=at(day), decided=at(day))


def release(became: str, decided: str | None = None) -> Step:
    return Step("release", False, "registrar", None, at(became), at(decided) if decided else None)


def review_out(region: str, became: str, decided: str | None = None) -> Step:
    return Step(
        "review_out", False, "county_reviewer", region, at(became), at(decided) if decided else None
    )


def review_in(region: str, became: str, decided: str | None = None) -> Step:
    return Step(
        "review_in", True, "county_reviewer", region, at(became), at(decided) if decided else None
    )


@pytest.fixture
async def world(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(bulletin, "china_today", lambda: TODAY)
    bulletin.forget()  # the figures another test's seed gave
    world = await build_world(settings)
    school_g = await org.create_school(SYSTEM, "2133010699", "学校G", "330106")
    world.schools["G"] = school_g
    world.classes["G1"] = await org.create_class(SYSTEM, school_g, 1, "G1班")
    a1, a, b = world.classes["A1"], world.schools["A"], world.schools["B"]
    t1, t5, suspended = await make_students(world, "A1", 3, start=1)
    (from_g,) = await make_students(world, "G1", 1, start=10)
    (from_c,) = await make_students(world, "C1", 1, start=20)
    (from_d,) = await make_students(world, "D1", 1, start=30)
    applicant = world.accounts[Role.registrar]
    # T1 A (西湖区) → B (滨江区): released? No — left with the sending school from 1 February
    # (due 15 February, the calendar's count), still not handled on 28 February.
    await add_change(
        kind="transfer", student=t1, applicant=applicant, to_school=b,
        to_class=world.classes["B1"], span="province", started_on="2027-02-01",
        steps=(start("2027-02-01"), release("2027-02-01"),
               Step("review_out", False, "county_reviewer", "330106"),
               Step("review_in", True, "county_reviewer", "330108")),
    )  # fmt: skip
    # T2 G → A within 西湖区: completed on 10 February, every step in time
    await add_change(
        kind="transfer", student=from_g, applicant=applicant, to_school=a, to_class=a1,
        span="county", state="completed", started_on="2027-02-03", completed=at("2027-02-10"),
        steps=(start("2027-02-03"), release("2027-02-03", "2027-02-05"),
               review_out("330106", "2027-02-05", "2027-02-10")),
    )  # fmt: skip
    # T3 C (宁波 海曙区) → A: 海曙区's review due 18 February, decided on the 24th (late)
    await add_change(
        kind="transfer", student=from_c, applicant=applicant, to_school=a, to_class=a1,
        span="province", state="completed", started_on="2027-02-02", completed=at("2027-02-25"),
        steps=(start("2027-02-02"), release("2027-02-02", "2027-02-04"),
               review_out("330203", "2027-02-04", "2027-02-24"),
               review_in("330106", "2027-02-24", "2027-02-25")),
    )  # fmt: skip
    # T4 D (江苏 玄武区) → A, across provinces: 玄武区's review overdue (江苏's step, not 浙江's)
    await add_change(
        kind="transfer", student=from_d, applicant=applicant, to_school=a, to_class=a1,
        span="country", started_on="2027-02-08",
        steps=(start("2027-02-08"), release("2027-02-08", "2027-02-09"),
               review_out("320102", "2027-02-09"),
               Step("review_in", True, "county_reviewer", "330106")),
    )  # fmt: skip
    # T5 A → B in January (the previous period): completed on 20 January, in time
    await add_change(
        kind="transfer", student=t5, applicant=applicant, to_school=b,
        to_class=world.classes["B1"], span="province", state="completed",
        started_on="2027-01-11", completed=at("2027-01-20"),
        steps=(start("2027-01-11"), release("2027-01-11", "2027-01-12"),
               review_out("330106", "2027-01-12", "2027-01-15"),
               review_in("330108", "2027-01-15", "2027-01-20")),
    )  # fmt: skip
    # A suspension at A, waiting on 西湖区's review
    await add_change(
        kind="suspend", student=suspended, applicant=applicant, started_on="2027-02-10",
        steps=(Step("enter", False, "registrar", became=at("2027-02-10"),
                    decided=at("2027-02-10")),
               review_out("330106", "2027-02-10")),
    )  # fmt: skip
    return world


async def read(client: httpx.AsyncClient, world: World, role: Role, **query: str) -> httpx.Response:
    headers = bearer(await login(client, world.phones[role]))
    return await client.get("/status-changes/bulletin", params=query, headers=headers)


def reach(figures: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in figures["transfers"] if r["reach"] == name)


def steps(figures: dict[str, Any], name: str) -> dict[str, tuple[int, int]]:
    return {s["step_kind"]: (s["handled"], s["overdue"]) for s in reach(figures, name)["steps"]}


async def test_the_province_figures_match_the_hand_count(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await read(client, world, Role.province_admin, region="330000", **FEBRUARY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["level"], body["name"], body["as_of"]) == ("province", "浙江省", "2027-03-01")
    assert (body["previous_from"], body["previous_to"]) == ("2027-01-04", "2027-01-31")
    within = reach(body["figures"], "within_province")
    # T1, T2, T3 started in February; T2 and T3 completed; January: T5, completed
    assert within["total"] == {
        "started": 3, "completed": 2, "completion_rate": 0.6667,
        "started_before": 1, "completed_before": 1, "completion_rate_before": 1.0,
        "rate_change": -0.3333,
    }  # fmt: skip
    assert (within["sent"]["started"], within["received"]["started"]) == (3, 3)
    # T1's release left unhandled across the Spring Festival; T3's review by 海曙区 late
    assert steps(body["figures"], "within_province") == {
        "start": (3, 0),
        "release": (3, 1),
        "review_out": (2, 1),
        "review_in": (1, 0),
    }
    assert (within["overdue"], within["overdue_share"]) == (2, 0.2222)
    assert (within["overdue_before"], within["overdue_change"]) == (0, 2)
    cross = reach(body["figures"], "cross_province")
    assert (cross["total"]["started"], cross["total"]["completed"]) == (1, 0)
    assert cross["total"]["completion_rate"] == 0.0
    assert (cross["sent"]["started"], cross["received"]["started"]) == (0, 1)
    assert cross["sent"]["completion_rate"] is None
    # 江苏's overdue review is 江苏's: 浙江 answers only for its receiving start
    assert steps(body["figures"], "cross_province") == {
        "start": (1, 0),
        "release": (0, 0),
        "review_out": (0, 0),
        "review_in": (0, 0),
    }
    suspend = next(k for k in body["figures"]["others"] if k["kind"] == "suspend")
    assert (suspend["label"], suspend["flow"]["started"], suspend["flow"]["completed"]) == (
        "休学",
        1,
        0,
    )


async def test_the_province_lists_its_cities_to_rank_them(
    client: httpx.AsyncClient, world: World
) -> None:
    body = (await read(client, world, Role.province_admin, region="330000", **FEBRUARY)).json()
    assert body["children_are"] == "city"
    cities = {c["code"]: c for c in body["children"]}
    assert list(cities) == ["330100", "330200"]
    hangzhou, ningbo = cities["330100"], cities["330200"]
    assert hangzhou["name"] == "杭州市"
    # 杭州: T1 and T2 inside it, T3 received from 宁波 — each once
    h = reach(hangzhou, "within_province")
    assert (h["total"]["started"], h["total"]["completed"], h["total"]["completion_rate"]) == (
        3,
        2,
        0.6667,
    )
    assert (h["overdue"], h["steps"][1]["overdue"]) == (1, 1)  # T1's release
    # 宁波: T3 sent, completed; its late review is 宁波's
    n = reach(ningbo, "within_province")
    assert (n["total"]["started"], n["total"]["completion_rate"]) == (1, 1.0)
    assert steps(ningbo, "within_province")["review_out"] == (1, 1)
    assert n["overdue_share"] == 0.5
    assert reach(hangzhou, "cross_province")["received"]["started"] == 1


async def test_a_period_before_the_step_fell_due_shows_nothing_overdue(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # T1's release became current on 1 February, due 15 February: counted on the 16th, not
    # on the 15th
    for day, overdue in ((date(2027, 2, 15), 0), (date(2027, 2, 16), 1)):
        monkeypatch.setattr(bulletin, "china_today", lambda day=day: day)
        body = (await read(client, world, Role.county_reviewer, **FEBRUARY)).json()
        assert body["as_of"] == day.isoformat()
        assert steps(body["figures"], "within_province")["release"][1] == overdue


async def test_a_county_reads_its_own_figures_and_no_other_county(
    client: httpx.AsyncClient, world: World
) -> None:
    own = await read(client, world, Role.county_reviewer, **FEBRUARY)
    assert own.status_code == 200
    body = own.json()
    assert (body["level"], body["region_code"], body["children"]) == ("county", "330106", [])
    # 西湖区: T1 sent, T2 inside, T3 received
    assert reach(body["figures"], "within_province")["total"]["started"] == 3
    other = await read(client, world, Role.county_reviewer, region="330108", **FEBRUARY)
    assert other.status_code == 404
    assert other.json()["code"] == "not_found"
    denied = await AuditLog.select().where(
        (AuditLog.action == "access_denied") & (AuditLog.entity_id == "330108")
    )
    assert len(denied) == 1


async def test_a_school_reads_its_own_figures_only(client: httpx.AsyncClient, world: World) -> None:
    body = (await read(client, world, Role.registrar, **FEBRUARY)).json()
    assert (body["level"], body["school_id"], body["name"]) == (
        "school",
        world.schools["A"],
        "学校A",
    )
    within = reach(body["figures"], "within_province")
    assert (within["sent"]["started"], within["received"]["started"]) == (1, 2)
    assert reach(body["figures"], "cross_province")["received"]["started"] == 1
    region = await read(client, world, Role.registrar, region="330106", **FEBRUARY)
    assert region.status_code == 404


@pytest.mark.parametrize("role", [Role.teacher, Role.parent])
async def test_teachers_and_parents_are_refused(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    response = await read(client, world, role, **FEBRUARY)
    assert response.status_code == 403
    assert response.json()["code"] == "bulletin_staff_only"


@pytest.mark.parametrize(
    "query",
    [{"from": "2027-02-28", "to": "2027-02-01"}, {"from": "2026-01-01", "to": "2027-02-01"}],
)
async def test_a_period_backwards_or_over_a_year_is_refused(
    client: httpx.AsyncClient, world: World, query: dict[str, str]
) -> None:
    response = await read(client, world, Role.province_admin, **query)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_period"


async def test_figures_are_kept_a_moment_then_counted_again(
    client: httpx.AsyncClient, world: World
) -> None:
    first = (await read(client, world, Role.county_reviewer, **FEBRUARY)).json()
    await StatusChange.delete().where(StatusChange.kind == "suspend")
    kept = (await read(client, world, Role.county_reviewer, **FEBRUARY)).json()
    assert kept["counted_at"] == first["counted_at"]
    assert suspensions(kept) == 1
    bulletin.forget()
    fresh = (await read(client, world, Role.county_reviewer, **FEBRUARY)).json()
    assert fresh["counted_at"] > first["counted_at"]
    assert suspensions(fresh) == 0


def suspensions(body: dict[str, Any]) -> int:
    found = next(k for k in body["figures"]["others"] if k["kind"] == "suspend")
    return int(found["flow"]["started"])


async def test_the_nation_ranks_provinces_each_answering_for_its_own_steps(
    client: httpx.AsyncClient, world: World
) -> None:
    body = (await read(client, world, Role.sysadmin, **FEBRUARY)).json()
    assert (body["level"], body["region_code"], body["children_are"]) == (
        "nation",
        None,
        "province",
    )
    provinces = {p["code"]: p for p in body["children"]}
    assert list(provinces) == ["320000", "330000"]
    # T4 leaves 江苏 for 浙江: 江苏 sent it and holds its overdue review; 浙江 received it
    jiangsu, zhejiang = provinces["320000"], provinces["330000"]
    assert jiangsu["name"] == "江苏省"
    assert reach(jiangsu, "cross_province")["sent"]["started"] == 1
    assert steps(jiangsu, "cross_province") == {
        "start": (0, 0),
        "release": (1, 0),
        "review_out": (1, 1),
        "review_in": (0, 0),
    }
    assert reach(zhejiang, "cross_province")["received"]["started"] == 1
    assert reach(zhejiang, "cross_province")["overdue"] == 0
    # the nation counts T4 once, and every transfer of the seed
    assert reach(body["figures"], "cross_province")["total"]["started"] == 1
    assert reach(body["figures"], "within_province")["total"]["started"] == 3
