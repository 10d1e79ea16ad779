"""The transfer screens at `/m/` in Chromium at 360×800: a parent applies for a transfer to
another school of the county (found in the school directory, the documents photographed) and
follows it; the receiving school's registrar chooses the class and approves, the sending
school's releases, and the parent sees each new step and the end."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, BrowserContext, Page, expect

from backend.accounts.roles import Role
from backend.config import Settings
from backend.transfers.tables import StatusChange
from tests.factories import World
from tests.pages.chromium import WITHOUT_CHROMIUM
from tests.pages.conftest import PHONE
from tests.pages.screens import check_screen
from tests.pages.test_phone_pages import sign_in, watch_errors
from tests.transfers.world import as_role, read, student, transfer_world

pytestmark = WITHOUT_CHROMIUM

APPLICATION_FORM = "转学申请表（监护人签字）"
RESIDENCE = "户籍或居住证明（户口簿，或居住证/居住证明）"


@pytest.fixture
async def world(settings: Settings) -> World:
    return await transfer_world(settings)


def photo(tmp_path: Path, name: str, colour: str) -> Path:
    """A phone photo of a paper document (large, so the page shrinks it before upload)."""
    path = tmp_path / f"{name}.jpg"
    Image.new("RGB", (3000, 2000), colour).save(path, "JPEG")
    return path


async def staff_page(browser: Browser, base_url: str, phone: str) -> tuple[Page, list[str]]:
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = await context.new_page()
    errors = watch_errors(page, 400)
    await sign_in(page, base_url, phone)
    await expect(page.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()
    return page, errors


async def test_a_parent_applies_for_a_transfer_and_both_schools_take_it_up(
    client: httpx.AsyncClient,
    world: World,
    base_url: str,
    browser: Browser,
    phone: BrowserContext,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    child = world.students[0]
    parent = await phone.new_page()
    parent_errors = watch_errors(parent, 400)
    await sign_in(parent, base_url, world.phones[Role.parent])
    await parent.get_by_role("link", name="查看学籍并上传确认表").click()
    await parent.get_by_role("link", name="申请转学/异动").click()
    await expect(parent.get_by_role("heading", name="申请转学/异动")).to_be_visible()

    # The receiving school from the directory, then the documents its province asks for.
    await parent.get_by_label("转入学校名称").fill("学校G")
    await parent.get_by_role("button", name="查找学校").click()
    await expect(parent.get_by_text("找到 1 所学校")).to_be_visible()
    await parent.get_by_role("button", name=re.compile("^学校G")).click()
    await expect(parent.get_by_text("已选择：学校G")).to_be_visible()
    await expect(parent.get_by_label(APPLICATION_FORM)).to_be_visible()
    await parent.get_by_label(APPLICATION_FORM).set_input_files(photo(tmp_path, "form", "white"))
    await parent.get_by_label("申请原因").fill("随父母工作调动迁居")
    await check_screen(parent, "t1-apply", screenshots)

    # One document missing: the API's message names it, nothing is kept.
    await parent.get_by_role("button", name="提交申请").click()
    await expect(parent.get_by_role("alert")).to_contain_text("户籍或居住证明")
    assert await StatusChange.count() == 0
    await parent.get_by_label(RESIDENCE).set_input_files(photo(tmp_path, "hukou", "beige"))
    await parent.get_by_role("button", name="提交申请").click()
    await expect(parent.get_by_role("heading", name="转学申请")).to_be_visible()
    text = await parent.locator("main").inner_text()
    assert "学校A → 学校G" in text
    assert "转入学校启动转学，由学校G 学籍管理员办理" in text
    assert "期限 " in text
    await check_screen(parent, "t2-change", screenshots)
    change_id = int(parent.url.rsplit("/", 1)[1])
    detail = await read(client, await as_role(client, world, Role.registrar), change_id)
    assert {e["kind"] for e in detail["evidence"]} == {"transfer_application", "household_register"}

    # The receiving registrar: the documents, the class required before approving.
    receiving, receiving_errors = await staff_page(browser, base_url, world.staff["registrar_G"][1])
    await check_screen(receiving, "t3-queue", screenshots)
    await receiving.get_by_role("link", name=re.compile("转学：学校A → 学校G")).click()
    await expect(receiving.get_by_role("img", name=re.compile("转学申请表"))).to_be_visible()
    await expect(receiving.get_by_role("img", name=re.compile("户口"))).to_be_visible()
    await receiving.get_by_role("button", name="同意", exact=True).click()
    await expect(receiving.get_by_role("alert")).to_be_visible()  # target_class_required
    await check_screen(receiving, "t4-take-up", screenshots)
    await receiving.get_by_label("转入班级").select_option(label="1年级 G1班")
    await receiving.get_by_role("button", name="确定班级").click()
    await expect(receiving.get_by_text("已选定，可改选")).to_be_visible()
    await receiving.get_by_role("button", name="同意", exact=True).click()
    await expect(receiving.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()
    assert (await read(client, await as_role(client, world, Role.registrar), change_id))[
        "to_class_id"
    ] == world.classes["G1"]

    # The parent sees the sending school's step now.
    await parent.reload()
    await expect(parent.get_by_text("转出学校核办，由学校A 学籍管理员办理")).to_be_visible()

    # The sending registrar releases it.
    sending, sending_errors = await staff_page(browser, base_url, world.phones[Role.registrar])
    await sending.get_by_role("link", name=re.compile("转学：学校A → 学校G")).click()
    await expect(sending.get_by_role("heading", name=re.compile("转学"))).to_be_visible()
    assert await sending.get_by_label("转入班级").count() == 0  # not the sending side's to choose
    await check_screen(sending, "t5-release", screenshots)
    await sending.get_by_role("button", name="同意", exact=True).click()
    await expect(sending.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()

    # The county's reviewer approves last, on the phone as well.
    await parent.reload()
    await expect(parent.get_by_text(re.compile("转出地教育行政部门核办，由西湖区"))).to_be_visible()
    county, county_errors = await staff_page(browser, base_url, world.phones[Role.county_reviewer])
    await county.get_by_role("link", name=re.compile("转学：学校A → 学校G")).click()
    await expect(county.get_by_role("img", name=re.compile("户口"))).to_be_visible()
    await county.get_by_role("button", name="同意", exact=True).click()
    await expect(county.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()
    await parent.goto(f"{base_url}/m/#/changes")
    await expect(parent.get_by_role("link", name=re.compile("转学"))).to_contain_text("已办结")
    await check_screen(parent, "t6-changes", screenshots)
    await parent.get_by_role("link", name=re.compile("转学")).click()
    await expect(parent.get_by_text(re.compile("办结"))).to_have_count(2)
    assert (await student(child))["school_class"] == world.classes["G1"]
    assert parent_errors == receiving_errors == sending_errors == county_errors == []


async def test_a_refusal_and_its_reason_reach_the_parent(
    client: httpx.AsyncClient,
    world: World,
    base_url: str,
    browser: Browser,
    phone: BrowserContext,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    parent = await as_role(client, world, Role.parent)
    files = [
        ("kind", (None, "transfer")),
        ("to_school_id", (None, str(world.schools["G"]))),
        ("reason", (None, "就近入学")),
        ("transfer_application", ("a.jpg", photo(tmp_path, "a", "white").read_bytes())),
        ("household_register", ("b.jpg", photo(tmp_path, "b", "beige").read_bytes())),
    ]
    applied = await client.post(
        f"/my/children/{world.students[0]}/status-changes", files=files, headers=parent
    )
    assert applied.status_code == 201, applied.text

    receiving, errors = await staff_page(browser, base_url, world.staff["registrar_G"][1])
    await receiving.get_by_role("link", name=re.compile("转学：学校A → 学校G")).click()
    await receiving.get_by_role("button", name="不同意").click()
    await expect(receiving.get_by_role("alert")).to_be_visible()  # a refusal needs its reason
    await receiving.get_by_label("意见（不同意时必填）").fill("本校该年级学位已满")
    await receiving.get_by_role("button", name="不同意").click()
    await expect(receiving.get_by_role("heading", name=re.compile("待我处理"))).to_be_visible()

    page = await phone.new_page()
    errors += watch_errors(page)
    await sign_in(page, base_url, world.phones[Role.parent])
    await expect(page.get_by_role("heading", name="我的孩子")).to_be_visible()
    await page.goto(f"{base_url}/m/#/change/{applied.json()['id']}")
    await expect(page.get_by_text("原因：本校该年级学位已满")).to_be_visible()
    text = await page.locator("main").inner_text()
    assert "未通过" in text
    await check_screen(page, "t7-refused", screenshots)
    assert errors == []
