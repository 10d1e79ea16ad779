"""The QR code on a printed form is a link a phone's camera opens: `{PUBLIC_BASE_URL}/m/f/{token}`.
Sign-up accepts what the QR holds as well as the printed registration code, and the link opens
the phone pages (tests/pages drive them in a browser), which show nothing of the child."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
import zxingcpp
from litestar import Litestar
from PIL import Image

from backend.accounts.roles import Role
from backend.config import MAX_PUBLIC_BASE_URL, Settings, settings_from_env
from backend.ocr import FormHeader, form_link, render_form, sign_form_token
from backend.records.printing import form_layout, new_form_id
from backend.records.tables import IssuedForm
from tests.factories import World, bearer, build_world, login, make_students, open_campaign
from tests.parents.helpers import issue_forms, otp_from


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await make_students(world, "A1", 2)
    await open_campaign()
    return world


def _snapshot(form: dict[str, Any]) -> dict[str, str]:
    snapshot = form["snapshot"]
    return snapshot if isinstance(snapshot, dict) else json.loads(snapshot)  # type: ignore[no-any-return]


async def _scanned(client: httpx.AsyncClient, world: World) -> tuple[str, dict[str, object]]:
    """What a phone's camera reads from the first form's QR code, and that form."""
    forms = await issue_forms(client, world)
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    png = await client.get(f"/forms/{forms[0]['form_id']}/png", headers=registrar)
    assert png.status_code == 200
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert len(found) == 1
    return str(found[0].text), forms[0]


async def test_the_printed_qr_code_is_a_link_to_the_service(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    text, form = await _scanned(client, world)
    token = sign_form_token(str(form["form_id"]), settings.form_token_key.encode())
    assert text == f"{settings.public_base_url}/m/f/{token}"


async def test_a_parent_signs_up_with_what_the_camera_read(
    client: httpx.AsyncClient, app: Litestar, world: World
) -> None:
    text, form = await _scanned(client, world)
    row = await IssuedForm.select().where(IssuedForm.form_id == form["form_id"]).first()
    assert row is not None
    fields = _snapshot(row)
    phone = fields["guardian1_phone"]
    app.state.sms.sent.clear()

    # WeChat hands the link on with its own parameters and a trailing slash.
    started = await client.post(
        "/signup/start",
        json={
            "registration_code": text + "/?from=singlemessage",
            "birth_date": fields["birth_date"],
            "phone": phone,
        },
    )
    assert started.status_code == 200, started.text
    confirmed = await client.post(
        "/signup/confirm",
        json={
            "ticket": started.json()["ticket"],
            "sms_code": otp_from(app.state.sms.sent, phone),
            "password": "Parent2026pw",
        },
    )
    assert confirmed.status_code == 200, confirmed.text
    children = await client.get("/my/children", headers=bearer(confirmed.json()))
    assert [c["id"] for c in children.json()] == [row["student"]]


async def test_a_forged_link_is_refused_like_a_wrong_code(
    client: httpx.AsyncClient, world: World
) -> None:
    text, _ = await _scanned(client, world)
    forged = text[:-1] + ("A" if text[-1] != "A" else "B")
    response = await client.post(
        "/signup/start",
        json={"registration_code": forged, "birth_date": "2015-01-01", "phone": "13512345678"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "signup_refused"


async def test_the_link_opens_a_page_that_says_what_to_do(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    text, _ = await _scanned(client, world)
    page = await client.get(text.removeprefix(settings.public_base_url))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "学籍" in page.text
    assert "确认表" in page.text
    assert "注册码" in page.text  # what to do without script: sign up with the printed code
    assert '<script type="module" src="/m/assets/app.js">' in page.text  # the phone pages
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'")
    assert "script-src 'self';" in csp  # the app's own modules, nothing inline
    assert "unsafe" not in csp
    # It reveals nothing about the child or the form.
    form = await IssuedForm.select().first()
    assert form is not None
    assert form["form_id"] not in page.text
    fields = _snapshot(form)
    for value in ("name", "id_number", "birth_date"):
        assert fields[value] not in page.text
    # As a messaging app may pass it on: a trailing slash, its own parameters.
    path = text.removeprefix(settings.public_base_url)
    for variant in (f"{path}/", f"{path}?from=singlemessage&isappinstalled=0"):
        again = await client.get(variant)
        assert again.status_code == 200
        assert again.text == page.text


async def test_a_link_that_is_not_ours_says_so(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = sign_form_token("ABCDEFGHJKMN", b"another service's key")
    page = await client.get(f"/m/f/{token}")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "不是" in page.text  # not a form of this service


def test_the_public_base_url_comes_from_the_environment(tmp_path: object) -> None:
    env = {"VAR_DIR": str(tmp_path)}
    assert settings_from_env(env).public_base_url == "http://127.0.0.1:8000"
    assert (
        settings_from_env({**env, "HOST": "192.168.1.5", "PORT": "9000"}).public_base_url
        == "http://192.168.1.5:9000"
    )
    url = settings_from_env({**env, "PUBLIC_BASE_URL": "https://xj.example.edu.cn/"})
    assert url.public_base_url == "https://xj.example.edu.cn"
    assert form_link(url.public_base_url, "F1.X.Y") == "https://xj.example.edu.cn/m/f/F1.X.Y"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("xj.example.edu.cn", "http"),
        ("https://xj.example.edu.cn/?a=1", "query"),
        ("https://" + "x" * (MAX_PUBLIC_BASE_URL - 7), "at most"),
    ],
)
def test_a_public_base_url_the_qr_cannot_hold_is_refused(
    tmp_path: object, value: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        settings_from_env({"VAR_DIR": str(tmp_path), "PUBLIC_BASE_URL": value})


def test_the_longest_address_allowed_fits_the_printed_qr_code() -> None:
    base = "https://" + "x" * (MAX_PUBLIC_BASE_URL - len("https://") - 7) + ".edu.cn"
    assert len(base) == MAX_PUBLIC_BASE_URL
    form_id = new_form_id()
    token = sign_form_token(form_id, b"k" * 32)
    header = FormHeader("学校", "一年级1班", "K7Q2-M9XD", token, public_base_url=base)
    page = render_form(form_layout(), {}, header)
    assert [c.text for c in zxingcpp.read_barcodes(page)] == [f"{base}/m/f/{token}"]
