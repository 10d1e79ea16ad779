"""What every screen of the phone pages must be: a screenshot at 360×800 for people to look
at, and the accessibility basics checked in the browser (labels, button names, contrast of the
colours the CSS gives each text, focus order following the visual order)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from playwright.async_api import Page

MIN_CONTRAST = 4.5

# In the page: every visible text's colour against the background it sits on (the nearest
# ancestor with an opaque background), as WCAG computes contrast.
_CONTRASTS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0.99) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || !box.width || !box.height || getComputedStyle(el).visibility === "hidden") continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    out.push({ text: el.textContent.trim().slice(0, 30), ratio });
  }
  return out;
}"""

# Inputs without a label (a <label for>, aria-label or aria-labelledby) and buttons or links
# without an accessible name.
_UNNAMED = """() => {
  const out = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const labelled = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!labelled) out.push(el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll("button, a[href], progress")) {
    const name = (el.textContent || "").trim() || el.getAttribute("aria-label");
    if (!name) out.push(el.outerHTML.slice(0, 80));
  }
  return out;
}"""

_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const box = el.getBoundingClientRect();
  return { tag: el.tagName, text: (el.textContent || el.name || "").trim().slice(0, 20),
           top: box.top + window.scrollY, left: box.left + window.scrollX };
}"""


async def check_screen(page: Page, name: str, screenshots: Path) -> None:
    await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)

    low = [c for c in await page.evaluate(_CONTRASTS) if c["ratio"] < MIN_CONTRAST]
    assert not low, f"{name}: text below {MIN_CONTRAST}:1 contrast: {low}"
    assert await page.evaluate(_UNNAMED) == [], (
        f"{name}: an input without a label or a nameless button"
    )
    await _focus_follows_the_page(page, name)


async def _focus_follows_the_page(page: Page, name: str) -> None:
    """Tab from the top: each control reached is below, or beside and right of, the one before,
    until focus comes back round (the tab bar, fixed at the foot of the screen, comes last)."""
    await page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    seen: list[dict[str, Any]] = []
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(_FOCUSED)
        if focused is None or (seen and focused == seen[0]):
            break
        seen.append(focused)
    tabbar = [f for f in seen if f["tag"] == "A" and f["text"] in TAB_LABELS]
    in_page = [f for f in seen if f not in tabbar]
    for before, after in pairwise(in_page):
        below = after["top"] > before["top"] + 1
        beside = abs(after["top"] - before["top"]) <= 1 and after["left"] > before["left"]
        assert below or beside, f"{name}: focus goes from {before} back up to {after}"
    assert seen[len(in_page) :] == tabbar, f"{name}: the tab bar is not last in focus order"


TAB_LABELS = {"孩子", "更正申请", "消息", "班级", "待我处理"}
