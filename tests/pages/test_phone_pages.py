"""The phone pages at `/m/` driven in Chromium at 360×800 as a parent, a registrar and a
teacher would use them, against the real app over HTTP with a real worker checking photos."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from litestar import Litestar
from PIL import Image
from playwright.async_api import BrowserContext, ConsoleMessage, Page, Response, expect

from backend.accounts.roles import Role
from backend.config import Settings
from backend.ocr import FormHeader, render_form, sign_form_token
from backend.parents.tables import Upload
from backend.records.printing import form_layout, printed_values, registration_code
from backend.records.review_tables import ChangeRequest
from backend.records.service import load_fields
from backend.records.tables import GuardianLink, IssuedForm, Student
from tests.factories import (
    PASSWORD,
    World,
    bearer,
    build_world,
    login,
    make_students,
    open_campaign,
)
from tests.pages.chromium import WITHOUT_CHROMIUM
from tests.pages.screens import check_screen
from tests.parents.helpers import issue_forms, otp_from
from tests.parents.test_checks import phone_photo, printed_page

pytestmark = WITHOUT_CHROMIUM

LONG_SIDE = 2000  # backend/static/m/photo.js
FIRST_SCREEN_BUDGET = 150 * 1024  # bytes transferred for the parent's first screen
NEW_ADDRESS = "浙江省杭州市西湖区文三路100号"
VERDICT_WAIT_MS = 90_000  # the first check of a run may load Tesseract


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign(corrections_open=True)
    await issue_forms(client, world)
    return world


async def fields_of(student_id: int) -> dict[str, Any]:
    row = await Student.select(Student.fields).where(Student.id == student_id).first()
    assert row is not None
    fields = row["fields"]
    return fields if isinstance(fields, dict) else json.loads(fields)  # type: ignore[no-any-return]


async def qr_link(client: httpx.AsyncClient, world: World, student_id: int) -> str:
    """What a phone's camera reads off the student's printed form."""
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    page = await printed_page(client, registrar, student_id)
    buffer = io.BytesIO()
    page.save(buffer, "PNG")
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(buffer.getvalue())))
    assert len(found) == 1
    return str(found[0].text)


async def sms_code(app: Litestar, phone: str) -> str:
    """The code of the last SMS to `phone` (sent through the outbox: it may take a moment)."""
    for _ in range(100):
        if any(to == phone for to, _ in app.state.sms.sent):
            return otp_from(app.state.sms.sent, phone)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no SMS to {phone}")


def watch_errors(page: Page, *expected: int) -> list[str]:
    """Console errors (a CSP violation, a script error, a failed load) the page logs, but for
    the API's answers with an `expected` status (Chromium logs every 4xx) the page handles."""
    errors: list[str] = []
    allowed = tuple(f"status of {status} " for status in expected)

    def seen(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(a in message.text for a in allowed):
            errors.append(message.text)

    page.on("console", seen)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


async def sign_in(page: Page, base_url: str, phone: str) -> None:
    await page.goto(f"{base_url}/m/")
    await page.get_by_label("手机号").fill(phone)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()


async def test_a_parent_goes_from_the_qr_link_to_the_verdict_and_asks_for_a_correction(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    base_url: str,
    worker: None,
    phone: BrowserContext,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    child = world.students[0]
    fields = await fields_of(child)
    link = await qr_link(client, world, child)
    page = await phone.new_page()
    errors = watch_errors(page)

    # The first screen, from the QR link, and what it cost to load.
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    await page.goto(base_url + link.removeprefix(settings.public_base_url))
    await expect(page.get_by_role("heading", name="家长注册")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    sizes = [await r.request.sizes() for r in responses]
    transferred = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes)
    print(f"\nthe parent's first screen: {transferred:,} bytes in {len(sizes)} responses")
    assert transferred < FIRST_SCREEN_BUDGET
    await check_screen(page, "1-signup", screenshots)

    # Sign up with the phone code.
    await page.get_by_label("孩子的出生日期或身份证号后6位").fill(fields["birth_date"])
    await page.get_by_label("家长手机号").fill(fields["guardian1_phone"])
    await page.get_by_role("button", name="获取验证码").click()
    await expect(page.get_by_label("短信验证码")).to_be_visible()
    await check_screen(page, "2-sms-code", screenshots)
    await page.get_by_label("短信验证码").fill(await sms_code(app, fields["guardian1_phone"]))
    await page.get_by_label("设置登录密码").fill("Parent2026pw")
    await page.get_by_role("button", name="完成注册").click()

    # The child, then the record as the API masks it.
    await expect(page.get_by_role("heading", name="我的孩子")).to_be_visible()
    await check_screen(page, "3-children", screenshots)
    await page.get_by_role("link", name="查看学籍并上传确认表").click()
    await expect(page.get_by_role("heading", name="孩子的学籍")).to_be_visible()
    text = await page.locator("main").inner_text()
    assert fields["name"] in text
    assert fields["id_number"] not in text  # masked, as the API masks it
    tokens = await page.evaluate("() => JSON.parse(sessionStorage.getItem('m.tokens'))")
    record = await client.get(f"/my/children/{child}", headers=bearer(tokens))
    for shown in record.json()["fields"]:  # each value as the API gives it, masked or not
        assert (shown["display"] or shown["value"] or "—") in text
    await check_screen(page, "4-record", screenshots)

    # The photo: shrunk on the phone, sent with progress, then the verdict.
    photo = phone_photo(
        await printed_page(
            client, bearer(await login(client, world.phones[Role.registrar])), child
        ),
        seed=1,
    )
    original = Image.open(io.BytesIO(photo)).size
    path = tmp_path / "form.jpg"
    path.write_bytes(photo)
    await page.get_by_label("拍下签好字的整页确认表").set_input_files(str(path))
    await page.get_by_role("button", name="上传照片").click()
    await expect(page.get_by_role("heading", name="核对完成")).to_be_visible(
        timeout=VERDICT_WAIT_MS
    )
    await check_screen(page, "5-verdict", screenshots)
    upload = await Upload.select(Upload.width, Upload.height).where(Upload.student == child).first()
    assert upload is not None
    print(f"photo {original[0]}×{original[1]} uploaded as {upload['width']}×{upload['height']}")
    if max(original) > LONG_SIDE:  # shrunk on the phone to the long side the check reads
        assert max(upload["width"], upload["height"]) == LONG_SIDE
    else:
        assert (upload["width"], upload["height"]) == original

    # A typed correction with an evidence photo, then its progress.
    await page.get_by_role("link", name="返回").click()
    await page.get_by_role("link", name="学籍有误？提交更正申请").click()
    await page.get_by_label("要更正的项目").select_option("current_address")
    await page.get_by_label("正确的内容").fill(NEW_ADDRESS)
    await page.get_by_label("更正原因").fill("搬家了")
    await check_screen(page, "6-correction", screenshots)
    await page.get_by_label("证明材料照片").set_input_files(str(path))
    await page.get_by_role("button", name="提交更正申请").click()
    await expect(page.get_by_role("heading", name="审核进度")).to_be_visible()
    assert "班主任核对：处理中" in await page.locator("main").inner_text()
    assert NEW_ADDRESS not in await page.content()  # masked in the answer
    await check_screen(page, "7-request", screenshots)
    assert await ChangeRequest.count() == 1

    await page.get_by_role("link", name="更正申请").click()
    await expect(page.get_by_role("link", name=re.compile("现住址|地址"))).to_be_visible()
    await page.get_by_role("link", name="消息").click()
    await expect(page.get_by_role("heading", name="消息")).to_be_visible()
    await check_screen(page, "8-inbox", screenshots)
    assert errors == []


async def test_an_expired_session_returns_to_sign_in_keeping_what_was_typed(
    client: httpx.AsyncClient, world: World, base_url: str, phone: BrowserContext, redis: Any
) -> None:
    child = world.students[0]
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=child,
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    page = await phone.new_page()
    await sign_in(page, base_url, world.phones[Role.parent])
    await page.goto(f"{base_url}/m/#/child/{child}/correct")
    await page.get_by_label("正确的内容").fill(NEW_ADDRESS)
    await page.get_by_label("更正原因").fill("搬家了")
    # The session ends elsewhere (logged out on another device): every token is spent.
    tokens = await page.evaluate("() => JSON.parse(sessionStorage.getItem('m.tokens'))")
    await client.post("/auth/logout", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    await page.get_by_role("button", name="提交更正申请").click()
    await expect(page.get_by_role("heading", name="登录")).to_be_visible()
    await sign_in(page, base_url, world.phones[Role.parent])
    await page.goto(f"{base_url}/m/#/child/{child}/correct")
    await expect(page.get_by_label("正确的内容")).to_have_value(NEW_ADDRESS)
    await expect(page.get_by_label("更正原因")).to_have_value("搬家了")


async def test_a_registrar_approves_a_parents_correction(
    client: httpx.AsyncClient,
    world: World,
    base_url: str,
    phone: BrowserContext,
    screenshots: Path,
) -> None:
    child = world.students[0]
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=child,
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
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
    request_id = made.json()["id"]
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    step = made.json()["current_step"]["id"]
    checked = await client.post(
        f"/review-steps/{step}/decision", json={"decision": "approve"}, headers=teacher
    )
    assert checked.status_code == 200, checked.text

    page = await phone.new_page()
    errors = watch_errors(page)
    await sign_in(page, base_url, world.phones[Role.registrar])
    await expect(page.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()
    await check_screen(page, "9-queue", screenshots)
    await page.get_by_role("link", name=re.compile("期限")).first.click()
    await expect(page.get_by_role("heading", name="证明材料")).to_be_visible()
    await expect(page.get_by_role("img", name=re.compile("户口"))).to_be_visible()
    text = await page.locator("main").inner_text()
    assert "现在的内容" in text
    assert "申请改为" in text
    await check_screen(page, "10-decision", screenshots)
    await page.get_by_role("button", name="同意", exact=True).click()
    await expect(page.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()

    after = await client.get(f"/my/change-requests/{request_id}", headers=parent)
    assert [s["state"] for s in after.json()["steps"]][:2] == ["approved", "approved"]
    assert after.json()["current_step"]["role"] == "school_leader"
    assert errors == []


async def test_a_teacher_filters_the_class_and_uploads_for_a_family(
    client: httpx.AsyncClient,
    world: World,
    base_url: str,
    worker: None,
    phone: BrowserContext,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    child = world.students[1]
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    photo = phone_photo(await printed_page(client, registrar, child), seed=2)
    path = tmp_path / "form.jpg"
    path.write_bytes(photo)
    name = (await fields_of(child))["name"]

    page = await phone.new_page()
    errors = watch_errors(page)
    await sign_in(page, base_url, world.phones[Role.teacher])
    await expect(page.get_by_role("heading", name="班级家庭（2）")).to_be_visible()
    await check_screen(page, "11-class", screenshots)
    await page.get_by_label("按状态筛选").select_option("matches")
    await expect(page.get_by_role("heading", name="班级家庭（0）")).to_be_visible()
    await page.get_by_label("按状态筛选").select_option("not_uploaded")
    await expect(page.get_by_role("heading", name="班级家庭（2）")).to_be_visible()
    await page.get_by_role("link", name=re.compile(name)).click()
    await page.get_by_label("为该家庭拍确认表").set_input_files(str(path))
    await check_screen(page, "12-family", screenshots)
    await page.get_by_role("button", name="上传照片").click()
    await expect(page.get_by_role("heading", name="核对完成")).to_be_visible(
        timeout=VERDICT_WAIT_MS
    )
    upload = await Upload.select(Upload.on_behalf).where(Upload.student == child).first()
    assert upload is not None
    assert upload["on_behalf"]
    await page.get_by_role("link", name="返回").click()
    await page.get_by_label("按状态筛选").select_option("matches")
    await expect(page.get_by_role("heading", name="班级家庭（1）")).to_be_visible()
    assert errors == []


async def edited_copy(settings: Settings, student_id: int, name: str) -> Image.Image:
    """The student's form with another name printed on it (the real QR code)."""
    form = (
        await IssuedForm.select()
        .where((IssuedForm.student == student_id) & IssuedForm.superseded_at.is_null())
        .first()
    )
    assert form is not None
    values = printed_values(load_fields(form["snapshot"]))
    values["name"] = name
    key = settings.form_token_key.encode()
    header = FormHeader(
        "学校A",
        "A1班",
        registration_code(form["form_id"], key),
        sign_form_token(form["form_id"], key),
    )
    return render_form(form_layout(), values, header)


# Records each value the upload's progress bar shows (it reflects to the `value` attribute).
_WATCH_PROGRESS = """() => {
  window.progressSeen = [];
  new MutationObserver((changes) => changes.forEach((c) => {
    if (c.target.tagName === "PROGRESS") window.progressSeen.push(Number(c.target.value));
  })).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["value"] });
}"""


@pytest.mark.parametrize(
    ("photo", "shown"),
    [
        ("blurry", ["需要重新拍照", "照片模糊：拿稳手机，对焦后再拍"]),
        ("other name", ["表上内容与学籍不一致", "姓名：表上为“张冠李戴”"]),
    ],
)
async def test_the_verdict_says_why_and_what_to_do_next(
    client: httpx.AsyncClient,
    settings: Settings,
    world: World,
    base_url: str,
    worker: None,
    phone: BrowserContext,
    screenshots: Path,
    tmp_path: Path,
    photo: str,
    shown: list[str],
) -> None:
    child = world.students[0]
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=child,
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    if photo == "blurry":
        registrar = bearer(await login(client, world.phones[Role.registrar]))
        taken = phone_photo(await printed_page(client, registrar, child), 4, blur=5.0)
    else:
        taken = phone_photo(await edited_copy(settings, child, "张冠李戴"), 6)
    path = tmp_path / "form.jpg"
    path.write_bytes(taken)

    page = await phone.new_page()
    await sign_in(page, base_url, world.phones[Role.parent])
    await page.get_by_role("link", name="查看学籍并上传确认表").click()
    await page.get_by_label("拍下签好字的整页确认表").set_input_files(str(path))
    await page.evaluate(_WATCH_PROGRESS)
    await page.get_by_role("button", name="上传照片").click()
    await expect(page.get_by_role("heading", name=shown[0])).to_be_visible(timeout=VERDICT_WAIT_MS)
    verdict = await page.get_by_role("status").inner_text()
    for line in shown[1:]:
        assert line in verdict
    assert (await page.evaluate("() => window.progressSeen"))[-1] == 100
    await check_screen(page, f"verdict-{photo.replace(' ', '-')}", screenshots)


# A weak mobile connection (Chrome's "Slow 3G"-like): 400 ms round trips, 50 KB/s down.
SLOW_NETWORK = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 50_000,
    "uploadThroughput": 25_000,
}
SLOW_FIRST_SCREEN_SECONDS = 5.0


async def test_the_first_screen_comes_quickly_on_a_slow_network(
    client: httpx.AsyncClient,
    settings: Settings,
    world: World,
    base_url: str,
    phone: BrowserContext,
) -> None:
    link = await qr_link(client, world, world.students[0])
    page = await phone.new_page()
    cdp = await phone.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", SLOW_NETWORK)
    started = time.monotonic()
    await page.goto(base_url + link.removeprefix(settings.public_base_url))
    await expect(page.get_by_role("heading", name="家长注册")).to_be_visible()
    seconds = time.monotonic() - started
    print(f"\nthe parent's first screen on a slow network (400 ms, 50 KB/s): {seconds:.1f} s")
    assert seconds < SLOW_FIRST_SCREEN_SECONDS


async def test_a_parent_asks_the_school_and_reads_the_answer(
    client: httpx.AsyncClient,
    world: World,
    base_url: str,
    phone: BrowserContext,
    screenshots: Path,
) -> None:
    child = world.students[0]
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=child,
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    page = await phone.new_page()
    errors = watch_errors(page)
    await sign_in(page, base_url, world.phones[Role.parent])
    await page.get_by_role("link", name="查看学籍并上传确认表").click()
    await page.get_by_role("link", name="有疑问？向学校提问").click()
    await page.get_by_label("您的问题").fill("孩子的户籍地址是旧的，需要带什么材料？")
    await check_screen(page, "13-ask", screenshots)
    await page.get_by_role("button", name="发送给学校").click()
    await expect(page.get_by_text("孩子的户籍地址是旧的，需要带什么材料？")).to_be_visible()
    thread_id = int(page.url.rsplit("/", 1)[1])

    teacher = bearer(await login(client, world.phones[Role.teacher]))
    answered = await client.post(
        f"/threads/{thread_id}/messages", json={"body": "带户口簿即可。"}, headers=teacher
    )
    assert answered.status_code in (200, 201), answered.text

    await page.get_by_role("link", name="消息").click()
    await page.get_by_role("link", name="我向学校的提问").click()
    await expect(page.get_by_role("link", name=re.compile("1条未读"))).to_be_visible()
    await page.get_by_role("link", name=re.compile("1条未读")).click()
    await expect(page.get_by_text("带户口簿即可。")).to_be_visible()
    await check_screen(page, "14-thread", screenshots)
    assert errors == []


async def test_a_registrar_sets_up_and_uses_the_second_factor_on_the_phone(
    app: Litestar,
    settings: Settings,
    world: World,
    base_url: str,
    phone: BrowserContext,
    screenshots: Path,
) -> None:
    """As in production: a registrar confirms each sign-in. The first time, the phone enrols
    the SMS factor and shows the recovery codes once; the next time, it asks for the code."""
    app.state.settings = settings.with_(second_factor_required=True)
    try:
        registrar_phone = world.phones[Role.registrar]
        page = await phone.new_page()
        errors = watch_errors(page)
        await sign_in(page, base_url, registrar_phone)
        await expect(page.get_by_role("heading", name="设置登录验证")).to_be_visible()
        await check_screen(page, "15-second-factor-enrol", screenshots)
        await page.get_by_label("验证码").fill(await sms_code(app, registrar_phone))
        await page.get_by_role("button", name="验证并登录").click()
        await expect(page.get_by_role("heading", name="请记下恢复码")).to_be_visible()
        assert await page.locator(".codes li").count() == 10
        await page.get_by_role("button", name="我已记下，继续").click()
        await expect(page.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()

        await page.get_by_role("button", name="退出登录").click()
        await expect(page.get_by_role("heading", name="登录")).to_be_visible()
        await sign_in(page, base_url, registrar_phone)
        await expect(page.get_by_role("heading", name="登录验证")).to_be_visible()
        await page.get_by_label("验证码").fill(await sms_code(app, registrar_phone))
        await page.get_by_role("button", name="验证并登录").click()
        await expect(page.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()
        assert errors == []
    finally:
        app.state.settings = settings


async def test_an_expired_access_token_is_refreshed_without_the_user_noticing(
    world: World, base_url: str, phone: BrowserContext
) -> None:
    import jwt

    from tests.accounts.test_tokens import forge

    page = await phone.new_page()
    await sign_in(page, base_url, world.phones[Role.parent])
    await expect(page.get_by_role("heading", name="我的孩子")).to_be_visible()
    before = await page.evaluate("() => JSON.parse(sessionStorage.getItem('m.tokens'))")
    claims = jwt.decode(before["access_token"], options={"verify_signature": False})
    expired = forge(claims, exp=int(time.time()) - 5)
    await page.evaluate(
        "(token) => { const t = JSON.parse(sessionStorage.getItem('m.tokens'));"
        " t.access_token = token; sessionStorage.setItem('m.tokens', JSON.stringify(t)); }",
        expired,
    )
    await page.get_by_role("link", name="更正申请").click()
    await expect(page.get_by_role("heading", name="更正申请")).to_be_visible()
    after = await page.evaluate("() => JSON.parse(sessionStorage.getItem('m.tokens'))")
    assert after["refresh_token"] != before["refresh_token"]  # traded at /auth/refresh


async def test_a_parent_with_an_account_adds_another_child_from_its_qr_link(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    base_url: str,
    worker: None,
    phone: BrowserContext,
    screenshots: Path,
) -> None:
    """A new tab from the camera: sign-up says the phone has an account; logging in links the
    child of the scanned form with the same second fact."""
    child = world.students[1]
    fields = await fields_of(child)
    link = await qr_link(client, world, child)
    page = await phone.new_page()
    errors = watch_errors(page, 409)  # account_exists
    await page.goto(base_url + link.removeprefix(settings.public_base_url))
    await page.get_by_label("孩子的出生日期或身份证号后6位").fill(fields["birth_date"])
    await page.get_by_label("家长手机号").fill(world.phones[Role.parent])
    await page.get_by_role("button", name="获取验证码").click()
    # Whether the phone has an account is told only once the SMS code proves the phone.
    await page.get_by_label("短信验证码").fill(await sms_code(app, world.phones[Role.parent]))
    await page.get_by_label("设置登录密码").fill("Another2026pw")
    await page.get_by_role("button", name="完成注册").click()
    await expect(page.get_by_role("heading", name="登录")).to_be_visible()
    await expect(page.get_by_label("手机号")).to_have_value(world.phones[Role.parent])
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", name="我的孩子")).to_be_visible()
    links = await GuardianLink.select().where(GuardianLink.account == world.accounts[Role.parent])
    assert [row["student"] for row in links] == [child]
    await expect(page.locator("main section.card")).to_have_count(1)

    # The same tab, signed in, opening another form's link: the child is added there.
    other = world.students[0]
    other_link = await qr_link(client, world, other)
    await page.goto(base_url + other_link.removeprefix(settings.public_base_url))
    await expect(page.get_by_role("heading", name="添加孩子")).to_be_visible()
    await check_screen(page, "16-add-child", screenshots)
    await page.get_by_label("孩子的出生日期或身份证号后6位").fill(
        (await fields_of(other))["birth_date"]
    )
    await page.get_by_role("button", name="添加孩子").click()
    await expect(page.locator("main section.card")).to_have_count(2)
    assert errors == []
