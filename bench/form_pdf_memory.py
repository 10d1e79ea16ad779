"""RSS of a process rendering class PDFs: 1 and 3 concurrent batches of 24 pages.

    .venv/bin/python bench/form_pdf_memory.py            # both paths, 1 and 3 batches
    .venv/bin/python bench/form_pdf_memory.py --legacy   # only main's old path

Each figure comes from a fresh child process (so one run does not inherit another's heap):
it warms the renderer up (fonts, layout, one page), then renders the batches on an asyncio
loop the way the worker's job does, sampling its own RSS every 10 ms. "peak" is the highest
RSS above the warmed-up baseline; "kept" is what is still above it once the job returned.

- new: `backend.records.forms` — each page rendered on the one PDF thread, made bilevel and
  appended to a PDF file on disk, then freed; memory handed back afterwards.
- legacy: the code before this change — every page rendered (`asyncio.to_thread`) into a list,
  then `render_pdf(pages)` in one go.

No database and no Redis: the forms are synthetic (the renderer does not care where the
values come from); the job's database reads and progress writes cost nothing measurable.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGES = 24
BASE_URL = "https://xj.example.edu.cn"  # what a production form's QR link starts with


def _forms(batch: int) -> list[dict[str, object]]:
    return [
        {
            "form_id": f"BENCH{batch:02d}{i:05d}"[:12],
            "snapshot": json.dumps(
                {
                    "name": "张" + "三四五六七八九十"[i % 8],
                    "current_address": "浙江省杭州市西湖区文三路" + str(100 + i) + "号",
                    "guardian1_phone": "139" + f"{i:08d}",
                }
            ),
        }
        for i in range(PAGES)
    ]


async def _new(batch: int) -> int:
    import os
    import tempfile

    from backend.records import forms

    loop = asyncio.get_running_loop()
    fd, path = tempfile.mkstemp(suffix=".pdf")
    os.close(fd)
    try:
        for n, form in enumerate(_forms(batch)):
            await loop.run_in_executor(
                forms.pdf_executor(),
                functools.partial(
                    forms._page_to_pdf,
                    path,
                    form,
                    "学校A",
                    "一年级1班",
                    b"k" * 32,
                    BASE_URL,
                    n == 0,
                ),
            )
        return len(await asyncio.to_thread(Path(path).read_bytes))
    finally:
        await loop.run_in_executor(forms.pdf_executor(), forms._clean_up, path)


async def _legacy(batch: int) -> int:
    from backend.ocr import render_form, render_pdf
    from backend.records import forms
    from backend.records.printing import PRINT_DPI, form_layout, printed_values
    from backend.records.service import load_fields

    pages = []
    for form in _forms(batch):
        header = forms._header(form, "学校A", "一年级1班", b"k" * 32, BASE_URL)
        values = printed_values(load_fields(form["snapshot"]))
        pages.append(await asyncio.to_thread(render_form, form_layout(PRINT_DPI), values, header))
    return len(await asyncio.to_thread(render_pdf, pages))


def child(path: str, batches: int) -> None:
    import psutil

    from backend.ocr import render_form
    from backend.records import forms
    from backend.records.printing import PRINT_DPI, form_layout, printed_values
    from backend.records.service import load_fields

    form = _forms(99)[0]
    header = forms._header(form, "学校A", "一年级1班", b"k" * 32, BASE_URL)
    render_form(form_layout(PRINT_DPI), printed_values(load_fields(form["snapshot"])), header)
    gc.collect()
    me = psutil.Process()
    base = me.memory_info().rss
    peak = base
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, me.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    job = _legacy if path == "legacy" else _new

    async def run() -> list[int]:
        return list(await asyncio.gather(*(job(b) for b in range(batches))))

    started = time.perf_counter()
    sizes = asyncio.run(run())
    seconds = time.perf_counter() - started
    gc.collect()
    time.sleep(0.3)
    stop.set()
    sampler.join()
    kept = me.memory_info().rss - base
    mib = 2**20
    print(
        json.dumps(
            {
                "path": path,
                "batches": batches,
                "base_mib": round(base / mib),
                "peak_mib": round((peak - base) / mib),
                "kept_mib": round(kept / mib),
                "seconds": round(seconds, 1),
                "pdf_kib": [round(s / 1024) for s in sizes],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--legacy", action="store_true", help="only the old path")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    paths = ["legacy"] if args.legacy else ["legacy", "new"]
    print(f"{'path':8} {'batches':>7} {'peak MiB':>9} {'kept MiB':>9} {'seconds':>8}  PDF KiB")
    for path in paths:
        for batches in (1, 3):
            out = subprocess.run(
                [sys.executable, __file__, "--child", path, str(batches)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{r['path']:8} {r['batches']:>7} {r['peak_mib']:>9} {r['kept_mib']:>9} "
                f"{r['seconds']:>8}  {r['pdf_kib']}"
            )


if __name__ == "__main__":
    main()
