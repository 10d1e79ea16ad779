"""The staff's phone screens beyond the queue and the class: a teacher ticking the paper forms
that came back and reading the corrections written on paper; a registrar sending a request
back for evidence and looking at the school's progress. Chromium at 360×800 against the app
over HTTP."""

from __future__ import annotations

import base64
import io
import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar
from PIL import Image
from playwright.async_api import BrowserContext, expect

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.tables import GuardianLink, IssuedForm
from tests.factories import World, bearer, build_world, login, make_students, open_campaign
from tests.pages.chromium import WITHOUT_CHROMIUM
from tests.pages.screens import check_screen
from tests.pages.test_phone_pages import NEW_ADDRESS, fields_of, sign_in, watch_errors
from tests.parents.helpers import issue_forms
from tests.parents.test_checks import phone_photo, printed_page, upload_and_check

pytestmark = WITHOUT_CHROMIUM


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign(corrections_open=True)
    await issue_forms(client, world)
    for child in world.students:
        await GuardianLink.insert(
            GuardianLink(
                account=world.accounts[Role.parent],
                student=child,
                guardian_slot=1,
                created_at=datetime.now(UTC),
            )
        )
    return world


async def paper_returned(student_id: int) -> bool:
    form = (
        await IssuedForm.select(IssuedForm.paper_returned_at)
        .where((IssuedForm.student == student_id) & IssuedForm.superseded_at.is_null())
        .first()
    )
    assert form is not None
    return form["paper_returned_at"] is not None


async def test_a_teacher_ticks_the_paper_forms_and_reads_the_handwritten_corrections(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    base_url: str,
    phone: BrowserContext,
    screenshots: Path,
) -> None:
    first, second = world.students
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    parent = bearer(await login(client, world.phones[Role.parent]))
    photo = phone_photo(
        await printed_page(client, registrar, first),
        2,
        corrections=("current_address", "guardian1_phone"),
    )
    checked = await upload_and_check(client, app, settings, parent, first, photo)
    assert checked["verdict"] == "corrections_written", checked
    first_name, second_name = [(await fields_of(s))["name"] for s in (first, second)]

    page = await phone.new_page()
    errors = watch_errors(page)
    await sign_in(page, base_url, world.phones[Role.teacher])
    await expect(page.get_by_role("heading", name="班级家庭（2）")).to_be_visible()
    await page.get_by_role("link", name="纸质表回收").click()
    await expect(page.get_by_role("heading", name="纸质确认表回收")).to_be_visible()
    await expect(page.get_by_text("已收回 0 / 2 份")).to_be_visible()
    await page.get_by_label(second_name).check()
    await expect(page.get_by_text(f"{second_name}：已收回")).to_be_visible()
    await expect(page.get_by_text("已收回 1 / 2 份")).to_be_visible()
    await check_screen(page, "20-paper-returns", screenshots)
    assert await paper_returned(second)
    assert not await paper_returned(first)
    # A tick by mistake is taken back the same way.
    await page.get_by_label(second_name).uncheck()
    await expect(page.get_by_text(f"{second_name}：已取消收回")).to_be_visible()
    assert not await paper_returned(second)
    await page.reload()
    await expect(page.get_by_label(second_name)).not_to_be_checked()

    await page.get_by_role("link", name="班级").click()
    await page.get_by_role("link", name="核对手写更正").click()
    await expect(page.get_by_role("heading", name="待核对的手写更正（2）")).to_be_visible()
    await expect(page.get_by_role("img", name="现住址的手写更正")).to_be_visible()
    crop_width = await page.get_by_role("img", name="现住址的手写更正").evaluate(
        "img => img.naturalWidth"
    )
    assert crop_width > 0  # the crop itself arrived, fetched with the token
    await check_screen(page, "21-correction-drafts", screenshots)
    await page.get_by_role("button", name=f"{first_name} · 现住址：字迹清楚").click()
    await expect(page.get_by_text("已确认字迹清楚")).to_be_visible()
    await page.get_by_role("button", name=re.compile(r"(联系电话|监护人).*：看不清")).click()
    await expect(page.get_by_text("已请家长重新填写并拍照")).to_be_visible()

    drafts = (await client.get("/correction-drafts", headers=registrar)).json()["items"]
    assert sorted(d["state"] for d in drafts) == ["illegible", "legible"]
    children = (await client.get("/my/children", headers=parent)).json()
    family = next(c for c in children if c["id"] == first)
    assert family["form"]["status"] == "retake", family["form"]  # asked to write it again
    assert errors == []


async def test_a_registrar_asks_for_evidence_and_reads_the_schools_progress(
    client: httpx.AsyncClient,
    world: World,
    base_url: str,
    phone: BrowserContext,
    screenshots: Path,
) -> None:
    child = world.students[0]
    parent = bearer(await login(client, world.phones[Role.parent]))
    evidence = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(evidence, "JPEG")
    made = await client.post(
        f"/my/children/{child}/change-requests",
        data={"field_code": "current_address", "new_value": NEW_ADDRESS, "reason": "搬家了"},
        files={"household_register": ("hukou.jpg", evidence.getvalue(), "image/jpeg")},
        headers=parent,
    )
    assert made.status_code == 201, made.text
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    checked = await client.post(
        f"/review-steps/{made.json()['current_step']['id']}/decision",
        json={"decision": "approve"},
        headers=teacher,
    )
    assert checked.status_code == 200, checked.text

    page = await phone.new_page()
    errors = watch_errors(page, 400)
    await sign_in(page, base_url, world.phones[Role.registrar])
    await page.get_by_role("link", name=re.compile("期限")).first.click()
    await expect(page.get_by_role("heading", name="证明材料")).to_be_visible()
    # Without a reason the API refuses, and the page says why.
    await page.get_by_role("button", name="退回补充材料").click()
    await expect(page.get_by_role("alert")).to_contain_text("请填写理由")
    await page.get_by_label(re.compile("意见")).fill("请补充房产证或租房合同")
    await page.get_by_role("button", name="退回补充材料").click()
    await expect(page.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()
    mine = (await client.get(f"/my/change-requests/{made.json()['id']}", headers=parent)).json()
    assert mine["steps"][1]["state"] == "sent_back", mine["steps"]
    assert mine["steps"][1]["reason"] == "请补充房产证或租房合同"

    await page.get_by_role("link", name="核查进度").click()
    await expect(page.get_by_role("heading", name=re.compile("核查进度 · "))).to_be_visible()
    text = await page.locator("main").inner_text()
    assert "应核查学生" in text
    assert "已上传照片" in text
    await check_screen(page, "22-progress", screenshots)
    assert errors == []


def vapid_key_file(where: Path) -> tuple[Path, str]:
    """A VAPID private key (PEM) and its public half as the API should answer it."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = where / "vapid.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return path, base64.urlsafe_b64encode(point).rstrip(b"=").decode()


# Headless Chromium has no push service to subscribe with: the page's PushManager.subscribe
# is replaced by one answering a subscription as a browser would (a real P-256 key), and
# keeping the applicationServerKey it was given. Everything else — the permission, the service
# worker at /m/sw.js, the key from the API, the registration — is the browser's own.
_STUB_PUSH = """([p256dh, auth]) => {
  window.pushKeysSeen = [];
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.pushKeysSeen.push(btoa(String.fromCharCode(...key)).replace(/\\+/g, "-")
      .replace(/\\//g, "_").replace(/=+$/, ""));
    const endpoint = "https://push.example.com/send/phone-1";
    return { endpoint, toJSON: () => ({ endpoint, keys: { p256dh, auth } }) };
  };
}"""


async def test_a_registrar_turns_on_web_push_and_the_subscription_reaches_the_api(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    base_url: str,
    phone: BrowserContext,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    key_file, public_key = vapid_key_file(tmp_path)
    app.state.settings = settings.with_(
        push=replace(
            settings.push,
            vapid_private_key_file=str(key_file),
            vapid_subject="mailto:ops@example.edu.cn",
        )
    )
    browser_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    p256dh = base64.urlsafe_b64encode(
        browser_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    auth = base64.urlsafe_b64encode(os.urandom(16))
    try:
        await phone.grant_permissions(["notifications"], origin=base_url)
        page = await phone.new_page()
        errors = watch_errors(page)
        await sign_in(page, base_url, world.phones[Role.registrar])
        await expect(page.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()
        await page.evaluate(_STUB_PUSH, [p256dh.rstrip(b"=").decode(), auth.rstrip(b"=").decode()])
        await page.get_by_role("button", name="开启提醒").click()
        await expect(page.get_by_text(re.compile("已开启提醒"))).to_be_visible()
        await check_screen(page, "23-push-on", screenshots)

        assert await page.evaluate("() => window.pushKeysSeen") == [public_key]
        worker = await page.evaluate(
            "async () => (await navigator.serviceWorker.getRegistration('/m/'))?.active?.scriptURL"
        )
        assert worker == f"{base_url}/m/sw.js"
        registrar = bearer(await login(client, world.phones[Role.registrar]))
        devices = (await client.get("/devices", headers=registrar)).json()
        assert [d["channel"] for d in devices] == ["webpush"], devices
        assert "push.example.com" in devices[0]["token"]
        assert errors == []
    finally:
        app.state.settings = settings
