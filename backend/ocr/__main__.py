"""Command line: render a record's form, or check a photo of it.

    python -m backend.ocr render RECORD.json OUT.png   # also OUT.json, the layout's boxes
    python -m backend.ocr render RECORD.json OUT.pdf
    python -m backend.ocr read PHOTO RECORD.json       # prints the check as one JSON object

RECORD.json is `{"form_id": "...", CODE: stored value, ...}` with the catalog's codes
(choices by code, e.g. "sex": "1"); optional "school", "class_name" and
"registration_code" fill the header. The token key comes from FORM_TOKEN_KEY, else a
development default. A photo without our QR code (a form printed by another system; give
`"form_id": null`) is read by its labels; the layouts it learns are kept in the JSON file
OCR_LAYOUTS names (none kept without it).

This is the one module of the package that may import the records domain (for the
catalog's printed fields).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# The catalog's fields as the form prints them: one conversion, shared with the server.
from backend.records.catalog import printed_names
from backend.records.printing import catalog_fields, printed_values

from . import (
    ForeignForms,
    FormHeader,
    LayoutMemory,
    build_layout,
    check_photo,
    render_form,
    render_pdf,
)
from ._token import sign_form_token

DEV_KEY = b"development-form-token-key-do-not-use-in-production"


def form_key(env: Mapping[str, str]) -> bytes:
    key = env.get("FORM_TOKEN_KEY")
    return key.encode() if key else DEV_KEY


def _render(record_path: Path, out: Path, key: bytes) -> None:
    record = json.loads(record_path.read_text(encoding="utf-8"))
    pdf = out.suffix.lower() == ".pdf"
    layout = build_layout(catalog_fields(), dpi=300 if pdf else 200)
    header = FormHeader(
        school=record.get("school", "示例学校"),
        class_name=record.get("class_name", "示例班级"),
        registration_code=record.get("registration_code", "示例注册码"),
        form_token=sign_form_token(str(record["form_id"]), key),
        student_name=record.get("name") or None,
    )
    image = render_form(layout, printed_values(record), header)
    if pdf:
        out.write_bytes(render_pdf([image]))
        return
    image.save(out)
    out.with_suffix(".json").write_text(json.dumps(layout.to_json()) + "\n")


def _read(photo: Path, record_path: Path, key: bytes, layouts: str | None) -> dict[str, object]:
    record = json.loads(record_path.read_text(encoding="utf-8"))
    form_id = record.get("form_id")
    report = check_photo(
        photo.read_bytes(),
        build_layout(catalog_fields()),
        printed_values(record),
        key,
        expected_form_id=None if form_id is None else str(form_id),
        other_systems=ForeignForms(catalog_fields(), printed_names(), LayoutMemory(layouts)),
    )
    return report.summary()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.ocr", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser(
        "render", help="render a record's form (PNG + layout JSON, or PDF)"
    )
    render.add_argument("record", type=Path)
    render.add_argument("out", type=Path)
    read = commands.add_parser("read", help="check a photo of a signed form against a record")
    read.add_argument("photo", type=Path)
    read.add_argument("record", type=Path)
    args = parser.parse_args(argv)
    key = form_key(os.environ)
    if args.command == "render":
        _render(args.record, args.out, key)
        return 0
    summary = _read(args.photo, args.record, key, os.environ.get("OCR_LAYOUTS"))
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
