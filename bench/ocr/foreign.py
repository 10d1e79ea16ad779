"""Seeded phone photos of confirmation forms printed by *other* systems: no QR code, no
corner squares, their own titles, label wording, column order and footer.

    .venv/bin/python -m bench.ocr.foreign --count 90 --seed 2026     # tuning photos
    .venv/bin/python -m bench.ocr.foreign --count 150 --seed 12      # held out

Three layouts (`LAYOUTS`), one photo in three of each:

- `province`: a province's own system. 序号 | 信息项目 | 学籍系统登记信息 | 正确信息, one field
  per row, its own labels (公民身份号码, 户籍地址, 监护人姓名 …); the signature and date on
  underlines below the table.
- `two_per_row`: two fields per row, 项目 | 内容 | 修改 twice, an address row spanning the
  width; the signature and date in the table's last row.
- `school`: a school's spreadsheet print-out. 项目 | 登记信息, no correction column
  (so no `corrections_written` case), 身份证号 / 户口所在地 / 家长姓名 / 家长电话.

The sheet is rendered at 300 dpi and photographed by `backend.ocr.synth.photograph` with
the issue-17 mix (about 45 % in the hard band: 8–50 MP, blur σ 1–3.5 or a shake of 3–8 px
at 3,000 px, leaning 5–25°, low light with noise, JPEG 50–70) and the same retakes (σ 5–7
or a shake of 16–24 px, exposure ≤ 0.11, grain σ 12–16, the page cut off). Photos and
truth go to bench/out/ocr/foreign-seed-N/.
"""

from __future__ import annotations

import argparse
import json
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from backend.ocr.__main__ import printed_values
from backend.ocr.synth import photograph, print_page
from backend.ocr.synth_foreign import LAYOUTS, faint, render, signature, write

from .generate import BAND_SHARE, INKS, PHONES, _pick
from .records import EDITABLE, edit_value, random_record

OUT = Path(__file__).resolve().parents[1] / "out" / "ocr"
VERSION = 1

MIX = (
    ("corrections", 0.15),
    ("faint_correction", 0.05),
    ("unsigned", 0.10),
    ("differs", 0.10),
    ("other_student", 0.07),
    ("blurred", 0.05),
    ("dark", 0.03),
    ("cut_off", 0.04),
    ("grainy", 0.02),
)


@dataclass
class ForeignCase:
    index: int
    layout: str
    scenario: str
    photo: str
    record: dict[str, str]  # stored values the server expects
    printed: dict[str, str]  # what the photographed form prints
    verdict: str
    corrections: list[str] = field(default_factory=list)
    signed: bool = True
    photo_args: dict[str, object] = field(default_factory=dict)
    band: bool = False


def _scenarios(count: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    for name, share in MIX:
        out += [name] * round(count * share)
    out = out[:count] + ["matches"] * max(0, count - len(out))
    rng.shuffle(out)
    return out


def _photo_args(rng: random.Random, scenario: str, band: bool) -> dict[str, object]:
    """The issue-17 degradations (see bench/ocr/generate.py), for a 3,000-px-wide photo
    scaled to the phone's width."""
    args: dict[str, object] = {}
    k = 1.0
    if band:
        phone = _pick(rng, PHONES)
        args["size"] = phone
        k = phone[0] / 3000
    if scenario == "blurred":
        if rng.random() < 0.7:
            args["blur"] = rng.uniform(5.0, 7.0) * k
        else:
            args["motion"] = rng.uniform(16.0, 24.0) * k
    elif scenario == "dark":
        args["exposure"] = rng.uniform(0.05, 0.11)
    elif scenario == "grainy":
        args["exposure"] = rng.uniform(0.2, 0.3)
        args["noise"] = rng.uniform(12.0, 16.0)
    elif scenario == "cut_off":
        args["cut_off"] = rng.choice(("top", "bottom", "left", "right"))
    roll = rng.random()
    if roll < 0.08:
        args["upside_down"] = True
    elif roll < 0.14:
        args["rotation"] = rng.choice((90.0, -90.0)) + rng.uniform(-5, 5)
        w, h = args.get("size", (3000, 4000))  # type: ignore[misc]
        args["size"] = (h, w)
    if rng.random() < 0.15 and "exposure" not in args:
        args["exposure"] = rng.uniform(0.2, 0.5)
    if rng.random() < 0.15:
        args["shadow"] = rng.uniform(0.3, 0.5)
    if band:
        roll = rng.random()
        if roll < 0.6 and "blur" not in args:
            args["blur"] = rng.uniform(1.0, 3.5) * k
        elif roll < 0.85 and "blur" not in args and "motion" not in args:
            args["motion"] = rng.uniform(3.0, 8.0) * k
        if rng.random() < 0.5:
            args["perspective"] = rng.uniform(5.0, 25.0)
        if rng.random() < 0.25 and "exposure" not in args:
            args["exposure"] = rng.uniform(0.2, 0.35)
            args["noise"] = rng.uniform(2.5, 4.5)
        if rng.random() < 0.5:
            args["jpeg_quality"] = rng.randint(50, 70)
    elif rng.random() < 0.1 and "blur" not in args:
        args["blur"] = rng.uniform(1.2, 1.5)
    if rng.random() < 0.1:
        args["bend"] = rng.uniform(0.006, 0.012)
    return args


def _case(index: int, scenario: str, seed: int, out: Path) -> ForeignCase:
    rng = random.Random(seed * 200_003 + index)
    nrng = np.random.default_rng([seed, index, 15])
    spec = LAYOUTS[index % len(LAYOUTS)]
    codes = [c for c, _ in spec.fields]
    has_corrections = "correction" in spec.roles
    if scenario in ("corrections", "faint_correction") and not has_corrections:
        scenario = "matches"
    record = random_record(rng, f"X{seed}-{index:04d}")
    printed = dict(record)
    verdict = {"blurred": "retake", "dark": "retake", "grainy": "retake", "cut_off": "retake"}.get(
        scenario, "matches"
    )
    corrections: list[str] = []
    signed, date = True, True
    if scenario == "differs":
        editable = [c for c in EDITABLE if c in codes and record.get(c)]
        for code in sorted(rng.sample(editable, rng.choice((1, 1, 2)))):
            printed[code] = edit_value(rng, code, record[code])
        verdict = "differs"
    elif scenario == "other_student":
        printed = random_record(rng, "other")
        verdict = "not_this_form"
    elif scenario in ("corrections", "faint_correction"):
        corrections = sorted(rng.sample(codes, rng.choice((1, 1, 2, 3))))
        verdict = "corrections_written"
    elif scenario == "unsigned":
        signed = False
        date = rng.random() < 0.5
        verdict = "unsigned"
    band = rng.random() < BAND_SHARE
    ink = _pick(rng, INKS)
    args = _photo_args(rng, scenario, band)
    printer = {
        "scale": rng.uniform(0.94, 0.98) if rng.random() < 0.2 else 1.0,
        "toner": rng.uniform(0.6, 0.85) if rng.random() < 0.15 else 1.0,
    }
    page, drawn = render(spec, printed_values(printed), "杭州市文三路小学")
    page = page.convert("RGB")
    for code in corrections:
        if scenario == "faint_correction":
            faint(page, drawn.corrections[code], nrng)
        else:
            write(page, drawn.corrections[code], nrng, ink, int(nrng.integers(2, 9)))
    if signed:
        signature(page, drawn.signature, nrng, ink)
    if date:
        write(page, drawn.date, nrng, ink, int(nrng.integers(4, 8)))
    page = print_page(page, **printer)
    jpeg = photograph(page, nrng, **args)  # type: ignore[arg-type]
    args.update({f"printer_{k}": v for k, v in printer.items() if v != 1.0})
    args["ink"] = ink
    name = f"{index:04d}-{spec.name}-{scenario}.jpg"
    (out / name).write_bytes(jpeg)
    return ForeignCase(
        index, spec.name, scenario, name, record, printed, verdict, corrections, signed, args, band
    )


def out_dir(seed: int) -> Path:
    return OUT / f"foreign-seed-{seed}"


def generate(count: int, *, seed: int = 2026, workers: int = 2) -> list[ForeignCase]:
    """Make (or reuse) `count` photos; returns the cases with their truth."""
    out = out_dir(seed)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved["version"] == VERSION and saved["seed"] == seed and saved["count"] == count:
            return [ForeignCase(**c) for c in saved["cases"]]
    for old in out.glob("*.jpg"):
        old.unlink()
    scenarios = _scenarios(count, random.Random(seed))
    with ProcessPoolExecutor(workers) as pool:
        cases = list(pool.map(_case, range(count), scenarios, [seed] * count, [out] * count))
    manifest.write_text(
        json.dumps(
            {"version": VERSION, "seed": seed, "count": count, "cases": [asdict(c) for c in cases]},
            ensure_ascii=False,
        )
    )
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=90)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cases = generate(args.count, seed=args.seed, workers=args.workers)
    print(f"{len(cases)} photos in {out_dir(args.seed)}")


if __name__ == "__main__":
    main()
