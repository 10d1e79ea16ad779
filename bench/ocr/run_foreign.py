"""The photo check on forms printed by other systems (issue 15), against the targets.

    .venv/bin/python -m bench.ocr.foreign --count 150 --seed 12          # the photos
    taskset -c 0 .venv/bin/python -m bench.ocr.run_foreign --seed 12 --count 150

Each photo is checked twice on one core (OpenMP, OpenCV and onnxruntime at one thread):
"first" with an empty layout memory, as if its layout had never been seen, and "learned"
with a memory that has read one earlier photo of each layout. It prints verdicts (by
layout), ID numbers read exactly on accepted photos, handwriting recall (cells), usable
photos sent back, unreadable photos accepted, and CPU per accepted form, first and
learned, against the issue's targets. Results: bench/out/ocr/foreign-seed-N/results.json.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402

from backend.ocr import ForeignForms, LayoutMemory, check_foreign_photo, normalise, warm_up  # noqa: E402
from backend.ocr.__main__ import catalog_fields, printed_values  # noqa: E402
from backend.ocr.synth_foreign import BY_NAME  # noqa: E402
from backend.records.catalog import printed_names  # noqa: E402

from .foreign import generate, out_dir  # noqa: E402

cv2.setNumThreads(1)
ID_CODES = ("id_number", "guardian1_id_number", "guardian2_id_number")


def _q(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    cases = generate(args.count, seed=args.seed)
    folder = out_dir(args.seed)
    fields, names = catalog_fields(), printed_names()
    warm_up()
    # The learned memory: each layout read once, from a usable photo of the tuning seed's
    # kind but not from this set (the first matching photo of each layout here would
    # otherwise be read first and counted twice).
    learned = LayoutMemory()
    teach = {c.layout: c for c in reversed(cases) if c.verdict == "matches"}
    for case in teach.values():
        check_foreign_photo(
            (folder / case.photo).read_bytes(),
            ForeignForms(fields, names, learned),
            printed_values(case.record),
        )
    out: dict[str, Any] = {"photos": len(cases), "seed": args.seed, "learned_layouts": len(learned)}
    for mode in ("first", "learned"):
        verdicts: Counter[str] = Counter()
        by_layout: dict[str, Counter[str]] = defaultdict(Counter)
        ids_ok = ids_all = 0
        ink = Counter[str]()
        sent_back, accepted_bad, wrong = [], [], []
        cpu: list[float] = []
        ways: Counter[str] = Counter()
        for case in cases:
            memory = learned if mode == "learned" else LayoutMemory()
            forms = ForeignForms(fields, names, memory)
            photo = (folder / case.photo).read_bytes()
            cpu0 = time.process_time()
            report = check_foreign_photo(photo, forms, printed_values(case.record))
            seconds = time.process_time() - cpu0
            got = report.verdict.value
            right = got == case.verdict
            verdicts["right" if right else "wrong"] += 1
            by_layout[case.layout]["right" if right else "wrong"] += 1
            if not right:
                wrong.append(
                    f"{case.photo}: expected {case.verdict}, got {got} "
                    f"{report.retake_reason or ''} {list(report.differing)} "
                    f"{list(report.corrections)} signed={report.signed}"
                )
            if got == "retake" and case.verdict != "retake":
                sent_back.append(case.photo)
            if got != "retake" and case.verdict == "retake":
                accepted_bad.append(case.photo)
            if got != "retake":
                cpu.append(seconds)
                ways[report.layout_way or "?"] += 1
                if case.verdict not in ("retake", "not_this_form"):
                    spec = BY_NAME[case.layout]
                    printed = printed_values(case.printed)
                    for code, _ in spec.fields:
                        if code in ID_CODES and printed.get(code):
                            ids_all += 1
                            r = report.fields.get(code)
                            ids_ok += r is not None and normalise(r.text, "digits") == normalise(
                                printed[code], "digits"
                            )
                    for code in report.fields:
                        written, found = code in case.corrections, code in report.corrections
                        ink[
                            "tp"
                            if written and found
                            else "fp"
                            if found
                            else "fn"
                            if written
                            else "tn"
                        ] += 1
        usable = sum(1 for c in cases if c.verdict != "retake")
        out[mode] = {
            "verdicts_correct": verdicts["right"] / len(cases),
            "by_layout": {k: v["right"] / (v["right"] + v["wrong"]) for k, v in by_layout.items()},
            "ids_exact_on_accepted": f"{ids_ok} of {ids_all}",
            "handwriting_recall": ink["tp"] / max(1, ink["tp"] + ink["fn"]),
            "handwriting_precision": ink["tp"] / max(1, ink["tp"] + ink["fp"]),
            "usable_sent_back": f"{len(sent_back)} of {usable}"
            f" ({len(sent_back) / max(1, usable):.1%})",
            "unreadable_accepted": f"{len(accepted_bad)} of {len(cases) - usable}",
            "cpu_per_accepted_form": {"median": _q(cpu, 0.5), "p95": _q(cpu, 0.95)},
            "layout_way": dict(ways),
            "wrong": wrong,
        }
    (folder / "results.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
    for mode in ("first", "learned"):
        r = out[mode]
        print(f"== {mode} time a layout is seen ==" if mode == "first" else "== layout learned ==")
        for k, v in r.items():
            if k != "wrong":
                print(f"  {k}: {v}")
        for w in r["wrong"]:
            print(f"  wrong: {w}")


if __name__ == "__main__":
    main()
