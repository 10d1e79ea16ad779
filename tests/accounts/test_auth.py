"""Login, throttling, refresh rotation and reuse, logout, password expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from backend.accounts import org
from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog, AuthSession, RefreshToken
from backend.config import Settings
from tests.factories import PASSWORD, SYSTEM, bearer, login, make_account

PHONE = "13600000001"


@pytest.fixture
async def registrar(settings: Settings) -> int:
    return await make_account(settings, Role.registrar, PHONE)


def without_request_id(body: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in body.items() if k != "request_id"}


async def test_login_returns_tokens_and_audits(client: httpx.AsyncClient, registrar: int) -> None:
    tokens = await login(client, PHONE)

    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    assert tokens["password_change_required"] is False
    me = await client.get("/me", headers=bearer(tokens))
    assert me.json()["id"] == registrar
    assert me.json()["role_label"] == "学籍管理员"
    logins = await AuditLog.select().where(AuditLog.action == "login")
    assert [row["actor_id"] for row in logins] == [registrar]


async def test_wrong_password_and_unknown_phone_answer_alike(
    client: httpx.AsyncClient, registrar: int
) -> None:
    wrong = await client.post("/auth/login", json={"phone": PHONE, "password": "nope12345"})
    unknown = await client.post("/auth/login", json={"phone": "13600009999", "password": "x1"})

    assert wrong.status_code == unknown.status_code == 401
    assert without_request_id(wrong.json()) == without_request_id(unknown.json())
    assert wrong.json() == {
        **wrong.json(),
        "code": "invalid_credentials",
        "message": "手机号或密码错误",
    }
    failed = await AuditLog.select().where(AuditLog.action == "login_failed")
    assert len(failed) == 2


async def test_login_is_slowed_per_account_and_address(
    client: httpx.AsyncClient, registrar: int, settings: Settings
) -> None:
    for _ in range(settings.login_free_failures):
        response = await client.post("/auth/login", json={"phone": PHONE, "password": "bad1234x"})
        assert response.status_code == 401

    # From this address even the right password waits (test_login_throttle.py: the owner
    # elsewhere does not).
    blocked = await client.post("/auth/login", json={"phone": PHONE, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "too_many_attempts"
    assert int(blocked.headers["retry-after"]) > 0


async def test_a_spraying_address_needs_an_sms_code(
    client: httpx.AsyncClient, registrar: int, settings: Settings
) -> None:
    for i in range(settings.login_max_failures_per_address):
        phone = f"135{i:08d}"
        response = await client.post("/auth/login", json={"phone": phone, "password": "bad1234x"})
        assert response.status_code == 401

    challenged = await client.post("/auth/login", json={"phone": PHONE, "password": PASSWORD})
    assert challenged.status_code == 401
    assert challenged.json()["code"] == "sms_code_required"


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, registrar: int, use_settings: Callable[..., Settings]
) -> None:
    # No grace period here (tests/accounts/test_refresh_race.py covers it): reuse at once.
    use_settings(refresh_grace_seconds=0)
    first = await login(client, PHONE)
    rotated = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/me", headers=bearer(second))).status_code == 200

    # The spent token comes back: someone copied it. The whole family ends.
    reused = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    after = await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401
    assert (await client.get("/me", headers=bearer(second))).status_code == 401
    session = await AuthSession.select().first()
    assert session is not None
    assert session["revoked_reason"] == "refresh_reuse"


async def test_refresh_tokens_are_stored_hashed(client: httpx.AsyncClient, registrar: int) -> None:
    tokens = await login(client, PHONE)

    stored = [row["token_hash"] for row in await RefreshToken.select(RefreshToken.token_hash)]
    assert tokens["refresh_token"] not in stored
    assert len(stored) == 1
    assert len(stored[0]) == 64


async def test_logout_ends_access_and_refresh(client: httpx.AsyncClient, registrar: int) -> None:
    tokens = await login(client, PHONE)
    other_device = await login(client, PHONE)

    assert (await client.post("/auth/logout", headers=bearer(tokens))).status_code == 204

    assert (await client.get("/me", headers=bearer(tokens))).status_code == 401
    refreshed = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    assert (await client.get("/me", headers=bearer(other_device))).status_code == 200


async def test_sealing_an_account_stops_its_next_request(
    client: httpx.AsyncClient, settings: Settings, registrar: int
) -> None:
    county = await make_account(settings, Role.county_reviewer, "13600000002", region_code="330106")
    assert county
    registrar_tokens = await login(client, PHONE)
    # Put the registrar in a school of the reviewer's county.
    await org.create_region(SYSTEM, "330000", "浙江省")
    await org.create_region(SYSTEM, "330100", "杭州市")
    await org.create_region(SYSTEM, "330106", "西湖区")
    school = await org.create_school(SYSTEM, "2133010699", "学校", "330106")
    await Account.update({Account.school: school, Account.region_code: "330106"}).where(
        Account.id == registrar
    )
    assert (await client.get("/me", headers=bearer(registrar_tokens))).status_code == 200

    reviewer = await login(client, "13600000002")
    sealed = await client.post(f"/accounts/{registrar}/seal", headers=bearer(reviewer))
    assert sealed.status_code == 200
    assert sealed.json()["status"] == "sealed"

    response = await client.get("/me", headers=bearer(registrar_tokens))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"  # its sessions ended with the sealing
    relogin = await client.post("/auth/login", json={"phone": PHONE, "password": PASSWORD})
    assert relogin.status_code == 403
    assert relogin.json()["code"] == "account_sealed"


async def test_expired_staff_password_must_be_changed_first(
    client: httpx.AsyncClient, settings: Settings, registrar: int
) -> None:
    old = datetime.now(UTC) - timedelta(days=settings.staff_password_max_age_days + 1)
    await Account.update({Account.password_changed_at: old}).where(Account.id == registrar)
    tokens = await login(client, PHONE)
    assert tokens["password_change_required"] is True

    blocked = await client.get("/org/schools", headers=bearer(tokens))
    assert blocked.status_code == 403
    assert blocked.json()["code"] == "password_change_required"
    assert (await client.get("/me", headers=bearer(tokens))).json()["password_change_required"]

    weak = await client.post(
        "/auth/password",
        headers=bearer(tokens),
        json={"old_password": PASSWORD, "new_password": "short"},
    )
    assert weak.status_code == 400
    assert "new_password" in weak.json()["field_errors"]
    changed = await client.post(
        "/auth/password",
        headers=bearer(tokens),
        json={"old_password": PASSWORD, "new_password": "NewXuexiao2026"},
    )
    assert changed.status_code == 204

    assert (await client.get("/org/schools", headers=bearer(tokens))).status_code == 200
    assert (await login(client, PHONE, "NewXuexiao2026"))["password_change_required"] is False


async def test_parent_passwords_do_not_expire(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    parent = await make_account(settings, Role.parent, "13600000003")
    await Account.update({Account.password_changed_at: datetime(2020, 1, 1, tzinfo=UTC)}).where(
        Account.id == parent
    )
    assert (await login(client, "13600000003"))["password_change_required"] is False


async def test_bad_body_gets_field_errors_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", json={"phone": "abc", "password": ""})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["message"] == "提交的数据不符合要求，请检查后重试"
    assert body["field_errors"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_unknown_route_has_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["code"] == "no_such_path"
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_a_crash_is_a_500_in_the_error_shape_without_internals(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_account(settings, Role.sysadmin, "13600000004")
    tokens = await login(client, "13600000004")

    async def broken(*args: object) -> None:
        raise RuntimeError("SELECT secret FROM internals -- should never reach a client")

    monkeypatch.setattr(org, "list_schools", broken)
    response = await client.get("/org/schools", headers=bearer(tokens))

    assert response.status_code == 500
    assert response.json() == {
        "code": "internal_error",
        "message": "服务器内部错误，请稍后再试",
        "request_id": response.headers["x-request-id"],
    }
    assert "SELECT" not in response.text


async def test_caller_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "trace-abc-12345"})
    assert response.headers["x-request-id"] == "trace-abc-12345"
    hostile = await client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert hostile.headers["x-request-id"] != "bad id\nwith newline"
