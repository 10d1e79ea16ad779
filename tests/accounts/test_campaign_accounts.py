"""Campaign accounts (数据质量核查专用账号): extra accounts for a school or a county, bound to
a campaign, made by a county or above inside its scope, and closed for good — sessions ended,
sign-in refused, audited — when the campaign ends where they work: at once when it is closed
early or deleted, and by the worker's cron when the window that applies to their county
passes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog, AuthSession
from backend.config import Settings
from backend.records import campaign_accounts
from backend.records.campaign_account_tables import CampaignAccount
from backend.records.tables import Campaign, CampaignSetting
from backend.worker import close_campaign_accounts_job
from tests.factories import (
    World,
    bearer,
    build_world,
    job_ctx,
    login,
    make_account,
    open_campaign,
)

INITIAL = "Init1234pw"


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


def school_body(campaign: int, school: int, phone: str = "13600000001") -> dict[str, Any]:
    return {
        "campaign_id": campaign,
        "phone": phone,
        "name": "核查专用一",
        "initial_password": INITIAL,
        "school_id": school,
    }


def county_body(campaign: int, county: str, phone: str = "13600000002") -> dict[str, Any]:
    return {
        "campaign_id": campaign,
        "phone": phone,
        "name": "区县核查专用",
        "initial_password": INITIAL,
        "region_code": county,
    }


async def signed_in(client: httpx.AsyncClient, phone: str) -> dict[str, Any]:
    """Signed in with the initial password and changed it: a working session."""
    first = await login(client, phone, INITIAL)
    assert first["password_change_required"] is True
    changed = await client.post(
        "/auth/password",
        headers=bearer(first),
        json={"old_password": INITIAL, "new_password": "Check-seven-2026"},
    )
    assert changed.status_code == 204
    return await login(client, phone, "Check-seven-2026")


async def status_of(account_id: int) -> str:
    row = await Account.select(Account.status).where(Account.id == account_id).first()
    assert row is not None
    return str(row["status"])


async def test_a_county_gives_a_school_its_campaign_account(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    await make_account(
        settings, Role.registrar, "13700009999", region_code="330108", school=world.schools["B"]
    )
    campaign = await open_campaign()
    headers = await as_role(client, world, Role.county_reviewer)

    created = await client.post(
        "/campaign-accounts", headers=headers, json=school_body(campaign, world.schools["A"])
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["role"] == "registrar"
    assert body["school_id"] == world.schools["A"]
    assert body["region_code"] == "330106"
    assert body["status"] == "active"
    assert body["closed_at"] is None
    # It works as the school's registrar: its scope is the school.
    tokens = await signed_in(client, "13600000001")
    me = (await client.get("/me", headers=bearer(tokens))).json()
    assert me["scope"]["school_id"] == world.schools["A"]
    [audit] = await AuditLog.select().where(AuditLog.action == "create_campaign_account")
    assert audit["actor_id"] == world.accounts[Role.county_reviewer]
    listed = await client.get(f"/campaigns/{campaign}/accounts", headers=headers)
    assert listed.status_code == 200
    assert [a["account_id"] for a in listed.json()["items"]] == [body["account_id"]]
    # The school's own registrar sees it (its school), another county's staff does not.
    own = await client.get(
        f"/campaign-accounts/{body['account_id']}",
        headers=await as_role(client, world, Role.registrar),
    )
    assert own.status_code == 200


async def test_a_province_gives_a_county_its_campaign_account(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign = await open_campaign()
    headers = await as_role(client, world, Role.province_admin)

    created = await client.post(
        "/campaign-accounts", headers=headers, json=county_body(campaign, "330108")
    )

    assert created.status_code == 201, created.text
    assert created.json()["role"] == "county_reviewer"
    assert created.json()["school_id"] is None


@pytest.mark.parametrize(
    ("role", "body", "status", "code"),
    [
        # A school does not give itself accounts.
        ("registrar", "school_A", 403, "campaign_accounts_forbidden"),
        # A county does not make an account of its own rank.
        ("county_reviewer", "county_330106", 403, "rank_too_high"),
        # Outside the caller's scope: answers as missing.
        ("county_reviewer", "school_C", 404, "not_found"),
        # The city's campaign (330100) does not cover Ningbo's school C.
        ("province_admin", "city_campaign_school_C", 409, "campaign_not_here"),
        ("province_admin", "both", 400, "place_required"),
        ("province_admin", "neither", 400, "place_required"),
        ("province_admin", "city", 400, "county_required"),
        ("province_admin", "ended", 409, "campaign_ended"),
        ("province_admin", "weak", 400, "weak_password"),
    ],
)
async def test_refusals(
    client: httpx.AsyncClient, world: World, role: str, body: str, status: int, code: str
) -> None:
    campaign = await open_campaign()
    bodies: dict[str, dict[str, Any]] = {
        "school_A": school_body(campaign, world.schools["A"]),
        "county_330106": county_body(campaign, "330106"),
        "school_C": school_body(campaign, world.schools["C"]),
        "both": {**school_body(campaign, world.schools["A"]), "region_code": "330106"},
        "neither": {
            k: v for k, v in school_body(campaign, world.schools["A"]).items() if k != "school_id"
        },
        "city": county_body(campaign, "330100"),
        "weak": {**school_body(campaign, world.schools["A"]), "initial_password": "12345678"},
    }
    if body == "city_campaign_school_C":
        await Campaign.delete().where(Campaign.id == campaign)
        bodies[body] = school_body(await open_campaign("330100"), world.schools["C"])
    if body == "ended":
        await Campaign.update({Campaign.ends_at: datetime.now(UTC) - timedelta(hours=1)}).where(
            Campaign.id == campaign
        )
        bodies[body] = school_body(campaign, world.schools["A"])
    headers = await as_role(client, world, Role(role))

    response = await client.post("/campaign-accounts", headers=headers, json=bodies[body])

    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert not await Account.exists().where(Account.phone.is_in(["13600000001", "13600000002"]))
    assert not await CampaignAccount.exists()


async def test_closing_the_campaign_closes_its_accounts_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign = await open_campaign()
    province = await as_role(client, world, Role.province_admin)
    made = await client.post(
        "/campaign-accounts", headers=province, json=school_body(campaign, world.schools["A"])
    )
    account = made.json()["account_id"]
    tokens = await signed_in(client, "13600000001")
    assert (await client.get("/students", headers=bearer(tokens))).status_code == 200

    closed = await client.post(f"/campaigns/{campaign}/close", headers=province)

    assert closed.status_code == 200, closed.text
    assert await status_of(account) == "closed"
    # Its running session is over: the access token and the refresh token.
    assert (await client.get("/students", headers=bearer(tokens))).status_code == 401
    refresh = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    assert not await AuthSession.exists().where(
        (AuthSession.account == account) & AuthSession.revoked_at.is_null()
    )
    # It cannot sign in again, and says why.
    again = await client.post(
        "/auth/login", json={"phone": "13600000001", "password": "Check-seven-2026"}
    )
    assert again.status_code == 403
    assert again.json()["code"] == "account_closed"
    # Closed for good: no admin enables it.
    enabled = await client.post(f"/accounts/{account}/enable", headers=province)
    assert enabled.status_code == 409
    assert enabled.json()["code"] == "invalid_status"
    binding = await CampaignAccount.select().where(CampaignAccount.account == account).first()
    assert binding is not None
    assert binding["closed_reason"] == "campaign_closed"
    [audit] = await AuditLog.select().where(AuditLog.action == "close_campaign_account")
    assert audit["actor_id"] == world.accounts[Role.province_admin]
    assert audit["entity_id"] == str(account)


async def test_the_cron_closes_accounts_when_their_countys_window_passes(
    client: httpx.AsyncClient, world: World, app: Litestar
) -> None:
    campaign = await open_campaign(days=30)
    now = datetime.now(UTC)
    # The province ends 滨江区's window in two days; 西湖区 keeps the campaign's 30.
    await CampaignSetting.insert(
        CampaignSetting(
            campaign=campaign,
            region_code="330108",
            set_by="province",
            ends_at=now + timedelta(days=2),
            updated_by=world.accounts[Role.province_admin],
            updated_at=now,
        )
    )
    province = await as_role(client, world, Role.province_admin)
    west = await client.post(
        "/campaign-accounts", headers=province, json=school_body(campaign, world.schools["A"])
    )
    binjiang = await client.post(
        "/campaign-accounts", headers=province, json=county_body(campaign, "330108")
    )
    west_id, binjiang_id = west.json()["account_id"], binjiang.json()["account_id"]
    other = await open_campaign("320000")  # 江苏省: its own account, its own window
    sysadmin = await as_role(client, world, Role.sysadmin)
    jiangsu = await client.post(
        "/campaign-accounts",
        headers=sysadmin,
        json=school_body(other, world.schools["D"], phone="13600000003"),
    )
    assert jiangsu.status_code == 201, jiangsu.text

    assert await close_campaign_accounts_job(job_ctx(app)) == 0  # nothing over yet
    assert await campaign_accounts.close_ended(now + timedelta(days=3)) == 1

    assert await status_of(binjiang_id) == "closed"
    assert await status_of(west_id) == "active"
    binding = await CampaignAccount.select().where(CampaignAccount.account == binjiang_id).first()
    assert binding is not None
    assert binding["closed_reason"] == "window_ended"

    # The campaign's own end closes the rest; a second run finds nothing more.
    assert await campaign_accounts.close_ended(now + timedelta(days=31)) == 2
    assert await status_of(west_id) == "closed"
    assert await campaign_accounts.close_ended(now + timedelta(days=32)) == 0
    rows = await AuditLog.select().where(AuditLog.action == "close_campaign_account")
    assert sorted(int(r["entity_id"]) for r in rows) == sorted(
        [binjiang_id, west_id, jiangsu.json()["account_id"]]
    )
    assert {r["actor_id"] for r in rows} == {None}  # the system closed them


async def test_an_account_made_while_the_campaign_closes_is_never_left_open(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    for attempt in range(3):
        campaign = await open_campaign()
        body = school_body(campaign, world.schools["A"], phone=f"1360000010{attempt}")

        made, closed = await asyncio.gather(
            client.post("/campaign-accounts", headers=province, json=body),
            client.post(f"/campaigns/{campaign}/close", headers=province),
        )

        assert closed.status_code == 200, closed.text
        if made.status_code == 201:  # made first: the close closed it
            assert await status_of(made.json()["account_id"]) == "closed"
        else:  # the close first: refused
            assert (made.status_code, made.json()["code"]) == (409, "campaign_ended")
            assert not await Account.exists().where(Account.phone == body["phone"])


async def test_deleting_a_mistaken_campaign_closes_its_accounts(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign = await open_campaign()
    province = await as_role(client, world, Role.province_admin)
    made = await client.post(
        "/campaign-accounts", headers=province, json=school_body(campaign, world.schools["A"])
    )
    account = made.json()["account_id"]

    deleted = await client.delete(f"/campaigns/{campaign}", headers=province)

    assert deleted.status_code == 204, deleted.text
    assert await status_of(account) == "closed"
    assert not await CampaignAccount.exists()  # the binding went with its campaign
    [audit] = await AuditLog.select().where(AuditLog.action == "close_campaign_account")
    assert '"campaign_deleted"' in (audit["after"] or "")


async def test_one_phone_given_twice_at_once_makes_one_account_and_a_conflict(
    client: httpx.AsyncClient, world: World
) -> None:
    """Two admins give the same phone an account of two campaigns at the same moment: one
    account is made, the other answer is `phone_taken` (not a server error)."""
    province = await as_role(client, world, Role.province_admin)
    for attempt in range(3):
        first, second = await open_campaign(), await open_campaign()
        phone = f"1360000020{attempt}"

        answers = await asyncio.gather(
            client.post(
                "/campaign-accounts",
                headers=province,
                json=school_body(first, world.schools["A"], phone),
            ),
            client.post(
                "/campaign-accounts",
                headers=province,
                json=school_body(second, world.schools["A"], phone),
            ),
        )

        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 409], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert refused.json()["code"] == "phone_taken"
        assert await Account.count().where(Account.phone == phone) == 1
