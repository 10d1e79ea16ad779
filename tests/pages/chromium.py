"""Where the browser tests find Chromium, and why they skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright never downloads one here
WITHOUT_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the phone pages' browser tests need Debian's Chromium at /usr/bin/chromium "
    "(apt-get install chromium)",
)
