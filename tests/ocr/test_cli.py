from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.ocr import build_layout
from backend.ocr.__main__ import catalog_fields, main
from backend.ocr.synth import photograph, sign

from .conftest import PHOTO_SIZE, RECORD


@pytest.fixture
def record_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FORM_TOKEN_KEY", "cli-test-key")
    path = tmp_path / "record.json"
    path.write_text(json.dumps(RECORD, ensure_ascii=False), encoding="utf-8")
    return path


def test_render_writes_png_and_layout_json(tmp_path: Path, record_file: Path) -> None:
    out = tmp_path / "form.png"
    assert main(["render", str(record_file), str(out)]) == 0
    image = Image.open(out)
    boxes = json.loads(out.with_suffix(".json").read_text())
    assert set(boxes["fields"]) == {f.code for f in catalog_fields()}
    width, height = image.size
    for cells in boxes["fields"].values():
        for box in (cells["value_box"], cells["correction_box"]):
            x0, y0, x1, y1 = box
            assert 0 <= x0 < x1 <= width
            assert 0 <= y0 < y1 <= height
    assert len(boxes["signature_box"]) == len(boxes["date_box"]) == 4


def test_render_pdf(tmp_path: Path, record_file: Path) -> None:
    out = tmp_path / "form.pdf"
    assert main(["render", str(record_file), str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")


def _photo_of_rendered(tmp_path: Path, record_file: Path) -> Path:
    out = tmp_path / "form.png"
    main(["render", str(record_file), str(out)])
    layout = build_layout(catalog_fields())
    signed = sign(Image.open(out), layout, np.random.default_rng(1))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(photograph(signed, np.random.default_rng(2), size=PHOTO_SIZE))
    return photo


def test_read(tmp_path: Path, record_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = _photo_of_rendered(tmp_path, record_file)
    assert main(["read", str(photo), str(record_file)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "matches"
    assert result["fields"]["id_number"] == {
        "text": RECORD["id_number"],
        "match": True,
        "confidence": result["fields"]["id_number"]["confidence"],
        "method": "verified",
    }
    assert result["signed"] is True
    assert result["retake_reason"] is None
    assert result["seconds"] > 0

    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(RECORD, form_id="F-other"), ensure_ascii=False))
    main(["read", str(photo), str(other)])
    assert json.loads(capsys.readouterr().out)["verdict"] == "not_this_form"

    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(dict(RECORD, phone="13812345670"), ensure_ascii=False))
    main(["read", str(photo), str(changed)])
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "differs"
    assert result["fields"]["phone"]["match"] is False
    assert result["fields"]["phone"]["text"] == "13812345678"
