"""Seeded synthetic phone photos of confirmation forms, with the truth for each.

    .venv/bin/python -m bench.ocr.generate --count 200      # → bench/out/ocr/

Forms are rendered at 300 dpi (as a printer would) and read against the 200-dpi layout.
The mix: about a fifth with written corrections (a quarter of those one faint pencil
character), a tenth unsigned, a tenth whose printed values differ from the record, some
of another student or with a forged token, and some that must be retaken (blurred, dark,
cut off); the rest signed and matching. Across all of them: light, angle, perspective,
blur up to σ 1.5, shake up to 5 px, 5-MP photos, a bent sheet, "fit to page" printing and pale
toner, upside-down and sideways photos, JPEG quality 60–92; handwriting in black or blue
ink or pencil.

The hard band (`Case.band`, about 45 % of photos, every scenario): phones of 6.75–50 MP
(2,250–6,120 px wide), and, scaled to a 3,000-px-wide photo, Gaussian blur σ 1.0–3.5 or
a shake of 3–8 px, the phone leaning 5–25° out of parallel, low light (exposure
0.2–0.35) with sensor noise σ 2.5–4.5 (grey levels, × 1.3–1.6 in that light), JPEG
quality 50–70. A band photo is usable: a person reads it without effort, so its verdict is
that of its scenario. A retake is a photo blurred σ 5–7 or shaken 16–24 px (at 3,000 px),
one too dark to see (exposure ≤ 0.11), one so grainy (noise σ 12–16 at exposure 0.2–0.3)
that a faint pencil mark cannot be told from the grain, or one with the page cut off.
"""

from __future__ import annotations

import argparse
import json
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw

from backend.ocr import FormHeader, Layout, build_layout, render_form, sign_form_token
from backend.ocr.__main__ import catalog_fields, printed_values
from backend.ocr.synth import photograph, print_page, sign, write_corrections

from .records import EDITABLE, edit_value, random_record

OUT = Path(__file__).resolve().parents[1] / "out" / "ocr"
KEY = b"bench-form-token-key"
LINK_BASE_HELP = (
    "print the QR code as the service does, a link under this address "
    "(e.g. https://xueji.jyt.zhejiang.gov.cn, the longest PUBLIC_BASE_URL); default: the bare token"
)
T = TypeVar("T")
VERSION = 8
MIX = (
    ("corrections", 0.15),
    ("faint_correction", 0.05),
    ("unsigned", 0.10),
    ("differs", 0.10),
    ("other_student", 0.07),
    ("forged", 0.02),
    ("blurred", 0.05),
    ("dark", 0.03),
    ("cut_off", 0.04),
    ("grainy", 0.02),
)
# Phones (portrait width × height): the reported 2,250-px photos, then 8–50 MP.
PHONES = (
    ((2250, 3000), 0.10),
    ((2448, 3264), 0.20),
    ((3000, 4000), 0.25),
    ((3456, 4608), 0.15),
    ((4240, 5656), 0.15),
    ((6120, 8160), 0.15),
)
BAND_SHARE = 0.45
INKS = (("black", 0.4), ("blue", 0.4), ("pencil", 0.2))


def _pick(rng: random.Random, options: tuple[tuple[T, float], ...]) -> T:
    return rng.choices([o for o, _ in options], [w for _, w in options])[0]


@dataclass
class Case:
    index: int
    scenario: str
    photo: str
    form_id: str  # the form the parent should photograph
    record: dict[str, str]  # stored values the server expects
    printed: dict[str, str]  # what the photographed form really prints
    verdict: str
    corrections: list[str] = field(default_factory=list)
    signed: bool = True
    photo_args: dict[str, object] = field(default_factory=dict)
    band: bool = False  # in the hard band (see the module's docstring)


def _scenarios(count: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    for name, share in MIX:
        out += [name] * round(count * share)
    out = out[:count] + ["matches"] * max(0, count - len(out))
    rng.shuffle(out)
    return out


def _case(index: int, scenario: str, seed: int, out: Path, link_base: str = "") -> Case:
    rng = random.Random(seed * 100_003 + index)
    nrng = np.random.default_rng([seed, index])
    form_id = f"B{seed}-{index:04d}"
    record = random_record(rng, form_id)
    printed = dict(record)
    token_form, key = form_id, KEY
    verdict = "matches"
    corrections: list[str] = []
    signed = True
    date = True
    photo_args: dict[str, object] = {}
    band = rng.random() < BAND_SHARE
    ink = _pick(rng, INKS)
    # Degradations are given for a 3,000-px-wide photo and scaled to the phone's width.
    k = 1.0
    if band:
        phone = _pick(rng, PHONES)
        photo_args["size"] = phone
        k = phone[0] / 3000

    if scenario == "differs":
        for code in sorted(rng.sample(EDITABLE, rng.choice((1, 1, 2)))):
            printed[code] = edit_value(rng, code, record[code])
        verdict = "differs"
    elif scenario == "other_student":
        # With a link, upper case and at most 12 characters, as the service's form ids are:
        # the token then fits the QR's alphanumeric segment.
        token_form = f"B{seed}-{index:04d}-" + ("OT" if link_base else "other")
        printed = random_record(rng, token_form)
        verdict = "not_this_form"
    elif scenario == "forged":
        key = b"someone-else's-key"
        verdict = "not_this_form"
    elif scenario in ("corrections", "faint_correction"):
        corrections = sorted(
            rng.sample([c.code for c in catalog_fields()], rng.choice((1, 1, 2, 3)))
        )
        verdict = "corrections_written"
    elif scenario == "unsigned":
        signed = False
        date = rng.random() < 0.5
        verdict = "unsigned"
    elif scenario == "blurred":
        if rng.random() < 0.7:
            photo_args["blur"] = rng.uniform(5.0, 7.0) * k
        else:
            photo_args["motion"] = rng.uniform(16.0, 24.0) * k
        verdict = "retake"
    elif scenario == "dark":
        photo_args["exposure"] = rng.uniform(0.05, 0.11)
        verdict = "retake"
    elif scenario == "grainy":
        # So dim and grainy that a faint pencil mark could not be told from the grain.
        photo_args["exposure"] = rng.uniform(0.2, 0.3)
        photo_args["noise"] = rng.uniform(12.0, 16.0)
        verdict = "retake"
    elif scenario == "cut_off":
        photo_args["cut_off"] = rng.choice(("top", "bottom", "left", "right"))
        verdict = "retake"
    # Hard but usable photos, in every scenario.
    roll = rng.random()
    if roll < 0.08:
        photo_args["upside_down"] = True
    elif roll < 0.14:
        photo_args["rotation"] = rng.choice((90.0, -90.0)) + rng.uniform(-5, 5)
        w, h = photo_args.get("size", (3000, 4000))  # type: ignore[misc]
        photo_args["size"] = (h, w)
    if rng.random() < 0.15 and "exposure" not in photo_args:
        photo_args["exposure"] = rng.uniform(0.2, 0.5)
    if rng.random() < 0.15:
        photo_args["shadow"] = rng.uniform(0.3, 0.5)
    # Usable means, a priori: Gaussian σ ≤ 1.5 or a shake ≤ 5 px on a 12-MP photo (σ ≤ 1
    # and no shake on a 5-MP one); retakes are σ ≥ 3 or a shake ≥ 10 px. The band in
    # between is left out: either answer is acceptable there.
    small_photo = not band and rng.random() < 0.1
    if band:
        roll = rng.random()
        if roll < 0.6 and "blur" not in photo_args:
            photo_args["blur"] = rng.uniform(1.0, 3.5) * k
        elif roll < 0.85 and "blur" not in photo_args and "motion" not in photo_args:
            photo_args["motion"] = rng.uniform(3.0, 8.0) * k
        if rng.random() < 0.5:
            photo_args["perspective"] = rng.uniform(5.0, 25.0)
        if rng.random() < 0.25 and "exposure" not in photo_args:
            photo_args["exposure"] = rng.uniform(0.2, 0.35)
            photo_args["noise"] = rng.uniform(2.5, 4.5)
        if rng.random() < 0.5:
            photo_args["jpeg_quality"] = rng.randint(50, 70)
    if not band and not small_photo and rng.random() < 0.1 and "blur" not in photo_args:
        photo_args["blur"] = rng.uniform(1.2, 1.5)
    if not band and not small_photo and rng.random() < 0.1 and verdict != "retake":
        photo_args["motion"] = rng.uniform(3, 5)
    if small_photo:
        photo_args["size"] = (2000, 2667) if "size" not in photo_args else (2667, 2000)
        if verdict != "retake":
            photo_args["blur"] = rng.uniform(0.0, 1.0)
    if rng.random() < 0.1:
        photo_args["bend"] = rng.uniform(0.006, 0.012)
    printer = {
        "scale": rng.uniform(0.94, 0.98) if rng.random() < 0.2 else 1.0,
        "toner": rng.uniform(0.6, 0.85) if rng.random() < 0.15 else 1.0,
    }

    layout = build_layout(catalog_fields(), dpi=300)
    header = FormHeader(
        school="杭州市文三路小学",
        class_name=f"{rng.randint(1, 6)}年级（{rng.randint(1, 8)}）班",
        registration_code=f"{rng.randrange(36**8):08X}"[:8],
        form_token=sign_form_token(token_form, key),
        student_name=printed["name"],
        # Only with a link, so that a reader from before links (--reader-root) renders too.
        **({"public_base_url": link_base} if link_base else {}),  # type: ignore[arg-type]
    )
    page = render_form(layout, printed_values(printed), header)
    if corrections:
        page = write_corrections(
            page, layout, corrections, nrng, faint=scenario != "corrections", ink=ink
        )
    if signed:
        page = sign(page, layout, nrng, date=date, ink=ink)
    elif date:
        page = sign(page, layout, nrng, date=True, ink=ink)
        page = _erase_signature(page, layout)
    page = print_page(page, **printer)
    jpeg = photograph(page, nrng, **photo_args)  # type: ignore[arg-type]
    photo_args.update({f"printer_{name}": v for name, v in printer.items() if v != 1.0})
    photo_args["ink"] = ink
    name = f"{index:04d}-{scenario}.jpg"
    (out / name).write_bytes(jpeg)
    return Case(
        index,
        scenario,
        name,
        form_id,
        record,
        printed,
        verdict,
        corrections,
        signed,
        photo_args,
        band,
    )


def _erase_signature(page: Image.Image, layout: Layout) -> Image.Image:
    x0, y0, x1, y1 = layout.signature_box
    m = layout.px(0.6)
    white = (255, 255, 255) if page.mode == "RGB" else 255
    ImageDraw.Draw(page).rectangle((x0 + m, y0 + m, x1 - m, y1 - m), fill=white)
    return page


def out_dir(seed: int, link_base: str = "") -> Path:
    return OUT / (f"seed-{seed}-link" if link_base else f"seed-{seed}")


def generate(count: int, *, seed: int = 2026, workers: int = 2, link_base: str = "") -> list[Case]:
    """Make (or reuse) `count` photos under bench/out/ocr/seed-SEED/; returns the cases
    with their truth. Thresholds were tuned on seed 2026; other seeds are held out. With
    `link_base`, the forms' QR codes carry the link `{link_base}/m/f/{token}` the service
    prints, and the photos go to seed-SEED-link/."""
    out = out_dir(seed, link_base)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved["version"] == VERSION and saved["seed"] == seed and saved["count"] == count:
            return [Case(**c) for c in saved["cases"]]
    for old in out.glob("*.jpg"):
        old.unlink()
    scenarios = _scenarios(count, random.Random(seed))
    with ProcessPoolExecutor(workers) as pool:
        cases = list(
            pool.map(
                _case, range(count), scenarios, [seed] * count, [out] * count, [link_base] * count
            )
        )
    manifest.write_text(
        json.dumps(
            {"version": VERSION, "seed": seed, "count": count, "cases": [asdict(c) for c in cases]},
            ensure_ascii=False,
        )
    )
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--link-base", default="", help=LINK_BASE_HELP)
    args = parser.parse_args()
    cases = generate(args.count, seed=args.seed, link_base=args.link_base)
    print(f"{len(cases)} photos in {out_dir(args.seed, args.link_base)}")


if __name__ == "__main__":
    main()
