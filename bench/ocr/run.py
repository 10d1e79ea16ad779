"""OCR benchmark: the reader against whole-page Tesseract on the same seeded photos.

    taskset -c 0 .venv/bin/python -m bench.ocr.run            # 200 photos
    taskset -c 0 .venv/bin/python -m bench.ocr.run --count 40 --no-baseline
    # the same photos through another checkout's reader (e.g. main, for a before/after):
    taskset -c 0 .venv/bin/python -m bench.ocr.run --seed 11 --count 320 --no-baseline \
        --reader-root /work/wt/ocr-base

One core: run it under `taskset -c 0`; this script also pins OpenMP, OpenCV and
onnxruntime to one thread each, so the CPU seconds are one core's. Results are printed as
a table and saved to bench/out/ocr/results.json.
"""

from __future__ import annotations

import os
import sys

if "--reader-root" in sys.argv:  # before anything imports backend
    sys.path.insert(0, os.path.abspath(sys.argv[sys.argv.index("--reader-root") + 1]))

for _var in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import backend.ocr  # noqa: E402
from backend.ocr import build_layout, check_photo, normalise, warm_up  # noqa: E402
from backend.ocr.__main__ import catalog_fields, printed_values  # noqa: E402
from backend.ocr._ocr import read_whole_page  # noqa: E402
from backend.ocr._photo import decode  # noqa: E402
from backend.records.catalog import BY_CODE, FieldType  # noqa: E402

from .generate import KEY, LINK_BASE_HELP, Case, generate, out_dir  # noqa: E402

cv2.setNumThreads(1)

NAMES = {"name", "former_name", "guardian1_name", "guardian2_name"}
ADDRESSES = {"household_address", "current_address"}


def group_of(code: str) -> str:
    if code in NAMES:
        return "Chinese names"
    if code in ADDRESSES:
        return "addresses"
    kind = BY_CODE[code].type
    if kind is FieldType.id_number:
        return "ID numbers"
    if kind in (FieldType.date, FieldType.year_month):
        return "dates"
    if kind is FieldType.phone:
        return "phones"
    return "other text (choices, places, employers)"


def _q(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _pr(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def run(cases: list[Case], folder: Path, baseline: bool) -> dict[str, Any]:
    layout = build_layout(catalog_fields())
    kinds = {c.code: c.field.read_kind for c in layout.fields}
    warm_up()
    if baseline:
        read_whole_page(np.full((64, 64), 255, np.uint8))  # load chi_sim before timing
    verdicts: Counter[tuple[str, str]] = Counter()
    read_ok: dict[str, list[bool]] = defaultdict(list)  # every photo that should be read
    read_ok_accepted: dict[str, list[bool]] = defaultdict(list)  # those not sent back
    base_ok: dict[str, list[bool]] = defaultdict(list)
    ink = Counter[str]()
    band_ink = Counter[str]()
    retake = Counter[str]()
    band = Counter[str]()  # band photos: right / wrong verdicts
    usable_sent_back: list[str] = []
    unreadable_accepted: list[str] = []
    reasons = Counter[str]()
    signed = Counter[str]()
    cpu_full, wall_full, cpu_retake = [], [], []
    stages: dict[str, list[float]] = defaultdict(list)
    base_cpu: list[float] = []
    ocr_fields = verified_fields = 0
    wrong: list[str] = []

    for case in cases:
        photo = (folder / case.photo).read_bytes()
        expected = printed_values(case.record)
        truth = printed_values(case.printed)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        report = check_photo(photo, layout, expected, KEY, expected_form_id=case.form_id)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        got = report.verdict.value
        verdicts[(case.verdict, got)] += 1
        if case.band:
            band["right" if got == case.verdict else "wrong"] += 1
        if got == "retake":
            reasons[report.retake_reason.value if report.retake_reason else "?"] += 1
            if case.verdict != "retake":
                usable_sent_back.append(case.photo)
        elif case.verdict == "retake":
            unreadable_accepted.append(case.photo)
        if got != case.verdict:
            wrong.append(
                f"{case.photo}: expected {case.verdict}, got {got} "
                f"{report.retake_reason or ''} {list(report.differing)} "
                f"{list(report.corrections)} signed={report.signed}"
            )
        truly_retake, said_retake = case.verdict == "retake", got == "retake"
        retake[
            "tp"
            if truly_retake and said_retake
            else "fp"
            if said_retake
            else "fn"
            if truly_retake
            else "tn"
        ] += 1
        if said_retake:
            cpu_retake.append(cpu)
        else:
            cpu_full.append(cpu)
            wall_full.append(wall)
            for stage, seconds in report.cpu_timings.items():
                stages[stage].append(seconds)
        if not truly_retake and not said_retake:
            for code in expected:
                written, found = code in case.corrections, code in report.corrections
                outcome = (
                    "tp" if written and found else "fp" if found else "fn" if written else "tn"
                )
                ink[outcome] += 1
                if case.band:
                    band_ink[outcome] += 1
            signed["ok" if report.signed == case.signed else "wrong"] += 1
        if case.verdict not in ("retake", "not_this_form"):
            for code, text in truth.items():
                if not text:
                    continue
                r = report.fields.get(code)
                ok = r is not None and normalise(r.text, kinds[code]) == normalise(
                    text, kinds[code]
                )
                read_ok[group_of(code)].append(ok)
                if not said_retake:
                    read_ok_accepted[group_of(code)].append(ok)
                if r is not None:
                    ocr_fields += r.method == "ocr"
                    verified_fields += r.method == "verified"
        if baseline and case.verdict != "retake":
            cpu0 = time.process_time()
            page_text = read_whole_page(decode(photo))
            base_cpu.append(time.process_time() - cpu0)
            if case.verdict != "not_this_form":
                flat = normalise(page_text, "text")
                for code, text in truth.items():
                    if text:
                        base_ok[group_of(code)].append(normalise(text, kinds[code]) in flat)

    n = len(cases)
    correct = sum(v for (want, got), v in verdicts.items() if want == got)
    usable = sum(1 for c in cases if c.verdict != "retake")
    band_p, band_r = _pr(band_ink["tp"], band_ink["fp"], band_ink["fn"])
    ink_p, ink_r = _pr(ink["tp"], ink["fp"], ink["fn"])
    re_p, re_r = _pr(retake["tp"], retake["fp"], retake["fn"])
    result: dict[str, Any] = {
        "reader": os.path.dirname(backend.ocr.__file__),
        "photos": n,
        "verdicts_correct": correct / n,
        "band_photos": band["right"] + band["wrong"],
        "band_verdicts_correct": band["right"] / max(1, band["right"] + band["wrong"]),
        "usable": usable,
        "usable_sent_back": len(usable_sent_back),
        "usable_sent_back_share": len(usable_sent_back) / max(1, usable),
        "unreadable": n - usable,
        "unreadable_accepted": len(unreadable_accepted),
        "retake_reasons": dict(sorted(reasons.items())),
        "band_handwriting": {"precision": band_p, "recall": band_r, **band_ink},
        "confusion": {f"{w}->{g}": v for (w, g), v in sorted(verdicts.items())},
        "read_accuracy": {g: sum(v) / len(v) for g, v in sorted(read_ok.items())},
        "read_counts": {g: len(v) for g, v in sorted(read_ok.items())},
        "read_accuracy_accepted": {g: sum(v) / len(v) for g, v in sorted(read_ok_accepted.items())},
        "handwriting": {"precision": ink_p, "recall": ink_r, **ink},
        "retake": {"precision": re_p, "recall": re_r, **retake},
        "signature_accuracy": signed["ok"] / max(1, signed["ok"] + signed["wrong"]),
        "ocr_fallback_share": ocr_fields / max(1, ocr_fields + verified_fields),
        "cpu_per_form": {"median": _q(cpu_full, 0.5), "p95": _q(cpu_full, 0.95)},
        "wall_per_form": {"median": _q(wall_full, 0.5), "p95": _q(wall_full, 0.95)},
        "cpu_retake_answer": {"median": _q(cpu_retake, 0.5), "p95": _q(cpu_retake, 0.95)},
        "cpu_by_stage": {s: {"median": _q(v, 0.5), "p95": _q(v, 0.95)} for s, v in stages.items()},
        "wrong": wrong,
    }
    if baseline:
        result["baseline"] = {
            "read_accuracy": {g: sum(v) / len(v) for g, v in sorted(base_ok.items())},
            "cpu_per_form": {"median": _q(base_cpu, 0.5), "p95": _q(base_cpu, 0.95)},
        }
        result["speedup_median"] = _q(base_cpu, 0.5) / _q(cpu_full, 0.5)
    return result


def table(r: dict[str, Any]) -> str:
    base = r.get("baseline", {})
    lines = [
        f"photos: {r['photos']} (seed {r.get('seed')}), {r['band_photos']} in the hard band; "
        f"reader: {r['reader']}",
        "",
        "read exactly: on every photo that should be read (a wrongly refused photo counts as",
        "unread), and in brackets on the photos the reader accepted.",
        "",
        "| measure | reader | whole-page Tesseract |",
        "|---|---|---|",
        f"| correct verdicts | {r['verdicts_correct']:.1%} | – |",
        f"| correct verdicts, hard band (n={r['band_photos']}) | "
        f"{r['band_verdicts_correct']:.1%} | – |",
        f"| usable photos sent back | {r['usable_sent_back']} of {r['usable']} "
        f"({r['usable_sent_back_share']:.1%}) | – |",
        f"| unreadable photos accepted | {r['unreadable_accepted']} of {r['unreadable']} | – |",
    ]
    for group, acc in r["read_accuracy"].items():
        b = base.get("read_accuracy", {}).get(group)
        lines.append(
            f"| read exactly: {group} (n={r['read_counts'][group]}) | {acc:.2%} "
            f"({r['read_accuracy_accepted'].get(group, float('nan')):.2%}) | "
            f"{'–' if b is None else f'{b:.1%}'} |"
        )
    hw, rt = r["handwriting"], r["retake"]
    lines += [
        f"| handwriting precision / recall (cells) | {hw['precision']:.1%} / "
        f"{hw['recall']:.1%} | – |",
        f"| handwriting precision / recall, hard band | {r['band_handwriting']['precision']:.1%}"
        f" / {r['band_handwriting']['recall']:.1%} | – |",
        f"| retake precision / recall | {rt['precision']:.1%} / {rt['recall']:.1%} | – |",
        f"| signature detected correctly | {r['signature_accuracy']:.1%} | – |",
        f"| fields that needed OCR | {r['ocr_fallback_share']:.2%} | all |",
    ]
    cpu, bcpu = r["cpu_per_form"], base.get("cpu_per_form")
    lines.append(
        f"| CPU s/form, one core, median / p95 | {cpu['median']:.3f} / {cpu['p95']:.3f} | "
        + (f"{bcpu['median']:.3f} / {bcpu['p95']:.3f} |" if bcpu else "– |")
    )
    wall = r["wall_per_form"]
    lines.append(f"| wall s/form median / p95 | {wall['median']:.3f} / {wall['p95']:.3f} | – |")
    rc = r["cpu_retake_answer"]
    lines.append(
        f"| CPU s to a retake answer, median / p95 | {rc['median']:.3f} / {rc['p95']:.3f} | – |"
    )
    for stage, v in r["cpu_by_stage"].items():
        lines.append(
            f"| stage {stage}: CPU s median / p95 | {v['median']:.3f} / {v['p95']:.3f} | |"
        )
    if "speedup_median" in r:
        lines.append(f"| speed-up (median CPU) | {r['speedup_median']:.1f}× | 1× |")
    lines += [
        "",
        "verdicts (expected->got): " + ", ".join(f"{k} {v}" for k, v in r["confusion"].items()),
        "retake reasons: " + ", ".join(f"{k} {v}" for k, v in r["retake_reasons"].items()),
    ]
    lines += [f"  wrong: {w}" for w in r["wrong"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--reader-root",
        help="a checkout whose backend.ocr reads the photos (default: this one)",
    )
    parser.add_argument("--out", help="results file (default: results.json by the photos)")
    parser.add_argument("--link-base", default="", help=LINK_BASE_HELP)
    args = parser.parse_args()
    cases = generate(args.count, seed=args.seed, link_base=args.link_base)
    folder = out_dir(args.seed, args.link_base)
    result = run(cases, folder, baseline=not args.no_baseline)
    result["seed"] = args.seed
    out = Path(args.out) if args.out else folder / "results.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(table(result))


if __name__ == "__main__":
    main()
