"""Fixtures for the image package's tests: no database, no Redis, no app."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from backend.ocr import FormHeader, Layout, build_layout, render_form, sign_form_token
from backend.ocr.__main__ import catalog_fields, printed_values
from backend.ocr.synth import sign

KEY = b"test-form-token-key"
FORM_ID = "F-2026-0001"
# As long as PUBLIC_BASE_URL may be: the QR code carries `{BASE_URL}/m/f/{token}`, so every
# photo test here reads the fullest symbol a printed form can have.
BASE_URL = "https://xueji.jyt.zhejiang.gov.cn"
PHOTO_SIZE = (2400, 3200)  # smaller than a phone's 12 MP, so the suite stays quick

RECORD: dict[str, str] = {
    "form_id": FORM_ID,
    "name": "欧阳子涵",
    "former_name": "",
    "sex": "2",
    "birth_date": "2015-03-08",
    "birthplace": "浙江省杭州市",
    "native_place": "浙江杭州",
    "ethnicity": "01",
    "nationality": "CN",
    "id_type": "1",
    "id_number": "33010620150308122X",
    "overseas_status": "0",
    "health": "1",
    "household_address": "浙江省杭州市西湖区文三路100号翠苑小区3幢2单元501室",
    "household_type": "2",
    "current_address": "浙江省杭州市西湖区文三路100号翠苑小区3幢2单元501室",
    "phone": "13812345678",
    "only_child": "1",
    "left_behind": "0",
    "migrant_child": "0",
    "orphan": "0",
    "disability": "0",
    "enrolment_month": "2021-09",
    "enrolment_method": "1",
    "study_mode": "1",
    "guardian1_name": "欧阳明",
    "guardian1_relation": "1",
    "guardian1_phone": "13900001111",
    "guardian1_id_type": "1",
    "guardian1_id_number": "330106198501011234",
    "guardian1_is_guardian": "1",
    "guardian1_employer": "杭州市西湖区某某科技有限公司",
    "guardian2_name": "李娜",
    "guardian2_relation": "2",
    "guardian2_phone": "0571-88881234",
    "guardian2_id_type": "1",
    "guardian2_id_number": "330106198702021245",
    "guardian2_is_guardian": "1",
    "guardian2_employer": "浙江大学",
}


@pytest.fixture(autouse=True)
def clean() -> None:
    """Overrides the suite's database-cleaning fixture: these tests touch no database."""


@pytest.fixture(scope="session")
def layout() -> Layout:
    return build_layout(catalog_fields())


@pytest.fixture(scope="session")
def values() -> dict[str, str]:
    return printed_values(RECORD)


def header(form_id: str = FORM_ID, key: bytes = KEY) -> FormHeader:
    return FormHeader(
        school="杭州市文三路小学",
        class_name="三年级（2）班",
        registration_code="K7Q2M9XD",
        form_token=sign_form_token(form_id, key),
        student_name=RECORD["name"],
        public_base_url=BASE_URL,
    )


@pytest.fixture(scope="session")
def page(layout: Layout, values: dict[str, str]) -> Image.Image:
    return render_form(layout, values, header())


@pytest.fixture(scope="session")
def signed_page(layout: Layout, page: Image.Image) -> Image.Image:
    return sign(page, layout, np.random.default_rng(1))
