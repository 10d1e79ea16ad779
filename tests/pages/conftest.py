"""The phone pages in a real browser: Debian's Chromium (never one Playwright downloads),
driven by Playwright against the app served by uvicorn on a real port, with a real arq worker
checking photos. Skipped, saying why, where /usr/bin/chromium is absent (CI installs it): each
test module carries `tests/pages/chromium.py`'s mark.

Screenshots of each screen checked (360×800) go to `$SCREENSHOT_DIR`, or `var/screenshots`
under the test run's temporary directory, printed at the end of the run."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from arq import create_pool
from arq.connections import RedisSettings
from litestar import Litestar

from tests.pages.chromium import CHROMIUM

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext

PHONE = {"width": 360, "height": 800}


@pytest.fixture(scope="session")
def screenshots() -> Path:
    default = Path(os.environ["VAR_DIR"]) / "screenshots"
    where = Path(os.environ.get("SCREENSHOT_DIR", default))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="session")
async def browser(screenshots: Path) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        yield launched
        await launched.close()
    print(f"\nphone pages' screenshots: {screenshots}")


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh phone: 360×800, Chinese, touch."""
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    yield context
    await context.close()


@pytest.fixture
async def base_url(app: Litestar) -> AsyncIterator[str]:
    """The app on a real socket, in this loop; its lifespan is the session's `app`."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
async def worker(app: Litestar) -> AsyncIterator[None]:
    """A real arq worker checking photos as they arrive, as in production."""
    from backend.worker import inline_worker

    pool = await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))
    running = inline_worker(app.state.resources, pool, poll_delay=0.05, cron_jobs=None)
    task = asyncio.create_task(running.async_run())
    yield
    await running.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
